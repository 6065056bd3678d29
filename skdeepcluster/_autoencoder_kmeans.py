"""Autoencoder followed by k-means on its embedding."""

from typing import Any, Literal

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions

from ._autoencoder_base import BaseAutoencoderClusterer, DecoderMixin
from ._docstrings import fill_doc
from ._graph import neighbour_votes
from ._torch_utils import nearest_center, to_numpy
from ._typing import (
    Callbacks,
    Device,
    FloatOrAuto,
    HiddenDims,
    InputShape,
    IntOrAuto,
    MemoryLike,
    OptimizerFactory,
    RandomStateLike,
)


@fill_doc
class AutoencoderKMeans(DecoderMixin, BaseAutoencoderClusterer):
    """Train an autoencoder, then run k-means on its embedding.

    The simplest deep clustering baseline: the network learns a compact code
    of the data by reconstruction alone, and :class:`~sklearn.cluster.KMeans`
    clusters the codes.

    Parameters
    ----------
    {n_clusters}
    {hidden_dims}
    {embedding_dim}
    {input_shape}
    {input_scaling}
    {center_input}
    {augment}
    {encoder_decoder}
    {normalize_embedding}
        Then k-means clusters directions rather than magnitudes, which
        mostly reflect how much signal a sample carries (see the benchmarks
        page).
    pretrain_epochs : int or "auto", default="auto"
        Epochs of autoencoder training.
        {pretrain_epochs_auto}
    smoothing_weight : float or "auto", default=0.0
        Weight of the neighbourhood smoothing term, which pulls each sample's
        embedding towards the mean embedding of its ``n_neighbors`` nearest
        neighbours (see Notes). ``0`` (the default) trains a plain
        autoencoder. ``"auto"`` is ``1.0`` from 5,000 training samples on
        and ``0`` below: with few samples per cluster the neighbourhoods
        cross cluster boundaries and the pull merges clusters.
    {n_neighbors}
    smoothing_start : float in [0, 1], default=0.5
        Fraction of ``pretrain_epochs`` trained on reconstruction alone
        before the smoothing term starts.
    {batch_size}
    {lr}
    {n_init_kmeans}
    {kmeans_selection}
    {clustering}
    {device}
    {random_state}
    {verbose}
    {memory_shared}
    {callbacks_pretraining}
    {optimizer_pretraining}
    {kwargs}

    Attributes
    ----------
    {kmeans_on_embedding}
    net_ : skorch.NeuralNet
        The fitted autoencoder net; ``net_.history`` holds the losses.
    {kmeans_all_centres}
    {augment_fitted}
    {features_in}

    See Also
    --------
    DEC : Refines this embedding and the centres with a clustering loss.
    sklearn.cluster.KMeans : The k-means algorithm on the raw features.

    Notes
    -----
    {note_dropped_kmeans_centres}

    By default the autoencoder learns on reconstruction alone [1]_. With
    ``smoothing_weight > 0`` training has two phases: for the first
    ``smoothing_start`` fraction of the epochs reconstruction alone, then a
    neighbourhood smoothing term joins the loss:
    ``smoothing_weight * ||z_i - t_i||^2``, where the target ``t_i`` lies
    halfway between the sample's embedding ``z_i`` and the mean embedding of
    its ``n_neighbors`` nearest neighbours (put back on the unit sphere when
    ``normalize_embedding``). The targets are recomputed from the whole
    training set at the start of every epoch and held fixed during it.

    Why: an autoencoder's embedding keeps neighbourhoods (nearest neighbours
    in it mostly share their class) but lays each class out as a long,
    curved shape, which k-means cuts badly. Each
    epoch asks the encoder for one mean-shift step, so every sample moves
    towards the dense middle of its neighbourhood and the classes contract
    into compact groups. Reconstruction stops the embedding from
    collapsing. This term is this package's addition, not part of [1]_ or
    [2]_, and off by default. It raises the accuracy of k-means on data of
    MNIST's scale (thousands of samples per cluster), and costs accuracy on
    small data sets, where the neighbourhoods cross clusters. With the
    default ``clustering="auto"``, whose graph partitions follow the
    curved classes themselves, the plain autoencoder's partition was the
    more accurate on MNIST as well, at a lower cost (see the benchmarks
    page).

    The neighbours are searched among all training samples when there are
    at most 10,000 of them, and otherwise among 10,000 samples drawn at
    random (from ``random_state``) once per fit. An exact search compares
    every pair of samples, so its cost per epoch grows with the square of
    ``n_samples``; against a fixed subset it grows linearly, in time and in
    memory. A sample's ``n_neighbors`` nearest candidates then span the same
    fraction of the data as its nearest neighbours in a set of 10,000
    samples (the scale of MNIST-test, on which the term was tuned), rather
    than a fraction that shrinks as the data grows.

    {note_sample_weight}

    {note_sample_weight_pretraining}

    References
    ----------
    .. [1] Hinton, G. E. and Salakhutdinov, R. R. (2006). "Reducing the
       dimensionality of data with neural networks". Science, 313(5786).
    .. [2] Xie, J., Girshick, R. and Farhadi, A. (2016). "Unsupervised deep
       embedding for clustering analysis". ICML (the ``d-500-500-2000-10``
       architecture that ``hidden_dims="auto"`` uses from 5,000 samples on).
    .. [3] McConville, R., Santos-Rodriguez, R., Piechocki, R. J. and
       Craddock, I. (2020). "N2D: (Not too) deep clustering via clustering
       the local manifold of an autoencoded embedding". ICPR (the UMAP
       layout of ``clustering="umap"``).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import AutoencoderKMeans
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = AutoencoderKMeans(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...                           pretrain_epochs=5, random_state=0).fit(X)
    >>> model.labels_.shape
    (60,)
    >>> model.transform(X).shape
    (60, 2)
    """

    _parameter_constraints: dict = {
        **BaseAutoencoderClusterer._parameter_constraints,
        "clustering": [StrOptions({"auto", "umap", "spectral", "kmeans"})],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        hidden_dims: HiddenDims | Literal["auto"] = "auto",
        embedding_dim: int = 10,
        input_shape: InputShape = None,
        input_scaling: Literal["auto"] | None = "auto",
        center_input: bool = False,
        augment: bool | Literal["auto"] = "auto",
        encoder: torch.nn.Module | None = None,
        decoder: torch.nn.Module | None = None,
        normalize_embedding: bool | Literal["auto"] = "auto",
        pretrain_epochs: IntOrAuto = "auto",
        smoothing_weight: FloatOrAuto = 0.0,
        n_neighbors: int = 10,
        smoothing_start: float = 0.5,
        batch_size: int = 256,
        lr: float = 1e-3,
        n_init: IntOrAuto = 10,
        kmeans_selection: str = "modularity",
        clustering: Literal["auto", "umap", "spectral", "kmeans"] = "auto",
        device: Device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
        memory: MemoryLike = None,
        callbacks: Callbacks = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            n_clusters=n_clusters,
            hidden_dims=hidden_dims,
            embedding_dim=embedding_dim,
            input_shape=input_shape,
            input_scaling=input_scaling,
            center_input=center_input,
            augment=augment,
            encoder=encoder,
            decoder=decoder,
            normalize_embedding=normalize_embedding,
            pretrain_epochs=pretrain_epochs,
            smoothing_weight=smoothing_weight,
            n_neighbors=n_neighbors,
            smoothing_start=smoothing_start,
            batch_size=batch_size,
            lr=lr,
            n_init=n_init,
            kmeans_selection=kmeans_selection,
            device=device,
            random_state=random_state,
            verbose=verbose,
            memory=memory,
            callbacks=callbacks,
            optimizer=optimizer,
            **kwargs,
        )
        self.clustering = clustering

    def _fit(self, X, y, random_state, sample_weight):
        self._fit_autoencoder_kmeans(X, random_state, sample_weight)

    def _fit_autoencoder_kmeans(
        self, X, random_state, sample_weight, pretrain_params=None, kmeans_params=None
    ):
        """Pretrain, then cluster the embedding; extra arguments go to the hooks."""
        kmeans_params = kmeans_params or {}
        # A refit starts without the previous fit's clusterings.
        for name in ("reference_embedding_", "kmeans_"):
            self.__dict__.pop(name, None)
        self._reference_labels = None
        self.net_ = self._pretrain(
            X, random_state, sample_weight, **(pretrain_params or {})
        )
        self.n_iter_ = len(self.net_.history)
        Z = self._embed(X)
        method = self.clustering
        # The neighbour graph of the reference embeddings scores the
        # partitions (clustering="auto", kmeans_selection="modularity").
        graph = (
            None
            if method == "kmeans" and self.kmeans_selection == "inertia"
            else self._reference_graph(Z, random_state)
        )
        if method in ("auto", "kmeans"):
            self.kmeans_ = self._cluster_embedding(
                Z, random_state, sample_weight, graph, **kmeans_params
            )
        graph_methods = ("spectral", "umap") if method == "auto" else (method,)
        graph_partitions = self._graph_partitions(graph, graph_methods, random_state)
        if method == "auto":
            method, reference_labels, self.n_split_merge_moves_ = self._auto_partition(
                graph, self.kmeans_, graph_partitions
            )
        else:
            # None for k-means, whose centres label and predict.
            reference_labels = graph_partitions.get(method)
            self.n_split_merge_moves_ = 0
        if reference_labels is not None:
            method, reference_labels = self._check_graph_partition(
                method, reference_labels, graph, **kmeans_params
            )
            if reference_labels is None:
                # k-means' partition is kept as fitted, without the moves.
                self.n_split_merge_moves_ = 0
        self.clustering_ = method
        # A graph partition, or a k-means partition that split-and-merge
        # moves changed, has no centres to predict with: it is extended by
        # the vote.
        if reference_labels is not None:
            self._fit_neighbour_vote(
                X,
                Z,
                graph.reference,
                graph.embedding,
                reference_labels,
                sample_weight,
            )
            return
        centers = self.kmeans_.cluster_centers_
        # predict's nearest-centre rule rather than kmeans_.labels_, which
        # scikit-learn computes in its own arithmetic and may break a near
        # tie the other way. A centre that wins no sample (fewer distinct
        # embeddings than clusters) is dropped by _set_clusters, as the other
        # estimators drop theirs; removing a centre nobody is nearest to
        # changes no sample's nearest centre, so predict still gives labels_.
        labels = to_numpy(nearest_center(Z, torch.as_tensor(centers, device=X.device)))
        self._set_clusters(X, labels, centers, sample_weight)

    def _check_graph_partition(self, method, reference_labels, graph, **kmeans_params):
        """The partition kept, given the graph partition of the reference samples.

        Returns ``(method, reference_labels)``: here the graph partition as
        found. A subclass may renumber its clusters, or return
        ``("kmeans", None)`` to keep ``kmeans_`` instead.
        """
        return method, reference_labels

    def _fit_neighbour_vote(
        self, X, Z, reference, Z_reference, reference_labels, sample_weight
    ):
        """Extend a graph partition of the reference samples by a vote.

        Every sample, in training as in :meth:`predict`, takes the cluster
        most common among its :meth:`_voters` nearest reference samples.
        ``labels_`` is computed by that same rule, so ``predict(X_train)``
        reproduces it. ``Z`` is the embedding of ``X``, computed once.
        """
        self.reference_embedding_ = Z_reference
        # Resolved now: predict must count the votes as this fit did, even
        # after set_params changes n_clusters or n_neighbors.
        self._n_voters = self._voters(len(Z_reference))
        while True:
            self._reference_labels = reference_labels
            labels = to_numpy(self._embedding_votes(Z).argmax(dim=1))
            won = np.isin(reference_labels, labels)
            if won.all():
                break
            # A cluster no sample votes for would be dropped from labels_
            # but could still win the vote of a new sample: its reference
            # samples take the cluster they were voted into, and the vote is
            # counted again with the clusters that remain (the set of
            # clusters shrinks, so this ends).
            reference_labels = np.where(won, reference_labels, labels[reference])
        kept = self._set_clusters(X, labels, sample_weight=sample_weight)
        self._reference_labels = np.searchsorted(kept, reference_labels)

    def _neighbour_votes(self, X):
        """Votes of the nearest reference samples of each row of the tensor ``X``."""
        return self._embedding_votes(self._finite(self._embed(X)))

    def _embedding_votes(self, Z):
        """Votes of the nearest reference samples of each embedding in ``Z``."""
        return neighbour_votes(
            Z,
            torch.as_tensor(self.reference_embedding_, device=Z.device),
            torch.as_tensor(self._reference_labels, device=Z.device),
            self._n_voters,
            int(self._reference_labels.max()) + 1,
        )

    def _uses_neighbour_vote(self):
        return getattr(self, "_reference_labels", None) is not None

    def __setstate__(self, state):
        super().__setstate__(state)
        if self._uses_neighbour_vote() and "_n_voters" not in state:
            # A pickle of a version that did not store the count: it is
            # the parameters', which set_params could not change since.
            self._n_voters = self._voters(len(self.reference_embedding_))

    def _embed_and_predict(self, X):
        if not self._uses_neighbour_vote():
            return super()._embed_and_predict(X)
        Z = self._finite(self._embed(X))
        return Z, self._embedding_votes(Z).argmax(dim=1)

    def _predict_proba(self, X):
        if not self._uses_neighbour_vote():
            return super()._predict_proba(X)
        votes = self._neighbour_votes(X)
        # Every sample has the same number of voters.
        return votes / votes.sum(dim=1, keepdim=True)

    def _cluster_embedding(self, Z, random_state, sample_weight, graph=None):
        """k-means fitted on the training embedding ``Z`` (a tensor)."""
        return self._embedding_kmeans(Z, random_state, sample_weight, graph)
