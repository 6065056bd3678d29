"""Base class of the estimators that pretrain an autoencoder and cluster its embedding.

AutoencoderKMeans, ACAIKMeans, SNNLKMeans, DEC and DCN share the
autoencoder (built, or the user's own encoder and decoder), its
pretraining and the cache of it (``memory``), and the clustering of the
embedding (``clustering``: k-means, spectral clustering or a UMAP layout,
chosen by modularity of the embedding's neighbour graph).
"""

import copy
import os
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ._graph import (
    kmeans_by_modularity,
    modularity,
    neighbour_graph,
    neighbour_votes,
    reference_indices,
    spectral_partition,
    split_merge,
    umap_partition,
)
from ._input import _magnitude, _tensor_as_array, _value_range
from ._memory import pretrain_with_memory
from ._torch_utils import (
    build_module,
    cluster_means,
    feature_mean,
    fit_kmeans,
    to_numpy,
    torch_seed,
)
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
from .base import (
    BaseDeepClusterer,
    ReferenceGraph,
    _is_auto,
    epochs_with_min_steps,
    neighbours_within_clusters,
)


class DecoderMixin:
    """``inverse_transform`` for the estimators that keep their decoder.

    Mixed into the autoencoder estimators whose fitted ``net_.module_`` has a
    decoder that matches the final encoder (AutoencoderKMeans, ACAIKMeans,
    SNNLKMeans, DCN, and DEC with its reconstruction term,
    ``reconstruction_weight > 0``, which makes the method available only
    then).
    """

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Decode embeddings back to input space.

        ``inverse_transform(cluster_centers_)`` shows the prototype of each
        cluster.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Points in the embedding space.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Their reconstructions, flattened.
        """
        check_is_fitted(self)
        Z = check_array(_tensor_as_array(X), dtype=np.float32)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has shape {Z.shape}; inverse_transform expects embeddings of "
                f"shape (n_samples, {self._n_features_out})."
            )
        Z = torch.as_tensor(Z, device=self._device)
        decoded = self._batched_eval(self.net_.module_.decoder, Z)
        # Back to the scale of the input (see input_scaling).
        offset, scale = self._input_scaling()
        decoded = to_numpy(decoded).reshape(len(Z), -1) * np.float32(scale)
        return decoded + np.float32(offset) if offset != 0 else decoded


class BaseAutoencoderClusterer(BaseDeepClusterer):
    """Base for the methods built on an autoencoder.

    Builds the encoder and decoder (fully connected by default, convolutional
    when ``input_shape`` is given, or copies of the user's modules), pretrains
    them on reconstruction (through the cache ``memory`` when set) and embeds
    with the encoder. The estimators that keep the decoder after training
    decode with :class:`DecoderMixin`'s ``inverse_transform``.
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "hidden_dims": [tuple, list, StrOptions({"auto"})],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "encoder": [torch.nn.Module, None],
        "decoder": [torch.nn.Module, None],
        "pretrain_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "center_input": ["boolean"],
        "augment": ["boolean", StrOptions({"auto"})],
        "normalize_embedding": ["boolean", StrOptions({"auto"})],
        "smoothing_weight": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "smoothing_start": [Interval(Real, 0, 1, closed="both")],
        "memory": [None, str, HasMethods(["cache"])],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "kmeans_selection": [StrOptions({"modularity", "inertia"})],
    }

    _schedule_callbacks = ("neighbour_refresh",)

    # The "auto" sizes (see _check_params_vs_input). DEC's d-500-500-2000
    # network (Xie et al. 2016) has about three million weights: on a few
    # thousand samples it neither trains in a few thousand steps nor gives an
    # embedding that clusters better than a smaller one, while from about ten
    # thousand samples on (MNIST) the larger network clusters better. Large
    # data start at the base class's _LARGE_DATA samples.
    _LARGE_HIDDEN_DIMS = (500, 500, 2000)
    _SMALL_HIDDEN_DIMS = (256, 128)
    # At least this many epochs and this many optimiser steps: an epoch of a
    # few hundred samples is one or two steps, far too few to train on.
    _MIN_PRETRAIN_EPOCHS = 100
    _MIN_PRETRAIN_STEPS = 2000
    # The smoothing term's neighbours are searched among at most this many
    # training samples, a random subset drawn once per fit (see _pretrain).
    # An exact search compares every pair of samples every epoch; against a
    # fixed subset an epoch's search is linear in n_samples, in time and in
    # memory. Up to this size (MNIST-test, on which the smoothing was tuned)
    # the search stays exact. Beyond it a sample's n_neighbors nearest
    # candidates cover the same fraction of the data (n_neighbors / 10,000)
    # as on data of this size, rather than a fraction that shrinks as
    # n_samples grows. A class attribute so tests can lower it.
    _SMOOTHING_CANDIDATES = 10_000

    # Models pickled before ``augment`` existed trained on the images as given.
    _ADDED_PARAMETERS = {"augment": False}

    def __init__(
        self,
        *,
        n_clusters: int,
        hidden_dims: HiddenDims | Literal["auto"],
        embedding_dim: int,
        input_shape: InputShape,
        input_scaling: Literal["auto"] | None,
        encoder: torch.nn.Module | None,
        decoder: torch.nn.Module | None,
        center_input: bool,
        augment: bool | Literal["auto"],
        normalize_embedding: bool | Literal["auto"],
        pretrain_epochs: IntOrAuto,
        smoothing_weight: FloatOrAuto,
        n_neighbors: int,
        smoothing_start: float,
        batch_size: int,
        lr: float,
        n_init: IntOrAuto,
        kmeans_selection: str,
        device: Device,
        random_state: RandomStateLike,
        verbose: int,
        memory: MemoryLike,
        callbacks: Callbacks,
        optimizer: OptimizerFactory,
        **kwargs: Any,
    ) -> None:
        # The autoencoder parameters the five estimators built on it share.
        self.hidden_dims = hidden_dims
        self.embedding_dim = embedding_dim
        self.encoder = encoder
        self.decoder = decoder
        self.center_input = center_input
        self.augment = augment
        self.normalize_embedding = normalize_embedding
        self.pretrain_epochs = pretrain_epochs
        self.smoothing_weight = smoothing_weight
        self.n_neighbors = n_neighbors
        self.smoothing_start = smoothing_start
        self.n_init = n_init
        self.kmeans_selection = kmeans_selection
        self.memory = memory
        super().__init__(
            n_clusters=n_clusters,
            input_shape=input_shape,
            input_scaling=input_scaling,
            batch_size=batch_size,
            lr=lr,
            device=device,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            optimizer=optimizer,
            **kwargs,
        )

    def _check_params_vs_input(self, X):
        """Resolve the ``"auto"`` sizes for ``X`` into private attributes.

        Sets ``_hidden_dims``, ``_pretrain_epochs``, ``_smoothing_weight``,
        ``_normalize_embedding`` and ``_augment_shape``, the values training
        uses (and ``_n_init``, see the base class), and ``augment_``.
        """
        super()._check_params_vs_input(X)
        # shape[0], not len(): a sparse matrix has no length.
        n_samples = X.shape[0]
        large = n_samples >= self._LARGE_DATA
        self._resolve_augment(X)
        self._hidden_dims = (
            (self._LARGE_HIDDEN_DIMS if large else self._SMALL_HIDDEN_DIMS)
            if _is_auto(self.hidden_dims)
            else tuple(self.hidden_dims)
        )
        if _is_auto(self.pretrain_epochs):
            self._pretrain_epochs = epochs_with_min_steps(
                n_samples,
                self.batch_size,
                self._MIN_PRETRAIN_EPOCHS,
                self._MIN_PRETRAIN_STEPS,
            )
        else:
            self._pretrain_epochs = self.pretrain_epochs
        # The smoothing pulls each sample towards its neighbours' mean; with
        # few samples per cluster those neighbourhoods cross clusters and the
        # pull merges them, so it is on by default only for large data.
        if _is_auto(self.smoothing_weight):
            self._smoothing_weight = 1.0 if large else 0.0
        else:
            self._smoothing_weight = self.smoothing_weight
        if _is_auto(self.normalize_embedding):
            # Unit length removes what the code's norm carries. For bounded
            # intensities (pixels in [0, 1] or [-1, 1], min-max scaled
            # features) that is mostly the overall intensity (how much ink a
            # digit has), which k-means would otherwise split along. For
            # standardised or raw features, which reach beyond [-1, 1],
            # the norm says how far a sample lies from the centre of the
            # data, and dropping it cost accuracy on every such data set
            # measured. In one dimension unit length keeps only the sign.
            # The values read once by fit; a direct call reads them here.
            value_range = getattr(self, "_input_range", None) or _value_range(X)
            offset, scale = self._input_scaling()
            self._normalize_embedding = (
                self.embedding_dim > 1 and _magnitude(value_range, offset) <= scale
            )
        else:
            self._normalize_embedding = self.normalize_embedding

    def _net_kwargs(self, random_state, schedule=(), **overrides):
        # Every net of these estimators trains on the deformed images when
        # augment is on: the pretraining and the clustering stages alike.
        return super()._net_kwargs(
            random_state,
            schedule,
            **{"augment_shape": self._augment_shape, **overrides},
        )

    def _check_fit_input(self, X):
        super()._check_fit_input(X)
        if (
            self._normalize_embedding
            and self.embedding_dim == 1
            and self.encoder is None
            and self.n_clusters > 2
        ):
            # Only an explicit True gets here: "auto" is False in one dimension.
            raise ValueError(
                "embedding_dim=1 with normalize_embedding=True maps every sample "
                "to -1 or +1 (unit length in one dimension), so at most 2 of "
                f"n_clusters={self.n_clusters} clusters can be found. Set "
                "embedding_dim >= 2 or normalize_embedding=False."
            )
        location = (
            self.memory
            if isinstance(self.memory, str)
            else getattr(self.memory, "location", None)
        )
        blocking = _file_in_the_way(location)
        if blocking is not None:
            # joblib would fail at the first write, after the pretraining.
            raise ValueError(
                f"memory={self.memory!r} cannot hold a cache: {blocking!r} is a "
                "file. Pass the path of a directory (created if missing), a "
                "joblib.Memory, or None."
            )

    def _user_modules_seed(self, seed):
        """Seed torch's global generator with ``seed`` when the user passed modules.

        A user's ``encoder`` and ``decoder`` may draw random numbers
        themselves (dropout), from torch's global generator: they cannot be
        handed the fit's generators. While they are part of a fit, the global
        generator is seeded from ``random_state`` and restored afterwards, so
        that such a fit is reproducible too, provided no other thread draws
        from that generator meanwhile.
        """
        if not self._has_user_modules():
            return super()._user_modules_seed(seed)
        return torch_seed(seed, self._device)

    def _has_user_modules(self):
        return self.encoder is not None or self.decoder is not None

    def _build_autoencoder(self, n_features, generator, mean=None):
        """The autoencoder to pretrain; ``mean`` of the training samples or ``None``.

        With ``mean`` the encoder first subtracts it and the decoder adds it
        back (``center_input``), so the layers work on centred data.
        """
        from .nn import L2Normalize, Shift

        autoencoder = self._build_encoder_decoder(n_features, generator)
        encoder = [autoencoder.encoder]
        if mean is not None:
            encoder.insert(0, Shift(-mean))
            autoencoder.decoder = torch.nn.Sequential(autoencoder.decoder, Shift(mean))
        if self._normalize_embedding:
            encoder.append(L2Normalize())
        if len(encoder) > 1:
            autoencoder.encoder = torch.nn.Sequential(*encoder)
        return autoencoder

    def _centres_input(self):
        """Whether the autoencoder centres its input (``center_input``).

        Not with the user's modules, which see the input as they were given
        it: they may have been trained on uncentred input, and those of a
        fitted estimator already centre.
        """
        return self.center_input and not self._has_user_modules()

    def _build_encoder_decoder(self, n_features, generator):
        """The autoencoder, its weights drawn from ``generator`` (or the user's)."""
        from .nn import Autoencoder, ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

        if (self.encoder is None) != (self.decoder is None):
            raise ValueError("Pass both encoder and decoder, or neither.")
        if self.encoder is not None:
            # Copies: the modules given as parameters must stay untouched so
            # that clone() and refitting start from the same weights.
            autoencoder = Autoencoder(
                copy.deepcopy(self.encoder), copy.deepcopy(self.decoder)
            )
            _check_user_autoencoder(autoencoder, self.input_shape or (n_features,))
            return autoencoder
        if self.input_shape is not None:
            return build_module(
                lambda: Autoencoder(
                    ConvEncoder(self.input_shape, self.embedding_dim),
                    ConvDecoder(self.input_shape, self.embedding_dim),
                ),
                generator,
            )
        hidden_dims = self._hidden_dims
        return build_module(
            lambda: Autoencoder(
                MLPEncoder(n_features, hidden_dims, self.embedding_dim),
                MLPDecoder(self.embedding_dim, hidden_dims[::-1], n_features),
            ),
            generator,
        )

    def _reference_graph(self, Z, random_state):
        """Neighbour graph of the reference rows of the embedding ``Z``.

        The reference is every row up to 10,000 and a random 10,000 above
        (:func:`~skdeepcluster._graph.reference_indices`), so that building
        the graph and scoring partitions on it stay linear in
        ``n_samples``.
        """
        reference = reference_indices(len(Z), random_state)
        embedding = to_numpy(Z[torch.as_tensor(reference, device=Z.device)])
        return ReferenceGraph(
            reference, embedding, neighbour_graph(embedding, self.n_neighbors)
        )

    def _graph_partitions(self, graph, methods, random_state):
        """Partitions of the reference samples by the neighbour graph's ``methods``.

        ``methods``: any of ``"spectral"`` and ``"umap"``; the result keeps
        that order, the order in which ties of modularity are broken.
        """
        partitions = {}
        if "spectral" in methods:
            partitions["spectral"] = spectral_partition(
                graph.embedding, self.n_clusters, self.n_neighbors, random_state
            )
        if "umap" in methods:
            partitions["umap"] = umap_partition(
                graph.embedding,
                self.n_clusters,
                self.n_neighbors,
                self._n_init,
                random_state,
                graph.adjacency,
                # The layout of the pretrained embedding depends on
                # n_clusters only through its dimensions: with memory, the
                # candidates of a search over n_clusters from 10 up lay it
                # out once.
                memory=self.memory,
            )
        return partitions

    @staticmethod
    def _most_modular(graph, kmeans, partitions):
        """Name of the partition of highest modularity: ``"kmeans"`` or a key of ``partitions``.

        Modularity of the reference samples' neighbour graph does not favour
        any method's shape of a cluster (round groups, connected strands or
        compact groups of a layout), though it does favour clusters of
        comparable size; k-means wins ties.
        """
        scores = {
            "kmeans": modularity(graph.adjacency, kmeans.labels_[graph.reference])
        }
        for name, labels in partitions.items():
            scores[name] = modularity(graph.adjacency, labels)
        return max(scores, key=scores.get)

    def _auto_partition(self, graph, kmeans, partitions):
        """The partition of the reference samples that ``"auto"`` keeps.

        The candidate of highest modularity (:meth:`_most_modular`), refined
        by :func:`~skdeepcluster._graph.split_merge`. Returns the candidate's
        name, the refined labels of the reference samples and the number of
        split-and-merge moves made. The labels are ``None`` when k-means'
        partition is kept unmoved: its centres then label and predict.
        """
        name = self._most_modular(graph, kmeans, partitions)
        labels = (
            kmeans.labels_[graph.reference] if name == "kmeans" else partitions[name]
        )
        labels, n_moves = split_merge(graph.adjacency, labels)
        if name == "kmeans" and not n_moves:
            labels = None
        return name, labels, n_moves

    # DEC's and DCN's "auto" initial_partition_epochs on an embedding
    # pretrained without the neighbourhood smoothing: 30 epochs, and no more
    # than make _HELD_INITIAL_PARTITION_STEPS optimiser steps when a class
    # sets it (None: no cap). After the smoothing, which contracts the
    # classes into round groups, the start from the nearest-centre
    # relabelling ended higher on MNIST, and no epoch is held.
    _HELD_INITIAL_PARTITION_EPOCHS = 30
    _HELD_INITIAL_PARTITION_STEPS = None

    def _resolve_clustering_epochs(self, n_samples):
        """Resolve the clustering stage's lengths (DEC and DCN).

        Sets ``_initial_partition_epochs`` and ``_clustering_epochs``, the
        stage's whole budget; ``clustering_epochs="auto"`` (DCN) is
        ``_AUTO_CLUSTERING_EPOCHS`` after the initial-partition epochs.
        """
        if _is_auto(self.initial_partition_epochs):
            held = (
                0 if self._smoothing_weight > 0 else self._HELD_INITIAL_PARTITION_EPOCHS
            )
            if held and self._HELD_INITIAL_PARTITION_STEPS is not None:
                held = min(
                    held,
                    epochs_with_min_steps(
                        n_samples,
                        self.batch_size,
                        1,
                        self._HELD_INITIAL_PARTITION_STEPS,
                    ),
                )
        else:
            held = self.initial_partition_epochs
        self._initial_partition_epochs = held
        self._clustering_epochs = (
            self._AUTO_CLUSTERING_EPOCHS + held
            if _is_auto(self.clustering_epochs)
            else self.clustering_epochs
        )

    def _voters(self, n_reference):
        """How many nearest reference samples vote for a sample's cluster.

        ``n_neighbors``, or a third of the mean cluster size when that is
        smaller (:func:`neighbours_within_clusters`): with ten samples per
        cluster (ORL), ten voters reach mostly into other clusters, and a
        small cluster could win no vote, not even its own samples'.
        """
        return neighbours_within_clusters(
            n_reference, self.n_clusters, most=self.n_neighbors
        )

    def _extend_partition(self, Z, graph, reference_labels):
        """Labels of every row of the embedding ``Z`` from those of the reference rows.

        The reference rows keep their labels; every other row takes the
        cluster most common among its :meth:`_voters` nearest reference rows.
        """
        reference = torch.as_tensor(graph.reference, device=Z.device)
        votes = neighbour_votes(
            Z,
            Z[reference],
            torch.as_tensor(reference_labels, device=Z.device),
            self._voters(len(reference)),
            self.n_clusters,
        )
        labels = votes.argmax(dim=1)
        labels[reference] = torch.as_tensor(
            reference_labels, dtype=labels.dtype, device=Z.device
        )
        return to_numpy(labels)

    def _initial_partition(self, Z, random_state, sample_weight, from_graph):
        """Initial centres and assignments on the pretrained embedding ``Z``.

        Sets ``kmeans_`` (k-means on ``Z``, its run kept by
        ``kmeans_selection``) and ``initial_clustering_``. With
        ``from_graph=False``: k-means' centres and labels. With
        ``from_graph=True``: the partition :class:`AutoencoderKMeans` keeps
        with ``clustering="auto"``, i.e. the k-means run or a partition of
        the neighbour graph (spectral, or k-means on a UMAP layout),
        whichever has the highest modularity, refined by split-and-merge
        moves (which also set ``n_split_merge_moves_``); the centres are
        then the (weighted) mean embeddings of its clusters.

        Returns
        -------
        centers : ndarray of shape (n_clusters, n_features)
        assignments : ndarray of int of shape (n_samples,)
        """
        graph = (
            self._reference_graph(Z, random_state)
            if from_graph or self.kmeans_selection == "modularity"
            else None
        )
        self.kmeans_ = self._embedding_kmeans(Z, random_state, sample_weight, graph)
        self.initial_clustering_ = "kmeans"
        self.n_split_merge_moves_ = 0
        centers, assignments = self.kmeans_.cluster_centers_, self.kmeans_.labels_
        if not from_graph:
            return centers, assignments
        partitions = self._graph_partitions(graph, ("spectral", "umap"), random_state)
        self.initial_clustering_, reference_labels, self.n_split_merge_moves_ = (
            self._auto_partition(graph, self.kmeans_, partitions)
        )
        if reference_labels is None:
            return centers, assignments
        assignments = self._extend_partition(Z, graph, reference_labels)
        # A cluster the extension left empty keeps its k-means centre.
        centers = cluster_means(
            Z,
            torch.as_tensor(assignments, device=Z.device),
            torch.tensor(centers, dtype=Z.dtype, device=Z.device),
            sample_weight,
        )
        return to_numpy(centers), assignments

    def _embedding_kmeans(self, Z, random_state, sample_weight, graph=None):
        """k-means of the embedding rows ``Z``, the run kept by ``kmeans_selection``.

        ``graph``: the :meth:`_reference_graph` of ``Z``, when already built.
        """
        if self.kmeans_selection == "inertia":
            return fit_kmeans(
                Z,
                self.n_clusters,
                self._n_init,
                random_state,
                sample_weight=sample_weight,
            )
        if graph is None:
            graph = self._reference_graph(Z, random_state)
        return kmeans_by_modularity(
            Z,
            self.n_clusters,
            self._n_init,
            random_state,
            graph.adjacency,
            graph.reference,
            sample_weight=sample_weight,
        )

    def _pretrain(
        self,
        X,
        random_state,
        sample_weight=None,
        net_cls=None,
        schedule=(),
        **net_params,
    ):
        """Build and train an autoencoder net on ``X``; return the fitted net.

        ``sample_weight`` (or ``None``) weighs the samples' loss terms. The
        net's schedule callbacks are the neighbourhood smoothing's
        ``"neighbour_refresh"`` and then ``schedule``.
        """
        from ._nets import AutoencoderNet
        from .callbacks import NeighbourRefresh

        max_epochs = self._pretrain_epochs
        n_samples = len(X)
        candidates = None
        if self._smoothing_weight > 0 and n_samples > self._SMOOTHING_CANDIDATES:
            candidates = np.sort(
                random_state.choice(
                    n_samples, self._SMOOTHING_CANDIDATES, replace=False
                )
            )
        neighbour_refresh = NeighbourRefresh(
            n_neighbors=self.n_neighbors,
            start=round(self.smoothing_start * max_epochs),
            normalize=self._normalize_embedding,
        )
        weights = self._module_generator(random_state)
        net = (net_cls or AutoencoderNet)(
            self._build_autoencoder(
                self.n_features_in_,
                weights,
                mean=feature_mean(X, sample_weight) if self._centres_input() else None,
            ),
            criterion=torch.nn.MSELoss,
            max_epochs=max_epochs,
            smoothing_weight=self._smoothing_weight,
            neighbour_candidates=candidates,
            # Modules the net builds (ACAI's critic) draw their weights on
            # from the autoencoder's generator: the shuffling and the seeds
            # drawn from random_state stay those of a plain autoencoder.
            init_generator=weights,
            **self._net_kwargs(
                random_state,
                schedule=[("neighbour_refresh", neighbour_refresh), *schedule],
                stage="pretraining",
                **net_params,
            ),
        )
        net.initialize()
        if net.max_epochs == 0:
            return net
        dataset = self._dataset(X, sample_weight)
        if self.memory is None:
            net.partial_fit(dataset)
        else:
            pretrain_with_memory(
                self.memory,
                net,
                dataset,
                # The user's modules draw from torch's global generator,
                # which the fit then seeds (see _user_modules_seed).
                global_generator=self._has_user_modules(),
            )
        return net

    def _clustering_stage_kwargs(self, random_state, schedule=()):
        """Keyword arguments of the clustering-stage net (DEC and DCN).

        That net trains for ``clustering_epochs`` epochs (resolved by
        :meth:`_resolve_clustering_epochs`) with ``clustering_lr``, which
        divergence messages name, and the stage's ``schedule`` callbacks (see
        :meth:`_net_kwargs`).
        """
        return dict(
            max_epochs=self._clustering_epochs,
            **self._net_kwargs(
                random_state,
                schedule=schedule,
                lr=self.clustering_lr,
                stage="clustering",
                lr_name="clustering_lr",
            ),
        )

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self._batched_eval(self.net_.module_.encoder, X)


