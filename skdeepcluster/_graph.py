"""Clustering an embedding through its nearest-neighbour graph.

k-means on an embedding looks for round, equally sized groups around
centres. A deep embedding of images rarely has that shape: the views of one
object, or the handwritings of one digit, lie along curved strands, and
k-means then cuts one class in two and merges two others. Spectral
clustering of the k-nearest-neighbour graph (von Luxburg 2007) follows the
strands instead, and a vote among the nearest training samples extends the
partition to new data with the same rule that labels the training data.
A UMAP layout of the graph (McInnes et al. 2018) pulls each strand
together into a compact group that k-means then separates, the recipe of
N2D (McConville et al. 2020). Modularity (Newman 2006) scores a partition
of the graph whatever method made it, and split-and-merge moves that raise
it repair a partition that cut one group and joined two others.

References
----------
U. von Luxburg, "A tutorial on spectral clustering", Statistics and
Computing 17(4), 2007.

M. E. J. Newman, "Modularity and community structure in networks", PNAS
103(23), 2006.

L. McInnes, J. Healy and J. Melville, "UMAP: Uniform manifold
approximation and projection for dimension reduction", arXiv:1802.03426,
2018.

R. McConville, R. Santos-Rodriguez, R. J. Piechocki and I. Craddock, "N2D:
(Not too) deep clustering via clustering the local manifold of an
autoencoded embedding", ICPR 2020.

A. Damle, V. Minden and L. Ying, "Simple, direct and efficient multi-way
spectral clustering", Information and Inference 8(1), 2019.

J. Shi and J. Malik, "Normalized cuts and image segmentation", IEEE
Transactions on Pattern Analysis and Machine Intelligence 22(8), 2000.

S. Fortunato and M. Barthélemy, "Resolution limit in community
detection", PNAS 104(1), 2007.
"""

import contextlib
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, laplacian
from scipy.sparse.linalg import ArpackError, eigsh
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import NearestNeighbors, kneighbors_graph
from sklearn.utils.validation import check_memory

from ._torch_utils import (
    fit_kmeans,
    to_numpy,
    torch_threads_kept,
    warning_filters_kept,
)

#: Training samples kept as the reference of the neighbour vote. The vote of
#: a sample costs one distance per reference sample; capping the reference
#: keeps ``fit`` and ``predict`` linear in ``n_samples``.
MAX_REFERENCE_SAMPLES = 10_000

#: Neighbours of each sample in the graphs whose modularity scores a
#: network's partition and guides the split-and-merge moves after training
#: (DAC's input and hidden-layer graphs, IMSAT's representation graph).
SCORING_NEIGHBOURS = 10

#: Rows of distances computed at once by :func:`neighbour_votes`, bounding its
#: memory to about this many floats.
_DISTANCE_BLOCK = 1 << 24


def reference_indices(n_samples, random_state, max_samples=None):
    """Sorted indices of the training samples kept as a reference set.

    All of them up to ``max_samples`` (default :data:`MAX_REFERENCE_SAMPLES`),
    a random subset of that size above it.
    """
    if max_samples is None:
        max_samples = MAX_REFERENCE_SAMPLES
    if n_samples <= max_samples:
        return np.arange(n_samples)
    return np.sort(random_state.choice(n_samples, max_samples, replace=False))


