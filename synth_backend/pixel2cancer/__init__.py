"""Pixel2Cancer (Lai et al., MICCAI 2024): tumor growth by a cellular automaton, then HU mapping."""
