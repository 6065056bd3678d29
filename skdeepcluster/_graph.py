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
of the graph whatever method made it.

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
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import kneighbors_graph

from ._torch_utils import fit_kmeans, to_numpy, torch_threads_kept

#: Training samples kept as the reference of the neighbour vote. The vote of
#: a sample costs one distance per reference sample; capping the reference
#: keeps ``fit`` and ``predict`` linear in ``n_samples``.
MAX_REFERENCE_SAMPLES = 10_000

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
    with warnings.catch_warnings():
        # A graph of several components is clustered all the same (each
        # component is a cluster of its own or part of one); the warning
        # would only repeat what the labels show.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return spectral.fit(Z).labels_


#: Dimensions of the UMAP layout clustered by :func:`umap_partition`: one per
#: cluster as in N2D, at most this many (the layout's cost grows with them).
MAX_LAYOUT_DIMENSIONS = 10


def umap_partition(Z, n_clusters, n_neighbors, n_init, random_state, graph):
    """k-means of a UMAP layout of the rows of ``Z``.

    UMAP (McInnes et al. 2018) lays the rows out in ``min(n_clusters, 10)``
    dimensions so that neighbours in ``Z`` stay close and the rest move
    apart, with ``min_dist=0`` so that neighbours may pack tightly: a strand
    of embeddings becomes a compact group. k-means, whose restarts are
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

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    import umap  # deferred: importing numba takes about a second

    n_components = max(2, min(n_clusters, MAX_LAYOUT_DIMENSIONS))
    layout = Z
    # Too few rows to lay out (the spectral initialisation needs more rows
    # than dimensions): they are clustered as they are.
    if len(Z) > n_components + 1:
        reducer = umap.UMAP(
            n_components=n_components,
            n_neighbors=max(2, min(n_neighbors, len(Z) - 1)),
            min_dist=0.0,
            random_state=random_state.randint(np.iinfo(np.int32).max),
            n_jobs=1,
        )
        with torch_threads_kept(), warnings.catch_warnings():
            # Equal rows give zero distances, which UMAP warns about and
            # lays out all the same.
            warnings.filterwarnings("ignore", module="umap")
            warnings.filterwarnings("ignore", module="sklearn.manifold")
            layout = reducer.fit_transform(Z)
    kmeans = kmeans_by_modularity(
        layout, n_clusters, n_init, random_state, graph, np.arange(len(Z))
    )
    return kmeans.labels_


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
    block = max(1, _DISTANCE_BLOCK // max(len(reference), 1))
    ones = torch.ones(1, device=Z.device).expand(block, n_neighbors)
    for start in range(0, len(Z), block):
        rows = Z[start : start + block]
        distances = torch.cdist(
            rows,
            reference.to(rows.dtype),
            compute_mode="donot_use_mm_for_euclid_dist",
        )
        # A stable sort: ties keep the reference order (topk gives no such
        # guarantee).
        nearest = torch.sort(distances, dim=1, stable=True).indices[:, :n_neighbors]
        votes[start : start + block].scatter_add_(
            1, reference_labels[nearest], ones[: len(rows)]
        )
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
    n_samples = len(labels)
    membership = sp.csr_array(
        (np.ones(n_samples), (np.arange(n_samples), labels)),
        shape=(n_samples, labels.max() + 1),
    )
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
    for seed in random_state.randint(np.iinfo(np.int32).max, size=n_init):
        kmeans = fit_kmeans(Z, n_clusters, 1, seed, sample_weight=sample_weight)
        score = modularity(graph, kmeans.labels_[reference])
        # Ties keep the earlier run, as KMeans keeps its first best inertia.
        if score > best_score:
            best, best_score = kmeans, score
    return best
