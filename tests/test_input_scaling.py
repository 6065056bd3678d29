"""``input_scaling="auto"``: non-negative data above 1 is divided by its maximum."""

import numpy as np
import pytest
import scipy.sparse as sp
from test_large_data import as_memmap

from conftest import all_estimators, fast_estimator
from skdeepcluster import DEC, IMSAT, AutoencoderKMeans

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


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_intensities_are_fitted_as_their_scaled_values(cls, intensities):
    X, _ = intensities
    raw = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    scaled = fast_estimator(cls, n_clusters=3, random_state=0).fit(X / 16)
    assert raw.input_scale_ == 16.0
    assert scaled.input_scale_ == 1.0
    np.testing.assert_array_equal(raw.labels_, scaled.labels_)
    np.testing.assert_array_equal(raw.cluster_centers_, scaled.cluster_centers_)
    # Inference divides new data by the training data's maximum.
    np.testing.assert_array_equal(raw.transform(X), scaled.transform(X / 16))
    np.testing.assert_array_equal(raw.predict(X), raw.labels_)
    np.testing.assert_array_equal(raw.predict_proba(X), scaled.predict_proba(X / 16))
    assert raw.score(X) == scaled.score(X / 16)


@pytest.mark.parametrize("cls", [DEC, IMSAT], ids=["DEC", "IMSAT"])
def test_sparse_and_memory_mapped_intensities_are_scaled_alike(
    cls, intensities, tmp_path
):
    X, _ = intensities
    dense = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    for X_other in (sp.csr_matrix(X), as_memmap(X, tmp_path / "X.npy")):
        other = fast_estimator(cls, n_clusters=3, random_state=0).fit(X_other)
        assert other.input_scale_ == 16.0
        np.testing.assert_array_equal(other.labels_, dense.labels_)
        np.testing.assert_array_equal(dense.transform(X_other), dense.transform(X))


def test_inverse_transform_returns_the_input_scale(intensities):
    X, _ = intensities
    raw = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    scaled = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X / 16)
    np.testing.assert_array_equal(
        raw.inverse_transform(raw.cluster_centers_),
        16 * scaled.inverse_transform(scaled.cluster_centers_),
    )


@pytest.mark.parametrize(
    "transform",
    [lambda X: X / 16, lambda X: X - 8, lambda X: -X],
    ids=["within [0, 1]", "centred", "non-positive"],
)
def test_data_within_one_or_with_negative_values_is_used_as_given(
    transform, intensities
):
    X, _ = intensities
    model = fast_estimator(DEC, n_clusters=3, random_state=0).fit(transform(X))
    assert model.input_scale_ == 1.0


def test_input_scaling_none_uses_the_input_as_given(intensities):
    X, _ = intensities
    model = fast_estimator(DEC, n_clusters=3, random_state=0, input_scaling=None)
    assert model.fit(X).input_scale_ == 1.0
    with pytest.raises(ValueError, match="input_scaling"):
        fast_estimator(DEC, input_scaling="max").fit(X)
