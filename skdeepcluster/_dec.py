"""Deep Embedded Clustering (DEC): self-training of the encoder and the centres."""

from numbers import Integral, Real
from typing import Any, Literal

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from skorch.utils import to_device

from ._autoencoder_base import BaseAutoencoderClusterer, DecoderMixin
from ._docstrings import fill_doc
from ._nets import ClusteringNet, per_sample_loss
from ._torch_utils import (
    batched_eval,
    cluster_means,
    log_student_t_assignment,
    nearest_center,
    to_numpy,
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
from .callbacks import DECTargetUpdate


class _DECModule(torch.nn.Module):
    """The pretrained encoder followed by DEC's clustering layer.

    The centres are a :class:`torch.nn.Parameter`, so the optimiser moves them
    together with the encoder. ``forward`` returns ``log q``, and with a
    ``decoder`` (IDEC's reconstruction term) also the reconstruction.
    """

    def __init__(self, encoder, centers, alpha=1.0, decoder=None):
        super().__init__()
        self.encoder = encoder
        self.centers = torch.nn.Parameter(centers)
        self.alpha = alpha
        self.decoder = decoder

    def log_assignment(self, embedding, centers=None):
        """``log q`` of ``embedding`` to ``centers`` (by default the module's own)."""
        centers = self.centers if centers is None else centers
        return log_student_t_assignment(embedding, centers, self.alpha)

    def forward(self, x):
        embedding = self.encoder(x)
        log_q = self.log_assignment(embedding)
        if self.decoder is None:
            return log_q
        return log_q, self.decoder(embedding)


class DECNet(ClusteringNet):
    """skorch net minimising KL(P || Q) towards a target P held on the net.

    ``target_`` holds P for every training sample (looked up per batch by the
    sample indices that :class:`~skdeepcluster._torch_utils.IndexedDataset`
    passes as ``y``). It is set, and refreshed, by the
    :class:`~skdeepcluster.callbacks.DECTargetUpdate` callback that
    :class:`DEC` installs, which also stops training when the labels settle;
    the net drops it when training ends, and with it
    ``initial_assignments_``, the start partition that :class:`DEC` sets
    for the callback's first epochs.

    When the module keeps a decoder, the loss adds
    ``reconstruction_weight`` times the mean squared reconstruction error
    (IDEC), and the history records both terms per batch
    (``clustering_loss`` and ``reconstruction_loss``).
    """

    def __init__(self, *args, reconstruction_weight=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.reconstruction_weight = reconstruction_weight

    def loss_terms(self):
        if self.reconstruction_weight:
            return ("clustering_loss", "reconstruction_loss")
        return ()

    def soft_assignments(self, X):
        """Q for all of ``X`` (evaluation mode, no gradient)."""
        module = self.module_
        return batched_eval(
            module,
            X,
            self.batch_size,
            lambda x: module.log_assignment(module.encoder(x)),
        ).exp()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # y_pred is log q (and the reconstruction); y_true the indices of the
        # batch's samples.
        log_q, reconstruction = y_pred if isinstance(y_pred, tuple) else (y_pred, None)
        target = self.batch_state("target_", y_true)
        weight = self.batch_weight(y_true)
        if weight is None:
            loss = self.criterion_(log_q, target)
        else:
            # KL(P_i || Q_i) of each sample, weighted.
            loss = (per_sample_loss(self.criterion_, log_q, target) * weight).mean()
        if reconstruction is None:
            return loss
        X = to_device(X, self.device)
        error = (reconstruction - X).pow(2).flatten(start_dim=1).mean(dim=1)
        reconstruction_loss = self.weighted_mean(error, y_true)
        if training:
            self.history.record_batch("clustering_loss", loss.item())
            self.history.record_batch("reconstruction_loss", reconstruction_loss.item())
        return loss + self.reconstruction_weight * reconstruction_loss

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Per-sample training state: not kept, so not pickled with the model.
        self.__dict__.pop("target_", None)
        self.__dict__.pop("initial_assignments_", None)
        super().on_train_end(net, X=X, y=y, **kwargs)


def _keeps_decoder(estimator):
    # available_if: DEC keeps a decoder trained with its encoder only with
    # the reconstruction term. Once fitted, the fit says whether it did
    # (reconstruction_weight may have been set since).
    net = getattr(estimator, "net_", None)
    if net is not None:
        return getattr(net.module_, "decoder", None) is not None
    return estimator.reconstruction_weight > 0


@fill_doc
class DEC(DecoderMixin, BaseAutoencoderClusterer):
    """Deep Embedded Clustering: refine an autoencoder's embedding by self-training.

    The autoencoder is pretrained on reconstruction (the same stage as
    :class:`AutoencoderKMeans`), and a clustering of its embedding gives the
    initial centres (k-means in [1]_; see ``init``). Each sample is then
    softly assigned to the centres with a Student's t kernel,
    ``q_ij ∝ (1 + ||z_i - mu_j||^2 / alpha) ** (-(alpha + 1) / 2)``,
    and the encoder and the centres are trained together to minimise
    ``KL(P || Q)`` towards the sharpened target
    ``p_ij ∝ q_ij^2 / sum_i q_ij``, which favours confident assignments and
    penalises large clusters [1]_. By default a reconstruction term keeps
    the decoder training beside them, as in Improved DEC [2]_ (see
    ``reconstruction_weight``); ``reconstruction_weight=0`` drops the
    decoder after pretraining, as [1]_ does.

    Parameters
    ----------
    {n_clusters}
    {hidden_dims}
    {embedding_dim_centres}
    {input_shape}
    {input_scaling}
    {center_input}
    {augment}
    encoder, decoder : torch.nn.Module, default=None
        Your own modules. The encoder maps a batch of samples (flat, or shaped
        by ``input_shape``) to ``(batch, embedding)``; the decoder maps back
        (in pretraining, and in the clustering stage unless
        ``reconstruction_weight=0``). They are copied before training, so
        the instances you pass stay untouched.
    normalize_embedding : bool or "auto", default=True
        Scale each embedding to unit length (the encoder ends with
        :class:`~skdeepcluster.nn.L2Normalize`). The pretraining then gave a
        better start for the centres (measured with the neighbourhood
        smoothing; see the benchmarks page). Because all squared distances
        on the unit sphere are below 4, the Student's t kernel needs a small
        ``alpha`` there to keep contrast (see ``alpha``). ``"auto"`` decides as
        :class:`AutoencoderKMeans` does (unit length only on input within
        [-1, 1]); on standardised data DEC's self-training did not gain from
        it as the other autoencoder methods did, so the default stays
        ``True``.
    {pretrain_epochs_reconstruction}
    {smoothing_weight_pretraining}
    {n_neighbors}
    {smoothing_start}
    clustering_epochs : int, default=100
        Maximum number of epochs of the clustering stage; it stops earlier
        when the labels settle (see ``tol``).
    {batch_size_two_stages}
    {lr_pretraining}
    clustering_lr : float, default=1e-4
        Learning rate of the Adam optimiser during the clustering stage's
        self-training (the ``initial_partition_epochs`` train at ``lr``).
    alpha : float, default=0.1
        Degrees of freedom of the Student's t kernel. [1]_ uses 1 on an
        unbounded embedding. On the unit-length embedding (the default) that
        kernel is nearly flat, Q barely prefers the nearest centre and
        self-training drifts away from the initial partition. With
        ``alpha=0.1`` the kernel is steeper near the centres and keeps it.
        Use 1 with ``normalize_embedding=False``.
    reconstruction_weight : float, default=10.0
        Weight of the mean squared reconstruction error added to the KL loss
        in the clustering stage, which keeps the decoder and trains it with
        the encoder: Improved DEC (IDEC, [2]_). Self-training alone pulls
        every sample towards the centre it is nearest to, and can distort
        the embedding until clusters merge; the reconstruction term keeps
        the embedding faithful to the data. 10 is IDEC's balance, a weight
        of 0.1 on the clustering loss against 1 on reconstruction. ``0`` is
        DEC as in [1]_ (the decoder is then dropped after pretraining).
    initial_partition_epochs : int or "auto", default="auto"
        Epochs at the start of the clustering stage during which the target
        is the initial partition itself (each sample's cluster, one-hot)
        rather than the sharpened Q; self-training from Q follows. This
        package's addition: the partition ``init="auto"`` starts from
        follows the neighbour graph and need not be the nearest-centre
        partition of the embedding, so Q's labels at the start lose part of
        it; these epochs first train the encoder and the centres to make it
        theirs (see Notes). They train at ``lr``, the pretraining's rate:
        like pretraining they fit fixed targets, which ``clustering_lr``,
        set for self-training, moves too slowly to reach in 30 epochs.
        ``0`` starts from Q, as in [1]_. ``"auto"``: 30, but no more than
        make 400 optimiser steps (10 epochs of 10,000 samples at the default
        ``batch_size``), or 0 after a pretraining with the neighbourhood
        smoothing (``smoothing_weight > 0``), from which the start from Q
        ended higher on MNIST (see Notes).
    update_interval : int, default=1
        The target distribution P is recomputed from all the data every
        ``update_interval`` epochs, and held fixed in between.
    tol : float, default=1e-3
        Training stops at a refresh of P when fewer than this fraction of the
        samples changed label since the previous refresh (0.1 % in [1]_).
        ``tol=0`` always runs ``clustering_epochs`` epochs.
        ``update_interval`` and ``tol`` set the clustering stage's default
        ``"target_update"`` callback
        (:class:`~skdeepcluster.callbacks.DECTargetUpdate`), which
        ``callbacks`` can replace.
    init : {"auto", "spherical-k-means", "k-means"}, default="auto"
        How the initial centres are found on the pretrained embedding.
        ``"k-means"`` runs k-means on it, as in [1]_. ``"spherical-k-means"``
        runs k-means on the embeddings scaled to unit length (so it groups
        directions) and sets each centre to the mean embedding of its group;
        self-training then goes on in the raw embedding, where the Student's
        t kernel has contrast. The norm of an autoencoder's embedding mostly
        follows how much signal a sample has (ink, for digits), which
        misleads k-means on the raw embedding. With the default unit-length
        embedding both give the same groups; the centres differ only in that
        the spherical start uses the groups' means. ``"auto"`` (this
        package's addition) is the spherical start from the partition
        :class:`AutoencoderKMeans` keeps with ``clustering="auto"`` on the
        directions: the k-means run or a partition of their neighbour graph
        (spectral clustering, or k-means on a UMAP layout), whichever has the
        highest modularity of that graph, refined by split-and-merge moves,
        as :class:`DCN` starts by default; see Notes.
    {n_init_pretrained}
    {kmeans_selection}
    {device}
    {random_state}
    verbose : int, default=0
        Print skorch's per-epoch progress tables when positive; the
        clustering table has a ``label_change`` column at each refresh.
    {memory_shared}
    {callbacks_two_stages}
    {optimizer_two_stages}
    {kwargs}

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample: its nearest centre under the final
        model, which is also the argmax of Q.
    cluster_centers_ : ndarray of shape (n_clusters_found, embedding_dim)
        The learned centres in the embedding space.
    {inertia_embedding}
    n_iter_ : int
        Number of clustering epochs run (pretraining not included).
    net_ : skorch.NeuralNet
        The fitted clustering net (encoder and centres); its ``history`` has
        the KL loss and the ``label_change`` at each refresh.
    {pretrain_history}
    kmeans_ : sklearn.cluster.KMeans
        The k-means model on the pretrained embedding (fitted on the
        unit-length embeddings unless ``init="k-means"``, so that its own
        centres are directions).
    initial_clustering_ : {"kmeans", "spectral", "umap"}
        The partition the centres started from (see ``init``).
    n_split_merge_moves_ : int
        Split-and-merge moves made on that partition (``init="auto"``; 0
        otherwise; see ``clustering`` of :class:`AutoencoderKMeans`).
    {augment_fitted}
    {features_in}

    See Also
    --------
    AutoencoderKMeans : The pretraining and k-means initialisation alone.
    DCN : Refines the embedding with a k-means loss beside reconstruction.

    Notes
    -----
    {note_dropped_centres}

    ``predict_proba`` returns Q and ``predict`` the nearest centre (the
    argmax of Q), computed as for ``labels_``, so ``predict`` on the training
    data reproduces ``labels_``. With the reconstruction term (the default)
    the decoder trains with the encoder and is kept as
    ``net_.module_.decoder``, and ``inverse_transform`` decodes embeddings,
    e.g. ``inverse_transform(cluster_centers_)`` the clusters' prototypes.
    With ``reconstruction_weight=0`` the decoder is discarded after
    pretraining, since it no longer matches the refined encoder, and DEC
    has no ``inverse_transform``.

    With ``init="auto"`` self-training can start from a partition that
    follows the strands of the embedding rather than k-means' round groups
    (see :class:`AutoencoderKMeans`). Q's labels are the nearest centres,
    so self-training that starts from Q starts from the nearest-centre
    relabelling of that partition, which loses part of it (on the small
    image sets of the benchmarks page, about 0.04 of accuracy before the
    first step). The first ``initial_partition_epochs`` epochs therefore fit
    Q to the partition itself, at the pretraining's rate ``lr``;
    self-training, with the reconstruction term (``reconstruction_weight``)
    keeping the embedding faithful to the data, then refines the result.
    After a pretraining with the neighbourhood smoothing
    (``smoothing_weight > 0``), which contracts the classes into round
    groups, the start from Q ended higher on MNIST (10,000 and 70,000
    samples), since the relabelling can split two classes the partition
    merged; ``initial_partition_epochs="auto"`` then holds no epochs.
    Without it (the default) the relabelling of a partition of the curved
    classes lost a tenth of the accuracy on MNIST-test (see the benchmarks
    page).

    {note_sample_weight}

    {note_sample_weight_pretraining}

    The initial k-means is weighted (unless ``init="k-means"``, the initial
    centres are the weighted mean embeddings of its clusters); the graph
    partitions of ``init="auto"`` are not. In
    the clustering stage each sample's ``KL(P_i || Q_i)`` carries its
    weight, the soft cluster frequencies of the target are weighted sums,
    ``f_j = sum_i w_i q_ij``, and ``tol`` is compared with the weighted
    fraction of samples that changed cluster (their share of the total
    weight).

    References
    ----------
    {reference_dec}
    {reference_idec}

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DEC
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = DEC(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...             pretrain_epochs=5, clustering_epochs=5, random_state=0).fit(X)
    >>> model.labels_.shape
    (60,)
    >>> model.predict_proba(X[:2]).sum(axis=1).round(6)
    array([1., 1.])
    """

    _schedule_callbacks = ("neighbour_refresh", "target_update")

    _parameter_constraints: dict = {
        **BaseAutoencoderClusterer._parameter_constraints,
        "clustering_epochs": [Interval(Integral, 0, None, closed="left")],
        "clustering_lr": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "initial_partition_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "update_interval": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "init": [StrOptions({"auto", "spherical-k-means", "k-means"})],
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
        normalize_embedding: bool | Literal["auto"] = True,
        pretrain_epochs: IntOrAuto = "auto",
        smoothing_weight: FloatOrAuto = 0.0,
        n_neighbors: int = 10,
        smoothing_start: float = 0.5,
        clustering_epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        clustering_lr: float = 1e-4,
        alpha: float = 0.1,
        reconstruction_weight: float = 10.0,
        initial_partition_epochs: IntOrAuto = "auto",
        update_interval: int = 1,
        tol: float = 1e-3,
        init: Literal["auto", "spherical-k-means", "k-means"] = "auto",
        n_init: IntOrAuto = 10,
        kmeans_selection: str = "modularity",
        device: Device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
        memory: MemoryLike = None,
        callbacks: Callbacks = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        **kwargs: Any,
    ) -> None:
        self.clustering_epochs = clustering_epochs
        self.clustering_lr = clustering_lr
        self.alpha = alpha
        self.reconstruction_weight = reconstruction_weight
        self.initial_partition_epochs = initial_partition_epochs
        self.update_interval = update_interval
        self.tol = tol
        self.init = init
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

    def _fit(self, X, y, random_state, sample_weight):
        autoencoder = self._pretrain(X, random_state, sample_weight)
        self.pretrain_history_ = autoencoder.history
        encoder = autoencoder.module_.encoder
        centers, assignments = self._initial_centers(
            self._batched_eval(encoder, X), random_state, sample_weight
        )
        # The decoder stays only for the reconstruction term: a module part
        # that takes no part in the loss would break DistributedDataParallel.
        decoder = autoencoder.module_.decoder if self.reconstruction_weight else None
        self.net_ = DECNet(
            _DECModule(encoder, centers, self.alpha, decoder),
            criterion=torch.nn.KLDivLoss,
            criterion__reduction="batchmean",
            reconstruction_weight=self.reconstruction_weight,
            **self._clustering_stage_kwargs(
                random_state,
                schedule=[
                    (
                        "target_update",
                        DECTargetUpdate(
                            self.update_interval,
                            self.tol,
                            initial_epochs=self._initial_partition_epochs,
                            initial_lr=self.lr,
                            initial_lr_name="lr",
                        ),
                    )
                ],
            ),
        )
        self.net_.initialize()
        # The start partition, the target of the first epochs.
        self.net_.initial_assignments_ = assignments
        # partial_fit keeps the module as given; it also runs the train-begin
        # hooks (the target update's initial P) when clustering_epochs is 0.
        self.net_.partial_fit(self._dataset(X, sample_weight))
        self.n_iter_ = len(self.net_.history)
        # The nearest centre, which is the argmax of Q, computed as predict
        # computes it so that predict(X) returns labels_.
        centers = self.net_.module_.centers.detach()
        labels = to_numpy(nearest_center(self._embed(X), centers))
        self._set_clusters(X, labels, to_numpy(centers), sample_weight)

    # The held epochs fit Q to fixed one-hot targets, which takes a few
    # hundred steps: on MNIST-test 10 epochs (400 steps) ended as high as
    # 30 in a third of the time (benchmarks/NOTES.rst), and small data sets
    # stay under the cap. DCN's held epochs, whose k-means term pulls the
    # embedding more slowly, keep all 30.
    _HELD_INITIAL_PARTITION_STEPS = 400

    def _check_params_vs_input(self, X):
        super()._check_params_vs_input(X)
        self._resolve_clustering_epochs(X.shape[0])

    # DecoderMixin's method, present only while the decoder is kept.
    inverse_transform = available_if(_keeps_decoder)(DecoderMixin.inverse_transform)

    def _initial_centers(self, embedding, random_state, sample_weight):
        """Fit ``kmeans_`` on the embedding (or its directions).

        Sets ``initial_clustering_``, the partition the centres come from,
        and returns the centres and that partition (a tensor of labels).
        """
        spherical = self.init != "k-means"
        points = (
            torch.nn.functional.normalize(embedding, dim=1) if spherical else embedding
        )
        centers, labels = self._initial_partition(
            points, random_state, sample_weight, from_graph=self.init == "auto"
        )
        # A copy: training moves the centres, kmeans_ must keep its own.
        centers = torch.tensor(centers, dtype=embedding.dtype, device=embedding.device)
        labels = torch.as_tensor(labels, dtype=torch.long, device=embedding.device)
        if spherical:
            # A cluster left empty (fewer distinct points than clusters)
            # keeps its direction as its centre.
            cluster_means(embedding, labels, centers, sample_weight)
        return centers, labels

    def _predict_proba(self, X):
        # The clustering layer's q, with the centres of the clusters kept.
        module = self.net_.module_
        return module.log_assignment(
            self._embed(X), self._cluster_centers_tensor()
        ).exp()
