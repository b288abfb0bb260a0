"""turingct: visual Turing tests and evaluation of synthetic tumors in CT."""

__version__ = "0.1.0"
