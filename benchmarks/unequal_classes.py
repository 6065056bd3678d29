"""Draws of MNIST's training images with classes of unequal sizes.

Every default of the package was set on data whose classes are of equal
size, or nearly. ``benchmarks/run.py`` measures them where they are not
with two data sets it names, and beside them a third of equal classes:

* ``mnist-train-usps``: 7,291 images in the class sizes of USPS's
  training set (Hull 1994), from 1,194 zeros down to 542 eights; the
  largest class is 2.2 times the smallest;
* ``mnist-train-longtail``: 8,175 images in a long tail of ratio 10,
  ``round(2000 * 0.1 ** (k / 9))`` images for ``k = 0..9`` (2,000 down to
  200), the sizes given to the digits in a random order;
* ``mnist-train-balanced``: 7,290 images, 729 of each digit, about as
  many as ``mnist-train-usps``.

Each is drawn without replacement from ``mnist_train.npz`` of
``--data-path`` (``../shared/data``), the first two from one
``numpy.random.RandomState(0)``, the third from ``RandomState(1)``; the
same draw for every seed and estimator::

    OMP_NUM_THREADS=1 python benchmarks/run.py AutoencoderKMeans DEC \\
        --dataset mnist-train-longtail --seeds 0 1 --umap
"""

from pathlib import Path

import numpy as np

# USPS's training set, images of each digit 0-9.
USPS_TRAIN_SIZES = (1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644)
LONG_TAIL_SIZES = tuple(round(2000 * 0.1 ** (k / 9)) for k in range(10))
NAMES = ("mnist-train-usps", "mnist-train-longtail", "mnist-train-balanced")


def _draw(X, y, sizes, random_state):
    """``sizes[c]`` images of each class ``c``, shuffled."""
    rows = np.concatenate(
        [
            random_state.choice(np.flatnonzero(y == digit), size, replace=False)
            for digit, size in enumerate(sizes)
        ]
    )
    rows = random_state.permutation(rows)
    return X[rows], y[rows]


def load(name, data_path):
    """``X`` (uint8 pixels, one flattened image per row) and ``y`` of ``name``."""
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {NAMES}")
    with np.load(Path(data_path) / "mnist_train.npz") as data:
        X, y = data["X"], data["y"]
    if name == "mnist-train-balanced":
        return _draw(X, y, [729] * 10, np.random.RandomState(1))
    # The other two draws come from one generator, in this order, so that each is
    # the same whichever is asked for.
    random_state = np.random.RandomState(0)
    order = random_state.permutation(10).tolist()  # the tail's sizes' digits
    usps = _draw(X, y, USPS_TRAIN_SIZES, random_state)
    if name == "mnist-train-usps":
        return usps
    sizes = [LONG_TAIL_SIZES[order.index(digit)] for digit in range(10)]
    return _draw(X, y, sizes, random_state)
