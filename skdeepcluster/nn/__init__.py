"""PyTorch building blocks shared by the deep clustering estimators."""

from ._autoencoder import Autoencoder, L2Normalize, Shift
from ._conv import ConvDecoder, ConvEncoder
from ._mlp import MLPDecoder, MLPEncoder

__all__ = [
    "Autoencoder",
    "L2Normalize",
    "ConvDecoder",
    "ConvEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "Shift",
]
