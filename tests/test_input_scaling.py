"""``input_scaling="auto"``: non-negative data is mapped onto [0, 1]."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from test_large_data import as_memmap

from conftest import all_estimators, fast_estimator
from skdeepcluster import DCN, DEC, IMSAT, AutoencoderKMeans
from skdeepcluster._input import _intensity_scaling, _value_range

ESTIMATORS = all_estimators()
ids = [cls.__name__ for cls in ESTIMATORS]


@pytest.fixture
def intensities(blobs):
    """The blobs as integer intensities 0..16, as scikit-learn's digits are.

    Division by 16, a power of two, is exact in float32, so the fits on
    these values and on them divided by 16 see the same tensors.
    """
    X, y = blobs
    X = X - X.min()
    return np.round(X / X.max() * 16).astype(np.float32), y


# Copies of the intensities 0..16 (X) on other scales, with the offset and
# the scale that map each onto X / 16, in [0, 1]. Powers of two, so that
# float32 computes those maps exactly and the fits see the same tensors.
COPIES = {
    "0..16": (lambda X: X, 0.0, 16.0),
    "dim, in [0, 0.25]": (lambda X: X / 64, 0.0, 0.25),
    "in [0.25, 0.5]": (lambda X: X / 64 + 0.25, 0.25, 0.25),
    "shifted, in [32, 64]": (lambda X: 2 * X + 32, 32.0, 32.0),
    # Images stored as 2 * pixels / 255 - 1, as some image sets come.
    "in [-1, 1]": (lambda X: X / 8 - 1, -1.0, 2.0),
    # Its levels 1/16 apart are 1e7 / 2**23 = 1.2 float32 steps wide here:
    # only the offset taken off in float64 keeps them.
    "float64 far from 0, in [1e7, 1e7 + 1]": (
        lambda X: 1e7 + X.astype(np.float64) / 16,
        1e7,
        1.0,
    ),
}


@pytest.mark.parametrize("copy", COPIES)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_intensities_are_fitted_as_their_values_in_0_1(cls, intensities, copy):
    X, _ = intensities
    to_copy, offset, scale = COPIES[copy]
    X_copy = to_copy(X)
    raw = fast_estimator(cls, n_clusters=3, random_state=0).fit(X_copy)
    scaled = fast_estimator(cls, n_clusters=3, random_state=0).fit(X / 16)
    assert (raw.input_offset_, raw.input_scale_) == (offset, scale)
    assert (scaled.input_offset_, scaled.input_scale_) == (0.0, 1.0)
    np.testing.assert_array_equal(raw.labels_, scaled.labels_)
    np.testing.assert_array_equal(raw.cluster_centers_, scaled.cluster_centers_)
    # Inference maps new data as the training data was mapped.
    np.testing.assert_array_equal(raw.transform(X_copy), scaled.transform(X / 16))
    np.testing.assert_array_equal(raw.predict(X_copy), raw.labels_)
    np.testing.assert_array_equal(
        raw.predict_proba(X_copy), scaled.predict_proba(X / 16)
    )
    assert raw.score(X_copy) == scaled.score(X / 16)


@pytest.mark.parametrize("cls", [AutoencoderKMeans, DCN], ids=["AE", "DCN"])
def test_small_centred_data_is_fitted_as_its_values_in_0_1(cls, intensities):
    # Centred, largest magnitude 1/16: mapped by it (a power of two again)
    # onto the intensities / 16.
    X = intensities[0]
    centred = (X - 8) / 128
    small = fast_estimator(cls, n_clusters=3, random_state=0).fit(centred)
    reference = fast_estimator(cls, n_clusters=3, random_state=0).fit(X / 16)
    assert (small.input_offset_, small.input_scale_) == (-1 / 16, 1 / 8)
    assert (reference.input_offset_, reference.input_scale_) == (0.0, 1.0)
    np.testing.assert_array_equal(small.labels_, reference.labels_)
    np.testing.assert_array_equal(small.transform(centred), reference.transform(X / 16))


@pytest.mark.parametrize("copy", ["0..16", "shifted, in [32, 64]"])
@pytest.mark.parametrize("cls", [DEC, IMSAT], ids=["DEC", "IMSAT"])
def test_sparse_and_memory_mapped_intensities_are_scaled_alike(
    cls, intensities, tmp_path, copy
):
    to_copy, offset, scale = COPIES[copy]
    X = to_copy(intensities[0])
    dense = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    # The shifted copy stores every value: a sparse matrix of it has no
    # implicit zeros, and its minimum is 32 too.
    for X_other in (sp.csr_matrix(X), as_memmap(X, tmp_path / "X.npy")):
        other = fast_estimator(cls, n_clusters=3, random_state=0).fit(X_other)
        assert (other.input_offset_, other.input_scale_) == (offset, scale)
        np.testing.assert_array_equal(other.labels_, dense.labels_)
        np.testing.assert_array_equal(dense.transform(X_other), dense.transform(X))


@pytest.mark.parametrize(
    ("value_range", "expected"),
    [
        ((0.0, 1.0), (0.0, 1.0)),
        ((0.5, 1.0), (0.0, 1.0)),  # spans half of [0, 1]
        ((0.25, 0.5), (0.25, 0.25)),
        ((0.0, 0.25), (0.0, 0.25)),
        ((0.0, 16.0), (0.0, 16.0)),
        ((2.0, 3.0), (2.0, 1.0)),
        ((0.0, 1.5), (0.0, 1.5)),  # half of it beyond 1
        ((-0.25, 0.125), (-0.25, 0.5)),
        ((-0.125, 0.5), (-0.5, 1.0)),
        ((-1.0, 1.0), (-1.0, 2.0)),  # images in [-1, 1]
        ((-1.0, 0.5), (-1.0, 2.0)),
        ((-1.5, 1.0), (0.0, 1.0)),  # beyond [-1, 1]
        ((-3.0, 8.0), (0.0, 1.0)),  # standardised
        ((5.0, 5.0), (0.0, 1.0)),  # constant
        ((0.0, 1e-40), (0.0, 1.0)),  # a range float32 cannot divide by
    ],
)
def test_auto_offset_and_scale_of_a_range(value_range, expected):
    assert _intensity_scaling(value_range) == expected


def test_entries_stored_twice_add_up_in_the_range():
    # Two entries at (0, 0), 50 and 60, make one value of 110; four stored
    # entries for four positions hide the implicit 0 at (0, 1).
    X = sp.csr_matrix(([50.0, 60.0, 100.0, 110.0], [0, 0, 0, 1], [0, 2, 4]), (2, 2))
    assert _value_range(X) == (0.0, 110.0) == _value_range(X.toarray())
    assert not X.has_canonical_format  # the input is left as it is


def test_implicit_zeros_count_towards_the_minimum(intensities):
    # Shifted, then one row zeroed: a sparse matrix of it leaves those zeros
    # implicit, and its minimum is 0, as the dense array's is.
    X = 2 * intensities[0] + 32
    X[0] = 0
    for X_given in (X, sp.csr_matrix(X)):
        model = fast_estimator(DEC, n_clusters=3, random_state=0).fit(X_given)
        assert (model.input_offset_, model.input_scale_) == (0.0, 64.0)


@pytest.mark.parametrize("copy", ["0..16", "shifted, in [32, 64]", "in [-1, 1]"])
def test_inverse_transform_returns_the_input_scale(intensities, copy):
    to_copy = COPIES[copy][0]
    X = intensities[0]
    raw = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    raw.fit(to_copy(X))
    scaled = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X / 16)
    np.testing.assert_array_equal(
        raw.inverse_transform(raw.cluster_centers_),
        to_copy(16 * scaled.inverse_transform(scaled.cluster_centers_)),
    )


@pytest.mark.parametrize(
    "transform",
    [
        lambda X: X / 16,
        lambda X: X / 16 * 0.75 + 0.125,
        lambda X: X - 8,
        lambda X: (X - 8) / 7,
        lambda X: -X,
        lambda X: np.full_like(X, 5),
    ],
    ids=[
        "from 0 to 1",
        "within [0, 1], spanning most of it",
        "centred",
        "centred, just beyond 1",
        "non-positive",
        "constant",
    ],
)
def test_data_in_0_1_or_signed_beyond_magnitude_1_is_used_as_given(
    transform, intensities
):
    X, _ = intensities
    model = fast_estimator(DEC, n_clusters=3, random_state=0)
    with warnings.catch_warnings():
        # Constant data collapses to one cluster, and says so.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(transform(X))
    assert (model.input_offset_, model.input_scale_) == (0.0, 1.0)


def test_input_scaling_none_uses_the_input_as_given(intensities):
    X, _ = intensities
    model = fast_estimator(DEC, n_clusters=3, random_state=0, input_scaling=None)
    model.fit(X + 32)
    assert (model.input_offset_, model.input_scale_) == (0.0, 1.0)
    with pytest.raises(ValueError, match="input_scaling"):
        fast_estimator(DEC, input_scaling="max").fit(X)
