"""Deep Clustering Network (DCN): an autoencoder trained with a k-means loss."""

from numbers import Integral, Real
from typing import Any, Literal

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._autoencoder_base import BaseAutoencoderClusterer, DecoderMixin
from ._docstrings import fill_doc
from ._nets import AutoencoderNet
from ._torch_utils import (
    carry_optimizer_state,
    eval_mode,
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


def update_centroids(centers, counts, Z, labels, weight=None):
    """DCN's per-cluster running-mean centroid update, for a batch.

    Handling the batch's samples one at a time with
    ``c_k <- c_k + 1; m_k <- m_k - (1 / c_k) (m_k - z_i)`` (eq. 8 of Yang et
    al., 2017) makes ``m_k`` the mean of its ``c_k`` previous "samples" and
    the new ones, whatever their order, so the whole batch is applied at
    once: ``m_k <- (c_k m_k + sum_i z_i) / (c_k + n_k)``, ``c_k <- c_k + n_k``.
    With sample weights a sample counts ``w_i`` times, as ``w_i`` copies of
    it would: ``m_k <- (c_k m_k + sum_i w_i z_i) / (c_k + sum_i w_i)``, the
    weighted running mean k-means' weighted centres are.

    Parameters
    ----------
    centers : torch.Tensor of shape (n_clusters, n_features)
        Updated in place.
    counts : torch.Tensor of shape (n_clusters,)
        Number of samples each centre has absorbed so far; updated in place.
    Z : torch.Tensor of shape (n_samples, n_features)
        Embeddings of the batch.
    labels : torch.Tensor of shape (n_samples,)
        Their clusters.
    weight : torch.Tensor of shape (n_samples,), default=None
        Their weights; ``None`` counts each sample once.

    Returns
    -------
    centers, counts : torch.Tensor
        The same tensors, updated.
    """
    n_clusters = len(centers)
    if weight is None:
        batch_counts = torch.bincount(labels, minlength=n_clusters).to(counts.dtype)
        sums = torch.zeros_like(centers).index_add_(0, labels, Z)
    else:
        batch_counts = torch.zeros_like(counts).index_add_(
            0, labels, weight.to(counts.dtype)
        )
        sums = torch.zeros_like(centers).index_add_(0, labels, Z * weight[:, None])
    # Centres with no sample in the batch stay where they are.
    hit = batch_counts > 0
    new_counts = counts[hit] + batch_counts[hit]
    centers[hit] = (counts[hit, None] * centers[hit] + sums[hit]) / new_counts[:, None]
    counts[hit] = new_counts
    return centers, counts


# The name of the centres' buffer in the module DCNNet trains.
_CENTERS_BUFFER = "dcn_centers"


class DCNNet(AutoencoderNet):
    """skorch autoencoder net with DCN's k-means term and alternating updates.

    The net carries the k-means state while it trains: ``centers_`` (the
    module's buffer ``dcn_centers``, not a parameter: the optimiser never
    sees it, a callback reloading the best epoch's weights reloads its
    centres, and a checkpoint of the stage holds them), ``counts_`` and the
    hard
    ``assignments_`` of every training sample. It builds them when training
    begins from ``initial_centers`` and ``initial_assignments`` (the
    estimator's initial partition of the pretrained embedding; the counts
    are the sizes of its clusters, or their total weights when the samples
    are weighted), and
    drops them when training ends, keeping the final centres as
    ``cluster_centers_``, a NumPy array. Each training step

    1. updates the network on reconstruction plus
       ``kmeans_weight / 2 * ||f(x_i) - m_{s_i}||^2`` with the assignments
       ``s_i`` held fixed (:meth:`clustering_loss`);
    2. then, in :meth:`on_batch_end`, re-embeds the batch with the updated
       network, assigns each sample to its nearest centre, and moves the
       centres with :func:`update_centroids`.

    During the first ``initial_epochs`` epochs step 2 is skipped: the
    assignments and the centres stay those of the initial partition.
    """

    def __init__(
        self,
        *args,
        initial_centers=None,
        initial_assignments=None,
        kmeans_weight=1.0,
        initial_epochs=0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.initial_centers = initial_centers
        self.initial_assignments = initial_assignments
        self.kmeans_weight = kmeans_weight
        self.initial_epochs = initial_epochs

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # Copies: the centre update works in place, the initial values (the
        # estimator's kmeans_) keep their own.
        self.assignments_ = torch.tensor(
            self.initial_assignments, dtype=torch.long, device=self.device
        )
        # A buffer of the module: a callback that reloads the weights of the
        # best epoch (EarlyStopping or Checkpoint with load_best) reloads
        # that epoch's centres with them, and the stage's checkpoints load
        # into the fitted net.
        self.module_.register_buffer(
            _CENTERS_BUFFER,
            torch.tensor(self.initial_centers, dtype=torch.float32, device=self.device),
        )
        self.centers_ = getattr(self.module_, _CENTERS_BUFFER)
        if self.sample_weight_ is None:
            self.counts_ = torch.bincount(
                self.assignments_, minlength=len(self.centers_)
            ).float()
        else:
            # The weight of each k-means cluster, in the units of the
            # weights the centre update adds (scaled to a mean of one).
            weight = self.sample_weight_.to(self.device)
            self.counts_ = torch.zeros(
                len(self.centers_), device=self.device
            ).index_add_(0, self.assignments_, weight)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # The assignments and counts are per-sample training state: not kept,
        # so not pickled.
        del self.assignments_, self.counts_
        super().on_train_end(net, X=X, y=y, **kwargs)

    def notify(self, method_name, **cb_kwargs):
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_end":
            # After the callbacks, which may have reloaded the best epoch's
            # weights and centres.
            self.cluster_centers_ = to_numpy(self.centers_)
            del self.centers_

    def clustering_loss(self, embedding, indices, X, training):
        centers = self.centers_[self.batch_state("assignments_", indices)]
        squared = self.weighted_mean((embedding - centers).pow(2).sum(dim=1), indices)
        # Per sample, the paper weighs the squared reconstruction error summed
        # over the input features against kmeans_weight / 2 times this sum
        # over the embedding. The criterion is a *mean* over features, so the
        # k-means term is divided by the number of features to keep the
        # paper's balance (the common factor does not change the optimum).
        n_features = X[0].numel()
        return self.kmeans_weight / 2.0 * squared / n_features

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        # The history has a row for the epoch under way.
        if not training or len(self.history) <= self.initial_epochs:
            return
        # Every process updates the centres with the samples of the whole
        # step (all processes' batches), so that they stay the same in each.
        X, indices = self.gather_batch(*batch)
        with eval_mode(self.module_.encoder) as encoder, torch.no_grad():
            Z = encoder(X.to(self.device))
            labels = torch.cdist(Z, self.centers_).argmin(dim=1)
            self.assignments_[indices.to(self.assignments_.device)] = labels
            update_centroids(
                self.centers_, self.counts_, Z, labels, self.batch_weight(indices)
            )


@fill_doc
class DCN(DecoderMixin, BaseAutoencoderClusterer):
    """Deep Clustering Network: an autoencoder made k-means friendly.

    The autoencoder is pretrained on reconstruction (the same stage as
    :class:`AutoencoderKMeans`) and a partition of its embedding gives the
    initial centres ``M`` and hard assignments ``s`` (k-means in the paper;
    see ``init``). Training then
    alternates, batch by batch, as in [1]_:

    - a gradient step on the network for
      ``||x - g(f(x))||^2 + kmeans_weight / 2 * ||f(x) - M s||^2`` with the
      assignments fixed;
    - the batch's samples are re-assigned to their nearest centre;
    - each centre moves towards its new samples with a step of ``1 / c_k``,
      where ``c_k`` counts the samples it has been given so far, so that it is
      a running mean.

    For the first ``initial_partition_epochs`` epochs only the first step
    runs: the assignments and centres of the initial partition are held
    while the network learns to pull each sample towards its centre (this
    package's addition; see Notes).

    Parameters
    ----------
    {n_clusters}
    {hidden_dims}
    {embedding_dim_centres}
    {input_shape}
    {input_scaling}
    {center_input}
    {augment}
    {encoder_decoder}
    {normalize_embedding}
        As in :class:`AutoencoderKMeans`, the centres are then fitted to
        directions. Besides a better k-means start, it keeps the k-means term
        from being lowered by merely shrinking the embedding.
    {pretrain_epochs_reconstruction}
    {smoothing_weight_pretraining}
    {n_neighbors}
    {smoothing_start}
    clustering_epochs : int or "auto", default="auto"
        Epochs of the joint training, ``initial_partition_epochs`` included.
        ``"auto"``: 15 epochs of alternation after the initial-partition
        epochs.
    {batch_size_two_stages}
    {lr_pretraining}
    clustering_lr : float, default=1e-3
        Learning rate of the Adam optimiser during the joint training, which
        continues from the pretraining optimiser's state (see Notes).
    kmeans_weight : float, default=40.0
        The paper's ``lambda``: weight of the k-means term against the
        squared reconstruction error, both summed over features per sample.
        The default is the balance of the authors' MNIST script
        (``run_raw_mnist.py`` in github.com/boyangumn/DCN: ``lbd=0.05`` on the
        summed squared reconstruction error, ``beta=1`` on the unhalved
        k-means term, i.e. ``lambda = 2 / 0.05``); ClustPy's default (0.05
        on the k-means term against a per-pixel mean squared error) comes to
        about the same, ``0.05 * 784``. Larger values pull the embedding more
        strongly towards the centres; 0 trains the autoencoder alone while
        the centres follow it.
    initial_partition_epochs : int or "auto", default="auto"
        Epochs at the start of the joint training during which the initial
        assignments and centres are held and only the network trains; the
        alternating updates of [1]_ follow. ``0`` alternates from the first
        batch, as in [1]_. ``"auto"``: 30, or 0 after a pretraining with
        the neighbourhood smoothing (``smoothing_weight > 0``), from which
        alternating from the start ended higher on all of MNIST (see
        Notes).
    init : {"auto", "k-means"}, default="auto"
        Where the centres and assignments start. ``"k-means"``: k-means on
        the pretrained embedding, as in the paper. ``"auto"``: the partition
        :class:`AutoencoderKMeans` keeps with ``clustering="auto"``, the
        k-means run or a partition of the embedding's neighbour graph
        (spectral clustering, or k-means on a UMAP layout), whichever has
        the highest modularity of that graph, refined by split-and-merge
        moves; each centre is then the mean embedding of its cluster.
        ``"auto"`` is this package's addition; see Notes.
    {n_init_pretrained}
    {kmeans_selection}
    {device}
    {random_state}
    verbose : int, default=0
        Print skorch's per-epoch progress tables when positive.
    {memory_shared}
    {callbacks_two_stages}
    {optimizer_two_stages}
    {kwargs}

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample: its nearest centre in the final
        embedding.
    cluster_centers_ : ndarray of shape (n_clusters_found, embedding_dim)
        The centres in the embedding space.
    {inertia_embedding}
    n_iter_ : int
        Number of joint-training epochs run (pretraining not included).
    net_ : skorch.NeuralNet
        The fitted autoencoder net; ``history`` has the total loss and its
        ``reconstruction_loss`` and ``clustering_loss`` parts per batch. The
        k-means state (``centers_``, ``counts_``, ``assignments_``) exists
        only while it trains; the final centres are ``cluster_centers_``.
    {pretrain_history}
    kmeans_ : sklearn.cluster.KMeans
        The k-means model fitted on the pretrained embedding.
    initial_clustering_ : {"kmeans", "spectral", "umap"}
        The partition the joint training started from (see ``init``).
    n_split_merge_moves_ : int
        Split-and-merge moves made on that partition (``init="auto"``; 0
        otherwise; see ``clustering`` of :class:`AutoencoderKMeans`).
    {augment_fitted}
    {features_in}

    See Also
    --------
    AutoencoderKMeans : The pretraining and k-means initialisation alone.
    DEC : Refines the embedding with a soft-assignment self-training loss.

    Notes
    -----
    The paper does not state the initial counts ``c_k``. Here each starts at
    the size of its initial cluster, the number of samples the centre already
    averages, so the centres move as running means over all the assignments
    made since the start. (The authors' code starts every count at 100.)

    With ``init="auto"`` the joint training can start from a partition that
    follows the strands of the embedding rather than k-means' round groups
    (see :class:`AutoencoderKMeans`). That partition need not be the
    nearest-centre partition of its own cluster means, so the first
    assignment updates would move samples to their nearest centre and lose
    part of it (on the small image sets of the benchmarks page, 0.03-0.07
    of accuracy). The first ``initial_partition_epochs`` epochs therefore
    hold the initial assignments and centres while the k-means term pulls
    each sample towards its own cluster's centre; the alternation starts
    from an embedding that has made the partition nearly its nearest-centre
    one (see the benchmarks page). After a pretraining with the
    neighbourhood smoothing (``smoothing_weight > 0``), which contracts
    the classes into round groups, alternating from the start ended higher
    on all of MNIST, and ``initial_partition_epochs="auto"`` holds no
    epochs then.

    The joint training's optimiser starts from the running moments the
    pretraining's optimiser ended with, when both are of the same class
    (Adam by default), instead of from zero. The joint loss keeps the
    reconstruction term, so those moments are on its scale. A fresh Adam
    moves every weight by about ``clustering_lr`` on its first steps; on
    small data, where an epoch is one or two steps, that scattered the
    pretrained embedding and emptied clusters (ORL's faces, ten images a
    cluster). See ``benchmarks/NOTES.rst`` for the figures.

    {note_dropped_centres}

    ``predict`` assigns to the nearest centre, so on the training data it
    reproduces ``labels_``; ``predict_proba`` is a Student's t kernel around
    the centres (as in DEC, with one degree of freedom).

    {note_sample_weight}

    {note_sample_weight_pretraining}

    The initial k-means is weighted, and each count ``c_k`` starts at the
    total weight of its k-means cluster. A sample's k-means term carries its
    weight, and the centre update counts a sample of weight ``w`` as ``w``
    samples (:func:`update_centroids`), so the centres remain weighted
    running means. (Counts and weights are in the units of the weights
    scaled to a mean of one.)

    References
    ----------
    .. [1] Yang, B., Fu, X., Sidiropoulos, N. D. and Hong, M. (2017).
       "Towards K-means-friendly spaces: simultaneous deep learning and
       clustering". ICML.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DCN
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = DCN(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...             pretrain_epochs=5, clustering_epochs=5, random_state=0).fit(X)
    >>> model.labels_.shape
    (60,)
    >>> model.inverse_transform(model.cluster_centers_).shape[1]
    2
    """

    _parameter_constraints: dict = {
        **BaseAutoencoderClusterer._parameter_constraints,
        "clustering_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "clustering_lr": [Interval(Real, 0, None, closed="neither")],
        "kmeans_weight": [Interval(Real, 0, None, closed="left")],
        "initial_partition_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "init": [StrOptions({"auto", "k-means"})],
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
        clustering_epochs: IntOrAuto = "auto",
        batch_size: int = 256,
        lr: float = 1e-3,
        clustering_lr: float = 1e-3,
        kmeans_weight: float = 40.0,
        initial_partition_epochs: IntOrAuto = "auto",
        init: Literal["auto", "k-means"] = "auto",
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
        self.kmeans_weight = kmeans_weight
        self.initial_partition_epochs = initial_partition_epochs
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

    # The "auto" clustering_epochs: this many epochs of alternating network
    # and centroid updates after the initial-partition epochs.
    _AUTO_CLUSTERING_EPOCHS = 15

    def _check_params_vs_input(self, X):
        super()._check_params_vs_input(X)
        self._resolve_clustering_epochs(X.shape[0])

    def _fit(self, X, y, random_state, sample_weight):
        autoencoder = self._pretrain(X, random_state, sample_weight)
        self.pretrain_history_ = autoencoder.history
        module = autoencoder.module_
        Z = self._batched_eval(module.encoder, X)
        centers, assignments = self._initial_partition(
            Z, random_state, sample_weight, from_graph=self.init == "auto"
        )
        self.net_ = DCNNet(
            module,
            criterion=torch.nn.MSELoss,
            initial_centers=centers,
            initial_assignments=assignments,
            kmeans_weight=self.kmeans_weight,
            initial_epochs=self._initial_partition_epochs,
            **self._clustering_stage_kwargs(random_state),
        )
        self.net_.initialize()
        # The joint loss still holds the reconstruction term: the optimiser
        # continues from the pretraining's running moments (see Notes).
        carry_optimizer_state(autoencoder.optimizer_, self.net_.optimizer_)
        # Also when clustering_epochs is 0: the train-begin and train-end
        # hooks then hand back the k-means centres.
        self.net_.partial_fit(self._dataset(X, sample_weight))
        self.n_iter_ = len(self.net_.history)
        centers = torch.as_tensor(self.net_.cluster_centers_, device=self._device)
        labels = to_numpy(nearest_center(self._embed(X), centers))
        self._set_clusters(X, labels, to_numpy(centers), sample_weight)
