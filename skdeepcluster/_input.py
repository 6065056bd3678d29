"""Checks and views of the data the estimators are given.

Validation that scikit-learn's ``validate_data`` does not do (images not
flattened, values beyond float32, sample weights), the value range
``input_scaling="auto"`` maps from, and views that read a memory-mapped
``X`` a block of rows at a time rather than copying it into memory.
"""

import math
import mmap

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _check_sample_weight, _num_samples

# Largest magnitude whose square is still a finite float32: the networks
# square their inputs (reconstruction errors, batch-norm variances), so
# larger values overflow inside training even though they fit in float32.
_FLOAT32_SQUARE_MAX = float(np.sqrt(np.finfo(np.float32).max))


def _densify(X):
    """``X`` as a dense array of its dtype (see :func:`network_rows`)."""
    return X.toarray() if sp.issparse(X) else X


def _validated_sample_weight(sample_weight, X):
    """``sample_weight`` checked as KMeans checks it, non-negative, as float64.

    A torch tensor is taken as its values (see :func:`_tensor_as_array`).
    """
    return _check_sample_weight(
        _tensor_as_array(sample_weight), X, dtype=np.float64, ensure_non_negative=True
    )


def _check_fit_sample_weight(sample_weight, X, n_clusters):
    """Validate ``fit``'s ``sample_weight``; ``None`` when every weight is 1.

    As :class:`~sklearn.cluster.KMeans` validates it, and non-negative. All
    ones mean the same as ``None``; ``None`` is returned then, so that such a
    fit computes exactly what an unweighted one does.
    """
    if sample_weight is None:
        return None
    sample_weight = _validated_sample_weight(sample_weight, X)
    n_positive = int(np.count_nonzero(sample_weight))
    # Training needs two samples and n_clusters of them (too few samples at
    # all is reported by _check_fit_input, in terms of n_samples).
    needed = max(2, n_clusters)
    if n_positive < min(needed, len(sample_weight)):
        raise ValueError(
            f"sample_weight has {n_positive} positive weight"
            f"{'s' if n_positive != 1 else ''} but n_clusters={n_clusters}: "
            "samples of weight zero are left out of training, and at least "
            f"{needed} samples (2, and n_clusters) must remain."
        )
    largest = float(sample_weight.max())
    # Python floats: compared with a float32 scalar, largest would be cast
    # to float32 first (with an overflow warning).
    float32 = np.finfo(np.float32)
    if not float(float32.tiny) <= largest <= float(float32.max):
        # The networks and the k-means of their embeddings compute in
        # float32, where every weight would be 0 or infinite.
        raise ValueError(
            f"sample_weight's largest weight is {largest:.3g}, beyond the float32 "
            "range the estimators compute in (about 1.2e-38 to 3.4e38); only "
            "the weights' ratios matter, so divide them by their largest."
        )
    if np.all(sample_weight == 1):
        return None
    return sample_weight


def _select_rows(y, rows, n_samples):
    """The entries ``rows`` of ``y`` when it has one per sample, else ``y`` as is.

    ``y`` is ignored by most estimators and may be anything; only a ``y`` of
    ``n_samples`` entries is indexed like ``X``.
    """
    if y is None:
        return None
    try:
        if _num_samples(y) != n_samples:
            return y
    except TypeError:
        return y
    return _safe_indexing(y, np.flatnonzero(rows))


class _MappedRows:
    """Some rows of a memory-mapped array, read only when indexed.

    The training samples of a memory-mapped ``X`` when samples of weight 0
    are left out: indexing ``X`` with the kept rows would copy them all into
    memory. Has what the fit's checks (``shape``, ``dtype``, ``size``,
    ``ndim``, row slices, see :func:`_value_range`) and
    :class:`~skdeepcluster._torch_utils.ArrayRows` use of an array.

    Parameters
    ----------
    data : numpy.memmap of shape (n_samples, n_features)
    rows : ndarray of int of shape (n_rows,)
        Increasing indices of the rows of ``data``.
    """

    def __init__(self, data, rows):
        self.data = data
        self.rows = rows

    @property
    def shape(self):
        return (len(self.rows), *self.data.shape[1:])

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __getitem__(self, key):
        # Reads only the rows asked for (NumPy copies them out of the map).
        return self.data[self.rows[key]]


def _kept_rows(X, kept):
    """The rows ``kept`` (a boolean mask) of the validated ``X``.

    A memory-mapped ``X`` is not copied: its kept rows are read when
    training indexes them (see :class:`_MappedRows`).
    """
    if _is_memory_mapped(X):
        return _MappedRows(X, np.flatnonzero(kept))
    return X[kept]


