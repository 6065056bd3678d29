"""Costs that must stay linear in n_samples: the smoothing's neighbour
search, and fitting on input that is not copied whole into memory."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import skdeepcluster.callbacks
from conftest import FAST_PARAMS, all_estimators, fast_estimator
from skdeepcluster import DAC, IMSAT, AutoencoderKMeans, SNNLKMeans, _input
from skdeepcluster._autoencoder_base import BaseAutoencoderClusterer
from skdeepcluster._imsat import _kth_neighbour_distance
from skdeepcluster._torch_utils import ArrayRows, nearest_neighbours

ESTIMATORS = all_estimators()


def ids(cls):
    return cls.__name__


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


# -- fitting on input read a batch at a time -------------------------------


def as_memmap(X, path):
    stored = np.lib.format.open_memmap(path, "w+", X.dtype, X.shape)
    stored[:] = X
    stored.flush()
    del stored
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_fit_on_memmap_gives_the_in_memory_results(cls, blobs, tmp_path):
    X, _ = blobs
    # float64, so that every batch is also cast to float32 on its own.
    X = X.astype(np.float64)
    X_map = as_memmap(X, tmp_path / "X.npy")
    in_memory = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    mapped = fast_estimator(cls, n_clusters=3, random_state=0).fit(X_map)
    np.testing.assert_array_equal(mapped.labels_, in_memory.labels_)
    np.testing.assert_array_equal(mapped.cluster_centers_, in_memory.cluster_centers_)
    assert mapped.inertia_ == in_memory.inertia_
    np.testing.assert_array_equal(mapped.transform(X), in_memory.transform(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_reads_the_values_once_for_its_checks(blobs, tmp_path, monkeypatch, dtype):
    # The float32 range, input_scaling="auto", the overflow warning and
    # normalize_embedding="auto" all read the values of X; on a memory map
    # larger than the memory each pass reads the whole file.
    X, _ = blobs
    X_map = as_memmap(X.astype(dtype), tmp_path / "X.npy")
    passes = []
    original = _input._value_blocks

    def spy(X):
        passes.append(X.shape)
        return original(X)

    monkeypatch.setattr(_input, "_value_blocks", spy)
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    model.fit(X_map)
    # float64 batches are also checked one at a time as they are cast.
    assert passes.count(X_map.shape) == 1
    assert not hasattr(model, "_input_range")


def test_fit_on_memmap_with_given_labels_and_input_shape(blobs, tmp_path):
    # SNNLKMeans draws labelled anchors from the training rows by index;
    # input_shape makes the rows read from the file (C, H, W) samples.
    X, y = blobs
    X = np.tile(X, (1, 16))  # 64 features: one 8x8 image each
    X_map = as_memmap(X, tmp_path / "X.npy")
    y_partial = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    params = dict(n_clusters=3, use_labels=True, random_state=0)
    in_memory = fast_estimator(SNNLKMeans, **params).fit(X, y_partial)
    mapped = fast_estimator(SNNLKMeans, **params).fit(X_map, y_partial)
    np.testing.assert_array_equal(mapped.labels_, in_memory.labels_)
    params = dict(n_clusters=3, input_shape=(1, 8, 8), random_state=0)
    in_memory = fast_estimator(AutoencoderKMeans, **params).fit(X)
    mapped = fast_estimator(AutoencoderKMeans, **params).fit(X_map)
    np.testing.assert_array_equal(mapped.labels_, in_memory.labels_)


def test_memory_cache_is_hit_for_the_same_memmap(blobs, tmp_path):
    X, _ = blobs
    X_map = as_memmap(X, tmp_path / "X.npy")
    params = dict(n_clusters=3, random_state=0, memory=str(tmp_path / "cache"))
    first = fast_estimator(AutoencoderKMeans, **params).fit(X_map)
    second = fast_estimator(AutoencoderKMeans, **params).fit(X_map)
    reference = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    np.testing.assert_array_equal(first.labels_, reference.fit(X).labels_)
    np.testing.assert_array_equal(second.labels_, first.labels_)
    # Pretrained once: the second fit loaded the cached state.
    assert len(list((tmp_path / "cache").rglob("_fit_pretraining/*/output.pkl"))) == 1


@pytest.fixture
def record_reads(monkeypatch):
    """Number of rows of every read from the training input."""
    reads = []
    original = ArrayRows.__getitem__

    def spy(self, key):
        rows = original(self, key)
        reads.append(1 if rows.dim() == len(self.sample_shape) else len(rows))
        return rows

    monkeypatch.setattr(ArrayRows, "__getitem__", spy)
    return reads


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("container", ["memmap", "csr"])
def test_fit_reads_the_input_a_batch_at_a_time(
    cls, container, tmp_path, monkeypatch, record_reads
):
    # More samples than an inference batch (1,024), and more than IMSAT's
    # exact radius computation and DAC's neighbour search read at once
    # (lowered here).
    monkeypatch.setattr(IMSAT, "_radius_reference_size", 500)
    monkeypatch.setattr(DAC, "_neighbour_reference_size", 500)
    rng = np.random.default_rng(0)
    n_samples = 2500
    X = rng.normal(size=(n_samples, 4)) + 5 * rng.integers(3, size=(n_samples, 1))
    X = as_memmap(X, tmp_path / "X.npy") if container == "memmap" else sp.csr_matrix(X)
    # Few epochs: only the reads matter here.
    fast_estimator(
        cls, n_clusters=3, batch_size=128, random_state=0, **_one_epoch(cls)
    ).fit(X)
    assert record_reads and max(record_reads) <= 1024


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_centres_and_inertia_embed_the_training_data_a_batch_at_a_time(
    cls, monkeypatch
):
    # The end of every fit (cluster_centers_ as mean embeddings, inertia_)
    # reduces the embedding of all training samples; held whole, that
    # embedding is as wide as IMSAT's last hidden layer, several times the
    # size of the input.
    embedded = []
    inside = False
    set_clusters, embed = cls._set_clusters, cls._embed

    def spy_set_clusters(self, *args, **kwargs):
        nonlocal inside
        inside = True
        try:
            return set_clusters(self, *args, **kwargs)
        finally:
            inside = False

    def spy_embed(self, X):
        if inside:
            embedded.append(len(X))
        return embed(self, X)

    monkeypatch.setattr(cls, "_set_clusters", spy_set_clusters)
    monkeypatch.setattr(cls, "_embed", spy_embed)
    rng = np.random.default_rng(0)
    n_samples = 2500
    y = rng.integers(3, size=n_samples)
    X = (rng.normal(size=(n_samples, 4)) + 5 * y[:, None]).astype(np.float32)
    model = fast_estimator(
        cls, n_clusters=3, batch_size=128, random_state=0, **_one_epoch(cls)
    ).fit(X)
    assert embedded and max(embedded) <= 1024
    monkeypatch.undo()
    # The same figures as score's batches and the whole embedding give.
    assert model.inertia_ == -model.score(X)
    if cls in (IMSAT, DAC) or getattr(model, "clustering_", None) == "spectral":
        Z = model.transform(X)
        means = [Z[model.labels_ == k].mean(axis=0) for k in range(model.n_clusters)]
        np.testing.assert_allclose(model.cluster_centers_, means, rtol=1e-5, atol=1e-6)


def _one_epoch(cls):
    epochs = {}
    for name in ("pretrain_epochs", "clustering_epochs", "max_epochs"):
        if name in cls().get_params():
            epochs[name] = 1
    if cls.__name__ == "SNNLKMeans":
        epochs["warmup_epochs"] = 0
    if cls.__name__ == "IMSAT":
        epochs["init_epochs"] = 1
    return epochs


@pytest.mark.parametrize(
    "n_left_out", [0, 4500], ids=["none-left-out", "most-left-out"]
)
def test_fit_on_memmap_allocates_no_copy_of_it(blobs, tmp_path, n_left_out):
    # NumPy reports its allocations to tracemalloc: a whole-array temporary
    # (np.abs(X), a float32 copy, np.asarray of a converted copy, the rows
    # of weight 0 labelled at the end) would show as a peak of the input's
    # size.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 512))
    X_map = as_memmap(X, tmp_path / "X.npy")
    del X
    # k-means on the embedding: the graph clusterings work on the embedding,
    # not on X, and compiling UMAP's numba code would dominate the peak.
    params = dict(
        n_clusters=3,
        pretrain_epochs=2,
        batch_size=256,
        clustering="kmeans",
        random_state=0,
    )
    # A first fit imports what fitting imports lazily, which tracemalloc
    # would count.
    fast_estimator(AutoencoderKMeans, **params).fit(blobs[0])
    model = fast_estimator(AutoencoderKMeans, **params)
    sample_weight = np.ones(len(X_map))
    sample_weight[:n_left_out] = 0
    tracemalloc.start()
    try:
        model.fit(X_map, sample_weight=sample_weight)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X_map.nbytes / 2


def test_chunked_radius_query_equals_the_whole_query():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 5)).astype(np.float32)
    whole = _kth_neighbour_distance(X, 7, 300, np.random.RandomState(0))
    chunked = _kth_neighbour_distance(
        X, 7, 300, np.random.RandomState(0), chunk_size=256
    )
    np.testing.assert_allclose(chunked, whole, rtol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("container", ["memmap", "csr"])
def test_fit_on_streamed_input_with_zero_weights_gives_the_in_memory_results(
    cls, container, blobs, tmp_path
):
    # Zero-weight rows are left out of training: the streamed input reads
    # only the kept rows, the same ones the in-memory fit trains on.
    X, _ = blobs
    X = X.astype(np.float64)
    rng = np.random.default_rng(0)
    sample_weight = rng.uniform(0.5, 2.0, len(X))
    sample_weight[::4] = 0
    X_streamed = (
        as_memmap(X, tmp_path / "X.npy") if container == "memmap" else sp.csr_matrix(X)
    )
    in_memory = fast_estimator(cls, n_clusters=3, random_state=0)
    in_memory.fit(X, sample_weight=sample_weight)
    streamed = fast_estimator(cls, n_clusters=3, random_state=0)
    streamed.fit(X_streamed, sample_weight=sample_weight)
    np.testing.assert_array_equal(streamed.labels_, in_memory.labels_)
    np.testing.assert_allclose(
        streamed.cluster_centers_, in_memory.cluster_centers_, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("container", [np.asarray, sp.csr_matrix])
def test_array_rows_index_like_the_tensor(container):
    X = np.random.default_rng(0).normal(size=(7, 6))
    rows = ArrayRows(container(X), (2, 3), torch.device("cpu"))
    tensor = torch.tensor(X, dtype=torch.float32).view(-1, 2, 3)
    assert len(rows) == 7 and rows.shape == tensor.shape
    for key in (2, -1, torch.tensor(3), slice(1, 5), np.array([4, 0, 4])):
        torch.testing.assert_close(rows[key], tensor[key], rtol=0, atol=0)
    torch.testing.assert_close(
        rows[torch.tensor([6, 1])], tensor[torch.tensor([6, 1])], rtol=0, atol=0
    )
