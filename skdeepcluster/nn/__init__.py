"""PyTorch building blocks shared by the deep clustering estimators."""

from ._autoencoder import Autoencoder
from ._conv import ConvDecoder, ConvEncoder
from ._mlp import MLPDecoder, MLPEncoder

__all__ = ["Autoencoder", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder"]
