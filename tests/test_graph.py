"""The nearest-neighbour graph clustering of embeddings (skdeepcluster._graph)."""

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs, make_moons
from sklearn.exceptions import ConvergenceWarning

from conftest import fast_estimator
from skdeepcluster import (
    DAC,
    DCN,
    DEC,
    IMSAT,
    AutoencoderKMeans,
    _autoencoder_base,
    _graph,
    base,
)
from skdeepcluster._graph import (
    _best_bisection,
    match_labels,
    modularity,
    neighbour_graph,
    neighbour_votes,
    spectral_partition,
    split_merge,
    umap_partition,
)
from skdeepcluster._torch_utils import fit_kmeans, warning_filters_kept
from skdeepcluster.metrics import clustering_accuracy


def test_spectral_partition_follows_curved_clusters():
    # Two interleaved half circles: k-means cuts them straight across, the
    # neighbour graph keeps each one whole.
    X, y = make_moons(300, noise=0.05, random_state=0)
    kmeans = KMeans(2, n_init=10, random_state=0).fit_predict(X)
    spectral = spectral_partition(X, 2, 10, np.random.RandomState(0))
    assert clustering_accuracy(y, kmeans) < 0.9
    assert clustering_accuracy(y, spectral) > 0.99


def test_spectral_partition_handles_fewer_samples_than_neighbours():
    X = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.1]])
    labels = spectral_partition(X, 2, 10, np.random.RandomState(0))
    assert labels[0] == labels[1] != labels[2] == labels[3]


def test_spectral_partition_of_as_many_clusters_as_samples_is_one_per_cluster():
    X = np.random.RandomState(0).rand(5, 3)
    labels = spectral_partition(X, 5, 10, np.random.RandomState(0))
    assert sorted(labels) == [0, 1, 2, 3, 4]


def test_umap_partition_separates_long_strands():
    # Four long, thin parallel strands: k-means cuts across them; in the UMAP
    # layout of the neighbour graph each strand is a group of its own.
    rng = np.random.RandomState(0)
    X = np.concatenate(
        [
            np.c_[rng.uniform(0, 10, 100), row + rng.normal(0, 0.05, 100)]
            for row in range(4)
        ]
    )
    y = np.repeat(np.arange(4), 100)
    kmeans = KMeans(4, n_init=10, random_state=0).fit_predict(X)
    labels = umap_partition(
        X, 4, 10, 10, np.random.RandomState(0), neighbour_graph(X, 10)
    )
    assert clustering_accuracy(y, kmeans) < 0.5
    assert clustering_accuracy(y, labels) > 0.99


def test_umap_partition_is_reproducible():
    X, _ = make_blobs(200, n_features=6, centers=4, random_state=0)
    graph = neighbour_graph(X, 10)
    first = umap_partition(X, 4, 10, 3, np.random.RandomState(0), graph)
    second = umap_partition(X, 4, 10, 3, np.random.RandomState(0), graph)
    np.testing.assert_array_equal(first, second)


