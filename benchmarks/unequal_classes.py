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
  many as ``mnist-train-usps``;
* ``mnist-train-usps-16px``: the images of ``mnist-train-usps`` in USPS's
  format (:func:`in_usps_format`), 16x16 pixels, the digit filling the
  frame: images of another resolution than MNIST's, with USPS's class sizes.

Each is drawn without replacement from ``mnist_train.npz`` of
``--data-path`` (``../shared/data``), the first two from one
``numpy.random.RandomState(0)``, the third from ``RandomState(1)``; the
same draw for every seed and estimator::

    OMP_NUM_THREADS=1 python benchmarks/run.py AutoencoderKMeans DEC \\
        --dataset mnist-train-longtail --seeds 0 1 --umap
"""

from pathlib import Path

import numpy as np
import torch

# USPS's training set, images of each digit 0-9.
USPS_TRAIN_SIZES = (1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644)
LONG_TAIL_SIZES = tuple(round(2000 * 0.1 ** (k / 9)) for k in range(10))
NAMES = (
    "mnist-train-usps",
    "mnist-train-longtail",
    "mnist-train-balanced",
    "mnist-train-usps-16px",
)
# USPS's images: 16x16 pixels, the digit scaled to fill the frame (Hull 1994).
USPS_SIDE = 16
# Pixels (of 255) above which a pixel belongs to the digit's bounding box.
INK = 30


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


def in_usps_format(X):
    """MNIST's 28x28 images (uint8 rows) as 16x16 images, as USPS's are.

    Each digit is cropped to the bounding box of its pixels above ``INK``,
    centred in a square of the box's longer side (the aspect ratio kept) and
    resized to 16x16 with torch's antialiased bilinear interpolation. MNIST
    fits each digit into a 20x20 box inside a 28x28 frame; USPS's digits
    fill theirs.
    """
    images = X.reshape(-1, 28, 28)
    out = np.empty((len(images), USPS_SIDE * USPS_SIDE), dtype=np.uint8)
    for i, image in enumerate(images):
        rows = np.flatnonzero(image.max(axis=1) > INK)
        cols = np.flatnonzero(image.max(axis=0) > INK)
        if len(rows):
            image = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        height, width = image.shape
        side = max(height, width)
        square = np.zeros((side, side), dtype=np.float32)
        top, left = (side - height) // 2, (side - width) // 2
        square[top : top + height, left : left + width] = image
        resized = torch.nn.functional.interpolate(
            torch.from_numpy(square)[None, None],
            size=(USPS_SIDE, USPS_SIDE),
            mode="bilinear",
            antialias=True,
        )
        out[i] = resized.reshape(-1).round().clamp(0, 255).numpy()
    return out


def load(name, data_path):
    """``X`` (uint8 pixels, one flattened image per row) and ``y`` of ``name``.

    The images are 28x28, or 16x16 for ``mnist-train-usps-16px``.
    """
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
    if name == "mnist-train-usps-16px":
        return in_usps_format(usps[0]), usps[1]
    sizes = [LONG_TAIL_SIZES[order.index(digit)] for digit in range(10)]
    return _draw(X, y, sizes, random_state)
