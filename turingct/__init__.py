"""turingct: visual Turing tests and evaluation of synthetic tumors in CT."""

from core.settings import package_version

__version__ = package_version()