def test_umap_partition_keeps_torch_thread_count():
    # Starting numba's threading layer raises the thread count torch took
    # from OMP_NUM_THREADS; it happens once per process, hence a fresh one.
    script = (
        "import numpy as np, torch\n"
        "from skdeepcluster._graph import neighbour_graph, umap_partition\n"
        "X = np.random.RandomState(0).rand(200, 6)\n"
        "before = torch.get_num_threads()\n"
        "umap_partition(X, 4, 10, 1, np.random.RandomState(0), neighbour_graph(X, 10))\n"
        "print(before, torch.get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]


def test_umap_is_imported_without_its_tensorflow_warning():
    # umap-learn warns on import that ParametricUMAP needs TensorFlow; shown
    # under -W default and in every worker of a parallel grid search.
    script = (
        "import numpy as np\n"
        "from skdeepcluster._graph import neighbour_graph, umap_partition\n"
        "X = np.random.RandomState(0).rand(60, 3).astype(np.float32)\n"
        "umap_partition(X, 4, 10, 1, np.random.RandomState(0), neighbour_graph(X, 10))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-W", "always::ImportWarning", "-c", script],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "ParametricUMAP" not in result.stderr


def test_kmeans_restarts_warn_once():
    # Ten one-run fits, each warning about the same data, warn once, as
    # KMeans(n_init=10) does.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with _graph._each_warning_once():
            for _ in range(10):
                warnings.warn("the same data", UserWarning, stacklevel=1)
            warnings.warn("other data", UserWarning, stacklevel=1)
    assert [str(w.message) for w in record] == ["the same data", "other data"]


def test_kmeans_on_duplicate_points_leaves_the_warning_to_the_estimator():
    # KMeans' "fewer distinct clusters ... duplicate points in X" is about
    # the embedding, not the user's X: the estimators warn about the
    # clusters they end with instead (see test_dropin).
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 20, axis=0)
    graph = neighbour_graph(X, 5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        kmeans = _graph.kmeans_by_modularity(
            X, 3, 10, np.random.RandomState(0), graph, np.arange(len(X))
        )
    assert not [w for w in record if w.category is ConvergenceWarning]
    assert len(np.unique(kmeans.labels_)) == 2


def test_kmeans_filter_leaves_the_estimators_own_warning(monkeypatch):
    # The filter fit_kmeans sets is in force for every thread while it runs:
    # it must hide KMeans' warning and not the estimators' own one, which
    # begins with the same words and which a fit in another thread may
    # issue meanwhile.
    added = []
    kmeans_fit = KMeans.fit

    def fit(self, *args, **kwargs):
        added.append(warnings.filters[0])  # the filter fit_kmeans added last
        return kmeans_fit(self, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit", fit)
    fit_kmeans(np.eye(3), 2, n_init=1, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warnings.filters.insert(0, added[0])
        for message in (
            "Number of distinct clusters (2) found smaller than n_clusters (3). "
            "Possibly due to duplicate points in X.",
            "Number of distinct clusters (2) found smaller than n_clusters (3); "
            "the empty clusters were removed.",
        ):
            warnings.warn(message, ConvergenceWarning, stacklevel=1)
    assert [str(w.message) for w in record] == [message]


def test_blocks_changing_the_warning_filters_run_one_at_a_time():
    # warnings.catch_warnings puts back the filters it found: interleaved
    # in two threads, the second block to end would put back the first
    # one's filter and leave it in force.
    found = list(warnings.filters)
    second_tried, second_in = threading.Event(), threading.Event()

    def second():
        second_tried.set()
        with warning_filters_kept():
            second_in.set()
            warnings.filterwarnings("ignore", "second")

    thread = threading.Thread(target=second)
    with warning_filters_kept():
        warnings.filterwarnings("ignore", "first")
        thread.start()
        second_tried.wait()
        assert not second_in.wait(0.2)
    thread.join()
    assert second_in.is_set()
    assert warnings.filters == found


def test_umap_gets_the_exact_neighbours_it_would_find_itself():
    # Below 4,096 rows UMAP finds exact neighbours from every pairwise
    # distance; umap_partition hands it the same neighbours, found faster.
    import umap

    X = np.random.RandomState(0).rand(300, 5).astype(np.float32)
    indices, distances, _ = _graph._umap_neighbours(X, 10)
    full = cdist(X, X)
    nearest = np.argsort(full, axis=1)[:, :10]
    np.testing.assert_array_equal(indices, nearest)
    np.testing.assert_allclose(
        distances, np.take_along_axis(full, nearest, axis=1), atol=1e-5
    )
    own, given = (
        umap.UMAP(n_neighbors=10, n_epochs=1, random_state=0, **precomputed)
        .fit(X)
        .graph_.toarray()
        for precomputed in ({}, {"precomputed_knn": (indices, distances, None)})
    )
    np.testing.assert_allclose(given, own, atol=1e-5)


def test_umap_partition_clusters_too_few_rows_as_they_are(layouts):
    # A layout in 2 dimensions needs at least 4 rows.
    X = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0]])
    labels = umap_partition(
        X, 2, 10, 3, np.random.RandomState(0), neighbour_graph(X, 10)
    )
    assert not layouts
    assert labels[0] == labels[1] != labels[2]


