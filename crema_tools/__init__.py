"""crema-tools: CREMA-D turned into comparable, Hub-ready datasets."""

__version__ = "0.1.0"
