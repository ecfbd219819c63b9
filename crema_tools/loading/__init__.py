"""The loader: a built config as a torch-ready stream (`dataset`), and its device side (`transforms`)."""

from ..errors import LoadError
from ..representations import LoadOptions
from .dataset import CremaDataset, collate, load, resolve, stream_location

__all__ = ["CremaDataset", "LoadError", "LoadOptions", "collate", "load", "resolve", "stream_location"]
