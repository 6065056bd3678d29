"""``normalize_embedding="auto"``: unit-length codes on input within [-1, 1] only."""

import numpy as np
import pytest

from conftest import all_estimators, fast_estimator
from skdeepcluster import DEC, ACAIKMeans, AutoencoderKMeans
from skdeepcluster._autoencoder_base import BaseAutoencoderClusterer

AUTOENCODER_ESTIMATORS = [
    cls for cls in all_estimators() if issubclass(cls, BaseAutoencoderClusterer)
]
ids = [cls.__name__ for cls in AUTOENCODER_ESTIMATORS]


def _unit_length(model, X):
    return np.allclose(np.linalg.norm(model.transform(X), axis=1), 1.0, atol=1e-5)


@pytest.fixture
def inputs(blobs):
    """The blobs (beyond [-1, 1]) and the same points mapped into [0, 1] and [-1, 1]."""
    X, _ = blobs
    unit = (X - X.min()) / (X.max() - X.min())
    return {"standardised": X, "[0, 1]": unit, "[-1, 1]": 2 * unit - 1}


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS, ids=ids)
def test_auto_gives_unit_length_only_within_minus_one_one(cls, inputs):
    assert np.abs(inputs["standardised"]).max() > 1
    for name, X in inputs.items():
        model = fast_estimator(
            cls, n_clusters=3, normalize_embedding="auto", random_state=0
        ).fit(X)
        assert _unit_length(model, X) == (name != "standardised"), name


@pytest.mark.parametrize("normalize", [True, False])
def test_an_explicit_setting_is_kept(inputs, normalize):
    for X in inputs.values():
        model = fast_estimator(
            AutoencoderKMeans,
            n_clusters=3,
            normalize_embedding=normalize,
            random_state=0,
        ).fit(X)
        assert _unit_length(model, X) == normalize


def test_auto_looks_at_the_input_after_input_scaling(inputs):
    # 0..255 intensities are divided by their maximum, into [0, 1].
    X = np.round(inputs["[0, 1]"] * 255).astype(np.float32)
    scaled = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    assert scaled.input_scale_ == 255.0
    assert _unit_length(scaled, X)
    raw = fast_estimator(
        AutoencoderKMeans, n_clusters=3, input_scaling=None, random_state=0
    ).fit(X)
    assert not _unit_length(raw, X)


def test_auto_is_off_in_one_dimension(inputs):
    # Unit length in one dimension keeps only the sign: two clusters at most.
    X = inputs["[0, 1]"]
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, embedding_dim=1, random_state=0
    ).fit(X)
    assert len(np.unique(model.transform(X).round(4))) > 2
    with pytest.raises(ValueError, match="embedding_dim=1 with normalize_embedding"):
        fast_estimator(
            AutoencoderKMeans, n_clusters=3, embedding_dim=1, normalize_embedding=True
        ).fit(X)


def test_dec_keeps_unit_length_by_default(inputs):
    X = inputs["standardised"]
    model = fast_estimator(DEC, n_clusters=3, random_state=0).fit(X)
    assert _unit_length(model, X)


def test_acai_lifts_interpolants_only_onto_a_unit_sphere(inputs):
    for name, X in inputs.items():
        model = fast_estimator(ACAIKMeans, n_clusters=3, random_state=0).fit(X)
        assert model.net_.unit_embedding == (name != "standardised"), name
