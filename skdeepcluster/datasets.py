"""Loaders for the datasets used in the examples and benchmarks."""

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Literal

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


def load_digits(
    *, scale: bool = True, return_X_y: bool = False
) -> Bunch | tuple[np.ndarray, np.ndarray]:
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


# MD5 of the decompressed idx files, as published with the data set
# (http://yann.lecun.com/exdb/mnist/ and its mirrors). Checked on the
# decompressed content so that a gzip-compressed and an uncompressed copy of
# the same file both pass.
_IDX_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Number of dimensions of each kind of idx file: (n, 28, 28) and (n,).
_IDX_NDIM = {"images": 3, "labels": 1}
_DOWNLOAD_TIMEOUT = 60


class _CorruptFileError(OSError):
    """An MNIST file that cannot be read or does not have the expected content."""


def _read_bytes(path):
    """The (decompressed) content of ``path``; a truncated gzip file raises."""
    with open(path, "rb") as f:
        data = f.read()
    # Recognised by content, not name: gzip data starts with 1f 8b, an idx
    # file with two zero bytes.
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _CorruptFileError(f"{path} is not a complete gzip file ({exc}).") from exc


def _parse_idx(data, path, kind):
    """The array stored in the idx bytes ``data``, after checking its header.

    An idx file starts with two zero bytes, a type code (0x08: unsigned
    bytes, the only type MNIST uses), the number of dimensions and one
    big-endian 32-bit size per dimension, followed by exactly the product
    of the sizes in bytes.
    """
    n_dims = _IDX_NDIM[kind]
    header_size = 4 + 4 * n_dims
    if len(data) < header_size or data[:3] != b"\x00\x00\x08" or data[3] != n_dims:
        raise _CorruptFileError(
            f"{path} does not start with the header of an idx file of unsigned "
            f"bytes with {n_dims} dimension(s), as MNIST {kind} files do."
        )
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)]
    if kind == "images" and shape[1:] != [28, 28]:
        raise _CorruptFileError(
            f"{path} holds images of shape {tuple(shape[1:])}, not (28, 28)."
        )
    expected = header_size + int(np.prod(shape))
    if len(data) != expected:
        raise _CorruptFileError(
            f"{path} holds {len(data)} bytes but its header announces "
            f"{expected} (shape {tuple(shape)}): the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_idx(path, kind, stem=None):
    """Read and check an idx file; ``stem`` also checks the official MD5."""
    data = _read_bytes(path)
    if stem is not None:
        digest = hashlib.md5(data).hexdigest()
        if digest != _IDX_MD5[stem]:
            raise _CorruptFileError(
                f"{path} has MD5 {digest} (decompressed), not the {_IDX_MD5[stem]} "
                f"of the official {stem}: the file is corrupt or not MNIST's."
            )
    return _parse_idx(data, path, kind)


def _find(directory, stem):
    for suffix in ("", ".gz"):
        candidate = Path(directory) / (stem + suffix)
        if candidate.exists():
            return candidate
    return None


def _check_lengths(X, y, source):
    if len(X) != len(y):
        raise ValueError(
            f"MNIST files in {source} hold {len(X)} images but {len(y)} labels; "
            "the images and labels files must come from the same subset."
        )


def _download(stem, kind, folder, subset):
    """Download ``stem``.gz into ``folder``, keep it if its MD5 is right, read it.

    ``subset`` (``"test"`` or ``"train"``) names the npz file the error
    message offers instead.

    The file is written under a temporary name in ``folder`` and renamed
    (atomically, on the same file system) only once complete and verified,
    so an interrupted download never leaves a file that later calls would
    take for the data set.
    """
    url = MNIST_URL + f"{stem}.gz"
    target = Path(folder) / f"{stem}.gz"
    fd, partial = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
                    shutil.copyfileobj(response, out)
            except OSError as exc:  # URLError, HTTPError and timeouts included
                raise ConnectionError(
                    f"Downloading MNIST from {url} failed ({exc}). Without "
                    f"network access, place {stem}.gz (or the uncompressed "
                    f"{stem}) in {folder}, or pass path= to a folder that holds "
                    f"the idx files or an mnist_{subset}.npz."
                ) from exc
        try:
            array = _read_idx(partial, kind, stem)
        except _CorruptFileError as exc:
            raise _CorruptFileError(
                f"The file downloaded from {url} failed its check and was not "
                f"kept: {exc}"
            ) from exc
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return array


def load_mnist(
    subset: Literal["test", "train", "all"] = "test",
    *,
    data_home: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    download: bool = False,
    scale: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load MNIST from local files, downloading them only when asked.

    Looks, in order, for ``mnist_{subset}.npz`` (arrays ``X`` and ``y``) and for
    the original idx files (``t10k-images-idx3-ubyte[.gz]`` ...), first in
    ``path``, then in ``data_home/mnist``; ``subset="all"`` loads ``"train"``
    and then ``"test"`` that way and stacks them (there is no
    ``mnist_all.npz``). Nothing is fetched unless
    ``download=True``. Every idx file's header and length are checked, and
    the images and labels must be as many; the files in ``data_home/mnist``
    must also match the official MD5 checksums, while those in ``path`` may
    be any valid idx files (a subset, for instance).

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
        found. Each file is written under a temporary name and moved into
        place only once its MD5 checksum matches the official one.
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
    ConnectionError
        When a download fails (e.g. without network access); the message
        says where to place the files by hand.
    OSError
        When a file is truncated or is not a valid idx file, or a file in
        ``data_home/mnist`` or a downloaded one does not match the official
        MD5 checksum. With ``download=True`` a cached file that fails these
        checks is deleted and downloaded again, once.
    ValueError
        When the images and labels files hold different numbers of samples.

    Examples
    --------
    >>> from skdeepcluster.datasets import load_mnist
    >>> X, y = load_mnist("test", path="../shared/data", return_X_y=True)  # doctest: +SKIP
    """
    if subset not in ("test", "train", "all"):
        raise ValueError(f"subset must be 'test', 'train' or 'all', got {subset!r}.")
    if subset == "all":
        parts = [
            load_mnist(
                s,
                data_home=data_home,
                path=path,
                download=download,
                scale=scale,
                return_X_y=True,
            )
            for s in ("train", "test")
        ]
        X, y = (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
        )
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
                X, y = arrays["X"], arrays["y"]
            X = X.reshape(len(X), -1)
            _check_lengths(X, y, npz)
            return X, y.astype(np.int64)
        # Files the user points to are read as they are: they need not be
        # the official ones (a subset, a re-encoding), only valid idx.
        found = None if folder == cache else _read_idx_folder(folder, subset)
        if found is not None:
            return found
    return _load_cached(subset, cache, download)


def _read_idx_folder(folder, subset):
    """``subset``'s images (n, 784) and int64 labels from the idx files in ``folder``.

    Read as they are, without the official checksums; ``None`` when either
    file is missing.
    """
    files = [_find(folder, stem) for stem in _IDX_FILES[subset]]
    if None in files:
        return None
    images, labels = (_read_idx(f, kind) for f, kind in zip(files, _IDX_NDIM))
    _check_lengths(images, labels, folder)
    return images.reshape(-1, 784), labels.astype(np.int64)


def _load_cached(subset, cache, download):
    """Read ``subset`` from the cache, downloading missing or corrupt files once."""
    arrays = []
    for stem, kind in zip(_IDX_FILES[subset], _IDX_NDIM):
        found = _find(cache, stem)
        if found is None and not download:
            raise FileNotFoundError(
                f"MNIST {subset!r} files not found in {cache}; pass path=... to a "
                f"folder holding mnist_{subset}.npz or the idx files, or "
                "download=True to fetch them."
            )
        if found is not None:
            try:
                arrays.append(_read_idx(found, kind, stem))
                continue
            except _CorruptFileError as exc:
                if not download:
                    raise _CorruptFileError(
                        f"{exc} Delete {found} and call load_mnist again with "
                        "download=True to fetch it again, or replace it with the "
                        "official file."
                    ) from exc
                # A cached file that fails its check (e.g. left half-written
                # by an interrupted download) is replaced once.
                os.remove(found)
        os.makedirs(cache, exist_ok=True)
        arrays.append(_download(stem, kind, cache, subset))
    images, labels = arrays
    _check_lengths(images, labels, cache)
    return images.reshape(-1, 784), labels.astype(np.int64)