def spectral_partition(Z, n_clusters, n_neighbors, random_state):
    """Spectral clustering of the rows of ``Z`` on their k-nearest-neighbour graph.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    n_clusters : int
    n_neighbors : int
        Neighbours of each sample in the graph (capped at ``n_samples - 1``).
    random_state : RandomState instance
        Seeds the eigensolver's starting vector.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    if n_clusters >= len(Z):
        # One row per cluster is the only such partition, and the
        # eigensolver cannot find as many eigenvectors as the graph has
        # nodes.
        return np.arange(len(Z))
    n_neighbors = max(1, min(n_neighbors, len(Z) - 1))
    spectral = SpectralClustering(
        n_clusters,
        affinity="nearest_neighbors",
        n_neighbors=n_neighbors,
        # Deterministic, with no k-means restarts to choose among (Damle et
        # al. 2019).
        assign_labels="cluster_qr",
        random_state=random_state,
    )
    with warning_filters_kept():
        # A graph of several components is clustered all the same (each
        # component is a cluster of its own or part of one); the warning
        # would only repeat what the labels show.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return spectral.fit(Z).labels_


#: Dimensions of the UMAP layout clustered by :func:`umap_partition`: one per
#: cluster as in N2D, at most this many (the layout's cost grows with them).
MAX_LAYOUT_DIMENSIONS = 10


def umap_partition(
    Z, n_clusters, n_neighbors, n_init, random_state, graph, memory=None
):
    """k-means of a UMAP layout of the rows of ``Z``.

    UMAP (McInnes et al. 2018) lays the rows out in
    ``max(2, min(n_clusters, 10))`` dimensions so that neighbours in ``Z``
    stay close and the rest move apart, with ``min_dist=0`` so that
    neighbours may pack tightly: a strand of embeddings becomes a compact
    group. k-means, whose restarts are
    chosen by :func:`modularity` of ``graph`` (:func:`kmeans_by_modularity`),
    then partitions the layout. This is N2D's recipe (McConville et al.
    2020) with k-means in place of a Gaussian mixture.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    n_clusters, n_neighbors, n_init : int
    random_state : RandomState instance
        Seeds the layout and the k-means runs. A seeded UMAP runs on one
        thread, which makes its layout reproducible.
    graph : sparse array of shape (n_samples, n_samples)
        Neighbour graph of ``Z`` (:func:`neighbour_graph`) scoring the k-means
        runs.
    memory : str, joblib.Memory or None, default=None
        Cache of the layout, keyed on ``Z``, its dimensions, ``n_neighbors``,
        the seed drawn from ``random_state`` and umap-learn's version;
        ``None`` caches nothing. A hit returns the layout that computing it
        would give. Values of ``n_clusters`` from 10 up share a layout.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    n_components = max(2, min(n_clusters, MAX_LAYOUT_DIMENSIONS))
    layout = Z
    # Too few rows to lay out (the spectral initialisation needs more rows
    # than dimensions): they are clustered as they are.
    if len(Z) > n_components + 1:
        umap = _import_umap()  # deferred: importing numba takes about a second
        seed = random_state.randint(np.iinfo(np.int32).max)
        layout = check_memory(memory).cache(umap_layout)(
            Z, n_components, n_neighbors, seed, umap.__version__
        )
    kmeans = kmeans_by_modularity(
        layout, n_clusters, n_init, random_state, graph, np.arange(len(Z))
    )
    return kmeans.labels_


def umap_layout(Z, n_components, n_neighbors, seed, umap_version):
    """UMAP layout of the rows of ``Z`` in ``n_components`` dimensions.

    ``umap_version`` is not used here: it is part of the cache key of
    :func:`umap_partition`, so that a cached layout is not reused by
    another version of umap-learn.
    """
    umap = _import_umap()
    n_neighbors = max(2, min(n_neighbors, len(Z) - 1))
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=0.0,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(
            _umap_neighbours(Z, n_neighbors)
            if len(Z) < _UMAP_EXACT_NEIGHBOURS_BELOW
            else (None, None, None)  # UMAP's approximate search
        ),
    )
    with torch_threads_kept(), warning_filters_kept():
        # Equal rows give zero distances, which UMAP warns about and lays
        # out all the same.
        warnings.filterwarnings("ignore", module="umap")
        warnings.filterwarnings("ignore", module="sklearn.manifold")
        return reducer.fit_transform(Z)


#: UMAP finds the exact nearest neighbours of fewer rows than this (and
#: approximate ones, by NN-Descent, of more): umap-learn's own threshold.
_UMAP_EXACT_NEIGHBOURS_BELOW = 4096


