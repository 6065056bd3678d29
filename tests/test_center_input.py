"""``center_input``: the autoencoder works on the training data minus its mean."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from test_large_data import as_memmap

from conftest import all_estimators, fast_estimator
from skdeepcluster import AutoencoderKMeans
from skdeepcluster._autoencoder_base import BaseAutoencoderClusterer
from skdeepcluster._torch_utils import ArrayRows, feature_mean
from skdeepcluster.nn import MLPDecoder, MLPEncoder, Shift

AUTOENCODER_ESTIMATORS = [
    cls for cls in all_estimators() if issubclass(cls, BaseAutoencoderClusterer)
]
ids = [cls.__name__ for cls in AUTOENCODER_ESTIMATORS]


@pytest.fixture
def unit_blobs(blobs):
    """The blobs mapped into [0, 1], as pixels are."""
    X, y = blobs
    return ((X - X.min()) / (X.max() - X.min())).astype(np.float32), y


def test_shift_adds_a_fixed_offset_saved_with_the_module():
    shift = Shift(torch.tensor([1.0, -2.0]))
    torch.testing.assert_close(shift(torch.ones(3, 2)), torch.tensor([[2.0, -1.0]] * 3))
    assert list(shift.parameters()) == []
    assert set(shift.state_dict()) == {"offset"}


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS, ids=ids)
def test_the_encoder_subtracts_the_training_mean_and_the_decoder_adds_it(
    cls, unit_blobs
):
    X, _ = unit_blobs
    model = fast_estimator(cls, n_clusters=3, center_input=True, random_state=0).fit(X)
    encoder, decoder = model.net_.module_.encoder, model.net_.module_.decoder
    assert isinstance(encoder[0], Shift) and isinstance(decoder[-1], Shift)
    mean = torch.as_tensor(X.mean(axis=0))
    torch.testing.assert_close(encoder[0].offset, -mean)
    torch.testing.assert_close(decoder[-1].offset, mean)


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS, ids=ids)
def test_a_constant_added_to_the_data_changes_nothing(cls, unit_blobs):
    # Data in [0, 1] and the same data minus 0.5, both used as given
    # (input_scaling=None, which would otherwise map the shifted copy back
    # onto [0, 1]), with unit-length codes (normalize_embedding="auto"):
    # centred, the network sees the same values up to rounding.
    X, _ = unit_blobs
    shifted = X - np.float32(0.5)
    params = dict(n_clusters=3, center_input=True, input_scaling=None, random_state=0)
    model = fast_estimator(cls, **params).fit(X)
    other = fast_estimator(cls, **params).fit(shifted)
    np.testing.assert_array_equal(model.labels_, other.labels_)
    np.testing.assert_allclose(model.transform(X), other.transform(shifted), atol=1e-4)


def test_without_centring_the_constant_matters(unit_blobs):
    # The test above can fail: the same pair of fits without centring.
    X, _ = unit_blobs
    params = dict(n_clusters=3, random_state=0, center_input=False, input_scaling=None)
    model = fast_estimator(AutoencoderKMeans, **params).fit(X)
    other = fast_estimator(AutoencoderKMeans, **params).fit(X - np.float32(0.5))
    assert not isinstance(model.net_.module_.encoder[0], Shift)
    assert not np.allclose(model.transform(X), other.transform(X - 0.5), atol=1e-4)


def test_inverse_transform_returns_the_data_scale(unit_blobs):
    X, _ = unit_blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        center_input=True,
        random_state=0,
        pretrain_epochs=200,
    ).fit(X)
    reconstruction = model.inverse_transform(model.transform(X))
    # Reconstructions on the data's scale: far closer to X than X's mean is.
    error = np.mean((reconstruction - X) ** 2)
    assert error < 0.5 * np.mean((X - X.mean(axis=0)) ** 2)


def test_the_users_modules_see_the_input_as_given(unit_blobs):
    X, _ = unit_blobs
    model = AutoencoderKMeans(
        3,
        encoder=MLPEncoder(4, (8,), 2),
        decoder=MLPDecoder(2, (8,), 4),
        pretrain_epochs=2,
        center_input=True,
        random_state=0,
    ).fit(X)
    modules = [
        *model.net_.module_.encoder.modules(),
        *model.net_.module_.decoder.modules(),
    ]
    assert not any(isinstance(m, Shift) for m in modules)


def test_feature_mean_is_the_same_for_a_tensor_and_rows_read_on_demand(
    unit_blobs, tmp_path
):
    X, _ = unit_blobs
    expected = feature_mean(torch.as_tensor(X), chunk_size=7)
    torch.testing.assert_close(expected, torch.as_tensor(X.mean(axis=0)))
    for data in (sp.csr_matrix(X), as_memmap(X, tmp_path / "X.npy")):
        rows = ArrayRows(data, (X.shape[1],), torch.device("cpu"))
        torch.testing.assert_close(feature_mean(rows, chunk_size=7), expected)


def test_feature_mean_counts_an_integer_weight_as_copies(unit_blobs):
    X, _ = unit_blobs
    weights = np.arange(len(X)) % 3
    weighted = feature_mean(torch.as_tensor(X), weights, chunk_size=7)
    repeated = feature_mean(torch.as_tensor(np.repeat(X, weights, axis=0)))
    torch.testing.assert_close(weighted, repeated)


def test_uncentred_input_by_default():
    # The papers' networks: centring is asked for (see center_input).
    for cls in AUTOENCODER_ESTIMATORS:
        model = cls()
        assert model.center_input is False
