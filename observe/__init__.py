"""observe: ML observability and root-cause diagnosis."""

__version__ = "0.1.0"