def _umap_neighbours(Z, n_neighbors):
    """Exact nearest neighbours of the rows of ``Z`` in UMAP's ``precomputed_knn`` form.

    Each row's list starts with the row itself (at distance 0), then its
    ``n_neighbors - 1`` nearest other rows: the neighbours UMAP finds itself
    below :data:`_UMAP_EXACT_NEIGHBOURS_BELOW` rows, but UMAP finds them from
    every pairwise distance, each computed through a call from Python
    (seconds on a few thousand rows), where a tree search takes
    milliseconds on an embedding of a few dimensions.
    """
    distances, indices = (
        NearestNeighbors(n_neighbors=n_neighbors - 1).fit(Z).kneighbors()
    )
    rows = np.arange(len(Z))[:, None]
    return (
        np.hstack([rows, indices]),
        np.hstack([np.zeros_like(rows, dtype=np.float32), distances]).astype(
            np.float32
        ),
        None,  # no search index: the layout is never extended to new rows
    )


def neighbour_votes(Z, reference, reference_labels, n_neighbors, n_clusters):
    """Votes of the ``n_neighbors`` nearest reference samples of each row of ``Z``.

    Distances are computed from differences, not through the matrix-product
    expansion (see :func:`~skdeepcluster._torch_utils.nearest_center`), and
    equal distances are ordered by reference index, so the votes of a sample
    do not depend on the other rows it is computed with: ``predict`` on the
    training data reproduces ``labels_``.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
    reference : torch.Tensor of shape (n_reference, n_features)
    reference_labels : torch.Tensor of shape (n_reference,)
        Integer labels in ``[0, n_clusters)``.
    n_neighbors : int
    n_clusters : int

    Returns
    -------
    torch.Tensor of shape (n_samples, n_clusters)
        Number of neighbours in each cluster, as float32.
    """
    n_neighbors = min(n_neighbors, len(reference))
    votes = torch.zeros(len(Z), n_clusters, device=Z.device)
    if n_neighbors == 0:
        return votes
    block = max(1, _DISTANCE_BLOCK // max(len(reference), 1))
    one_hot = torch.nn.functional.one_hot(reference_labels.long(), n_clusters).to(
        votes.dtype
    )
    for start in range(0, len(Z), block):
        rows = Z[start : start + block]
        distances = torch.cdist(
            rows,
            reference.to(rows.dtype),
            compute_mode="donot_use_mm_for_euclid_dist",
        )
        # The neighbours a stable sort would list first, without sorting
        # every row: those nearer than the k-th smallest distance, then the
        # earliest in the reference among those at it (ties keep the
        # reference order; topk gives no such guarantee). The votes are
        # counts below 2**24, exact in float32.
        kth = distances.topk(n_neighbors, dim=1, largest=False).values[:, -1:]
        nearer = distances < kth
        at_kth = distances == kth
        missing = n_neighbors - nearer.sum(dim=1, keepdim=True)
        nearest = nearer | (at_kth & (at_kth.cumsum(dim=1) <= missing))
        votes[start : start + block] = nearest.to(votes.dtype) @ one_hot
    return votes


def neighbour_graph(Z, n_neighbors):
    """Symmetric 0/1 adjacency of the ``n_neighbors``-nearest-neighbour graph.

    Returns
    -------
    scipy.sparse.csr_array of shape (n_samples, n_samples)
        ``1`` where either sample is among the other's nearest neighbours.
    """
    n_neighbors = max(1, min(n_neighbors, len(Z) - 1))
    graph = kneighbors_graph(Z, n_neighbors, include_self=False)
    graph = (graph + graph.T).astype(bool).astype(np.float64)
    return sp.csr_array(graph)


def modularity(graph, labels):
    """Newman's modularity of the partition ``labels`` of ``graph``.

    The fraction of edges inside clusters minus the fraction expected if the
    edges were rewired at random with the same degrees (Newman 2006): high
    when the clusters are dense inside and sparsely linked to each other,
    whatever their shape. It scores partitions made by different methods
    on the same footing.

    Parameters
    ----------
    graph : sparse array of shape (n_samples, n_samples)
        Symmetric adjacency, as :func:`neighbour_graph` returns it.
    labels : ndarray of shape (n_samples,)

    Returns
    -------
    float
    """
    _, labels = np.unique(labels, return_inverse=True)
    membership = _membership(labels, labels.max() + 1)
    total = graph.sum()
    within = (membership.T @ graph @ membership).diagonal().sum() / total
    degrees = membership.T @ np.asarray(graph.sum(axis=1)).ravel() / total
    return float(within - (degrees**2).sum())


def kmeans_by_modularity(
    Z, n_clusters, n_init, random_state, graph, reference, sample_weight=None
):
    """k-means restarts on ``Z``; keep the one of highest modularity.

    Each of the ``n_init`` runs of :class:`~sklearn.cluster.KMeans` (one
    k-means++ initialisation each, seeded from ``random_state``) partitions
    all of ``Z``; the run whose partition of the ``reference`` rows has the
    highest :func:`modularity` of ``graph`` is kept. The lowest inertia,
    k-means' own criterion, can prefer a partition that splits one dense
    group of embeddings and merges two others; cutting a group cuts many of
    the neighbour graph's edges, which modularity penalises.

    Parameters
    ----------
    Z : torch.Tensor or ndarray of shape (n_samples, n_features)
    n_clusters, n_init : int
    random_state : RandomState instance
    graph : sparse array of shape (n_reference, n_reference)
        Neighbour graph of the rows ``reference`` of ``Z``
        (:func:`neighbour_graph`).
    reference : ndarray of int of shape (n_reference,)
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights of the k-means runs (not of the graph).

    Returns
    -------
    sklearn.cluster.KMeans
        The run kept, fitted with ``n_init=1``.
    """
    # One copy of the embedding for all the runs, not one each.
    Z = to_numpy(Z) if isinstance(Z, torch.Tensor) else Z
    best, best_score = None, -np.inf
    with _each_warning_once():
        for seed in random_state.randint(np.iinfo(np.int32).max, size=n_init):
            kmeans = fit_kmeans(Z, n_clusters, 1, seed, sample_weight=sample_weight)
            score = modularity(graph, kmeans.labels_[reference])
            # Ties keep the earlier run, as KMeans keeps its first best inertia.
            if score > best_score:
                best, best_score = kmeans, score
    return best


@contextlib.contextmanager
def _each_warning_once():
    """Issue each distinct warning raised in the block once, when it ends.

    The restarts are separate k-means fits, and each would repeat a warning
    about the same data: ``KMeans(n_init=10)`` says it once, ten fits of
    one run ten times. The warnings go through the caller's filters as they
    would have.
    """
    with warning_filters_kept(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for warning in caught:
        key = (warning.category, str(warning.message))
        if key not in seen:
            seen.add(key)
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _import_umap():
    """umap-learn, imported without its warning about TensorFlow.

    umap-learn warns on import that TensorFlow is missing, which only
    matters for its ParametricUMAP, unused here; the warning otherwise shows
    in every worker process of a parallel grid search.
    """
    with warning_filters_kept():
        warnings.filterwarnings("ignore", category=ImportWarning, module="umap")
        import umap

    return umap


def _membership(labels, n_clusters):
    """Sparse 0/1 matrix of shape (n_samples, n_clusters) of ``labels``."""
    n_samples = len(labels)
    return sp.csr_array(
        (np.ones(n_samples), (np.arange(n_samples), labels)),
        shape=(n_samples, n_clusters),
    )


def _sweep_order(subgraph):
    """Order of the nodes of ``subgraph`` along which to look for its best cut.

    A subgraph in several connected pieces is ordered piece by piece, largest
    first, so that cuts between pieces (which cut no edge) are among those
    swept. A connected one is ordered by its Fiedler vector, the second
    eigenvector of ``L v = lambda D v`` (Shi and Malik 2000): nodes joined
    by many edges get close values, so a threshold on it cuts few edges.
    """
    n_nodes = subgraph.shape[0]
    n_pieces, piece = connected_components(subgraph, directed=False)
    if n_pieces > 1:
        rank = np.empty(n_pieces, dtype=np.int64)
        rank[np.argsort(-np.bincount(piece), kind="stable")] = np.arange(n_pieces)
        return np.argsort(rank[piece], kind="stable")
    normalized, degrees = laplacian(subgraph, normed=True, return_diag=True)
    try:
        # Shift-invert just below 0, the smallest eigenvalue, which the
        # shifted matrix turns into the largest; the fixed starting vector
        # keeps the result reproducible.
        values, vectors = eigsh(
            normalized, k=2, sigma=-1e-3, which="LM", v0=np.ones(n_nodes)
        )
    except (ArpackError, RuntimeError):
        return None
    fiedler = vectors[:, np.argsort(values)[1]] / degrees
    return np.argsort(fiedler, kind="stable")


def _best_bisection(graph, nodes, degrees, total):
    """Best two-way cut of the cluster ``nodes`` for modularity.

    Sweeps the cuts between the first ``i`` nodes of :func:`_sweep_order`
    and the rest and returns the largest modularity gain of splitting the
    cluster there, ``2 d1 d2 - 2 cut / total`` (``d1``, ``d2``: the halves'
    shares of the degree; ``cut``: the edges between them), with the mask
    of the first half; ``(-inf, None)`` for clusters of fewer than 4 nodes.
    """
    n_nodes = len(nodes)
    if n_nodes < 4:
        return -np.inf, None
    subgraph = graph[nodes][:, nodes].tocsr()
    order = _sweep_order(subgraph)
    if order is None:
        return -np.inf, None
    position = np.empty(n_nodes, dtype=np.int64)
    position[order] = np.arange(n_nodes)
    # An edge lies inside the first i nodes once both its ends are among
    # them; each edge appears twice in the symmetric adjacency.
    edges = subgraph.tocoo()
    last_end = np.maximum(position[edges.row], position[edges.col])
    inside_first = (
        np.cumsum(np.bincount(last_end, weights=edges.data, minlength=n_nodes)) / 2
    )
    subgraph_degrees = np.asarray(subgraph.sum(axis=1)).ravel()
    cut = np.cumsum(subgraph_degrees[order]) - 2 * inside_first
    share_first = np.cumsum(degrees[nodes][order]) / total
    share = share_first[-1]
    gains = 2 * share_first * (share - share_first) - 2 * cut / total
    best = int(np.argmax(gains[:-1]))
    first_half = np.zeros(n_nodes, dtype=bool)
    first_half[order[: best + 1]] = True
    return gains[best], first_half


def match_labels(labels, given, n_given, counted=None):
    """``labels`` renumbered so that each cluster takes a distinct given label.

    A partition numbers its clusters in no particular order. The matching
    maximises the number of ``counted`` samples (all when ``None``) whose
    cluster takes their ``given`` label, in ``0..n_given - 1`` (Hungarian
    algorithm); clusters beyond ``n_given`` keep numbers from ``n_given``
    on.
    """
    if counted is None:
        counted = slice(None)
    n = max(int(labels.max()) + 1, n_given)
    counts = np.zeros((n, n))
    np.add.at(counts, (labels[counted], given[counted]), 1)
    clusters, matched = linear_sum_assignment(counts, maximize=True)
    label_of = np.empty(n, dtype=np.int64)
    label_of[clusters] = matched
    return label_of[labels]


# The largest conductance, cut / min(vol h1, vol h2), of a split-and-merge
# move's cut into two halves that could each be a cluster; a half's volume
# is its degree sum in the whole graph, so it counts the edges inside it
# twice and those leaving it, to any cluster, once. The moves made
# on digits and COIL-20 cut at most 0.087; those that cut a large blob of an
# embedding through its bulk, to join one half to a small blob, 0.13-0.25
# (benchmarks/NOTES.rst).
_MAX_CUT_CONDUCTANCE = 0.1


def _cut_is_seam(cut_share, halves_shares):
    """Whether a cut is a seam: of conductance at most ``_MAX_CUT_CONDUCTANCE``.

    Modularity rewards clusters of equal degree, so among the moves that
    raise it are some that cut a large, well-knit cluster through its bulk
    in order to join two smaller ones: on classes of very unequal sizes
    they make the partition more even than the classes. Such a cut crosses
    many of the cluster's edges; a cut between two groups that a partition
    had joined crosses few. (A cut that takes a few boundary samples to
    another cluster crosses many of their edges too; :func:`split_merge`
    asks this only of cuts whose halves could each be a cluster.)

    Parameters
    ----------
    cut_share : float
        The edges between the halves over the graph's degree sum.
    halves_shares : ndarray of shape (2,)
        The halves' shares of the degree sum.
    """
    return cut_share <= _MAX_CUT_CONDUCTANCE * min(halves_shares)


def split_merge(graph, labels, min_clusters=None):
    """Raise the modularity of a partition by split-and-merge moves.

    Each move cuts one cluster in two and joins two clusters, so the number
    of clusters stays the same; of all such moves (each cluster cut where
    :func:`_best_bisection` finds its best cut, then the best pair of the
    resulting clusters joined, other than the two halves), the one that
    raises :func:`modularity` most is made, until none raises it or as
    many moves as there are clusters have been made. A
    partition that cut one group of the graph in two and joined two others
    is repaired by one move, which the other moves k-means or a UMAP layout
    offer cannot make.

    Modularity cannot tell apart groups with fewer internal edges than
    ``sqrt(2 m)`` (``m`` edges in all; Fortunato and Barthélemy 2007): it
    prefers to join them. When the median cluster of ``labels`` is that
    small, the partition is returned as it is; and no move leaves a half of
    its cut that small as a cluster of its own (with more clusters asked
    for than the graph has groups, such moves would cut off a few samples
    to join two parts of one group). Nor is a cluster cut into two halves
    above that limit unless the cut crosses few of its edges
    (:func:`_cut_is_seam`): on classes of very unequal sizes, cuts through
    a class's bulk would make the partition more even than the classes.
    The rule vetoes a cluster's best cut; it does not look for another.

    A partition with fewer than ``min_clusters`` clusters (a network that
    left some of its outputs unused) is first cut, one cluster at a time
    where the cut raises modularity most (or lowers it least), until it has
    ``min_clusters``; each cut counts as a move and leaves no half below
    the resolution limit. When the median cluster is itself below it (many
    small groups, such as ten images per person), the cuts are still made,
    since the clusters asked for are missing, but leave no half with fewer
    than half the median cluster's internal edges, so that no cut only
    shaves off a few samples; the split-and-merge moves are then skipped.

    Parameters
    ----------
    graph : sparse array of shape (n_samples, n_samples)
        Symmetric adjacency, as :func:`neighbour_graph` returns it.
    labels : ndarray of int of shape (n_samples,)
        The partition to refine; any integer labels.
    min_clusters : int, default=None
        The number of clusters to cut ``labels`` up to first; ``None`` cuts
        nothing.

    Returns
    -------
    labels : ndarray of int of shape (n_samples,)
        In ``0..n_clusters - 1``; ``labels`` itself when no move is made.
    n_moves : int
        The cuts and split-and-merge moves made.
    """
    graph = sp.csr_array(graph)
    _, refined = np.unique(labels, return_inverse=True)
    n_clusters = refined.max() + 1
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    total = degrees.sum()
    resolution_limit = np.sqrt(total)
    membership = _membership(refined, n_clusters)
    internal_edges = (membership.T @ graph @ membership).diagonal() / 2
    median_edges = np.median(internal_edges)
    small_groups = median_edges < resolution_limit
    missing = min_clusters is not None and n_clusters < min_clusters
    if max(n_clusters, min_clusters or 0) < 2 or (small_groups and not missing):
        return labels, 0
    # The fewest internal edges a half of a restoring cut may keep.
    smallest_half = median_edges / 2 if small_groups else resolution_limit
    n_moves = 0
    # A move changes at most three clusters; the others keep their nodes and
    # so their best cut, which needs an eigenvector each to find.
    bisections = {}

    def best_bisection(cluster):
        """The cluster's nodes, the gain of its best cut and the new half.

        The new half is the one without the cluster's first sample, which
        keeps the cluster's name: which half comes first in the sweep
        depends on the eigenvector's sign, which the eigensolver does not
        fix.
        """
        nodes = np.flatnonzero(refined == cluster)
        key = nodes.tobytes()
        if key not in bisections:
            gain, first_half = _best_bisection(graph, nodes, degrees, total)
            if first_half is not None and first_half[0]:
                first_half = ~first_half
            bisections[key] = gain, first_half
        return (nodes, *bisections[key])

    while min_clusters is not None and n_clusters < min_clusters:
        best_cut = None
        for cluster in range(n_clusters):
            nodes, gain, new_half = best_bisection(cluster)
            if new_half is None:
                continue
            subgraph = graph[nodes][:, nodes]
            halves_edges = [
                subgraph[half][:, half].sum() / 2 for half in (new_half, ~new_half)
            ]
            if min(halves_edges) < smallest_half:
                continue
            if best_cut is None or gain > best_cut[0]:
                best_cut = (gain, nodes[new_half])
        if best_cut is None:
            break
        refined[best_cut[1]] = n_clusters
        n_clusters += 1
        n_moves += 1
    # Below the resolution limit modularity would rather join groups than
    # tell them apart: no split-and-merge move is trusted.
    moves = 0 if small_groups else n_clusters
    for _ in range(moves):
        best_gain, best_move = 0.0, None
        for cluster in range(n_clusters):
            nodes, split_gain, new_half = best_bisection(cluster)
            if new_half is None:
                continue
            # The halves are `cluster` and a new cluster `n_clusters`.
            split = refined.copy()
            split[nodes[new_half]] = n_clusters
            membership = _membership(split, n_clusters + 1)
            between = (membership.T @ graph @ membership).toarray() / total
            shares = membership.T @ degrees / total
            merge_gains = 2 * between - 2 * np.outer(shares, shares)
            np.fill_diagonal(merge_gains, -np.inf)
            merge_gains[cluster, n_clusters] = merge_gains[
                n_clusters, cluster
            ] = -np.inf
            pair = np.unravel_index(np.argmax(merge_gains), merge_gains.shape)
            # Whether each half has the internal edges of a cluster (the
            # resolution limit).
            halves = [cluster, n_clusters]
            internal_edges = np.diagonal(between)[halves] * total / 2
            could_stand = dict(zip(halves, internal_edges >= resolution_limit))
            # A half that is not joined stays a cluster of its own; below the
            # resolution limit it would be a cluster only in name (a few
            # samples cut off so that two groups could be joined).
            alone = set(halves) - {int(pair[0]), int(pair[1])}
            if not all(could_stand[h] for h in alone):
                continue
            # A cut into two halves that could each be a cluster must be a
            # seam; one that moves a few boundary samples to another cluster
            # need not.
            if all(could_stand.values()) and not _cut_is_seam(
                between[cluster, n_clusters], shares[halves]
            ):
                continue
            gain = split_gain + merge_gains[pair]
            if gain > best_gain:
                best_gain, best_move = gain, (split, pair)
        if best_move is None:
            break
        split, (a, b) = best_move
        split[split == max(a, b)] = min(a, b)
        _, refined = np.unique(split, return_inverse=True)
        n_moves += 1
    return (refined, n_moves) if n_moves else (labels, 0)