def test_umap_partition_caches_the_layout_in_memory(tmp_path, layouts, monkeypatch):
    import umap

    X, _ = make_blobs(200, centers=4, random_state=0)
    graph = neighbour_graph(X, 10)

    def partition(n_clusters, data=X, memory=str(tmp_path)):
        return umap_partition(
            data, n_clusters, 10, 3, np.random.RandomState(0), graph, memory
        )

    reference = partition(4, memory=None)
    assert len(layouts) == 1
    np.testing.assert_array_equal(partition(4), reference)  # a miss
    np.testing.assert_array_equal(partition(4), reference)  # a hit
    assert len(layouts) == 2
    # The layout has min(n_clusters, 10) dimensions: from 10 clusters up, as
    # in a search over n_clusters, the values share it.
    partition(3)
    assert len(layouts) == 3
    partition(10)
    assert len(np.unique(partition(12))) == 12
    assert len(layouts) == 4
    # Other data, or another version of umap-learn, lay out again.
    partition(4, data=X + 1.0)
    assert len(layouts) == 5
    monkeypatch.setattr(umap, "__version__", umap.__version__ + ".other")
    partition(4)
    assert len(layouts) == 6


def test_neighbour_votes_count_the_nearest_reference_labels():
    reference = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    reference_labels = torch.tensor([0, 0, 1, 0, 1])
    # 1.4: nearest 1.0, 2.0, 0.0; 6.5: nearest 10.0, then 2.0 and 11.0.
    Z = torch.tensor([[1.4], [6.5]])
    votes = neighbour_votes(Z, reference, reference_labels, 3, 2)
    np.testing.assert_array_equal(votes.numpy(), [[2, 1], [1, 2]])


def test_neighbour_votes_of_a_row_do_not_depend_on_the_other_rows(monkeypatch):
    # Duplicated reference points put exact ties at the k-th neighbour; the
    # stable order must give every row the same votes in any block size.
    rng = np.random.RandomState(0)
    reference = torch.as_tensor(
        np.repeat(rng.rand(20, 3), 3, axis=0), dtype=torch.float32
    )
    reference_labels = torch.as_tensor(rng.randint(0, 4, len(reference)))
    Z = reference[rng.permutation(len(reference))]
    whole = neighbour_votes(Z, reference, reference_labels, 4, 4)
    monkeypatch.setattr(_graph, "_DISTANCE_BLOCK", 7 * len(reference))
    blocked = neighbour_votes(Z, reference, reference_labels, 4, 4)
    one_by_one = torch.cat(
        [neighbour_votes(z[None], reference, reference_labels, 4, 4) for z in Z]
    )
    torch.testing.assert_close(whole, blocked)
    torch.testing.assert_close(whole, one_by_one)


def test_neighbour_votes_take_the_earliest_of_tied_references():
    # Quantised points: many references at the k-th distance. The voters
    # are those a stable sort of each row's distances lists first.
    rng = np.random.RandomState(0)
    reference = torch.as_tensor(rng.randint(0, 3, (60, 2)), dtype=torch.float32)
    reference_labels = torch.as_tensor(rng.randint(0, 5, len(reference)))
    Z = torch.as_tensor(rng.randint(0, 3, (40, 2)), dtype=torch.float32)
    distances = torch.cdist(Z, reference)
    nearest = torch.sort(distances, dim=1, stable=True).indices[:, :7]
    expected = torch.zeros(len(Z), 5)
    expected.scatter_add_(1, reference_labels[nearest], torch.ones(len(Z), 7))
    votes = neighbour_votes(Z, reference, reference_labels, 7, 5)
    torch.testing.assert_close(votes, expected, rtol=0, atol=0)


@pytest.fixture
def blobs():
    X, _ = make_blobs(120, n_features=6, centers=3, random_state=0)
    return X.astype(np.float32)


@pytest.mark.parametrize("clustering", ["spectral", "umap"])
def test_graph_clustering_predict_reproduces_labels(blobs, clustering):
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, clustering=clustering, random_state=0
    ).fit(blobs)
    assert model.clustering_ == clustering
    assert not hasattr(model, "kmeans_")
    assert model.reference_embedding_.shape == (len(blobs), model.embedding_dim)
    np.testing.assert_array_equal(model.predict(blobs), model.labels_)
    proba = model.predict_proba(blobs)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.labels_)
    # The centres are the clusters' mean embeddings.
    Z = model.transform(blobs)
    for k, center in enumerate(model.cluster_centers_):
        np.testing.assert_allclose(
            center, Z[model.labels_ == k].mean(axis=0), rtol=1e-4
        )


