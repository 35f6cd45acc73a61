"""The version of gradsweep (hatch reads it from here; the package re-exports it)."""

__version__ = "0.1.0"
