"""IMSAT: information maximisation with self-augmented training."""

import contextlib
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from ._docstrings import fill_doc
from ._graph import SCORING_NEIGHBOURS, neighbour_graph
from ._nets import ClusteringNet
from ._torch_utils import build_module, inference_batch_size, to_numpy, weighted_mean
from ._typing import (
    Callbacks,
    Device,
    HiddenDims,
    InputShape,
    IntOrAuto,
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


def entropy_terms(logits, weight=None):
    """Marginal and conditional entropies of the predicted cluster distribution.

    For a batch with ``p_i = softmax(logits_i)``, the marginal entropy is
    ``H(Y) = H(mean_i p_i)`` (high when the batch is spread evenly over the
    clusters) and the conditional entropy ``H(Y|X) = mean_i H(p_i)`` (low when
    each sample is confidently assigned). Their difference is the mutual
    information between samples and clusters that IMSAT maximises.

    With sample weights ``w`` (scaled to a mean of one over the training
    set), ``H(Y|X) = mean_i w_i H(p_i)`` and the marginal distribution is the
    weighted mean ``sum_i w_i p_i / sum_i w_i``.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_samples, n_clusters)
    weight : torch.Tensor of shape (n_samples,), default=None
        Positive sample weights; ``None`` weighs the samples equally.

    Returns
    -------
    marginal : torch.Tensor
        ``H(Y)``, a scalar, in nats.
    conditional : torch.Tensor
        ``H(Y|X)``, a scalar, in nats.
    """
    log_p = F.log_softmax(logits, dim=1)
    p = log_p.exp()
    conditional = weighted_mean(-(p * log_p).sum(dim=1), weight)
    p_mean = p.mean(dim=0) if weight is None else (weight @ p) / weight.sum()
    # A cluster nobody uses has p_mean = 0; its term is 0 (0 log 0 = 0) but
    # log(0) would turn the gradient into NaN, hence the floor inside the log.
    marginal = -(p_mean * torch.log(p_mean.clamp_min(1e-12))).sum()
    return marginal, conditional


def kl_divergence(logits_p, logits_q, weight=None):
    """Mean over the batch of ``KL(p || q)`` for two batches of logits.

    Parameters
    ----------
    logits_p, logits_q : torch.Tensor of shape (n_samples, n_clusters)
    weight : torch.Tensor of shape (n_samples,), default=None
        Weights of the samples' divergences in the mean (see
        :func:`~skdeepcluster._torch_utils.weighted_mean`); ``None`` weighs
        them equally.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    log_q, log_p = F.log_softmax(logits_q, dim=1), F.log_softmax(logits_p, dim=1)
    if weight is None:
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    divergences = F.kl_div(log_q, log_p, reduction="none", log_target=True)
    return weighted_mean(divergences.sum(dim=1), weight)


def _unit(d):
    """Scale every sample of ``d`` (any trailing shape) to Euclidean norm one."""
    norm = d.flatten(start_dim=1).norm(dim=1).clamp_min(1e-12)
    return d / norm.view(-1, *([1] * (d.dim() - 1)))


def random_direction(X, generator=None):
    """A direction drawn uniformly on the unit sphere, per sample of ``X``.

    Drawn from ``generator`` (on ``X``'s device), or from torch's global
    generator when it is ``None``.
    """
    return _unit(
        torch.randn(X.shape, dtype=X.dtype, device=X.device, generator=generator)
    )


def vat_direction(forward, X, logits, xi, generator=None):
    """Direction in which ``forward``'s prediction at ``X`` changes the most.

    One step of power iteration on the Hessian of ``d -> KL(p(X) || p(X + d))``
    at ``d = 0`` (Miyato et al.): start from a random unit direction ``d``,
    take the gradient of the divergence at ``X + xi * d`` and normalise it.

    Parameters
    ----------
    forward : callable
        Maps a batch of inputs to logits.
    X : torch.Tensor of shape (n_samples, ...)
        Clean inputs.
    logits : torch.Tensor of shape (n_samples, n_clusters)
        ``forward(X)``, treated as a constant.
    xi : float
        Length of the finite-difference step.
    generator : torch.Generator, default=None
        Draws the starting direction (see :func:`random_direction`).

    Returns
    -------
    torch.Tensor of the shape of ``X``
        Unit-norm direction per sample.
    """
    d = random_direction(X, generator).requires_grad_(True)
    divergence = kl_divergence(logits.detach(), forward(X + xi * d))
    # Gradient with respect to d only: the parameters' .grad stay untouched.
    (grad,) = torch.autograd.grad(divergence, d)
    return _unit(grad)


@contextlib.contextmanager
def frozen_batch_norm_statistics(module):
    """Keep the batch-norm running statistics of ``module`` unchanged in the block.

    The layers still normalise with the statistics of the batch they see (so
    a perturbed batch is treated exactly like the clean one), but perturbed
    inputs do not leak into the running averages that ``predict`` uses.
    """
    # With track_running_stats off, a layer in training mode normalises with
    # the batch statistics and neither reads nor writes the running buffers.
    # (Restoring the buffers afterwards instead would modify tensors that the
    # clean forward pass saved for its backward pass.)
    layers = [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


def _init_small(module, generator, hidden_scale=0.1, head_scale=1e-4):
    """Initialise the linear layers with small Gaussian weights and zero biases.

    Weights are drawn with standard deviation ``scale / sqrt(fan_in)``, the
    scales of the authors' setting [1]_. The nearly zero head makes every
    prediction start almost uniform (maximal ``H(Y|X)``, no early commitment
    to a cluster). Batch norm makes the hidden layers' outputs independent of
    their weights' scale, but small weights let Adam's steps of roughly
    constant size change them faster. The weights are drawn from the CPU
    ``generator``.
    """
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Linear):
            scale = head_scale if name == "head" else hidden_scale
            nn.init.normal_(
                layer.weight, std=scale / layer.in_features**0.5, generator=generator
            )
            nn.init.zeros_(layer.bias)


def _kth_neighbour_distance(X, k, reference_size, random_state, chunk_size=None):
    """Distance of each row of ``X`` to its ``k``-th nearest other row.

    Exact (all pairs) when ``X`` has at most ``reference_size`` rows. Above
    that, all pairs would cost time quadratic in ``n_samples``; the distances
    are then measured against ``reference_size`` rows drawn at random, in
    time linear in ``n_samples``, and rescaled: a ball around a sample that
    holds its ``k`` nearest of the ``m`` reference rows holds a fraction
    ``k / m`` of the data, while the ``k``-th neighbour among all ``n`` rows
    bounds a fraction ``k / n``. Where the data has intrinsic dimension
    ``d``, the fraction in a ball grows as ``radius ** d``, so the radius is
    multiplied by ``(m / n) ** (1 / d)``. ``d`` is estimated from the same
    neighbour distances, by the maximum-likelihood estimator of Levina and
    Bickel (2004) averaged over samples as MacKay and Ghahramani suggest
    (the mean of the inverse per-sample estimates).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), or rows read on demand
        Anything whose indexing with a slice or an index array gives the
        rows as an array or a tensor (such as
        :class:`~skdeepcluster._torch_utils.ArrayRows`).
    k : int
        Which neighbour, ``1 <= k < n_samples``.
    reference_size : int
        Largest ``n_samples`` computed exactly; the size of the reference
        subsample beyond it.
    random_state : RandomState instance
        Draws the reference subsample; untouched when the computation is
        exact.
    chunk_size : int, default=None
        Beyond ``reference_size``, query the neighbours of this many rows at
        a time, so that no more than these and the reference rows are read
        at once; ``None`` queries all rows together.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    n_samples = len(X)
    if n_samples <= reference_size:
        # Without a query, each sample is not counted as its own neighbour.
        distances, _ = NearestNeighbors(n_neighbors=k).fit(_flat_rows(X)).kneighbors()
        return distances[:, -1]
    reference = np.sort(random_state.choice(n_samples, reference_size, replace=False))
    # Enough neighbours for a stable dimension estimate even when k is small.
    n_neighbors = min(max(k, 10), reference_size - 1)
    search = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(_flat_rows(X, reference))
    chunk_size = chunk_size or n_samples
    distances = np.concatenate(
        [
            search.kneighbors(_flat_rows(X, slice(start, start + chunk_size)))[0]
            for start in range(0, n_samples, chunk_size)
        ]
    )
    # A reference sample finds itself first; the others drop the extra one.
    in_reference = np.zeros(n_samples, dtype=bool)
    in_reference[reference] = True
    distances = np.where(in_reference[:, None], distances[:, 1:], distances[:, :-1])
    distances = distances.astype(np.float64)
    # Levina-Bickel: 1/d_i = mean_j log(T_K / T_j), j < K, from the sample's
    # own K neighbour distances; samples with a duplicate (T_1 = 0) have no
    # defined estimate and are left out of the mean.
    usable = distances[:, 0] > 0
    inverse_dimension = 0.0
    if usable.any():
        log_ratios = np.log(distances[usable, -1:] / distances[usable, :-1])
        inverse_dimension = float(log_ratios.mean())
    return distances[:, k - 1] * (reference_size / n_samples) ** inverse_dimension


def _flat_rows(X, key=slice(None)):
    """Rows ``key`` of ``X`` as a 2-D NumPy array (see _kth_neighbour_distance)."""
    rows = X[key]
    if isinstance(rows, torch.Tensor):
        rows = to_numpy(rows)
    return rows.reshape(len(rows), -1)


class _IMSATModule(nn.Module):
    """A feature extractor ``body`` followed by a linear ``head`` giving logits."""

    def __init__(self, body, head):
        super().__init__()
        self.body = body
        self.head = head

    def forward(self, x):
        return self.head(self.body(x))


class IMSATNet(ClusteringNet):
    """skorch net minimising ``R_SAT - lam * (H(Y) - mu * H(Y|X))``.

    ``radius_`` holds the perturbation radius of every training sample (a
    tensor built from the array ``radius`` when training begins, dropped
    when it ends); it is looked up per batch with the sample indices that
    :class:`~skdeepcluster._torch_utils.IndexedDataset` passes as ``y``. The
    entropies are estimated on each mini-batch. The self-augmentation term
    ``R_SAT = KL(p(y|x) || p(y|x + r))`` treats the clean prediction as a
    constant. The perturbed forward passes run in training mode (batch
    statistics, like the clean pass) but without updating the batch-norm
    running averages, which therefore describe clean data only.

    With ``targets_`` set (see :class:`~skdeepcluster._nets.ClusteringNet`)
    the information term gives way to the cross-entropy of the predictions
    to the targets: ``R_SAT + CE``, virtual adversarial training's
    semi-supervised loss [1]_.

    References
    ----------
    .. [1] Miyato, T., Maeda, S., Koyama, M. and Ishii, S. (2018). "Virtual
       adversarial training: a regularization method for supervised and
       semi-supervised learning". IEEE TPAMI.
    """

    def __init__(
        self,
        *args,
        radius=None,
        augmentation="vat",
        lam=0.4,
        mu=0.25,
        xi=10.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.radius = radius
        self.augmentation = augmentation
        self.lam = lam
        self.mu = mu
        self.xi = xi

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.radius_ = torch.as_tensor(self.radius, device=self.device)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Per-sample training state (the estimator keeps the radii as
        # perturbation_radius_): not pickled with the net.
        del self.radius_
        super().on_train_end(net, X=X, y=y, **kwargs)

    def perturbation(self, X, logits, radius):
        """The augmentation ``r`` added to ``X``: norm ``radius`` per sample."""
        if self.augmentation == "vat":
            with frozen_batch_norm_statistics(self.module_):
                direction = vat_direction(
                    self.module_, X, logits, self.xi, self.device_generator
                )
        else:
            direction = random_direction(X, self.device_generator)
        return direction * radius.view(-1, *([1] * (X.dim() - 1)))

    def self_augmentation_loss(self, X, logits, radius, weight=None):
        """``R_SAT``: divergence between clean and augmented predictions.

        ``weight`` weighs the samples' divergences; the direction of the
        virtual adversarial perturbation is each sample's own, whatever its
        weight.
        """
        logits = logits.detach()
        r = self.perturbation(X, logits, radius)
        with frozen_batch_norm_statistics(self.module_):
            return kl_divergence(logits, self.module_(X + r), weight)

    def information(self, logits, weight=None):
        """The information term ``H(Y) - mu * H(Y|X)``, ``H(Y)`` and ``H(Y|X)``."""
        marginal, conditional = entropy_terms(logits, weight)
        return marginal - self.mu * conditional, marginal, conditional

    def loss_terms(self):
        return (
            "sat_loss",
            "marginal_entropy",
            "conditional_entropy",
            "target_cross_entropy",
        )

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # y_pred are the logits of the clean batch; y_true its sample indices.
        weight = self.batch_weight(y_true)
        information, marginal, conditional = self.information(y_pred, weight)
        loss = -self.lam * information
        if training and self.has_targets():
            loss = self.target_loss(F.log_softmax(y_pred, dim=1), y_true)
            self.history.record_batch("target_cross_entropy", loss.item())
        if not training:
            return loss
        X = X.to(self.device)
        sat = self.self_augmentation_loss(
            X, y_pred, self.batch_state("radius_", y_true), weight
        )
        self.history.record_batch("sat_loss", sat.item())
        self.history.record_batch("marginal_entropy", marginal.item())
        self.history.record_batch("conditional_entropy", conditional.item())
        return sat + loss


@fill_doc
class IMSAT(BaseDeepClusterer):
    """Information Maximizing Self-Augmented Training (IMSAT) for clustering.

    A classifier network with a softmax over ``n_clusters`` outputs is
    trained directly, without a decoder or pretraining, to minimise

    ``R_SAT - lam * (H(Y) - mu * H(Y|X))``

    where ``H(Y)`` is the entropy of the mean prediction over a mini-batch
    (high when the clusters are balanced), ``H(Y|X)`` the mean entropy of the
    per-sample predictions (low when they are confident), and the
    self-augmentation term ``R_SAT = KL(p(y|x) || p(y|x + r))`` asks the
    prediction to stay the same under a small perturbation ``r`` of the input,
    the clean prediction being held fixed [1]_. With
    ``augmentation="vat"`` the perturbation is virtual adversarial: the
    direction that changes the prediction most, found with one step of power
    iteration [2]_; with ``"rpt"`` it is a random direction.

    The norm of ``r`` is chosen per sample: ``eps`` times the distance from
    the sample to its ``eps_neighbors``-th nearest neighbour in the training
    data (estimated from a subsample on large data sets), so that the
    perturbation is small where the data is dense.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters (outputs of the network).
    hidden_dims : tuple of int, default=(1200, 1200)
        Widths of the hidden layers, each followed by batch normalisation and
        a ReLU (``d-1200-1200-K`` in [1]_). With ``input_shape`` the first
        hidden layer is a convolutional encoder
        (:class:`~skdeepcluster.nn.ConvEncoder`) with ``hidden_dims[0]``
        outputs, so ``hidden_dims`` must not be empty.
    input_shape : tuple of int, default=None
        ``(channels, height, width)`` of one sample. When given, ``X`` (still
        passed flat) is reshaped to images and the network starts with
        convolutions. The perturbations are applied to the images.
    {input_scaling}
    augment : bool or "auto", default="auto"
        Train on randomly deformed copies of the images, as DEC-DA does for
        autoencoders (Guo, X., Zhu, E., Liu, X. and Yin, J. (2018), "Deep
        embedded clustering with data augmentation", ACML): every training
        batch, in every start and in the refinement, is rotated (up to 10
        degrees), shifted (up to 10 % of the height and width) and rescaled
        (within 5 %) afresh, and the whole objective, the perturbation of
        ``augmentation`` included, is computed on the deformed batch. The
        perturbation radius, the choice among the starts, ``predict`` and
        ``transform`` see the samples as they are. The network then learns
        to give a digit and its slanted or shifted copies the same cluster.
        ``True`` and ``"auto"`` decide which samples are images as the
        autoencoder estimators' ``augment`` does: with ``True`` the images
        are of shape ``input_shape`` when it is given, else square
        one-channel images of ``sqrt(n_features)`` pixels a side (other
        numbers of features raise a ``ValueError``); ``"auto"`` deforms them
        only from 5,000 training samples on, and only when the rows look
        like flattened square one-channel images and ``input_shape`` is not
        given or is that shape. ``augment_`` says whether it did. ``False``
        trains on the samples as they are, as [1]_ does. This package's
        addition; it raised the accuracy on MNIST, on Fashion-MNIST and on
        MNIST's digits in a long tail of class sizes, and lowered it on
        MNIST's digits in USPS's class sizes (see the benchmarks page).
    augmentation : {"vat", "rpt"}, default="vat"
        Self-augmentation: virtual adversarial training or random
        perturbation training.
    eps : float, default=0.25
        Radius of the perturbation, relative to each sample's distance to its
        ``eps_neighbors``-th nearest neighbour (0.25 in [1]_). With
        ``eps_neighbors=0`` it is instead the radius itself, in the units of
        the input the network sees (after ``input_scaling``), for every
        sample.
    eps_neighbors : int or "auto", default="auto"
        Which nearest neighbour sets the scale of the radius (the 10th in
        [1]_); at most ``n_samples - 1`` is used. 0 gives every sample the
        same radius ``eps``. ``"auto"`` is the 10th, as in [1]_, unless the
        clusters are small: then a third of the mean cluster size,
        ``n_samples // (3 * n_clusters)`` (at least 1), so that the
        neighbour is likely in the sample's own cluster and the radius
        stays inside it (with 10 images per class, as in ORL, the 10th
        neighbour is always of another class). This package's addition. Up
        to 5,000 training samples the distances are exact. Beyond, exact
        distances would take time quadratic in ``n_samples`` (minutes at
        50,000 MNIST images), so each sample's
        ``eps_neighbors``-th neighbour is found among 5,000 reference
        samples drawn with ``random_state``, and its distance is scaled down
        by ``(5000 / n_samples) ** (1 / d)``, the shrinking of a ball that
        holds ``n_samples / 5000`` times fewer points in data of intrinsic
        dimension ``d`` (estimated from the same distances). This takes time
        linear in ``n_samples``; on MNIST images the median relative error
        of the radius is about 5%, small next to the steps in which ``eps``
        is tuned.
    xi : float, default=10.0
        Length of the finite-difference step of VAT's power iteration, in
        the units of the input the network sees (after ``input_scaling``).
        Only used with ``augmentation="vat"``.
    lam : float, default=0.4
        Weight of the mutual-information term relative to ``R_SAT``.
    mu : float, default=0.25
        Weight of the conditional entropy ``H(Y|X)`` relative to the marginal
        entropy ``H(Y)``. ``mu=1`` weighs the exact mutual information; a
        smaller value favours balanced clusters. The defaults equal the
        authors' released setting (``0.1 * (H(Y|X) - 4 * H(Y))``).
    max_epochs : int or "auto", default="auto"
        Number of training epochs of the network that is kept, its start
        included. ``"auto"`` is 100 epochs (10,000 steps on MNIST-test), and
        on small data as many more as make 2,000 optimiser steps, the rule of
        the autoencoders' ``pretrain_epochs``: 400 images in batches of 100
        would otherwise train for 400 steps, too few to use every output
        (see the benchmarks page). This package's addition.
    n_init : int or "auto", default=3
        Number of differently initialised starts. Each trains for
        ``init_epochs``; the one with the highest ``H(Y) - mu * H(Y|X)`` on
        the training data then trains on to ``max_epochs``. Training costs
        ``max_epochs + (n_init - 1) * init_epochs`` epochs in all. With
        ``n_init=1`` the single start trains for ``max_epochs``. ``"auto"``
        is 3, accepted for compatibility with :class:`~sklearn.cluster.KMeans`.
    init_epochs : int, default=10
        Length in epochs of each start when ``n_init > 1`` (at most
        ``max_epochs``).
    refinement_epochs : int, default=10
        Epochs of training toward the partition that split-and-merge moves
        on the neighbour graph of the learned representation make of the
        trained one, or toward the UMAP layout's partition when
        ``clustering`` keeps it; run only when a move is made or the layout
        is kept (see the Notes). ``0`` makes no move and keeps the paper's
        IMSAT. This package's addition.
    clustering : {"auto", "net", "umap"}, default="auto"
        Partition the refinement starts from. ``"net"``: the trained
        network's. ``"umap"``: k-means of a UMAP layout of the last hidden
        layer in ``max(2, min(n_clusters, 10))`` dimensions (McInnes et al.,
        2018; N2D's clustering step [3]_, which :class:`AutoencoderKMeans`'
        ``clustering="umap"`` takes on its embedding), which the network
        then learns in the refinement epochs.
        ``"auto"``: whichever of the two has, after its split-and-merge
        moves, the higher modularity of the hidden layer's neighbour graph.
        ``clustering_`` says which was kept. This package's addition: the
        partition a trained network reaches on small data depends on its
        start, and on the rounding of the machine it runs on, more than the
        layout of its representation does (see the benchmarks page).
    batch_size : int, default=100
        Mini-batch size, at least 2. The marginal entropy ``H(Y)`` is estimated
        on each mini-batch, so batches should hold many samples per cluster.
        The authors used 250 on all 70,000 MNIST images, 280 steps per epoch;
        on a data set of 10,000 images that is only 40 steps, too few for a
        partition with two classes shared between two clusters to resolve. 100
        samples per batch and 100 epochs (10,000 steps) give about the number
        of steps of the paper's schedule (see the benchmarks page).
    lr : float, default=2e-3
        Learning rate of the Adam optimiser.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling, the random
        directions of the perturbations and, above 5,000 training samples,
        the reference samples of the perturbation radius. ``fit`` draws
        every random number from generators seeded from ``random_state`` and
        owned by that fit, never from torch's global generator, so fits
        running in concurrent threads do not disturb one another. Pass an
        int for reproducible labels: on the CPU, the same ``random_state``
        with the same number of PyTorch threads gives the same labels (see
        the user guide's differences from KMeans). ``None`` draws the seeds
        from NumPy's global generator.
    {verbose}
    callbacks : list of callbacks or (name, callback) tuples, default=None
        :mod:`skorch.callbacks` added to every net of the fit (stage
        ``"training"``; with ``n_init > 1``, ``"start i of n"`` for each start,
        then ``"training of start i"``; then ``"refinement"`` when a
        split-and-merge move is made or the UMAP layout's partition is
        kept). Each net gets its own copy, so the list passed here is never
        changed; a callback can read ``net.stage`` to act in one stage only
        (see the user guide's training control page).
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimiser class of every net of the fit (stage ``"training"``; with
        ``n_init > 1``, ``"start i of n"`` for each start, then ``"training of
        start i"``; then ``"refinement"``), built with ``lr`` and the
        ``optimizer__*`` keywords.
    {kwargs}

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample: the argmax of ``p(y|x)``.
    cluster_centers_ : ndarray of shape (n_clusters_found, n_hidden)
        Mean :meth:`transform` output (last hidden layer) of the training
        samples of each cluster: ``n_hidden`` is ``hidden_dims[-1]``, or
        ``n_features`` when ``hidden_dims`` is empty.
    perturbation_radius_ : ndarray of shape (n_samples,)
        Norm of the perturbation of each training sample.
    augment_ : bool
        Whether training deformed the images (see ``augment``).
    start_information_ : ndarray of shape (n_init,)
        ``H(Y) - mu * H(Y|X)`` on the training data of each start at the end
        of its ``init_epochs`` (of its ``max_epochs`` when ``n_init=1``). The
        start with the highest value was kept.
    n_split_merge_moves_ : int
        Split-and-merge moves made on the kept partition (0 with
        ``refinement_epochs=0``).
    clustering_ : {"net", "umap"}
        The partition the refinement started from (see ``clustering``):
        the refinement stage ran if it is ``"umap"`` or a move was made.
    inertia_ : float
        Sum of squared distances of the training embeddings (:meth:`transform`) to their
        cluster centre, weighted by ``sample_weight``
        (``-score`` of the training data with its weights).
    n_iter_ : int
        Number of training epochs run by the kept network, any refinement
        epochs included.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.history`` holds the loss and, per batch,
        ``sat_loss``, ``marginal_entropy``, ``conditional_entropy`` and, in
        the refinement stage, ``target_cross_entropy``.
    {features_in}

    See Also
    --------
    DEC : Clusters an autoencoder's embedding by self-training.

    Notes
    -----
    ``predict_proba`` is the network's softmax output ``p(y|x)`` and
    ``predict`` its argmax. They run the network in evaluation mode: batch
    normalisation uses the running averages gathered on clean training
    batches, so the prediction of a sample does not depend on the other
    samples passed with it. The perturbation radius is only needed for
    training; new data is never perturbed.

    :meth:`transform` returns the last hidden layer (after batch
    normalisation and ReLU), the representation the softmax head reads, and
    ``cluster_centers_`` the mean of it per cluster; :meth:`score` compares
    samples with these means.

    Training from some initialisations ends in a partition that mixes two
    classes across two clusters and stays there. As
    :class:`~sklearn.cluster.KMeans` keeps the best of ``n_init`` runs,
    IMSAT trains ``n_init`` short starts and keeps the one with the highest
    information term ``H(Y) - mu * H(Y|X)``, measured on all training
    samples in evaluation mode. The whole objective is not used for this
    choice: the self-augmentation term is larger for starts whose
    predictions are more committed, which are also the better ones, so it
    cancels the information term's signal. When ``init_epochs`` is only a
    few hundred steps (small data sets) the ranking is less reliable, and
    ``n_init=1``, or longer starts, may do as well (see the benchmarks
    page).

    After training, the partition is refined by split-and-merge moves on
    the 10-nearest-neighbour graph of the last hidden layer (what
    :meth:`transform` returns; at most 10,000 reference samples; fewer
    neighbours when a third of the mean cluster size is smaller, the rule of
    ``eps_neighbors="auto"``), the moves
    of :class:`AutoencoderKMeans`' ``clustering="auto"``:
    while cutting one cluster in two and joining two others raises the
    graph's modularity (Newman 2006), the best such move is made, which
    repairs a run that ended with one class cut in two and two others
    joined. With ``clustering="auto"`` the same moves also refine k-means
    of a UMAP layout of that layer [3]_, and the partition of higher
    modularity is kept. When a move is made, or the layout's partition is
    kept, the net trains ``refinement_epochs`` more epochs (stage
    ``"refinement"``) on ``R_SAT`` plus the cross-entropy to the kept
    partition, virtual adversarial training's semi-supervised loss [2]_,
    so that ``labels_`` and ``predict`` follow it.

    An output that is the argmax for no training sample is dropped, so that
    ``labels_`` stays ``0..n_clusters_found - 1``, and a
    :class:`~sklearn.exceptions.ConvergenceWarning` is raised. ``predict``
    and ``predict_proba`` then use the remaining outputs only (the softmax is
    renormalised over them), so ``predict`` never returns a dropped cluster.

    {note_sample_weight}

    Here ``R_SAT`` and ``H(Y|X)`` are weighted means over the batch, and
    ``H(Y)`` is the entropy of the batch's weighted mean prediction; the
    start kept by ``n_init`` is the one with the highest weighted
    information term, and ``cluster_centers_`` are the weighted means of
    the clusters' representations. The perturbation radius (the distance to
    the ``eps_neighbors``-th nearest sample of positive weight), the
    direction of the virtual adversarial perturbation and the batch
    normalisation statistics do not depend on the weights.

    References
    ----------
    .. [1] Hu, W., Miyato, T., Tokui, S., Matsumoto, E. and Sugiyama, M.
       (2017). "Learning discrete representations via information maximizing
       self-augmented training". ICML.
    .. [2] Miyato, T., Maeda, S., Koyama, M. and Ishii, S. (2018). "Virtual
       adversarial training: a regularization method for supervised and
       semi-supervised learning". IEEE TPAMI.
    .. [3] McConville, R., Santos-Rodriguez, R., Piechocki, R. J. and
       Craddock, I. (2020). "N2D: (Not too) deep clustering via clustering
       the local manifold of an autoencoded embedding". ICPR (the UMAP
       layout of ``clustering``).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import IMSAT
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = IMSAT(n_clusters=3, hidden_dims=(32,), max_epochs=30,
    ...               batch_size=20, random_state=0).fit(X)
    >>> model.labels_.shape
    (60,)
    >>> model.predict_proba(X).shape
    (60, 3)
    """

    _AUTO_N_INIT = 3
    # max_epochs="auto": this many epochs, and at least this many steps.
    _AUTO_MAX_EPOCHS = 100
    _MIN_TRAINING_STEPS = 2000
    # Models pickled before ``augment`` existed trained on the samples as given.
    _ADDED_PARAMETERS = {"augment": False}

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "hidden_dims": [tuple, list],
        "augment": ["boolean", StrOptions({"auto"})],
        "augmentation": [StrOptions({"vat", "rpt"})],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "eps_neighbors": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "xi": [Interval(Real, 0, None, closed="neither")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "mu": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "init_epochs": [Interval(Integral, 1, None, closed="left")],
        "refinement_epochs": [Interval(Integral, 0, None, closed="left")],
        "clustering": [StrOptions({"auto", "net", "umap"})],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        hidden_dims: HiddenDims = (1200, 1200),
        input_shape: InputShape = None,
        input_scaling: Literal["auto"] | None = "auto",
        augment: bool | Literal["auto"] = "auto",
        augmentation: Literal["vat", "rpt"] = "vat",
        eps: float = 0.25,
        eps_neighbors: IntOrAuto = "auto",
        xi: float = 10.0,
        lam: float = 0.4,
        mu: float = 0.25,
        max_epochs: IntOrAuto = "auto",
        n_init: IntOrAuto = 3,
        init_epochs: int = 10,
        refinement_epochs: int = 10,
        clustering: Literal["auto", "net", "umap"] = "auto",
        batch_size: int = 100,
        lr: float = 2e-3,
        device: Device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
        callbacks: Callbacks = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        **kwargs: Any,
    ) -> None:
        self.hidden_dims = hidden_dims
        self.augment = augment
        self.augmentation = augmentation
        self.eps = eps
        self.eps_neighbors = eps_neighbors
        self.xi = xi
        self.lam = lam
        self.mu = mu
        self.max_epochs = max_epochs
        self.n_init = n_init
        self.init_epochs = init_epochs
        self.refinement_epochs = refinement_epochs
        self.clustering = clustering
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

    def _build_module(self, n_features, generator):
        """The network, its weights drawn from the CPU ``generator``."""
        from .nn import ConvEncoder
        from .nn._mlp import _dense_stack

        # The widths themselves are checked in fit (_check_hidden_dims).
        hidden_dims = tuple(self.hidden_dims)
        if self.input_shape is not None and not hidden_dims:
            raise ValueError(
                "hidden_dims must not be empty with input_shape: its first "
                "entry is the width of the convolutional encoder's output."
            )

        def build():
            if self.input_shape is not None:
                body = nn.Sequential(
                    ConvEncoder(self.input_shape, hidden_dims[0]),
                    nn.BatchNorm1d(hidden_dims[0]),
                    nn.ReLU(),
                    *_dense_stack(hidden_dims, batch_norm=True, activate_last=True),
                )
            else:
                body = nn.Sequential(
                    nn.Flatten(),
                    *_dense_stack(
                        (n_features, *hidden_dims), batch_norm=True, activate_last=True
                    ),
                )
            width = hidden_dims[-1] if hidden_dims else n_features
            return _IMSATModule(body, nn.Linear(width, self.n_clusters))

        # The convolutions keep torch's default initialisation; the linear
        # layers are then drawn again, small.
        module = build_module(build, generator)
        _init_small(module, generator)
        return module

    # Above this many training samples, the neighbour distances behind the
    # perturbation radius are measured against this many reference samples
    # (see _kth_neighbour_distance). A class attribute so tests can lower it.
    _radius_reference_size = 5000

    def _perturbation_radius(self, X, random_state):
        """``eps`` times each sample's distance to its k-th nearest neighbour."""
        n_samples = len(X)
        k = (
            neighbours_within_clusters(n_samples, self.n_clusters)
            if _is_auto(self.eps_neighbors)
            else self.eps_neighbors
        )
        k = min(k, n_samples - 1)
        if k == 0:
            return np.full(n_samples, self.eps, dtype=np.float32)
        if isinstance(X, torch.Tensor):
            # Already in memory: one array, queried whole.
            X, chunk_size = to_numpy(X).reshape(n_samples, -1), None
        else:
            # Rows read on demand (a memory map, a sparse matrix): queried an
            # inference batch at a time, so the whole input is never in memory.
            chunk_size = inference_batch_size(self.batch_size)
        distances = _kth_neighbour_distance(
            X, k, self._radius_reference_size, random_state, chunk_size
        )
        return (self.eps * distances).astype(np.float32)

    def _check_params_vs_input(self, X):
        """Resolve ``n_init``, ``max_epochs`` (``_max_epochs``) and ``augment``."""
        super()._check_params_vs_input(X)
        self._resolve_augment(X)
        self._max_epochs = (
            epochs_with_min_steps(
                X.shape[0],
                self.batch_size,
                self._AUTO_MAX_EPOCHS,
                self._MIN_TRAINING_STEPS,
            )
            if _is_auto(self.max_epochs)
            else self.max_epochs
        )

    def _fit(self, X, y, random_state, sample_weight):
        self._check_batches_of_two("batch normalisation and the marginal entropy H(Y)")
        self.perturbation_radius_ = self._perturbation_radius(X, random_state)
        dataset = self._dataset(X, sample_weight)

        # Like KMeans' n_init, but the starts are short: every start trains
        # start_epochs, and only the one with the highest information term
        # trains on to max_epochs (see the Notes of the class docstring).
        start_epochs = self._max_epochs
        if self._n_init > 1:
            start_epochs = min(self.init_epochs, self._max_epochs)
        self.start_information_ = np.empty(self._n_init)
        best = None
        for start in range(self._n_init):
            stage = "training"
            if self._n_init > 1:
                stage = f"start {start + 1} of {self._n_init}"
            net = self._start_net(random_state, start_epochs, stage)
            net.partial_fit(dataset)
            information = self._information(net, X, dataset.sample_weight)
            self.start_information_[start] = information
            if best is None or information > self.start_information_[best]:
                best, self.net_ = start, net
        if self._max_epochs > start_epochs:
            self.net_.set_params(stage=f"training of start {best + 1}")
            self.net_.partial_fit(dataset, epochs=self._max_epochs - start_epochs)
        self._refine(X, dataset, random_state)
        self.n_iter_ = len(self.net_.history)

        logits = self._batched_eval(self.net_.module_, X)
        self._kept = self._set_clusters(
            X, to_numpy(logits.argmax(dim=1)), sample_weight=sample_weight
        )

    def _refine(self, X, dataset, random_state):
        """Train toward the partition split-and-merge moves make of the kept one.

        The kept partition is the net's own or, by ``clustering``, k-means
        of a UMAP layout of the reference samples' representations
        (:meth:`transform`; see :meth:`_refine_by_moves`). The moves
        (:func:`~skdeepcluster._graph.split_merge`) act on the
        10-nearest-neighbour graph of those representations, with fewer
        neighbours when a third of the mean cluster size is smaller; when
        any is made, or the layout's partition is kept, the net trains
        ``refinement_epochs`` more epochs with the moved partition of the
        reference samples as targets (see :class:`IMSATNet`).
        """
        self.n_split_merge_moves_ = 0
        self.clustering_ = "net"
        if not (self.refinement_epochs and self._max_epochs):
            # No refinement asked for, or an untrained net to refine.
            return
        reference, rows = self._reference_rows(X, random_state)
        module = self.net_.module_
        representation = self._batched_eval(module.body, rows)
        features = to_numpy(representation)
        # As eps_neighbors="auto": with ten samples per cluster (ORL), ten
        # neighbours would reach mostly into other clusters, and the cuts
        # that restore unused outputs would find no group to cut along.
        n_neighbors = neighbours_within_clusters(
            len(reference), self.n_clusters, most=SCORING_NEIGHBOURS
        )
        graph = ReferenceGraph(
            reference, features, neighbour_graph(features, n_neighbors)
        )
        with torch.no_grad():
            labels = to_numpy(module.head(representation).argmax(dim=1))
        self.n_split_merge_moves_, self.clustering_ = self._refine_by_moves(
            self.net_,
            dataset,
            graph,
            labels,
            self.clustering,
            random_state,
            self.refinement_epochs,
        )

    def _start_net(self, random_state, max_epochs, stage):
        """A freshly initialised net: new weights, its own shuffling seed."""
        net = IMSATNet(
            self._build_module(
                self.n_features_in_, self._module_generator(random_state)
            ),
            criterion=nn.KLDivLoss,  # unused: get_loss computes every term
            max_epochs=max_epochs,
            radius=self.perturbation_radius_,
            augmentation=self.augmentation,
            lam=self.lam,
            mu=self.mu,
            xi=self.xi,
            # Batch norm cannot normalise a batch of one sample, and the
            # entropies are meaningless on it: drop such a trailing batch
            # (and any short one when the user asks to).
            **self._net_kwargs(
                random_state,
                stage=stage,
                augment_shape=self._augment_shape,
                iterator_train__drop_last=len(self.perturbation_radius_)
                % self.batch_size
                == 1
                or getattr(self, "iterator_train__drop_last", False),
            ),
        )
        net.initialize()
        return net

    def _information(self, net, X, weight=None):
        """``net``'s information term over all of ``X``, in evaluation mode.

        ``weight``: the samples' loss weights (see
        :func:`~skdeepcluster._torch_utils.loss_weights`), or ``None``.
        """
        logits = self._batched_eval(net.module_, X)
        information, _, _ = net.information(logits, weight)
        return float(information)

    def _logits(self, X):
        """Logits of the clusters that were kept (evaluation mode)."""
        return self._kept_columns(self._batched_eval(self.net_.module_, X))

    def _kept_columns(self, logits):
        """The columns of ``logits`` of the clusters that were kept."""
        return logits[:, torch.as_tensor(self._kept, device=logits.device)]

    def _embed(self, X):
        return self._batched_eval(self.net_.module_.body, X)

    def _predict_proba(self, X):
        return torch.softmax(self._logits(X), dim=1)

    def _predict(self, X):
        return self._finite(self._logits(X)).argmax(dim=1)

    def _embed_and_predict(self, X):
        module = self.net_.module_

        def representation_and_logits(x):
            representation = module.body(x)
            return representation, module.head(representation)

        representation, logits = self._batched_eval(
            module, X, representation_and_logits
        )
        labels = self._finite(self._kept_columns(logits)).argmax(dim=1)
        return self._finite(representation), labels