def test_reference_is_a_subset_above_the_cap(blobs, monkeypatch):
    monkeypatch.setattr(_graph, "MAX_REFERENCE_SAMPLES", 50)
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, clustering="spectral", random_state=0
    ).fit(blobs)
    assert len(model.reference_embedding_) == 50
    np.testing.assert_array_equal(model.predict(blobs), model.labels_)


def test_refit_with_kmeans_forgets_the_reference(blobs):
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, clustering="spectral", random_state=0
    ).fit(blobs)
    model.set_params(clustering="kmeans").fit(blobs)
    assert not hasattr(model, "reference_embedding_")
    centers = torch.as_tensor(model.cluster_centers_)
    Z = torch.as_tensor(model.transform(blobs))
    np.testing.assert_array_equal(
        model.predict(blobs), torch.cdist(Z, centers).argmin(dim=1).numpy()
    )


def test_clusters_nobody_votes_for_are_dropped_everywhere():
    # Five distinct points and eight clusters: some clusters win no vote;
    # they leave labels_ and can never be predicted.
    X = np.repeat(np.eye(5, dtype=np.float32), 8, axis=0)
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=8, clustering="spectral", random_state=0
    )
    with pytest.warns(ConvergenceWarning, match="smaller than n_clusters"):
        model.fit(X)
    n_found = len(model.cluster_centers_)
    assert n_found < 8
    np.testing.assert_array_equal(np.unique(model.labels_), np.arange(n_found))
    rng = np.random.RandomState(0)
    new = rng.rand(200, 5).astype(np.float32)
    assert model.predict(new).max() < n_found
    assert model.predict_proba(new).shape == (200, n_found)
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_neighbour_graph_is_symmetric():
    # Sample 3 is far from the others: its nearest neighbour is sample 2, but
    # it is no one's nearest; the edge is kept for both.
    X = np.array([[0.0], [1.0], [2.2], [10.0]])
    graph = neighbour_graph(X, 1).toarray()
    np.testing.assert_array_equal(graph, graph.T)
    assert graph[2, 3] == graph[3, 2] == 1
    np.testing.assert_array_equal(np.diag(graph), 0)


