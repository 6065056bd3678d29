"""SNNL: an autoencoder disentangled with the soft nearest neighbour loss, then k-means."""

from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import column_or_1d

from ._autoencoder_kmeans import AutoencoderKMeans
from ._docstrings import fill_doc
from ._graph import match_labels
from ._nets import AutoencoderNet
from ._torch_utils import fit_kmeans, to_numpy
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
from .base import _is_auto, _warn_at_caller
from .callbacks import PseudoLabelRefresh, TemperatureAnnealing
from .nn._mlp import ACTIVATIONS

# Modules whose outputs count as "hidden layers" for the loss.
_ACTIVATIONS = tuple(ACTIVATIONS.values())


def soft_nearest_neighbour_loss(
    features, labels, temperature, weight=None, sample_ids=None
):
    """Soft nearest neighbour loss of a batch (Frosst et al., 2019).

    ``-mean_i log( sum_{j != i, y_j = y_i} exp(-d_ij / T) / sum_{k != i} exp(-d_ik / T) )``
    where ``d_ij`` is the squared Euclidean distance divided by its mean over
    the pairs of the batch. The loss is low when every sample's nearest
    neighbours (at the scale set by the temperature ``T``) share its label.
    Samples labelled ``-1`` are left out, and so are samples with no other
    sample of their label in the batch (their term would be ``log 0``).

    Dividing by the mean distance makes the loss invariant to the scale of a
    layer: one temperature suits every layer (raw squared distances between
    wide ReLU layers are so large that the softmax would be a hard nearest
    neighbour with vanishing gradients), and the network cannot lower the
    loss by merely inflating its activations. Unlike the cosine distance it
    keeps the Euclidean geometry that k-means uses on the embedding.

    With per-sample weights ``w``, each neighbour ``j`` counts ``w_j`` times
    in both sums (``exp(-d_ij / T)`` becomes ``w_j exp(-d_ij / T)``), the mean
    distance is weighted by ``w_i w_j`` per pair, and the mean over ``i`` is
    weighted by ``w_i``.

    Parameters
    ----------
    features : torch.Tensor of shape (n_samples, ...)
        Activations of one layer (flattened per sample).
    labels : torch.Tensor of shape (n_samples,)
        Integer labels, ``-1`` for unlabelled samples.
    temperature : float
        Positive temperature ``T``.
    weight : torch.Tensor of shape (n_samples,), default=None
        Positive sample weights; ``None`` weighs the samples equally.
    sample_ids : torch.Tensor of shape (n_samples,), default=None
        Which sample each row is. Two rows of one sample (a labelled sample
        that is in the batch and drawn again as an anchor) are not each
        other's neighbours: as a pair of its own label at distance zero, a
        sample's copy would satisfy the numerator by itself and leave only
        the denominator, which pushes every other sample away. ``None``:
        every row is a sample of its own.

    Returns
    -------
    torch.Tensor
        Scalar loss, ``0`` (still attached to the graph) when no pair of the
        batch shares a label.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster._snnl import soft_nearest_neighbour_loss
    >>> x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [3.0, 3.0], [3.0, 3.1]])
    >>> separated = soft_nearest_neighbour_loss(x, torch.tensor([0, 0, 1, 1]), 0.5)
    >>> mixed = soft_nearest_neighbour_loss(x, torch.tensor([0, 1, 0, 1]), 0.5)
    >>> bool(separated < mixed)
    True
    """
    keep = labels >= 0
    features, labels = features[keep].flatten(start_dim=1), labels[keep]
    if weight is not None:
        weight = weight[keep]
    n = len(features)
    if n < 2:
        return features.sum() * 0.0
    if sample_ids is None:
        others = ~torch.eye(n, dtype=torch.bool, device=features.device)
    else:
        sample_ids = sample_ids[keep]
        others = sample_ids[:, None] != sample_ids[None, :]
    same = (labels[:, None] == labels[None, :]) & others
    has_positive = same.any(dim=1)
    if not has_positive.any():
        return features.sum() * 0.0
    squared = torch.cdist(features, features).pow(2)
    if weight is None:
        scale = squared[others].mean()
    else:
        pair_weight = (weight[:, None] * weight[None, :])[others]
        scale = (squared[others] * pair_weight).sum() / pair_weight.sum()
    scale = scale.clamp_min(torch.finfo(squared.dtype).tiny)
    logits = -squared / (scale * temperature)
    if weight is not None:
        # w_j exp(-d_ij / T): neighbour j counts w_j times in both sums.
        logits = logits + weight.log()[None, :]
    minus_inf = torch.finfo(logits.dtype).min
    log_all = torch.logsumexp(logits.masked_fill(~others, minus_inf), dim=1)
    log_same = torch.logsumexp(logits.masked_fill(~same, minus_inf), dim=1)
    terms = (log_all - log_same)[has_positive]
    if weight is None:
        return terms.mean()
    weight = weight[has_positive]
    return (terms * weight).sum() / weight.sum()


