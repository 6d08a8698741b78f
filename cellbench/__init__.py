"""cellbench: benchmark single-cell representations of fluorescence microscopy plates."""

__version__ = "0.1.0"
