"""Data: the windows abstraction, normalization, and loaders for the default and public datasets."""

from crossl_edge.data.registry import available, load_dataset
from crossl_edge.data.windows import Dataset, ModalitySpec, Normalizer, Windows

__all__ = ["Dataset", "ModalitySpec", "Normalizer", "Windows", "available", "load_dataset"]