def class_means(Z, labels, weight=None):
    """Mean row of ``Z`` per label ``0..labels.max()``, ignoring ``-1``.

    Every label up to the largest must occur (the codes of ``np.unique``).
    With ``weight`` (a tensor, one positive weight per row) the means are
    weighted.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster._snnl import class_means
    >>> class_means(torch.tensor([[0.0], [2.0], [5.0], [9.0]]), torch.tensor([0, 0, 1, -1]))
    tensor([[1.],
            [5.]])
    """
    n_classes = int(labels.max()) + 1
    if weight is None:
        return torch.stack([Z[labels == c].mean(dim=0) for c in range(n_classes)])
    return torch.stack(
        [
            (Z[labels == c] * weight[labels == c, None]).sum(dim=0)
            / weight[labels == c].sum()
            for c in range(n_classes)
        ]
    )


def seeded_kmeans(Z, labels, sample_weight=None):
    """k-means on ``Z`` started from the mean of each labelled class.

    "Seeded k-means" (Basu et al., 2002): cluster ``c`` starts at the mean
    row of the samples labelled ``c`` (``labels`` as in :func:`class_means`,
    ``-1`` for unlabelled), so it keeps that class's index. ``sample_weight``
    (an array or tensor, or ``None``) weighs the class means and k-means.

    Returns
    -------
    sklearn.cluster.KMeans
        Fitted on ``Z``, with one cluster per class.
    """
    weight = None
    if sample_weight is not None:
        weight = torch.as_tensor(sample_weight, dtype=Z.dtype, device=Z.device)
    centres = to_numpy(class_means(Z, labels.to(Z.device), weight))
    return fit_kmeans(Z, len(centres), n_init=1, init=centres, sample_weight=weight)


