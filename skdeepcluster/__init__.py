"""Deep clustering methods as scikit-learn estimators."""

from importlib.metadata import PackageNotFoundError, version

from ._autoencoder_kmeans import AutoencoderKMeans

try:
    __version__ = version("skdeepcluster")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["AutoencoderKMeans", "__version__"]