def _file_in_the_way(location):
    """The file at ``location``, or at a folder above it, that stops a cache there."""
    if not isinstance(location, (str, os.PathLike)):
        return None
    path = os.path.abspath(location)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return None if os.path.isdir(path) else path


def _check_user_autoencoder(autoencoder, sample_shape):
    """Raise a ValueError naming what is wrong with the user's encoder or decoder.

    The modules are tried on a batch of two zero samples of ``sample_shape``
    (in evaluation mode, without gradients, so that no running statistic
    changes), so that a wrong shape or dtype is reported before training,
    naming the module at fault, rather than as an error deep inside it.
    """
    parameters = [p for p in autoencoder.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(
            "The encoder and decoder have no trainable parameters: there is "
            "nothing to train."
        )
    for name in ("encoder", "decoder"):
        wrong = {
            p.dtype
            for p in getattr(autoencoder, name).parameters()
            if p.is_floating_point() and p.dtype != torch.float32
        }
        if wrong:
            raise ValueError(
                f"The {name} has parameters of dtype {sorted(map(str, wrong))}; "
                "training runs in float32: convert it with .float()."
            )
    device = parameters[0].device
    probe = torch.zeros((2, *sample_shape), device=device)
    was_training = autoencoder.training
    autoencoder.eval()
    try:
        with torch.no_grad():
            try:
                embedding = autoencoder.encoder(probe)
            except Exception as error:
                raise ValueError(
                    f"The encoder failed on a batch of shape {tuple(probe.shape)} "
                    f"(samples of shape {tuple(sample_shape)}, see input_shape): "
                    f"{error}"
                ) from error
            if not isinstance(embedding, torch.Tensor) or embedding.dim() != 2:
                raise ValueError(
                    "The encoder must return a tensor of shape (batch, "
                    f"embedding); on a batch of shape {tuple(probe.shape)} it "
                    f"returned {_describe_output(embedding)}."
                )
            try:
                reconstruction = autoencoder.decoder(embedding)
            except Exception as error:
                raise ValueError(
                    "The decoder failed on the encoder's output of shape "
                    f"{tuple(embedding.shape)}: {error}"
                ) from error
            if (
                not isinstance(reconstruction, torch.Tensor)
                or reconstruction.shape != probe.shape
            ):
                raise ValueError(
                    "The decoder must return a batch of the input's shape "
                    f"{tuple(probe.shape)}; it returned "
                    f"{_describe_output(reconstruction)}."
                )
    finally:
        autoencoder.train(was_training)


def _describe_output(value):
    """A module's output for an error message: a tensor's shape, else its type."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"
