"""Packaged YAML presets for training the learning-based methods (tiny / full)."""
