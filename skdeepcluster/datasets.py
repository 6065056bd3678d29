"""Loaders for the datasets used in the examples and benchmarks."""

import gzip
import os
import urllib.request
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.datasets import load_digits as _sklearn_load_digits
from sklearn.utils import Bunch

__all__ = ["load_digits", "load_mnist"]

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_digits(*, scale=True, return_X_y=False):
    """The 8x8 digits that ship with scikit-learn (1,797 images, 10 classes).

    Parameters
    ----------
    scale : bool, default=True
        Divide the pixel values (0..16) by 16 so that they lie in [0, 1].
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a :class:`~sklearn.utils.Bunch`.

    Returns
    -------
    data : Bunch or tuple
        ``data`` (float32, shape (1797, 64)), ``target``, ``images_shape``
        ``(1, 8, 8)`` to pass as ``input_shape``; or ``(X, y)``.

    Examples
    --------
    >>> from skdeepcluster.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> X.shape, float(X.max())
    ((1797, 64), 1.0)
    """
    X, y = _sklearn_load_digits(return_X_y=True)
    X = X.astype(np.float32) / (16.0 if scale else 1.0)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, images_shape=(1, 8, 8))


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    n_dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def _find(directory, stem):
    for suffix in ("", ".gz"):
        candidate = Path(directory) / (stem + suffix)
        if candidate.exists():
            return candidate
    return None


def load_mnist(
    subset="test",
    *,
    data_home=None,
    path=None,
    download=False,
    scale=True,
    return_X_y=False,
):
    """Load MNIST from local files, downloading them only when asked.

    Looks, in order, for ``mnist_{subset}.npz`` (arrays ``X`` and ``y``) and for
    the original idx files (``t10k-images-idx3-ubyte[.gz]`` ...), first in
    ``path``, then in ``data_home/mnist``. Nothing is fetched unless
    ``download=True``.

    Parameters
    ----------
    subset : {"test", "train", "all"}, default="test"
        The 10,000 test images, the 60,000 training images, or all 70,000.
    data_home : str or path-like, default=None
        Cache folder; defaults to scikit-learn's data home
        (:func:`sklearn.datasets.get_data_home`).
    path : str or path-like, default=None
        A folder holding the npz or idx files; searched before ``data_home``.
    download : bool, default=False
        Download the idx files into ``data_home/mnist`` when they are not
        found.
    scale : bool, default=True
        Return float32 pixels divided by 255; otherwise the raw uint8 values.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a :class:`~sklearn.utils.Bunch`.

    Returns
    -------
    data : Bunch or tuple
        ``data`` of shape (n_samples, 784), ``target``, and ``images_shape``
        ``(1, 28, 28)``; or ``(X, y)``.

    Raises
    ------
    FileNotFoundError
        When the files are absent and ``download`` is False.

    Examples
    --------
    >>> from skdeepcluster.datasets import load_mnist
    >>> X, y = load_mnist("test", path="../shared/data", return_X_y=True)  # doctest: +SKIP
    """
    if subset not in ("test", "train", "all"):
        raise ValueError(f"subset must be 'test', 'train' or 'all', got {subset!r}.")
    if subset == "all":
        parts = [
            load_mnist(s, data_home=data_home, path=path, download=download,
                       scale=scale, return_X_y=True)
            for s in ("train", "test")
        ]
        X, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    else:
        X, y = _load_mnist_subset(subset, data_home, path, download)
        if scale:
            X = X.astype(np.float32) / 255.0
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, images_shape=(1, 28, 28))


def _load_mnist_subset(subset, data_home, path, download):
    cache = Path(get_data_home(data_home)) / "mnist"
    folders = [Path(p) for p in (path, cache) if p is not None]
    for folder in folders:
        npz = folder / f"mnist_{subset}.npz"
        if npz.exists():
            with np.load(npz) as arrays:
                return arrays["X"].reshape(len(arrays["X"]), -1), arrays["y"].astype(np.int64)
        images, labels = (_find(folder, stem) for stem in _IDX_FILES[subset])
        if images is not None and labels is not None:
            return _read_idx(images).reshape(-1, 784), _read_idx(labels).astype(np.int64)
    if not download:
        raise FileNotFoundError(
            f"MNIST {subset!r} files not found in {[str(f) for f in folders]}; "
            "pass path=... to a folder holding mnist_{subset}.npz or the idx "
            "files, or download=True to fetch them."
        )
    os.makedirs(cache, exist_ok=True)
    for stem in _IDX_FILES[subset]:
        target = cache / f"{stem}.gz"
        urllib.request.urlretrieve(MNIST_URL + f"{stem}.gz", target)
    return _load_mnist_subset(subset, data_home, cache, download=False)
