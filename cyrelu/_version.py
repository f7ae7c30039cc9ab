"""The single source of cyrelu's version number."""

__version__ = "0.1.0"
