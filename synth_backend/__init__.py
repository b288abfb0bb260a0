"""Everything that makes tumors: volume IO and geometry, methods behind one interface, batches."""