class SNNLNet(AutoencoderNet):
    """Autoencoder net with the soft nearest neighbour loss on its hidden layers.

    The loss is ``criterion(reconstruction, x) + alpha * mean_l SNNL(h_l, y, T)``
    over the hidden layers ``h_l``: the output of every activation module of
    the encoder and the decoder (collected with forward hooks while
    training, so any module built from these activation modules works:
    ``ReLU``, ``ELU``, ``GELU``, ``LeakyReLU``, ``SiLU``, ``Sigmoid``,
    ``Tanh``, ``Softplus``) and the embedding itself. The term is added from
    epoch ``warmup_epochs`` (zero-based) on; before that the net trains as a plain
    :class:`AutoencoderNet`.

    The labels live in ``labels_`` (one per training sample, ``-1`` for
    unknown, dropped when training ends) and are looked up per batch with
    the sample indices. ``given_labels`` holds the user's labels (or
    ``None``); training starts with them, and the
    :class:`~skdeepcluster.callbacks.PseudoLabelRefresh` callback that
    :class:`SNNLKMeans` installs labels the other samples each epoch. The
    temperature ``T`` is ``temperature_``, 1 unless the
    :class:`~skdeepcluster.callbacks.TemperatureAnnealing` callback sets it.

    When some labels are given, each batch is joined by up to
    ``batch_size`` labelled samples drawn at random ("anchors"), so that
    labelled pairs meet at every step even when labels are rare (1 % of the
    data leaves ~2 labelled samples in a batch of 256). The anchors only
    enter the soft nearest neighbour term, where an anchor that is also in
    the batch is not its own neighbour.

    The history has ``reconstruction_loss`` and ``clustering_loss`` (the
    weighted soft nearest neighbour term) per batch.
    """

    def __init__(
        self,
        *args,
        given_labels=None,
        alpha=100.0,
        warmup_epochs=0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.given_labels = given_labels
        self.alpha = alpha
        self.warmup_epochs = warmup_epochs

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        n_samples = len(X)
        given = self.given_labels
        self.labels_ = (
            torch.full((n_samples,), -1, dtype=torch.long)
            if given is None
            else given.clone().long()
        ).to(self.device)
        self.temperature_ = 1.0
        # The training tensor, from which the anchors are drawn (get_loss
        # only sees the batch).
        self.anchor_X_ = X.X
        anchors = self.labels_ >= 0
        self.anchor_indices_ = (
            torch.nonzero(anchors).flatten()
            if 2 <= int(anchors.sum()) < n_samples
            else None
        )
        # Hooks exist only during training, so the fitted module pickles
        # and evaluates without them.
        self._activations = []
        self._hooks = [
            module.register_forward_hook(self._store_activation)
            for module in self.module_.modules()
            if isinstance(module, _ACTIVATIONS)
        ]

    def on_train_end(self, net, X=None, y=None, **kwargs):
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._activations = []
        # Per-sample training state: not kept, so not pickled with the model.
        del self.anchor_X_, self.labels_, self.anchor_indices_
        super().on_train_end(net, X=X, y=y, **kwargs)

    def _store_activation(self, module, inputs, output):
        if module.training:
            self._activations.append(output)

    # -- loss --------------------------------------------------------------

    def infer(self, x, **fit_params):
        # Activations of this forward pass only (the anchors add their own).
        self._activations = []
        return super().infer(x, **fit_params)

    def divergence_hint(self):
        if len(self.history) - 1 < self.warmup_epochs:
            return ""
        return (
            " The soft nearest neighbour term's temperature is now "
            f"{self.temperature_:g}: a smaller one sharpens its gradients; "
            "raise temperature or lower temperature_decay."
        )

    def clustering_loss(self, embedding, indices, X, training):
        # The term starts with the pseudo-labels, after warmup_epochs of
        # plain autoencoder training, with or without given labels: applied
        # from the first epoch, it pulls the few labelled samples apart
        # before the embedding has any structure for the unlabelled ones to
        # follow, and ends below the plain autoencoder.
        if not training or len(self.history) - 1 < self.warmup_epochs:
            self._activations = []
            return None
        layers = [*self._activations, embedding]
        labels = self.batch_state("labels_", indices)
        weight = self.batch_weight(indices)
        sample_ids = None
        if self.anchor_indices_ is not None:
            pick = torch.randperm(
                len(self.anchor_indices_),
                generator=self.device_generator,
                device=self.anchor_indices_.device,
            )[: self.batch_size]
            anchor_indices = self.anchor_indices_[pick]
            self._activations = []
            anchor_X = self.anchor_X_[anchor_indices.to(self.anchor_X_.device)]
            anchor_embedding = self.module_(anchor_X)[1]
            anchor_layers = [*self._activations, anchor_embedding]
            layers = [torch.cat([a, b]) for a, b in zip(layers, anchor_layers)]
            labels = torch.cat([labels, self.labels_[anchor_indices]])
            sample_ids = torch.cat([indices.to(labels.device), anchor_indices])
            if weight is not None:
                weight = torch.cat([weight, self.sample_weight_[anchor_indices]])
        self._activations = []
        temperature = self.temperature_
        snnl = torch.stack(
            [
                soft_nearest_neighbour_loss(h, labels, temperature, weight, sample_ids)
                for h in layers
            ]
        ).mean()
        return self.alpha * snnl


@fill_doc
class SNNLKMeans(AutoencoderKMeans):
    """Autoencoder disentangled with the soft nearest neighbour loss, then k-means.

    Agarap & Azcarraga [1]_ train an autoencoder on reconstruction plus
    ``alpha`` times the soft nearest neighbour loss (SNNL) [2]_ of every
    hidden layer. The SNNL of a layer is low when, in that layer, each
    sample's soft nearest neighbours share its label; with a temperature that
    decreases with the epoch, ``T = 1 / (1 + epoch) ** temperature_decay``,
    the classes are pulled apart progressively. k-means then clusters the
    embedding, as in :class:`AutoencoderKMeans`.

    The loss needs labels. By default ``y`` is ignored, as by every other
    clusterer, so that :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` or a
    :class:`~sklearn.pipeline.Pipeline`, which pass ``y`` to ``fit``, never
    train on the labels they score with. With ``use_labels=True``,
    ``fit(X, y)`` uses them, ``-1`` marking unlabelled samples
    (scikit-learn's semi-supervised convention). When no label reaches the
    loss (the default: no labels, and ``pseudo_labels="auto"`` gives none
    without them), SNNLKMeans trains and clusters the plain autoencoder of
    :class:`AutoencoderKMeans`. Otherwise training starts with
    ``warmup_epochs`` of plain autoencoder training (with the neighbourhood
    smoothing term when pseudo-labels follow, see ``smoothing_weight``),
    after which the SNNL acts on the given labels and, with
    ``pseudo_labels``, every sample without a label gets a pseudo-label at
    the start of each epoch, from k-means on the current embedding, which
    the SNNL holds the embedding to (self-training that tightens the
    clusters k-means finds):

    * no labels (``pseudo_labels=True``): the first time, the partition
      :class:`AutoencoderKMeans` keeps with ``clustering="auto"``
      (``init="auto"``, this package's addition) or k-means with ``n_init``
      restarts (``init="k-means"``); it is the partition the SNNL then
      keeps; afterwards k-means warm-started from the previous
      pseudo-labels' centres;
    * partial ``y`` with ``use_labels=True`` (pseudo-labels by default from
      5,000 samples on): k-means seeded with the mean embedding of each
      given class ("seeded k-means" [3]_), the labelled samples keeping
      their label, and an unlabelled sample keeping its pseudo-label only
      when its nearest labelled sample in the embedding has that label too
      (this package's addition: the loss holds on to the labels it is
      given, so the errors of k-means near class boundaries are left out
      rather than learnt); every batch is also
      joined by up to ``batch_size`` labelled samples, so that labelled
      pairs meet at every step.

    The final clustering is ``clustering``'s, as without labels. When ``y``
    has ``n_clusters`` classes, its k-means is seeded the same way, and the
    clusters of a graph partition are matched one-to-one to the classes by
    their labelled samples, so cluster ``k`` is the ``k``-th class of
    ``classes_``; with ``"auto"`` a graph partition is kept only if it
    agrees with the given labels as well as the seeded k-means does.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters (of k-means, and of the pseudo-labels).
    {hidden_dims}
    {embedding_dim}
    {input_shape}
    {input_scaling}
    {center_input}
    {augment}
    encoder, decoder : torch.nn.Module, default=None
        Your own modules. The encoder maps a batch of samples (flat, or shaped
        by ``input_shape``) to ``(batch, embedding)``; the decoder maps back.
        They are copied before training. The loss is applied to the outputs
        of their activation modules of the kinds ``ReLU``, ``ELU``, ``GELU``,
        ``LeakyReLU``, ``SiLU``, ``Sigmoid``, ``Tanh`` and ``Softplus``, and
        to the embedding.
    {normalize_embedding_as_autoencoder_kmeans}
    pretrain_epochs : int or "auto", default="auto"
        Epochs of training (reconstruction plus SNNL).
        {pretrain_epochs_auto}
    {smoothing_weight_as_autoencoder_kmeans}
    {n_neighbors}
    {smoothing_start}
    {batch_size}
    {lr}
    alpha : float, default=100.0
        Weight of the soft nearest neighbour loss (100 in [1]_).
    temperature : "annealed" or float, default="annealed"
        ``"annealed"``: ``1 / (1 + epoch) ** temperature_decay``, the epoch
        counted from the start of training (the warm-up included); a
        positive float fixes the temperature.
    temperature_decay : float, default=0.55
        Exponent of the annealed temperature. ``temperature`` and
        ``temperature_decay`` set the default ``"temperature_annealing"``
        callback (:class:`~skdeepcluster.callbacks.TemperatureAnnealing`),
        which ``callbacks`` can replace.
    pseudo_labels : bool or "auto", default="auto"
        Give the unlabelled samples pseudo-labels from the current embedding
        (every epoch after the warm-up): from ``init``'s partition, then
        warm-started k-means, when no labels are used; k-means seeded with
        the given classes when some are (kept where the nearest labelled
        sample agrees). When False, unlabelled samples only enter the
        reconstruction loss, and without labels the model is the plain
        autoencoder of :class:`AutoencoderKMeans`. ``"auto"`` is True with
        ``use_labels=True`` from 5,000 training samples on, and False
        otherwise: without labels the pull towards the pseudo-labels held
        on to their errors, and the plain autoencoder clustered better at
        every size measured (5,000 to 70,000 MNIST images); with a few
        hundred samples per cluster or fewer it does so with labels too
        (see the benchmarks page). Pseudo-labels are this package's
        addition; the paper trains on labels. When True, the
        default ``"pseudo_label_refresh"`` callback
        (:class:`~skdeepcluster.callbacks.PseudoLabelRefresh`, from
        ``n_clusters``, ``n_init`` and ``warmup_epochs``) labels them; a
        callback of that name in ``callbacks`` replaces it (and is used
        even when False).
    warmup_epochs : int or "auto", default="auto"
        Epochs of plain autoencoder training (reconstruction, and the
        smoothing term when it is on) before the soft nearest neighbour term
        and the first pseudo-labelling, so that the pseudo-labels come from a
        clustered embedding. The term then holds on to the partition it
        starts from, so it should start after the smoothing term has had
        time to work (see the benchmarks page). With
        ``warmup_epochs >= pretrain_epochs`` the model is a plain
        autoencoder. ``"auto"`` is 80 % of the pretraining epochs (80 of the
        100 epochs on large data).
    init : {"auto", "k-means"}, default="auto"
        Where the first pseudo-labels come from when no labels are used.
        ``"k-means"``: k-means on the warmed-up embedding, ``n_init``
        restarts. ``"auto"`` (this package's addition): the partition
        :class:`AutoencoderKMeans` keeps with ``clustering="auto"``, the
        k-means run or a partition of the embedding's neighbour graph
        (spectral clustering, or k-means on a UMAP layout), whichever has
        the highest modularity, refined by split-and-merge moves, as
        :class:`DCN`'s ``init="auto"``. The soft nearest neighbour term
        holds on to the partition it starts from, and a k-means partition
        of curved classes splits some and merges others (see the
        benchmarks page).
    n_init : int or "auto", default=10
        Number of k-means initialisations of the first pseudo-labelling
        when no labels are used, on the final embedding (with
        ``clustering`` ``"kmeans"`` or ``"auto"``) and on its UMAP layout
        (with ``"umap"`` or ``"auto"``). ``"auto"`` is 10, accepted for
        compatibility with :class:`~sklearn.cluster.KMeans` (whose
        ``"auto"`` means one run with k-means++ initialisation).
    {kmeans_selection}
        It applies to the final embedding and to the k-means run among the
        candidates of ``init="auto"``; with ``init="k-means"`` the first
        pseudo-labelling keeps the lowest inertia.
    {clustering}
        With labels for every cluster (``use_labels=True``), k-means starts
        from the classes' mean embeddings and the clusters of a graph
        partition are named after the classes (see above).
    use_labels : bool, default=False
        Train on the labels passed as ``y`` to :meth:`fit` (``-1`` for
        unlabelled samples; among string labels, in an array of dtype
        ``object``). When False, ``y`` is ignored and the estimator is a
        clustering method.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling, the choice of anchors
        and k-means. ``fit`` draws every random number from generators
        seeded from ``random_state`` and owned by that fit, never from
        torch's global generator, so fits running in concurrent threads do
        not disturb one another. Pass an int for reproducible labels: on the
        CPU, the same ``random_state`` with the same number of PyTorch
        threads gives the same labels (see the user guide's differences from
        KMeans). ``None`` draws the seeds from NumPy's global generator.
        Your own ``encoder`` and ``decoder`` may draw from torch's global
        generator themselves (dropout): ``fit`` then seeds it from
        ``random_state`` and restores it afterwards, which keeps such a fit
        reproducible as long as no other thread draws from it meanwhile.
    {verbose}
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained autoencoder: the path of a cache directory or
        a :class:`joblib.Memory`. A fit whose pretraining repeats an earlier
        one (same data, network, pretraining parameters and seed, so an int
        ``random_state``) loads the trained autoencoder instead of training
        it, and gives the same result. When no label reaches the soft nearest
        neighbour term (the default without labels), the pretraining is
        :class:`AutoencoderKMeans`' and shares its entries; otherwise
        SNNLKMeans pretrains with its own loss, in entries of its own.
        ``None`` caches nothing.
    {callbacks_pretraining}
    {optimizer_pretraining}
    {kwargs}

    Attributes
    ----------
    {kmeans_on_embedding}
    classes_ : ndarray of shape (n_classes,)
        The distinct labels found in ``y`` (``-1`` excluded); empty when
        no labels are used.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.history`` holds the losses, the temperature
        and the fraction of pseudo-labels that changed at each refresh
        (``label_change``); with given labels, also the fraction of the
        unlabelled samples that kept a pseudo-label (``pseudo_labelled``).
        Without labels and pseudo-labels (and without a
        ``"temperature_annealing"`` or ``"pseudo_label_refresh"`` callback)
        no label reaches the soft nearest neighbour term, and ``net_`` is the
        plain autoencoder net of :class:`AutoencoderKMeans`, with the same
        result and the same entry in the ``memory`` cache.
    {kmeans_all_centres}
    {augment_fitted}
    {features_in}

    See Also
    --------
    AutoencoderKMeans : The same without the soft nearest neighbour loss.
    ACAIKMeans : An autoencoder regularised by an interpolation critic.

    Notes
    -----
    {note_dropped_kmeans_centres}

    The paper uses a sigmoid output and binary cross-entropy; here the
    reconstruction loss is the mean squared error shared with
    :class:`AutoencoderKMeans`, since the input is not assumed to lie in
    ``[0, 1]``. Distances in the SNNL are squared Euclidean distances
    relative to their batch mean (see :func:`soft_nearest_neighbour_loss`),
    and the losses of the layers are averaged.

    ``labels_`` are cluster indices, not the classes of ``y``: as for any
    clusterer, match them to classes with e.g.
    :func:`skdeepcluster.metrics.clustering_accuracy`.

    {note_sample_weight}

    {note_sample_weight_pretraining}

    In the soft nearest neighbour loss a sample's term carries its weight
    and every neighbour counts as many times as its weight, in both sums of
    :func:`soft_nearest_neighbour_loss`; the distances are divided by their
    mean over the pairs weighted by both weights. The pseudo-labels come
    from weighted k-means (seeded with weighted class means when labels are
    given).

    References
    ----------
    {reference_snnl}
    .. [3] Basu, S., Banerjee, A. and Mooney, R. J. (2002). "Semi-supervised
       clustering by seeding". ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import SNNLKMeans
    >>> X, y = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> y_partial = np.where(np.arange(60) % 10 == 0, y, -1)  # 10 % labelled
    >>> model = SNNLKMeans(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...                    pretrain_epochs=5, use_labels=True,
    ...                    random_state=0).fit(X, y_partial)
    >>> model.labels_.shape
    (60,)
    >>> SNNLKMeans(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...            pretrain_epochs=5, warmup_epochs=2, random_state=0).fit(X).n_iter_
    5
    """

    _schedule_callbacks = (
        "neighbour_refresh",
        "temperature_annealing",
        "pseudo_label_refresh",
    )

    _parameter_constraints: dict = {
        **AutoencoderKMeans._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "temperature": [
            StrOptions({"annealed"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "temperature_decay": [Interval(Real, 0, None, closed="left")],
        "pseudo_labels": ["boolean", StrOptions({"auto"})],
        "warmup_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "init": [StrOptions({"auto", "k-means"})],
        "use_labels": ["boolean"],
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
        smoothing_weight: FloatOrAuto = "auto",
        n_neighbors: int = 10,
        smoothing_start: float = 0.5,
        batch_size: int = 256,
        lr: float = 1e-3,
        alpha: float = 100.0,
        temperature: float | Literal["annealed"] = "annealed",
        temperature_decay: float = 0.55,
        pseudo_labels: bool | Literal["auto"] = "auto",
        warmup_epochs: IntOrAuto = "auto",
        init: Literal["auto", "k-means"] = "auto",
        n_init: IntOrAuto = 10,
        kmeans_selection: str = "modularity",
        clustering: Literal["auto", "umap", "spectral", "kmeans"] = "auto",
        use_labels: bool = False,
        device: Device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
        memory: MemoryLike = None,
        callbacks: Callbacks = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        **kwargs: Any,
    ) -> None:
        self.alpha = alpha
        self.temperature = temperature
        self.temperature_decay = temperature_decay
        self.pseudo_labels = pseudo_labels
        self.warmup_epochs = warmup_epochs
        self.init = init
        self.use_labels = use_labels
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
            clustering=clustering,
            device=device,
            random_state=random_state,
            verbose=verbose,
            memory=memory,
            callbacks=callbacks,
            optimizer=optimizer,
            **kwargs,
        )

    def _encode_labels(self, y, n_samples):
        """Integer codes of ``y`` (``-1`` kept for unlabelled), or None."""
        if not self.use_labels:
            self.classes_ = np.array([], dtype=np.int64)
            return None
        if y is None:
            raise ValueError(
                "use_labels=True but fit was called without y; pass the labels "
                "(-1 for unlabelled samples) or set use_labels=False."
            )
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(
                f"y has {len(y)} labels but X has {n_samples} samples; pass one "
                "label per sample, -1 for the unlabelled ones."
            )
        if y.dtype.kind in "USO" and _holds_text_minus_one(y):
            # "-1" as text or bytes (read from a file of string labels) would
            # be a class of its own. scikit-learn's semi-supervised estimators
            # ask for the same.
            raise ValueError(
                "y holds the string '-1'; to mark unlabelled samples "
                "among string labels, use an array of dtype object with the "
                "integer -1, e.g. np.where(mask, labels.astype(object), -1)."
            )
        if y.dtype.kind in "iufO":
            unlabelled = np.asarray(y == -1, dtype=bool)
        else:
            unlabelled = np.zeros(n_samples, bool)
        if y.dtype.kind == "f":
            _check_float_labels(y)
        elif y.dtype.kind == "O":
            # Floats among the labels of an object array (NaN for a missing
            # label, as pandas writes it) get the same checks: np.unique
            # would make each NaN a class of its own.
            _check_float_labels(
                np.array(
                    [v for v in y if isinstance(v, float | np.floating)], dtype=float
                )
            )
        if unlabelled.all():
            # The samples of weight 0 are already left out, their labels too.
            _warn_at_caller(
                "use_labels=True but no sample is labelled (every label in y is "
                "-1, or belongs to a sample of weight 0): "
                f"{type(self).__name__} trains without labels.",
                UserWarning,
            )
            self.classes_ = np.array([], dtype=np.int64)
            return None
        try:
            self.classes_, codes = np.unique(y[~unlabelled], return_inverse=True)
        except TypeError:
            # An object array mixing kinds (strings and numbers, None...).
            raise ValueError(
                "y must hold labels of one kind (all integers or all strings), "
                "with the integer -1 for unlabelled samples; got "
                f"{sorted({type(v).__name__ for v in y[~unlabelled]})}."
            ) from None
        encoded = np.full(n_samples, -1, dtype=np.int64)
        encoded[~unlabelled] = codes
        return torch.as_tensor(encoded)

    def _check_params_vs_input(self, X):
        super()._check_params_vs_input(X)
        self._warmup_epochs = (
            round(0.8 * self._pretrain_epochs)
            if _is_auto(self.warmup_epochs)
            else self.warmup_epochs
        )
        self._resolve_pseudo_labels(self.use_labels, X.shape[0])

    def _resolve_pseudo_labels(self, labelled, n_samples):
        """Resolve ``pseudo_labels`` and, with it, ``smoothing_weight="auto"``."""
        # Without labels, pseudo-labels cost accuracy at every size measured
        # (benchmarks/NOTES.rst): "auto" gives them only beside labels.
        self._pseudo_labels = (
            labelled and n_samples >= self._LARGE_DATA
            if _is_auto(self.pseudo_labels)
            else self.pseudo_labels
        )
        # The smoothing is there to make the warm-up's embedding compact for
        # the first pseudo-labelling; without pseudo-labels "auto" drops it,
        # as AutoencoderKMeans does, and the pretraining is its own.
        if _is_auto(self.smoothing_weight) and not self._pseudo_labels:
            self._smoothing_weight = 0.0

    def _fit(self, X, y, random_state, sample_weight):
        given = self._encode_labels(y, len(X))
        if given is None and self.use_labels:
            # No sample is labelled after all: resolved as without labels.
            self._resolve_pseudo_labels(False, len(X))
        self._fit_autoencoder_kmeans(
            X,
            random_state,
            sample_weight,
            pretrain_params=dict(given_labels=given),
            kmeans_params=dict(given_labels=given),
        )

    def _check_graph_partition(
        self, method, reference_labels, graph, given_labels=None
    ):
        if given_labels is None or len(self.classes_) != self.n_clusters:
            return method, reference_labels
        # A graph partition numbers its clusters in no particular order, and
        # modularity does not see the labels: its clusters are matched
        # one-to-one to the classes by their labelled reference samples
        # (Hungarian algorithm), so that cluster k is the k-th class of
        # classes_, and it is kept only if it agrees with the given labels
        # as well as the seeded k-means does (on data with several equally
        # good partitions, only the labels can choose).
        given = to_numpy(given_labels)[graph.reference]
        labelled = given >= 0
        named = match_labels(reference_labels, given, self.n_clusters, labelled)
        kmeans = getattr(self, "kmeans_", None)
        if kmeans is not None:
            seeded = kmeans.labels_[graph.reference]
            if (seeded == given)[labelled].mean() > (named == given)[labelled].mean():
                return "kmeans", None
        return method, named

    def _cluster_embedding(
        self, Z, random_state, sample_weight, graph=None, given_labels=None
    ):
        if given_labels is None or len(self.classes_) != self.n_clusters:
            return super()._cluster_embedding(Z, random_state, sample_weight, graph)
        # One cluster per given class: seed k-means with the classes' mean
        # embeddings, so that the labels pick which of k-means' local optima
        # is found (unsupervised restarts sometimes split a class and merge
        # two others).
        return seeded_kmeans(Z, given_labels, sample_weight)

    def _has_soft_nearest_neighbour_term(self, given_labels):
        """Whether any label (given or pseudo) reaches the soft nearest neighbour term.

        Without labels and without pseudo-labels the term has nothing to act
        on and SNNLKMeans trains the plain autoencoder. A schedule callback
        of the term passed by name (in ``callbacks`` or as a
        ``callbacks__<name>__*`` keyword) keeps SNNLNet, which runs it.
        """
        if given_labels is not None or self._pseudo_labels:
            return True
        names = set(self._named_callbacks())
        return bool(names & {"temperature_annealing", "pseudo_label_refresh"})

    def _pretrain(
        self, X, random_state, sample_weight=None, net_cls=None, **net_params
    ):
        # The pretraining differs from AutoencoderKMeans' only in its net:
        # SNNLNet, with its temperature and pseudo-label schedules (and the
        # given labels among net_params); the network and the smoothing are
        # shared.
        if net_cls is None and not self._has_soft_nearest_neighbour_term(
            net_params.get("given_labels")
        ):
            # No label reaches the term: the pretraining is AutoencoderKMeans'
            # (same result), and shares its entry in the ``memory`` cache.
            net_params.pop("given_labels", None)
            return super()._pretrain(X, random_state, sample_weight, **net_params)
        if _is_annealed(self.temperature):
            temperature = TemperatureAnnealing(1.0, self.temperature_decay)
        else:
            temperature = TemperatureAnnealing(float(self.temperature), 0.0)
        pseudo_labels = (
            PseudoLabelRefresh(
                self.n_clusters,
                self._warmup_epochs,
                self._n_init,
                init=(
                    _AutoPartition(
                        self.n_clusters,
                        self.n_neighbors,
                        self._n_init,
                        self.kmeans_selection,
                    )
                    if self.init == "auto"
                    else "k-means"
                ),
            )
            if self._pseudo_labels
            else None
        )
        return super()._pretrain(
            X,
            random_state,
            sample_weight,
            net_cls=net_cls or SNNLNet,
            schedule=[
                ("temperature_annealing", temperature),
                ("pseudo_label_refresh", pseudo_labels),
            ],
            alpha=self.alpha,
            warmup_epochs=self._warmup_epochs,
            **net_params,
        )


class _AutoPartition:
    """The partition :class:`AutoencoderKMeans` keeps with ``clustering="auto"``.

    A callable of an embedding, ``(Z, seed, sample_weight) -> (labels,
    centers)``: the ``init`` of :class:`~skdeepcluster.callbacks.PseudoLabelRefresh`
    for SNNLKMeans' ``init="auto"``. It holds the settings, not the
    estimator, so that the callback stays cheap to pickle and the
    pretraining cache's key (which hashes the net's callbacks) follows
    these settings alone.
    """

    def __init__(self, n_clusters, n_neighbors, n_init, kmeans_selection):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.n_init = n_init
        self.kmeans_selection = kmeans_selection

    def __call__(self, Z, seed, sample_weight=None):
        clusterer = AutoencoderKMeans(
            n_clusters=self.n_clusters,
            n_neighbors=self.n_neighbors,
            n_init=self.n_init,
            kmeans_selection=self.kmeans_selection,
        )
        # The resolved n_init, which fit would set.
        clusterer._n_init = self.n_init
        centers, labels = clusterer._initial_partition(
            Z, np.random.RandomState(seed), sample_weight, from_graph=True
        )
        return labels, centers


def _is_annealed(temperature):
    return isinstance(temperature, str) and temperature == "annealed"


def _check_float_labels(values):
    """Raise a ValueError unless the float labels ``values`` name classes.

    As a classifier takes them: NaN is no label (unlabelled samples are
    marked -1), and fractional values are a continuous target, which
    ``np.unique`` would make one class each.
    """
    if not np.all(np.isfinite(values)):
        raise ValueError("y contains NaN or infinity; mark unlabelled samples with -1.")
    fractional = values[values != np.round(values)]
    if len(fractional):
        raise ValueError(
            "y must hold class labels (integers or strings, -1 for unlabelled "
            f"samples); got non-integer values such as {fractional[0]:g}."
        )


def _holds_text_minus_one(y):
    """Whether the labels ``y`` (text, bytes or objects) hold ``"-1"`` or ``b"-1"``.

    Each array is compared only with the kind of text it can hold: NumPy 1
    compares a str array with bytes as one scalar, with a FutureWarning.
    """
    if y.dtype.kind == "U":
        return bool(np.any(y == "-1"))
    if y.dtype.kind == "S":
        return bool(np.any(y == b"-1"))
    return bool(np.any((y == "-1") | (y == b"-1")))