def test_modularity_of_two_separate_triangles():
    X = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], dtype=float)
    graph = neighbour_graph(X, 2)
    # Each triangle holds half the edges: 1 - 2 * 0.5 ** 2.
    assert modularity(graph, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(0.5)
    assert modularity(graph, np.array([0, 0, 1, 1, 1, 0])) < 0.5
    assert modularity(graph, np.zeros(6, dtype=int)) == pytest.approx(0.0)


def _three_groups():
    """Three far-apart groups of 30 points and their 5-nearest-neighbour graph."""
    X, y = make_blobs(90, centers=[[0, 0], [20, 0], [0, 20]], random_state=0)
    return neighbour_graph(X, 5), y


def test_split_merge_repairs_a_split_and_a_merge_in_one_move():
    graph, y = _three_groups()
    # Group 0 cut in two, groups 1 and 2 joined.
    wrong = np.where(y == 0, np.arange(90) % 2, 2)
    refined, n_moves = split_merge(graph, wrong)
    assert n_moves == 1
    assert clustering_accuracy(y, refined) == 1.0
    assert modularity(graph, refined) > modularity(graph, wrong)


def test_split_merge_keeps_a_partition_no_move_improves():
    graph, y = _three_groups()
    refined, n_moves = split_merge(graph, y)
    assert n_moves == 0
    assert refined is y


def test_split_merge_cuts_off_no_cluster_below_the_resolution_limit():
    # Four clusters asked of three groups, one group cut in two. Joining its
    # halves while cutting one sample off another group would raise
    # modularity; each cluster must keep sqrt(2 m) edges inside.
    X, y = make_blobs(90, centers=[[0, 0], [20, 0], [0, 20]], random_state=0)
    graph = neighbour_graph(X, 10)
    four = np.where((y == 0) & (X[:, 0] > np.median(X[y == 0, 0])), 3, y)
    refined, _ = split_merge(graph, four)
    assert len(np.unique(refined)) == 4
    for cluster in np.unique(refined):
        inside = graph[refined == cluster][:, refined == cluster].sum() / 2
        assert inside >= np.sqrt(graph.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_merge_cuts_no_cluster_across_its_bulk(seed):
    # Blobs of 500 and 50 points in 10 dimensions, close enough to share
    # edges. Cutting the large one through its middle, to join one half to
    # the small one, raises modularity, but the cut crosses many of its
    # edges (conductance above _MAX_CUT_CONDUCTANCE).
    centres = np.zeros((2, 10))
    centres[1, 0] = 6
    X, y = make_blobs([500, 50], centers=centres, random_state=seed)
    graph = neighbour_graph(X, 10)
    assert graph[y == 0][:, y == 1].sum() > 0
    refined, n_moves = split_merge(graph, y)
    assert n_moves == 0
    assert refined is y


def test_split_merge_moves_a_few_boundary_samples_whatever_their_cut():
    # Two 30-cliques, A and B, and a path of four samples, each joined to
    # three samples of A and seven of B, labelled with A. Moving the four to
    # B cuts most of their edges within A (conductance above
    # _MAX_CUT_CONDUCTANCE), but they are too few to be a cluster of their
    # own: the seam rule is not asked of such a cut.
    adjacency = np.zeros((64, 64))
    adjacency[:30, :30] = adjacency[30:60, 30:60] = 1
    for j, sample in enumerate(range(60, 64)):
        adjacency[sample, 3 * j : 3 * j + 3] = 1
        adjacency[sample, 30 + 7 * j % 30 : 37 + 7 * j % 30] = 1
        adjacency[sample, sample + 1 : sample + 2] = 1
    adjacency = np.maximum(adjacency, adjacency.T)
    np.fill_diagonal(adjacency, 0)
    labels = np.r_[np.zeros(30, int), np.ones(30, int), np.zeros(4, int)]
    refined, n_moves = split_merge(sp.csr_array(adjacency), labels)
    assert n_moves == 1
    np.testing.assert_array_equal(refined, np.r_[np.zeros(30), np.ones(34)])


def test_split_merge_leaves_clusters_below_the_resolution_limit():
    # Forty 4-cliques: each group has 6 edges, fewer than sqrt(2 m) = 22,
    # so modularity would rather join groups than tell them apart.
    centres = np.c_[np.arange(40) * 10.0, np.zeros(40)]
    X, y = make_blobs(160, centers=centres, cluster_std=0.1, random_state=0)
    graph = neighbour_graph(X, 3)
    wrong = y.copy()
    wrong[y == 1] = 0
    wrong[(y == 2) & (np.arange(160) % 2 == 0)] = 1
    refined, n_moves = split_merge(graph, wrong)
    assert n_moves == 0
    assert refined is wrong


@pytest.mark.parametrize("winner", ["kmeans", "umap"])
def test_auto_refines_the_kept_partition(
    blobs, force_most_modular, monkeypatch, winner
):
    force_most_modular(AutoencoderKMeans, winner)
    refined = []

    def one_move(graph, labels):
        # Swap the names of clusters 0 and 1: the labels change, the
        # partition's clusters do not.
        refined.append(np.choose(labels, [1, 0, 2]))
        return refined[-1], 1

    monkeypatch.setattr(_autoencoder_base, "split_merge", one_move)
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    model.fit(blobs)
    assert model.clustering_ == winner
    assert model.n_split_merge_moves_ == 1
    # The refined partition is extended by the vote, k-means' as well: the
    # labels follow its cluster names (the vote of a sample's neighbours may
    # still differ from its own label).
    assert hasattr(model, "reference_embedding_")
    assert np.mean(model.labels_ == refined[0]) > 0.9
    np.testing.assert_array_equal(model.predict(blobs), model.labels_)


@pytest.mark.parametrize("cls", [DEC, DCN])
def test_init_auto_starts_from_the_refined_partition(
    blobs, force_most_modular, monkeypatch, cls
):
    extended = force_most_modular(cls, "kmeans")
    monkeypatch.setattr(
        _autoencoder_base, "split_merge", lambda graph, labels: (labels, 1)
    )
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(blobs)
    assert model.initial_clustering_ == "kmeans"
    assert model.n_split_merge_moves_ == 1
    # A moved k-means partition starts the clustering stage through the
    # vote, as a graph partition does.
    assert len(extended) == 1


@pytest.mark.parametrize("winner", ["kmeans", "spectral", "umap"])
def test_auto_keeps_the_partition_of_highest_modularity(
    blobs, force_most_modular, monkeypatch, winner
):
    force_most_modular(AutoencoderKMeans, winner)
    # Selection alone: the refinement makes no move.
    monkeypatch.setattr(
        _autoencoder_base, "split_merge", lambda graph, labels: (labels, 0)
    )
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    model.fit(blobs)
    assert model.clustering_ == winner
    assert hasattr(model, "reference_embedding_") == (winner != "kmeans")
    np.testing.assert_array_equal(model.predict(blobs), model.labels_)


def test_auto_breaks_ties_towards_kmeans(blobs, monkeypatch):
    monkeypatch.setattr(_autoencoder_base, "modularity", lambda *_: 0.5)
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    assert model.fit(blobs).clustering_ == "kmeans"


def test_kmeans_by_modularity_keeps_the_run_of_highest_modularity(monkeypatch):
    X, _ = make_blobs(400, centers=8, cluster_std=1.5, random_state=0)
    # Scored on a subset of the rows, as above 10,000 samples.
    reference = np.arange(0, 400, 2)
    graph = neighbour_graph(X[reference], 10)
    runs = []
    fit_kmeans = _graph.fit_kmeans

    def spy(*args, **kwargs):
        runs.append(fit_kmeans(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(_graph, "fit_kmeans", spy)
    kept = _graph.kmeans_by_modularity(
        X, 8, 6, np.random.RandomState(0), graph, reference
    )
    scores = [modularity(graph, run.labels_[reference]) for run in runs]
    assert len(runs) == 6
    assert all(run.n_init == 1 for run in runs)
    # The runs differ, so the choice matters.
    assert len(set(scores)) > 1
    assert kept is runs[int(np.argmax(scores))]


@pytest.mark.parametrize("cls", [AutoencoderKMeans, DEC, DCN])
@pytest.mark.parametrize("selection", ["modularity", "inertia"])
def test_kmeans_selection_reaches_the_kmeans_step(blobs, cls, selection, monkeypatch):
    calls = []
    kmeans_by_modularity = _graph.kmeans_by_modularity

    def spy(*args, **kwargs):
        calls.append(args)
        return kmeans_by_modularity(*args, **kwargs)

    monkeypatch.setattr(_autoencoder_base, "kmeans_by_modularity", spy)
    params = dict(clustering="kmeans") if cls is AutoencoderKMeans else {}
    model = fast_estimator(
        cls, n_clusters=3, kmeans_selection=selection, random_state=0, **params
    ).fit(blobs)
    if selection == "modularity":
        # The n_init restarts, one kept.
        assert len(calls) == 1 and calls[0][2] == model._n_init
        assert model.kmeans_.n_init == 1
    else:
        # scikit-learn's KMeans with its own n_init restarts, kept by inertia.
        assert calls == []
        assert model.kmeans_.n_init == model._n_init
    np.testing.assert_array_equal(model.predict(blobs), model.labels_)


def test_extend_partition_keeps_reference_labels_and_votes_for_the_rest():
    # Nine reference rows near 0 and nine near 5, then two rows to label.
    near_zero, near_five = np.arange(9) * 0.1, 5.0 + np.arange(9) * 0.1
    Z = torch.tensor(np.r_[near_zero, near_five, 0.45, 5.45], dtype=torch.float32)
    Z = Z[:, None]
    reference = np.arange(18)
    graph = base.ReferenceGraph(reference, Z[:18].numpy(), None)
    # Sample 4 is labelled against its neighbours: it keeps its label, which
    # its three voters (itself and two 0s) would overturn.
    reference_labels = np.r_[np.zeros(9, int), np.ones(9, int)]
    reference_labels[4] = 1
    model = AutoencoderKMeans(n_clusters=2, n_neighbors=3)
    assert model._voters(len(reference)) == 3
    labels = model._extend_partition(Z, graph, reference_labels)
    np.testing.assert_array_equal(labels, np.r_[reference_labels, 0, 1])


# -- refinement of IMSAT's and DAC's partitions by split-and-merge moves ----


def test_split_merge_cuts_up_to_min_clusters():
    # Three blobs labelled as two clusters (one holds two blobs): asked for
    # three, the joined cluster is cut between its blobs.
    X, y = make_blobs(300, centers=3, cluster_std=0.5, random_state=0)
    graph = neighbour_graph(X, 10)
    joined = np.where(y == 2, 1, y)
    # Without it, moves keep the number of clusters.
    assert len(np.unique(split_merge(graph, joined)[0])) == 2
    refined, n_moves = split_merge(graph, joined, min_clusters=3)
    assert n_moves >= 1
    assert clustering_accuracy(y, refined) == 1.0


def test_best_bisection_of_a_clique_is_a_real_cut_that_loses():
    # Every cut of a complete graph lowers modularity; the best one still
    # splits the nodes (the sweep's last "cut", all nodes on one side,
    # gains 0 but is no cut).
    graph = sp.csr_array(np.ones((6, 6)) - np.eye(6))
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    gain, first_half = _best_bisection(graph, np.arange(6), degrees, degrees.sum())
    assert gain < 0
    assert 0 < first_half.sum() < 6


def test_split_merge_restores_no_cluster_below_the_resolution_limit():
    # One blob and four far points, labelled as one cluster; asked for two,
    # the cut that would restore the second cluster leaves the four points
    # a half of 6 internal edges, below the resolution limit sqrt(2 m): no
    # cut is made.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(200, 2), rng.randn(4, 2) * 0.1 + 30])
    graph = neighbour_graph(X, 3)
    labels, n_moves = split_merge(graph, np.zeros(len(X), int), min_clusters=2)
    assert n_moves == 0
    np.testing.assert_array_equal(labels, 0)


def test_split_merge_restores_min_clusters_of_small_groups():
    # Forty 4-cliques, below the resolution limit, labelled as 36 clusters
    # (four pairs of groups joined): asked for forty, each joined pair is
    # cut between its groups, and no group is cut in two.
    centres = np.c_[np.arange(40) * 10.0, np.zeros(40)]
    X, y = make_blobs(160, centers=centres, cluster_std=0.1, random_state=0)
    graph = neighbour_graph(X, 3)
    joined = np.where(np.isin(y, [1, 3, 5, 7]), y - 1, y)
    assert len(np.unique(joined)) == 36
    refined, n_moves = split_merge(graph, joined, min_clusters=40)
    assert n_moves == 4
    assert clustering_accuracy(y, refined) == 1.0
    # Without missing clusters, no move is made below the limit.
    assert split_merge(graph, joined)[1] == 0


def test_target_loss_is_the_cross_entropy_of_the_samples_with_a_target():
    from skdeepcluster._nets import ClusteringNet

    net = ClusteringNet(torch.nn.Linear(3, 4), criterion=torch.nn.NLLLoss)
    net.targets_ = torch.tensor([2, -1, 0, -1, 3])
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    log_probabilities = torch.log_softmax(logits, dim=1)
    expected = torch.nn.functional.cross_entropy(
        logits[[0, 2, 4]], torch.tensor([2, 0, 3])
    )
    loss = net.target_loss(log_probabilities, torch.arange(5))
    assert loss.item() == pytest.approx(expected.item())
    # A batch without targets contributes nothing.
    assert net.target_loss(log_probabilities[[1, 3]], torch.tensor([1, 3])) == 0.0


@pytest.fixture(scope="module")
def four_blobs():
    X, y = make_blobs(
        n_samples=200, centers=4, n_features=6, cluster_std=1.0, random_state=1
    )
    return X.astype(np.float32), y


@pytest.mark.parametrize("cls", [IMSAT, DAC])
def test_refinement_trains_toward_the_moved_partition(four_blobs, monkeypatch, cls):
    X, y = four_blobs
    # A partition that is not the blobs': two joined, one cut in half.
    moved = np.where(y == 1, 0, y)
    moved[(y == 2) & (X[:, 0] > np.median(X[y == 2, 0]))] = 1
    monkeypatch.setattr(base, "split_merge", lambda adjacency, labels, **_: (moved, 1))
    model = fast_estimator(
        cls, n_clusters=4, max_epochs=1, refinement_epochs=30, random_state=0
    ).fit(X)
    assert model.n_split_merge_moves_ == 1
    assert model.n_iter_ == 31
    assert model.net_.stage == "refinement"
    assert model.net_.history[-1, "target_cross_entropy"] > 0
    assert clustering_accuracy(moved, model.labels_) > 0.9
    assert clustering_accuracy(y, model.labels_) < 0.8
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    # The targets are training state, not part of the fitted net.
    assert not model.net_.has_targets()


@pytest.mark.parametrize("cls", [IMSAT, DAC])
def test_no_move_no_refinement(four_blobs, monkeypatch, cls):
    X, _ = four_blobs
    monkeypatch.setattr(base, "split_merge", lambda adjacency, labels, **_: (labels, 0))
    # DAC's other candidate partition, the input's layout, is tested in
    # test_dac.py.
    params = dict(clustering="net") if cls is DAC else {}
    model = fast_estimator(cls, n_clusters=4, random_state=0, **params).fit(X)
    plain = fast_estimator(cls, n_clusters=4, refinement_epochs=0, random_state=0)
    plain.fit(X)
    assert model.n_split_merge_moves_ == plain.n_split_merge_moves_ == 0
    assert model.n_iter_ == plain.n_iter_
    np.testing.assert_array_equal(model.labels_, plain.labels_)


def test_dac_moves_on_the_input_graph_of_flat_features_and_the_hidden_graph_of_images(
    monkeypatch,
):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 64)).astype(np.float32)
    X[:20, :32] += 1.0
    graphs = []

    def record(adjacency, labels, **_):
        graphs.append(adjacency)
        return labels, 0

    monkeypatch.setattr(base, "split_merge", record)
    params = dict(
        hidden_dims=(8,),
        max_epochs=1,
        batch_size=20,
        clustering="net",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        DAC(2, **params).fit(X)
        images = DAC(2, input_shape=(1, 8, 8), **params).fit(X)
        DAC(2, input_shape=(1, 8, 8), refinement_epochs=0, **params).fit(X)
    assert len(graphs) == 2
    # With no move made, the fitted network is the one the moves saw, on
    # the input mapped onto [0, 1] (input_scaling="auto": X reaches 2).
    module = images.net_.module_.eval()
    X_scaled = (torch.as_tensor(X) - images.input_offset_) / images.input_scale_
    X_scaled = X_scaled.view(-1, 1, 8, 8)
    with torch.no_grad():
        hidden = module.body.hidden(X_scaled).numpy()
    expected = {"flat": neighbour_graph(X, 10), "images": neighbour_graph(hidden, 10)}
    for graph, name in zip(graphs, ("flat", "images")):
        assert (graph != expected[name]).nnz == 0, name
    assert (graphs[0] != graphs[1]).nnz > 0


@pytest.mark.parametrize(
    "cls, params, epochs, centers",
    [
        (DAC, dict(max_epochs=2, refinement_epochs=30), 2, 3),
        # Four blobs for three clusters, as in IMSAT's tests of the layout.
        (IMSAT, dict(n_init=1), 5, 4),
    ],
    ids=["DAC", "IMSAT"],
)
def test_net_partition_kept_when_more_modular(
    known_layout, cls, params, epochs, centers
):
    # The networks' clustering="auto" (_kept_partition): a layout partition
    # less modular than the net's leaves the fit as with clustering="net".
    X, y = make_blobs(
        n_samples=40 * centers,
        centers=centers,
        n_features=6,
        cluster_std=0.5,
        random_state=2,
    )
    X, _, calls = known_layout(cls, (X.astype(np.float32), y), win=False)
    model = fast_estimator(cls, n_clusters=3, random_state=0, **params).fit(X)
    plain = fast_estimator(
        cls, n_clusters=3, clustering="net", random_state=0, **params
    ).fit(X)
    assert len(calls) == 1
    assert model.clustering_ == plain.clustering_ == "net"
    # Without a move nor another partition, no refinement epoch.
    assert model.n_iter_ == plain.n_iter_ == epochs
    np.testing.assert_array_equal(model.labels_, plain.labels_)


def test_match_labels():
    labels = np.array([2, 2, 0, 0, 1, 1, 1])
    given = np.array([0, -1, 1, 1, -1, 2, 0])
    named = match_labels(labels, given, 3, given >= 0)
    # Cluster 2 holds a 0, cluster 0 two 1s, cluster 1 a 2 and a 0: the
    # matching giving most labelled samples their class is 2->0, 0->1, 1->2.
    np.testing.assert_array_equal(named, [0, 0, 1, 1, 2, 2, 2])
    # A cluster beyond the classes keeps a number of its own.
    named = match_labels(
        np.array([0, 1, 2]), np.array([1, 0, -1]), 2, np.array([True, True, False])
    )
    np.testing.assert_array_equal(named, [1, 0, 2])
