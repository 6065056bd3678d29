"""Costs that must stay linear in n_samples: the smoothing's neighbour search."""

import numpy as np
import pytest
import torch

import skdeepcluster.callbacks
from conftest import FAST_PARAMS, fast_estimator
from skdeepcluster import AutoencoderKMeans
from skdeepcluster._torch_utils import nearest_neighbours
from skdeepcluster.base import BaseAutoencoderClusterer

# -- neighbour search among candidates ------------------------------------


def brute_force_neighbours(Z, k, candidates):
    """The k nearest candidates of each row (not itself), by plain NumPy."""
    distances = np.linalg.norm(Z[:, None, :] - Z[None, candidates, :], axis=2)
    distances[candidates[None, :] == np.arange(len(Z))[:, None]] = np.inf
    return candidates[np.argsort(distances, axis=1)[:, :k]]


def test_nearest_neighbours_among_candidates_matches_brute_force():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 3))
    candidates = np.sort(rng.choice(300, 70, replace=False))
    found = nearest_neighbours(
        torch.as_tensor(Z), 5, chunk_size=64, candidates=candidates
    ).numpy()
    expected = brute_force_neighbours(Z, 5, candidates)
    # As sets: topk does not promise an order among the k.
    np.testing.assert_array_equal(np.sort(found, axis=1), np.sort(expected, axis=1))
    assert np.isin(found, candidates).all()
    assert not (found == np.arange(300)[:, None]).any()


def test_nearest_neighbours_with_every_row_as_candidate_is_the_exact_search():
    Z = torch.as_tensor(np.random.default_rng(1).normal(size=(200, 4)))
    exact = nearest_neighbours(Z, 6, chunk_size=50)
    among_all = nearest_neighbours(Z, 6, chunk_size=50, candidates=np.arange(200))
    torch.testing.assert_close(among_all, exact, rtol=0, atol=0)


# One smoothing neighbour search per epoch, from the first (smoothing_start=0).
FAST_EPOCHS = FAST_PARAMS["AutoencoderKMeans"]["pretrain_epochs"]


@pytest.fixture
def record_neighbour_searches(monkeypatch):
    """The ``candidates`` and results of every smoothing neighbour search."""
    searches = []
    original = skdeepcluster.callbacks.nearest_neighbours

    def spy(Z, n_neighbors, chunk_size=1024, candidates=None):
        found = original(Z, n_neighbors, chunk_size=chunk_size, candidates=candidates)
        searches.append((candidates, found))
        return found

    monkeypatch.setattr(skdeepcluster.callbacks, "nearest_neighbours", spy)
    return searches


def smoothing_estimator(random_state=0):
    return fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        smoothing_weight=1.0,
        smoothing_start=0.0,
        random_state=random_state,
    )


def test_smoothing_searches_one_fixed_candidate_subset(
    blobs, monkeypatch, record_neighbour_searches
):
    X, _ = blobs
    monkeypatch.setattr(BaseAutoencoderClusterer, "_SMOOTHING_CANDIDATES", 40)
    smoothing_estimator().fit(X)
    # One search per epoch, all among the same 40 distinct samples.
    assert len(record_neighbour_searches) == FAST_EPOCHS
    first, _ = record_neighbour_searches[0]
    assert len(np.unique(first)) == 40
    assert first.min() >= 0 and first.max() < len(X)
    for candidates, found in record_neighbour_searches:
        np.testing.assert_array_equal(candidates, first)
        assert np.isin(found.numpy(), first).all()


def test_smoothing_search_is_exact_up_to_the_candidate_count(
    blobs, monkeypatch, record_neighbour_searches
):
    X, _ = blobs
    default = smoothing_estimator().fit(X)
    assert all(candidates is None for candidates, _ in record_neighbour_searches)
    # n_samples == the candidate count: still the exact search, and the same
    # fit, random draws included.
    monkeypatch.setattr(BaseAutoencoderClusterer, "_SMOOTHING_CANDIDATES", len(X))
    at_limit = smoothing_estimator().fit(X)
    np.testing.assert_array_equal(at_limit.labels_, default.labels_)
    np.testing.assert_array_equal(at_limit.cluster_centers_, default.cluster_centers_)


def test_candidate_subset_follows_random_state(
    blobs, monkeypatch, record_neighbour_searches
):
    X, _ = blobs
    monkeypatch.setattr(BaseAutoencoderClusterer, "_SMOOTHING_CANDIDATES", 40)
    first = smoothing_estimator().fit(X)
    second = smoothing_estimator().fit(X)
    smoothing_estimator(random_state=1).fit(X)
    candidates = [c for c, _ in record_neighbour_searches[::FAST_EPOCHS]]
    np.testing.assert_array_equal(candidates[0], candidates[1])
    assert not np.array_equal(candidates[0], candidates[2])
    np.testing.assert_array_equal(first.labels_, second.labels_)


def test_candidates_drawn_among_the_positive_weight_samples(
    blobs, monkeypatch, record_neighbour_searches
):
    # Zero-weight samples are left out of training: the candidates index the
    # kept samples, and every search covers only those.
    X, _ = blobs
    sample_weight = np.ones(len(X))
    sample_weight[::3] = 0
    n_kept = int((sample_weight > 0).sum())
    monkeypatch.setattr(BaseAutoencoderClusterer, "_SMOOTHING_CANDIDATES", 30)
    smoothing_estimator().fit(X, sample_weight=sample_weight)
    assert len(record_neighbour_searches) == FAST_EPOCHS
    for candidates, found in record_neighbour_searches:
        assert len(np.unique(candidates)) == 30
        assert candidates.max() < n_kept
        assert found.shape[0] == n_kept