def _is_memory_mapped(X):
    """Whether the array ``X`` is, or is a view of, a memory-mapped file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


def _value_blocks(X):
    """The values of the dense array or sparse matrix ``X``, a few rows at a time.

    So that a memory-mapped ``X`` is not copied whole into memory by the
    reductions over it; a sparse matrix gives its stored values.
    """
    if sp.issparse(X):
        X = X.data
    if X.size == 0:
        return
    if X.ndim < 2:
        yield X
        return
    for _, block in _row_blocks(X):
        yield block


def _row_blocks(X):
    """``(start, block)``: the rows of ``X`` in blocks of about a million values."""
    rows = max(1, 2**20 // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):
        yield start, X[start : start + rows]


def _tensor_as_array(X):
    """A torch tensor ``X`` as a NumPy array, on the CPU; any other ``X`` as is.

    NumPy takes no tensor that requires grad or lives on a GPU, nor
    bfloat16; the estimators never back-propagate into their input, so a
    detached copy of its values is all they need.
    """
    if not isinstance(X, torch.Tensor):
        return X
    X = X.detach().cpu()
    if X.dtype == torch.bfloat16:
        X = X.float()
    return X.numpy()


def _reject_unflattened_images(X, name):
    """Raise for an array of images, with how to pass them, before validation.

    scikit-learn's own message ("Found array with dim 3") does not say that
    the estimators take images flattened, with ``input_shape``.
    """
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) < 3:
        return
    sample_shape = tuple(int(n) for n in shape[1:])
    flatten, image = "X.reshape(len(X), -1)", sample_shape
    if len(sample_shape) == 2:
        image = (1, *sample_shape)
    elif len(sample_shape) == 3 and sample_shape[2] <= 4 < sample_shape[0]:
        # Channels last (height, width, channels): the networks take them first.
        flatten = "X.transpose(0, 3, 1, 2).reshape(len(X), -1)"
        image = (sample_shape[2], *sample_shape[:2])
    hint = ""
    if len(sample_shape) in (2, 3):
        hint = (
            f" For images of shape {sample_shape}, pass {flatten} and "
            f"input_shape={image} (channels, height, width)."
        )
    raise ValueError(
        f"{name} expects X of shape (n_samples, n_features), got an array of "
        f"shape {tuple(shape)}.{hint}"
    )


def _value_range(X):
    """``(smallest, largest)`` of ``X``'s values, in one pass.

    A sparse matrix's implicit zeros are values too (see
    :func:`_value_blocks`, which gives only the stored ones); an empty ``X``
    gives ``(0.0, 0.0)``.
    """
    if sp.issparse(X) and not getattr(X, "has_canonical_format", True):
        # Entries stored twice for one position add up to its value.
        X = X.copy()
        X.sum_duplicates()
    smallest, largest = np.inf, -np.inf
    for block in _value_blocks(X):
        smallest = min(smallest, float(block.min()))
        largest = max(largest, float(block.max()))
    if sp.issparse(X) and X.nnz < X.shape[0] * X.shape[1]:
        smallest, largest = min(smallest, 0.0), max(largest, 0.0)
    if smallest > largest:
        return 0.0, 0.0
    return smallest, largest


def _magnitude(value_range, offset=0.0):
    """Largest magnitude of ``value - offset`` over a :func:`_value_range`."""
    smallest, largest = value_range
    return max(abs(smallest - offset), abs(largest - offset))


def _intensity_scaling(value_range):
    """``input_scaling="auto"``'s ``(offset, scale)`` for data of ``value_range``.

    The network sees ``(X - offset) / scale``. Non-negative data (pixels in
    0..255, the 0..16 of scikit-learn's digits, counts) is mapped onto
    [0, 1], with its minimum as the offset and its range as the scale, as
    the papers divide pixels by 255. Data with negative values whose
    largest magnitude ``m`` is at most 1 (images stored in [-1, 1] as
    ``2 * pixels / 255 - 1``, small centred features) is mapped into
    [0, 1] as ``(X + m) / (2 m)``: images spanning [-1, 1] become pixels /
    255 again, on which the defaults were set (the autoencoder estimators
    fitted [-1, 1] as given worse on most large image sets, see
    ``benchmarks/NOTES.rst``). Data mapped so is fitted alike whatever
    its offset and unit, up to rounding: as for k-means, which a shifted
    or rescaled copy does not change either, a dim image set, or one whose
    values all lie far from 0, is not a harder problem.

    Data of the scale the defaults are set for is left as it is, ``(0.0,
    1.0)``: data within [0, 1] spanning at least half of it (mapping ORL's
    pixels / 255, from 0.008 to 0.92, onto [0, 1] cost every method some
    accuracy, see ``benchmarks/NOTES.rst``), and data with negative values
    and a largest magnitude above 1 (standardised features; also larger raw
    features, which need a scaler). So is constant data. ``value_range`` is
    the data's :func:`_value_range`.
    """
    smallest, largest = value_range
    # Narrower data would be divided by zero in the network's float32.
    tiny = np.finfo(np.float32).tiny
    if smallest < 0:
        magnitude = _magnitude(value_range)
        return (-magnitude, 2 * magnitude) if tiny <= magnitude <= 1 else (0.0, 1.0)
    if largest - smallest < tiny or (largest <= 1 and largest - smallest >= 0.5):
        return 0.0, 1.0
    return smallest, largest - smallest


def _check_float32_range(X, largest=None):
    """Reject values that become infinite when cast to the networks' float32.

    ``largest``: the largest magnitude in ``X`` when already known; read
    from ``X`` otherwise.
    """
    if X.dtype == np.float32 or X.size == 0:
        return
    if largest is None:
        largest = _magnitude(_value_range(X))
    # As a Python float: compared with the float32 scalar, largest would be
    # cast to float32 and overflow (with a RuntimeWarning) first.
    if largest > float(np.finfo(np.float32).max):
        raise ValueError(
            f"X contains a value of magnitude {largest:.3g}, beyond the float32 "
            f"range (about {np.finfo(np.float32).max:.3g}) the network computes "
            "in; it would become infinite. Scale the input to [0, 1] or "
            "standardise it (e.g. with sklearn.preprocessing.StandardScaler)."
        )


def _squares_overflow(value_range, offset=0.0, scale=1.0):
    """How the squares of the network's input overflow float32, or None if not.

    The input of ``value_range`` (a :func:`_value_range`) reaches the
    network as ``(X - offset) / scale`` (see ``_FLOAT32_SQUARE_MAX``). The
    start of the message ``fit`` warns with and inference raises.
    """
    largest = _magnitude(value_range, offset)
    if largest / scale <= _FLOAT32_SQUARE_MAX:
        return None
    where = (
        f"of magnitude {largest:.3g}"
        if offset == 0
        else f"{largest:.3g} away from input_offset_={offset:.3g}"
    )
    return (
        f"X contains a value {where}, whose square "
        f"overflows float32 (above about {_FLOAT32_SQUARE_MAX:.3g})"
    )


# square_image_shape reads at most this many rows, spread evenly over X,
# and at most about this many values (large images, fewer rows), so that
# its float64 copies stay within tens of megabytes.
_IMAGE_TEST_ROWS = 1000
_IMAGE_TEST_VALUES = 2**22
# Smallest side of an image square_image_shape recognises: scikit-learn's
# digits are 8x8.
_MIN_IMAGE_SIDE = 8
# How much more neighbouring pixels must correlate, on average, than pixels
# half the image apart, in both directions. Images of handwriting, objects,
# faces and clothing (digits, MNIST, COIL-20, ORL, Fashion-MNIST) exceed it:
# their smaller margin is 0.26 to 0.75. Features without a pixel layout
# (MNIST with its pixels permuted, make_classification, uniform noise) stay
# below 0.03, and smooth signals of 256 values laid out in the square (random
# walks, sums of sines), whose neighbours along a row are alike but so are
# points half a row apart, below 0.19.
_IMAGE_TEST_MARGIN = 0.2


def square_image_shape(X):
    """``(1, side, side)`` when the rows of ``X`` look like flattened square images.

    The features must number ``side * side`` (``side >= 8``), and read as a
    ``side x side`` grid they must behave as pixels: the values of
    neighbouring pixels go together (correlate across the samples) far more
    than those of pixels half the image apart, along the rows and down the
    columns alike (see ``_IMAGE_TEST_MARGIN``). Features that merely number
    a square, or a signal recorded in a row, do not.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        A dense or sparse array, or a memory-mapped one's rows (anything
        that integer indexing of rows turns into an array or a sparse
        matrix). At most ``_IMAGE_TEST_ROWS`` rows, evenly spaced, are read,
        and fewer for large images (``_IMAGE_TEST_VALUES``): the test draws
        no random numbers.

    Returns
    -------
    shape : tuple of int or None
        ``(1, side, side)``, or ``None`` when ``X`` does not look like
        images of one channel.
    """
    n_samples, n_features = X.shape
    side = math.isqrt(n_features)
    if side * side != n_features or side < _MIN_IMAGE_SIDE or n_samples < 3:
        return None
    n_rows = min(n_samples, _IMAGE_TEST_ROWS, max(3, _IMAGE_TEST_VALUES // n_features))
    rows = np.unique(np.linspace(0, n_samples - 1, n_rows).astype(int))
    images = np.asarray(_densify(X[rows]), dtype=np.float64).reshape(-1, side, side)
    half = side // 2
    margins = (
        _mean_correlation(images[:, :, :-1], images[:, :, 1:])
        - _mean_correlation(images[:, :, :-half], images[:, :, half:]),
        _mean_correlation(images[:, :-1, :], images[:, 1:, :])
        - _mean_correlation(images[:, :-half, :], images[:, half:, :]),
    )
    if min(margins) < _IMAGE_TEST_MARGIN:
        return None
    return (1, side, side)


def _mean_correlation(a, b):
    """Mean correlation, over the samples, of the pixels of ``a`` with those of ``b``.

    ``a`` and ``b`` are arrays of the same shape ``(n_samples, ...)``; each
    pixel of ``a`` is paired with the pixel at the same position in ``b``.
    Pairs with a constant pixel (an empty border) have no correlation and
    are left out; with none left the mean is 0.
    """
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    norms = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    varying = norms > 0
    if not varying.any():
        return 0.0
    return float(np.mean((a * b).sum(axis=0)[varying] / norms[varying]))
