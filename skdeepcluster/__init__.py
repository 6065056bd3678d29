"""Deep clustering methods as scikit-learn estimators."""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from ._acai import ACAIKMeans
from ._autoencoder_kmeans import AutoencoderKMeans
from ._dac import DAC
from ._dcn import DCN
from ._dec import DEC
from ._imsat import IMSAT
from ._snnl import SNNLKMeans

try:
    __version__ = _version("skdeepcluster")
except _PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ACAIKMeans",
    "AutoencoderKMeans",
    "DAC",
    "DCN",
    "DEC",
    "IMSAT",
    "SNNLKMeans",
    "__version__",
]
