"""Deep Adaptive Clustering (DAC): clustering as pairwise self-labelling."""

from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.dataset import unpack_data
from skorch.utils import to_device
from torch import nn

from ._docstrings import fill_doc
from ._graph import (
    MAX_REFERENCE_SAMPLES,
    SCORING_NEIGHBOURS,
    modularity,
    neighbour_graph,
    reference_indices,
)
from ._input import square_image_shape
from ._nets import ClusteringNet
from ._torch_utils import (
    build_module,
    module_mode,
    nearest_neighbours,
    random_affine,
    to_numpy,
)
from ._typing import (
    Callbacks,
    Device,
    HiddenDims,
    InputShape,
    IntOrAuto,
    OptimizerFactory,
    RandomStateLike,
)
from .base import BaseDeepClusterer, _is_auto, neighbours_within_clusters
from .callbacks import ThresholdSchedule

# Similarities are clamped this far inside (0, 1) before taking logs.
_EPS = 1e-7


def select_pairs(similarity, upper, lower):
    """DAC's self-labels: which pairs count as "same" and which as "different".

    Pairs more similar than ``upper`` are positives, pairs less similar than
    ``lower`` negatives; the rest, and every sample paired with itself, are
    left out of the loss.

    Parameters
    ----------
    similarity : torch.Tensor of shape (n_samples, n_samples)
        Cosine similarities of the samples' label features.
    upper, lower : float
        The thresholds ``u`` and ``l``.

    Returns
    -------
    positive, negative : torch.Tensor of bool, shape (n_samples, n_samples)
        Disjoint masks of the selected pairs.
    """
    off_diagonal = ~torch.eye(
        len(similarity), dtype=torch.bool, device=similarity.device
    )
    return (similarity > upper) & off_diagonal, (similarity < lower) & off_diagonal


@fill_doc
def pairwise_loss(features, upper, lower, reference=None, weight=None):
    """Binary cross-entropy of the selected pairs of a mini-batch.

    The similarity of samples ``i`` and ``j`` is the dot product of their
    L2-normalised, non-negative label features, a number in [0, 1] read as
    the probability that they are in the same cluster. The self-labels come
    from :func:`select_pairs` on the same similarities, without gradient
    (they are targets, as in [1]_'s alternating scheme).

    Parameters
    ----------
    features : torch.Tensor of shape (n_samples, n_clusters)
        Non-negative, L2-normalised label features.
    upper, lower : float
        The thresholds ``u`` and ``l``.
    reference : torch.Tensor of shape (n_samples, n_clusters), default=None
        Label features the pairs are selected from, when they differ from
        ``features`` (e.g. features of the unperturbed samples while
        ``features`` are those of augmented copies).
    weight : torch.Tensor of shape (n_samples,), default=None
        Sample weights: the pair ``(i, j)`` then weighs ``w_i w_j`` in the
        mean, as many times as the pairs between ``w_i`` copies of ``i`` and
        ``w_j`` copies of ``j``. ``None`` weighs the pairs equally.

    Returns
    -------
    loss : torch.Tensor
        Mean cross-entropy over the selected pairs, weighted (0, with a
        gradient, when none is selected).
    n_positive, n_negative : int
        Number of selected positive and negative pairs (each pair twice).

    References
    ----------
    {reference_dac}
    """
    similarity = features @ features.T
    with torch.no_grad():
        selected_from = similarity if reference is None else reference @ reference.T
        positive, negative = select_pairs(selected_from, upper, lower)
    similarity = similarity.clamp(_EPS, 1.0 - _EPS)
    n_positive, n_negative = int(positive.sum()), int(negative.sum())
    if weight is None:
        total = (
            -torch.log(similarity[positive]).sum()
            - torch.log1p(-similarity[negative]).sum()
        )
        # Keep the graph when nothing is selected, so the optimiser step is
        # a no-op.
        return total / max(n_positive + n_negative, 1), n_positive, n_negative
    pair_weight = weight[:, None] * weight[None, :]
    total = (
        -(torch.log(similarity[positive]) * pair_weight[positive]).sum()
        - (torch.log1p(-similarity[negative]) * pair_weight[negative]).sum()
    )
    selected_weight = pair_weight[positive].sum() + pair_weight[negative].sum()
    # As above, a zero loss with a graph when nothing is selected.
    return total / selected_weight.clamp_min(1e-12), n_positive, n_negative


class LabelFeatures(nn.Module):
    """Turn a body's ``n_clusters`` outputs into DAC label features.

    Batch normalisation sets the scale of the scores, so that from the first
    epoch different samples get clearly different features (without it the
    untrained scores are nearly equal, every pair starts above ``u`` and
    training collapses into one cluster), a softmax
    makes them non-negative and an L2 normalisation puts them on the unit
    sphere, where the dot product of two samples is a similarity in [0, 1].

    Parameters
    ----------
    body : torch.nn.Module
        Maps a batch of samples to ``(batch, n_clusters)`` scores.
    n_clusters : int
        Number of clusters.
    """

    def __init__(self, body, n_clusters):
        super().__init__()
        self.body = body
        self.norm = nn.BatchNorm1d(n_clusters)

    def scores(self, x):
        """Batch-normalised scores, before the softmax."""
        return self.norm(self.body(x))

    def forward(self, x):
        return self.features(self.scores(x))

    @staticmethod
    def features(scores):
        """The label features of the ``scores``: softmax, then unit length."""
        return nn.functional.normalize(torch.softmax(scores, dim=1), dim=1)


@fill_doc
class ConvClassifier(nn.Module):
    """Small convolutional network for DAC on images.

    Blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling, then a
    batch-normalised hidden layer and a linear layer to the scores. It is a
    much reduced version of the all-convolutional network with batch norm
    after every layer used for MNIST in [1]_, sized to train on a CPU.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)`` of one sample.
    n_outputs : int
        Number of output scores.
    channels : tuple of int, default=(16, 32, 32)
        Output channels of the convolution blocks.
    hidden_dim : int, default=64
        Width of the fully connected hidden layer.

    References
    ----------
    {reference_dac}

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster._dac import ConvClassifier
    >>> ConvClassifier((1, 28, 28), 10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_outputs, channels=(16, 32, 32), hidden_dim=64):
        super().__init__()
        n_channels, height, width = input_shape
        layers = []
        for n_out in channels:
            layers += [
                nn.Conv2d(n_channels, n_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(n_out),
                nn.ReLU(),
            ]
            # Pool only while the image is big enough to halve.
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            n_channels = n_out
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_channels * height * width, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, n_outputs),
        )

    def hidden(self, x):
        """Output of the hidden layer, the representation before the scores."""
        return self.head[:-1](self.conv(x))

    def forward(self, x):
        return self.head[-1](self.hidden(x))


def recalibrate_batch_norm(module, X, batch_size):
    """Set the batch norm statistics of ``module`` to their average over ``X``.

    During training, batch norm keeps a running average of batch statistics
    that lags behind the changing network (and here also mixes in the
    augmented copies). Prediction uses those statistics, so they are
    recomputed once at the end of training, with the final weights, as the
    equally weighted average over mini-batches that together hold every row
    of ``X``. The weights are not changed.

    Batch ``j`` of ``m`` holds rows ``j, j + m, j + 2m, ...``: data sets often
    come sorted by class (scikit-learn's iris and wine, images read one
    folder per class), and consecutive rows would make batches of one or two
    classes, whose variance is the variance within a class. Taken with a
    stride, each batch samples the whole file.

    Parameters
    ----------
    module : torch.nn.Module
    X : torch.Tensor of shape (n_samples, ...), or rows read on demand
        Anything that slicing turns into the rows as a tensor (such as
        :class:`~skdeepcluster._torch_utils.ArrayRows`).
    batch_size : int
        Largest mini-batch the statistics are averaged over (the training
        batch size, so that they match training). The rows are split into
        ``ceil(n_samples / batch_size)`` batches of nearly equal sizes, none
        below two samples.
    """
    layers = [
        m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    n_samples = len(X)
    if not layers or n_samples < 2:
        return
    # Batch norm in training mode cannot normalise a batch of one sample.
    n_batches = min(-(-n_samples // batch_size), n_samples // 2)
    momenta = [layer.momentum for layer in layers]
    with module_mode(module, training=True):
        try:
            for layer in layers:
                layer.reset_running_stats()
                # momentum=None: a cumulative average over the batches seen.
                layer.momentum = None
            with torch.no_grad():
                for first in range(n_batches):
                    module(X[first::n_batches])
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum


class DACNet(ClusteringNet):
    """skorch net training DAC's pairwise loss under the thresholds it holds.

    The thresholds of the current epoch, ``upper_`` and ``lower_``, are set
    by the :class:`~skdeepcluster.callbacks.ThresholdSchedule` callback that
    :class:`DAC` installs, which also records them and ends training when
    they cross. At the end of each epoch the net records the fractions of
    pairs selected as positives and as negatives (``positive_pairs`` and
    ``negative_pairs``).

    Each mini-batch's pairs are selected from the batch as it is; the loss
    can then be taken on stand-ins for its samples, so that the network must
    give a sample and its stand-in the same label:

    * ``neighbours_``, when set before training (a tensor of shape
      ``(n_samples, k)`` of training-row indices), replaces each sample by
      one of its ``k`` nearest training samples, drawn at random;
    * ``augment``, when given, is then called as ``augment(X,
      generator=g)`` with the net's ``device_generator`` (like
      :func:`random_affine`) and returns the perturbed batch.
    """

    def __init__(self, *args, augment=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augment = augment

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # The training samples the neighbours' rows are read from.
        self.train_samples_ = getattr(X, "X", None)

    def stand_ins(self, X, indices):
        """The samples the loss of the batch ``X`` (rows ``indices``) is taken on."""
        neighbours = getattr(self, "neighbours_", None)
        if neighbours is not None:
            rows = neighbours[to_device(indices, neighbours.device)]
            pick = torch.randint(
                rows.shape[1],
                (len(rows),),
                generator=self.device_generator,
                device=self.device_generator.device,
            ).to(rows.device)
            X = to_device(
                self.train_samples_[rows[torch.arange(len(rows)), pick]], self.device
            )
        if self.augment is not None:
            X = self.augment(X, generator=self.device_generator)
        return X

    def train_step_single(self, batch, **fit_params):
        self.reference_ = None
        if self.augment is not None or getattr(self, "neighbours_", None) is not None:
            # Select the pairs on the batch as it is, and train on the
            # stand-ins, so the network must give the same label to a sample
            # and its neighbours or deformations (the authors' practice for
            # images).
            Xi, yi = unpack_data(batch)
            Xi = to_device(Xi, self.device)
            self._set_training(True)
            with torch.no_grad():
                self.reference_ = self.infer(Xi, **fit_params)
            batch = (self.stand_ins(Xi, yi), yi)
        return super().train_step_single(batch, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if training and self.has_targets():
            # The label features are the softmax's probabilities scaled to
            # unit length: dividing by their sum recovers them.
            log_probabilities = torch.log(y_pred.clamp_min(_EPS)) - torch.log(
                y_pred.sum(dim=1, keepdim=True)
            )
            loss = self.target_loss(log_probabilities, y_true)
            self.history.record_batch("target_cross_entropy", loss.item())
            return loss
        reference = getattr(self, "reference_", None) if training else None
        upper, lower = self.thresholds()
        loss, n_positive, n_negative = pairwise_loss(
            y_pred, upper, lower, reference, self.batch_weight(y_true)
        )
        if training:
            n_pairs = len(y_pred) * (len(y_pred) - 1)
            self.history.record_batch("positive_pairs", n_positive / n_pairs)
            self.history.record_batch("negative_pairs", n_negative / n_pairs)
        return loss

    def loss_terms(self):
        return ("target_cross_entropy",)

    def thresholds(self):
        """The thresholds ``(upper_, lower_)`` of the current epoch."""
        upper, lower = getattr(self, "upper_", None), getattr(self, "lower_", None)
        if upper is None or lower is None:
            raise RuntimeError(
                f"The {self.stage} net of {self.estimator_name} has no "
                "thresholds upper_ and lower_. They are set by the "
                "'threshold_schedule' callback (see "
                "skdeepcluster.callbacks.ThresholdSchedule); a callback "
                "replacing it must set them as well."
            )
        return upper, lower

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # The last batch's reference output, the training samples and their
        # neighbours: training state, not pickled.
        self.reference_ = None
        self.__dict__.pop("train_samples_", None)
        self.__dict__.pop("neighbours_", None)
        super().on_train_end(net, X=X, y=y, **kwargs)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        if self.has_targets():
            # A refinement epoch: no pairs were selected.
            return
        for key in ("positive_pairs", "negative_pairs"):
            values = self.history[-1, "batches", :, key]
            self.history.record(key, float(np.mean(values)))
        score = getattr(self, "epoch_score_", None)
        if score is not None:
            value = score(self)
            self.history.record("modularity", value)
            self.remember_epoch(value)

    def remember_epoch(self, score):
        """Keep a copy of the current weights if ``score`` is the best so far.

        With ``epoch_score_`` set (a function of the net), every epoch's end
        calls it; :meth:`restore_best_epoch` then loads the weights of the
        best-scoring epoch (see DAC's ``n_init``).
        """
        best = getattr(self, "best_epoch_state_", None)
        if best is None or score > best[0]:
            state = {
                k: v.detach().clone() for k, v in self.module_.state_dict().items()
            }
            self.best_epoch_state_ = (score, len(self.history), state)

    def restore_best_epoch(self):
        """Load the weights :meth:`remember_epoch` kept; return their epoch.

        Without any, the weights stay those of the last epoch, which is
        returned. The score function and the copy are training state and
        are dropped.
        """
        self.__dict__.pop("epoch_score_", None)
        best = self.__dict__.pop("best_epoch_state_", None)
        if best is None:
            return len(self.history)
        _, epoch, state = best
        self.module_.load_state_dict(state)
        return epoch


@fill_doc
class DAC(BaseDeepClusterer):
    """Deep Adaptive Clustering: learn a classifier from pairwise self-labels.

    DAC [1]_ recasts clustering as deciding, for each pair of samples,
    whether they belong to the same cluster. A network maps each sample to a
    label feature: ``n_clusters`` scores made non-negative by a softmax and
    L2-normalised, so that the dot product of two label features is a
    similarity in [0, 1]. In every mini-batch, pairs more similar than an
    upper threshold ``u`` are labelled "same", pairs less similar than a
    lower threshold ``l`` "different", and the others are ignored; the
    network is trained with the binary cross-entropy of the selected pairs.
    The selection starts strict (only confident pairs) and widens each
    epoch, ``u`` falling and ``l`` rising
    (:class:`~skdeepcluster.callbacks.ThresholdSchedule`), until
    they meet. Each sample's cluster is then the largest entry of its label
    feature; no k-means or decoder is involved.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters (size of the label features).
    input_shape : tuple of int, "auto" or None, default="auto"
        ``(channels, height, width)`` of one sample. When given, ``X`` (still
        passed flat) is reshaped to images and a small convolutional network
        with batch norm (:class:`~skdeepcluster._dac.ConvClassifier`) is
        used, DAC's setting; with ``None``, a fully connected network with
        batch norm on the flat features. The convolutional network wants
        many images per cluster: with a few hundred per cluster or fewer,
        the fully connected one, with its neighbour stand-ins and
        ``clustering``'s UMAP layout, is as accurate or more. ``"auto"``
        takes ``(1, side, side)`` when the rows of ``X`` look like square
        images of one channel, flattened, and there are at least 500
        samples per cluster on average; else ``None`` (see Notes). The rows
        look like images when the features number ``side * side``, with
        ``side`` at least 8, and neighbouring pixels correlate far more than
        pixels half the image apart, both along the rows and down the
        columns (the test reads at most 1,000 evenly spaced rows and draws
        no random numbers). ``input_shape_`` holds the shape used. Images
        of several channels must be given their shape.
    {input_scaling}
    hidden_dims : tuple of int, default=(500, 500, 2000)
        Widths of the fully connected network's hidden layers. Ignored for
        images (``input_shape_`` not ``None``).
    upper : float, default=0.95
        Upper threshold ``u`` of the first epoch: pairs more similar are
        labelled "same cluster". The paper's value.
    lower : float, default=0.455
        Lower threshold ``l`` of the first epoch: pairs less similar are
        labelled "different clusters". The paper's value; must be below
        ``upper``.
    eta : float, default=0.009
        Step of the adaptive parameter ``lambda`` per epoch: ``u`` falls by
        ``eta * (1 + lower_slope)`` and ``l`` rises by
        ``lower_slope * eta * (1 + lower_slope)`` each epoch. The paper's
        value. With the default thresholds they meet after 46 epochs.
    lower_slope : float, default=0.1
        Speed of ``l`` relative to ``u`` (``l = lower + lower_slope * lambda``
        while ``u = upper - lambda``). The paper's value. ``upper``,
        ``lower``, ``eta`` and ``lower_slope`` set the default
        ``"threshold_schedule"`` callback
        (:class:`~skdeepcluster.callbacks.ThresholdSchedule`), which
        ``callbacks`` can replace.
    augment : bool, default=True
        Select the pairs of each mini-batch from the samples as they are, but
        take the loss on stand-ins, so that the network must label a sample
        and its stand-in alike. With images (``input_shape_`` not
        ``None``), the stand-ins are randomly rotated (up to 10 degrees),
        shifted (up to 10 %) and rescaled (within 5 %) copies, as the
        authors' implementation does. On flat features, where no such
        deformation is known, each sample is replaced by one of its
        ``n_neighbors`` nearest training samples (Euclidean distance on the
        features), drawn at random each time: a local smoothness prior like
        IMSAT's, in place of the random initial similarities that otherwise
        alone decide the first self-labels. The neighbour stand-ins are this
        package's addition to [1]_; ``augment=False`` trains on the samples
        themselves.
    n_neighbors : int or "auto", default="auto"
        Number of nearest training samples a flat sample's stand-in is drawn
        from (``augment=True`` on flat features). ``"auto"`` takes a
        third of the mean cluster size, ``n_samples // (3 * n_clusters)``,
        between 1 and 10, so that with clusters of similar sizes most
        neighbours can belong to the sample's own cluster. Above 10,000
        samples the neighbours are searched among a random 10,000 of them, so
        the search costs time linear in ``n_samples``.
    n_init : int or "auto", default="auto"
        Number of differently initialised starts. Each trains for
        ``init_epochs``; the one whose partition of the training data has the
        highest modularity of the input's 10-nearest-neighbour graph then
        trains on to ``max_epochs``, and the weights of its epoch with the
        highest modularity are kept (``best_epoch_``). Training costs
        ``max_epochs + (n_init - 1) * init_epochs`` epochs in all. With
        ``n_init=1`` the single start trains for ``max_epochs`` and keeps
        its last weights, as in the paper. ``"auto"`` is 3 with the
        convolutional network (on augmented images) and 1 on flat features
        (see Notes).
    init_epochs : int, default=5
        Length in epochs of each start when ``n_init > 1`` (at most
        ``max_epochs``).
    refinement_epochs : int, default=5
        Epochs of training toward the partition that split-and-merge moves
        make of the trained one, or toward the input's UMAP layout's
        partition when ``clustering`` keeps it; run only when a move is made
        or the layout is kept (see the Notes). The moves act on the
        neighbour graph of the inputs on flat features and on that of the
        convolutional network's hidden layer on images. ``0``
        makes no move and keeps the trained partition, as in the paper. This
        package's addition.
    clustering : {"auto", "net", "umap"}, default="auto"
        Partition the refinement starts from. ``"net"``: the trained
        network's. ``"umap"``: k-means of a UMAP layout of the inputs in
        ``max(2, min(n_clusters, 10))`` dimensions (McInnes et al., 2018;
        the step :class:`AutoencoderKMeans`' ``clustering="umap"`` takes on its
        embedding), which the network then learns in the refinement
        epochs. ``"auto"``: on flat features, whichever of the two has,
        after its split-and-merge moves, the higher modularity of the
        input's 10-nearest-neighbour graph; on images, the network's
        (there the moves act on the hidden layer's graph, and a layout of
        that layer did not help; see
        ``benchmarks/NOTES.rst``). With ``refinement_epochs=0`` the network's
        partition is kept. ``clustering_`` says which was kept. This
        package's addition: on flat features the network has no
        deformation to learn from, and on data of 10,000 samples its
        partition fell far behind the layout's (see Notes).
    max_epochs : int, default=20
        Epoch budget: training stops after ``max_epochs`` epochs or when
        ``u <= l``, whichever comes first (the default schedule alone would
        run 46 epochs). With the convolutional network on MNIST-sized data,
        the late, wide selections (``u`` below about 0.75) label many pairs
        wrongly and can undo what the earlier epochs learned, so the budget
        cuts the schedule there (see the benchmarks page); pass
        ``max_epochs=46`` or more to run the whole schedule.
    batch_size : int, default=64
        Mini-batch size, at least 2; the pairs are formed within each
        mini-batch. Batches are drawn without the last incomplete one (batch
        norm needs two or more samples), and never larger than the data (in a
        data-parallel fit, than each process's share of it). Smaller than the
        paper's 128: on a 10,000-image data set it gives twice as many updates
        per epoch, so the shortened schedule still makes enough updates.
    {lr}
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling and the augmentation.
        ``fit`` draws every random number from generators seeded from
        ``random_state`` and owned by that fit, never from torch's global
        generator, so fits running in concurrent threads do not disturb one
        another. Pass an int for reproducible labels: on the CPU, the same
        ``random_state`` with the same number of PyTorch threads gives the
        same labels (see the user guide's differences from KMeans). ``None``
        draws the seeds from NumPy's global generator.
    verbose : int, default=0
        Print skorch's per-epoch progress table when positive, with the
        thresholds and the fractions of pairs selected.
    callbacks : list of callbacks or (name, callback) tuples, default=None
        :mod:`skorch.callbacks` added to every net of the fit (stage
        ``"training"``; with ``n_init > 1``, ``"start i of n"`` for each start,
        then ``"training of start i"``; then ``"refinement"`` when a
        split-and-merge move is made or the UMAP layout's partition is
        kept). Each net gets its own copy, so the
        list passed here is never changed; a callback can read ``net.stage``
        to act in one stage only. A pair
        named ``"threshold_schedule"`` replaces the default schedule callback
        of that name (see the user guide's training control page).
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimiser class of every net of the fit (stage ``"training"``; with
        ``n_init > 1``, ``"start i of n"`` for each start, then ``"training of
        start i"``; then ``"refinement"``), built with ``lr`` and the
        ``optimizer__*`` keywords.
    {kwargs}

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training sample: the argmax of its label feature
        (computed from the scores before the softmax, as :meth:`predict`
        does).
    cluster_centers_ : ndarray of shape (n_clusters_found, n_clusters)
        Mean label feature (output of :meth:`transform`) of each cluster's
        training samples, so that :meth:`score` measures how tightly the
        label features gather by cluster.
    inertia_ : float
        Sum of squared distances of the training label features to their
        cluster centre, weighted by ``sample_weight``
        (``-score`` of the training data with its weights).
    n_iter_ : int
        Number of epochs run by the net that is kept, its start and any
        refinement epochs included.
    input_shape_ : tuple of int or None
        Shape of one sample as the network took it: ``input_shape``, or what
        ``"auto"`` chose (``None`` for flat features).
    start_modularity_ : ndarray of shape (n_init,)
        Modularity, on the input's 10-nearest-neighbour graph, of each
        start's partition at the end of its ``init_epochs`` (of its
        ``max_epochs`` when ``n_init=1``). The start with the highest value
        was kept. The graph joins the training samples (a random 10,000 of
        them above that number).
    best_epoch_ : int
        Epoch whose weights were kept: with ``n_init > 1``, the epoch of the
        kept start whose partition had the highest modularity (recorded per
        epoch as ``modularity`` in ``net_.history``); with ``n_init=1``, the
        last one.
    n_split_merge_moves_ : int
        Split-and-merge moves made on the kept partition (0 with
        ``refinement_epochs=0``); the refinement stage ran if any was made
        or the kept partition is the layout's.
    clustering_ : {"net", "umap"}
        The partition the refinement started from (see ``clustering``):
        the trained network's, or k-means of the inputs' UMAP layout.
    net_ : skorch.NeuralNet
        The fitted net. Its ``history`` holds, per epoch, the loss, the
        thresholds ``upper`` and ``lower`` used and the fractions of pairs
        selected as positives (``positive_pairs``) and negatives
        (``negative_pairs``), or, in the refinement stage, the cross-entropy
        to the moved partition (``target_cross_entropy``).
    {features_in}

    See Also
    --------
    DEC : Self-training on an autoencoder's embedding.

    Notes
    -----
    :meth:`transform` returns the label features themselves (non-negative,
    unit L2 norm, ``n_clusters`` columns). :meth:`predict_proba` is the label
    feature rescaled to sum to one (the softmax output), restricted to the
    clusters found.

    ``input_shape="auto"`` (this package's addition) gives the
    convolutional network to square one-channel images with 500 or more
    samples per cluster on average, and the fully connected one to
    everything else. With that many images per cluster the convolutional
    network was the more accurate on every image set measured, of
    handwriting and of clothing, except a long tail of class sizes (ten to
    one), where the two were level; with 200 or fewer it was less accurate
    on clothing, objects and faces, level on scikit-learn's digits, and
    more accurate only on 2,000 of MNIST's digits
    (``benchmarks/NOTES.rst``).

    Like :class:`~sklearn.cluster.KMeans`' ``n_init``, but with short
    starts (this package's addition; the paper trains one network). On
    images a start now and then merges two classes in its first epochs and
    does not recover, and the modularity (Newman 2006) of the input's
    neighbour graph ranks such a start low after a few epochs. A merge late
    in training, when the thresholds are wide, lowers the modularity too,
    so the kept start's weights are those of its epoch with the highest
    modularity (scored with batch norm's running statistics). With flat
    features the neighbour stand-ins already steer every start,
    and the choice did not help (``benchmarks/NOTES.rst`` has the figures
    for both).

    The kept partition is then refined by split-and-merge moves (those of
    :class:`AutoencoderKMeans`' ``clustering="auto"``, this package's
    addition): while cutting one cluster in two and joining two others
    raises the modularity of a 10-nearest-neighbour graph, the best such
    move is made. When a move is made, the net trains ``refinement_epochs``
    more epochs (stage ``"refinement"``) on the cross-entropy to the moved
    partition, taken on the stand-ins, so that ``labels_`` and
    :meth:`predict` follow it. The pairwise self-labelling alone often
    leaves two groups sharing two clusters, which the moves repair. On
    flat features the graph is the input's, the one the stand-ins come
    from; the perceptron's hidden layer gave a worse one. On images it is
    the graph of the convolutional network's hidden layer: the pixels' graph
    can rank a better partition lower (on all of MNIST their moves cost
    accuracy), while the network, trained on deformations, places a digit's
    images near one another (see ``benchmarks/NOTES.rst``).

    On flat features a second partition competes with the network's
    (``clustering="auto"``, this package's addition): k-means of a UMAP
    layout of the inputs, N2D's clustering step (McConville et al., 2020)
    applied to the input itself. Both are refined by the moves, and the one
    with the higher modularity of the input's graph is kept; when it is the
    layout's, the refinement epochs teach it to the network, so that
    :meth:`predict` extends it to new samples. Without deformations to
    learn from, the perceptron's pairwise self-labelling on larger data
    (MNIST's 10,000 test digits as flat rows) settles on a partition the
    layout's far exceeds, while on small data sets the two are close; the
    figures are on the benchmarks page.

    A cluster can end up with no training sample (no sample has its largest
    entry there). Such clusters are dropped so that ``labels_`` stays
    ``0..n_clusters_found - 1``: their columns are removed from
    :meth:`predict_proba` (which is renormalised), :meth:`predict` never
    returns them, and a :class:`~sklearn.exceptions.ConvergenceWarning` is
    raised. :meth:`transform` keeps all ``n_clusters`` columns.

    DAC learns from random initialisation, guided at first only by how
    similar the network's outputs are from the start. The stand-ins of
    ``augment`` give it a second guide: with images, their deformations;
    with flat features, their nearest neighbours. Without them, from flat
    features, it can settle with two groups sharing one label feature
    (the evidence is in ``benchmarks/NOTES.rst``). Batch norm runs in evaluation
    mode in ``predict``, so the output for a sample does not depend on the
    others; its statistics are recomputed over the training data with the
    final weights (:func:`recalibrate_batch_norm`), so ``labels_`` matches
    ``predict`` on the training data. They are averaged over batches that
    each take every few samples of the whole training data, so that data
    sorted by class gives the statistics of all its classes.

    {note_sample_weight}

    Here each selected pair ``(i, j)`` weighs ``w_i w_j`` in the batch's
    mean cross-entropy (:func:`pairwise_loss`), as the pairs between ``w_i``
    copies of ``i`` and ``w_j`` copies of ``j`` would, apart from the pairs
    a sample's copies would form with each other. Which pairs are selected,
    the batch normalisation statistics, the neighbour graph and the UMAP
    layout of ``clustering`` do not depend on the weights (a sample of
    positive weight counts once in them); ``cluster_centers_`` are the
    weighted mean label features of the clusters.

    References
    ----------
    {reference_dac}

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DAC
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = DAC(n_clusters=3, hidden_dims=(16,), batch_size=20, eta=0.05,
    ...             random_state=0).fit(X)
    >>> model.labels_.shape
    (60,)
    >>> model.net_.history[0, "upper"], model.net_.history[0, "lower"]
    (0.95, 0.455)
    >>> model.predict_proba(X[:2]).sum(axis=1)
    array([1., 1.])
    """

    _schedule_callbacks = ("threshold_schedule",)

    # Above this many samples, the stand-ins' neighbours are searched among a
    # random subset of this size (read whole), so the search stays linear.
    _neighbour_reference_size = MAX_REFERENCE_SAMPLES

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "hidden_dims": [tuple, list],
        "upper": [Interval(Real, 0, 1, closed="neither")],
        "lower": [Interval(Real, 0, 1, closed="neither")],
        "eta": [Interval(Real, 0, None, closed="neither")],
        "lower_slope": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "augment": ["boolean"],
        "n_neighbors": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "init_epochs": [Interval(Integral, 1, None, closed="left")],
        "refinement_epochs": [Interval(Integral, 0, None, closed="left")],
        "clustering": [StrOptions({"auto", "net", "umap"})],
        "input_shape": [tuple, list, None, StrOptions({"auto"})],
    }

    # input_shape="auto" builds the convolutional network for images with at
    # least this many samples per cluster on average (see Notes).
    _MIN_IMAGES_PER_CLUSTER = 500

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        input_shape: InputShape | Literal["auto"] = "auto",
        input_scaling: Literal["auto"] | None = "auto",
        hidden_dims: HiddenDims = (500, 500, 2000),
        upper: float = 0.95,
        lower: float = 0.455,
        eta: float = 0.009,
        lower_slope: float = 0.1,
        augment: bool = True,
        n_neighbors: IntOrAuto = "auto",
        n_init: IntOrAuto = "auto",
        init_epochs: int = 5,
        refinement_epochs: int = 5,
        clustering: str = "auto",
        max_epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        device: Device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
        callbacks: Callbacks = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        **kwargs: Any,
    ) -> None:
        self.hidden_dims = hidden_dims
        self.upper = upper
        self.lower = lower
        self.eta = eta
        self.lower_slope = lower_slope
        self.augment = augment
        self.n_neighbors = n_neighbors
        self.n_init = n_init
        self.init_epochs = init_epochs
        self.refinement_epochs = refinement_epochs
        self.clustering = clustering
        self.max_epochs = max_epochs
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

    def _check_fit_input(self, X):
        super()._check_fit_input(X)
        if self.lower >= self.upper:
            raise ValueError(
                f"lower={self.lower} must be smaller than upper={self.upper}: "
                "no pair could be selected as both similar and dissimilar."
            )

    def _resolve_input_shape(self, X=None):
        if not _is_auto(self.input_shape):
            super()._resolve_input_shape(X)
        elif X is None:
            # Unpickling a model whose state lacks the private shape: the
            # fit stored what "auto" chose in input_shape_.
            self._input_shape = self.input_shape_
        else:
            n_samples = X.shape[0]
            enough = n_samples >= self._MIN_IMAGES_PER_CLUSTER * self.n_clusters
            self._input_shape = square_image_shape(X) if enough else None
        self.input_shape_ = self._input_shape

    def _build_module(self, n_features, generator):
        """The network, its weights drawn from the CPU ``generator``."""
        from .nn import MLPEncoder

        def build():
            if self._input_shape is not None:
                body = ConvClassifier(self._input_shape, self.n_clusters)
            else:
                body = MLPEncoder(
                    n_features,
                    tuple(self.hidden_dims),
                    self.n_clusters,
                    batch_norm=True,
                )
            return LabelFeatures(body, self.n_clusters)

        return build_module(build, generator)

    def _fit(self, X, y, random_state, sample_weight):
        self._check_batches_of_two("batch normalisation and the pairwise similarities")
        dataset = self._dataset(X, sample_weight)
        # Like IMSAT's n_init: short starts, of which only the one whose
        # partition has the highest modularity of the input's neighbour graph
        # trains on to max_epochs (see the Notes of the class docstring).
        n_init = self._n_init
        start_epochs = self.max_epochs
        if n_init > 1:
            start_epochs = min(self.init_epochs, self.max_epochs)
        neighbours = graph = best = None
        self.start_modularity_ = np.empty(n_init)
        for start in range(n_init):
            stage = "training" if n_init == 1 else f"start {start + 1} of {n_init}"
            net = self._start_net(X, random_state, start_epochs, stage)
            if start == 0 and self.augment and self._input_shape is None:
                # One search serves every start.
                neighbours = self._neighbours(X, random_state)
            net.neighbours_ = neighbours
            net.partial_fit(dataset)
            if graph is None:
                graph = self._input_graph(X, random_state)
            self.start_modularity_[start] = self._partition_modularity(net, X, graph)
            if (
                best is None
                or self.start_modularity_[start] > self.start_modularity_[best]
            ):
                best, self.net_ = start, net
        if self.max_epochs > start_epochs:
            net = self.net_
            net.set_params(stage=f"training of start {best + 1}")
            # The stand-ins are training state, which the end of a training
            # drops.
            net.neighbours_ = neighbours
            if n_init > 1:
                # The choice among starts goes on among the kept start's
                # epochs: a late, wide threshold can merge two classes, which
                # lowers the modularity as well.
                net.epoch_score_ = lambda net: self._partition_modularity(
                    net, X, graph, recalibrate=False
                )
                net.remember_epoch(self.start_modularity_[best])
            net.partial_fit(dataset, epochs=self.max_epochs - start_epochs)
        self.best_epoch_ = self.net_.restore_best_epoch()
        if len(self.net_.history):
            recalibrate_batch_norm(self.net_.module_, X, self.net_.batch_size)
        self._refine(X, dataset, graph, neighbours, random_state)
        self.n_iter_ = len(self.net_.history)
        # The argmax of the scores, as predict computes it: the label feature
        # is their softmax, whose rounding can tie two clusters the scores
        # tell apart. The centres are the mean label features.
        self._kept_clusters = self._set_clusters(
            X, to_numpy(self._scores(X).argmax(dim=1)), sample_weight=sample_weight
        )

    def _refine(self, X, dataset, graph, neighbours, random_state):
        """Train toward the partition split-and-merge moves make of the kept one.

        The kept partition is the net's own or, by ``clustering``, k-means
        of a UMAP layout of the graph's rows (:meth:`_refine_by_moves`). The
        moves act on the input's neighbour graph ``graph`` on flat
        features, and on images on the neighbour graph of the same reference
        rows in the convolutional network's hidden layer
        (:meth:`ConvClassifier.hidden`); when any is made, or the kept
        partition is not the net's, the net trains ``refinement_epochs``
        more epochs on the cross-entropy to the moved partition, taken on
        the same stand-ins as the pairwise loss (see
        :meth:`~skdeepcluster.base.BaseDeepClusterer._refine_by_moves`).
        """
        self.n_split_merge_moves_ = 0
        self.clustering_ = "net"
        if not (self.refinement_epochs and len(self.net_.history)):
            # No refinement asked for, or an untrained net to refine.
            return
        net = self.net_
        if self._input_shape is not None:
            # The pixels' graph can rank a better partition of images lower;
            # the network's hidden layer does not (see Notes).
            hidden = self._batched_eval(
                net.module_, graph.embedding, net.module_.body.hidden
            )
            features = to_numpy(hidden)
            graph = graph._replace(
                adjacency=neighbour_graph(features, SCORING_NEIGHBOURS)
            )
        scores = self._batched_eval(net.module_, graph.embedding, net.module_.scores)
        self.n_split_merge_moves_, self.clustering_ = self._refine_by_moves(
            net,
            dataset,
            graph,
            to_numpy(scores.argmax(dim=1)),
            self._clustering,
            random_state,
            self.refinement_epochs,
            neighbours_=neighbours,
        )
        if self.n_split_merge_moves_ or self.clustering_ != "net":
            # The net trained: its batch norm statistics follow the new weights.
            recalibrate_batch_norm(net.module_, X, net.batch_size)

    def _check_params_vs_input(self, X):
        super()._check_params_vs_input(X)
        if _is_auto(self.n_init):
            # Short starts pay off on images only (see Notes).
            self._n_init = 3 if self._input_shape is not None else 1
        self._clustering = self.clustering
        if self.clustering == "auto" and self._input_shape is not None:
            # On images the moves act on the hidden layer's graph, where a
            # layout of that layer did not help (see benchmarks/NOTES.rst).
            self._clustering = "net"

    def _start_net(self, X, random_state, max_epochs, stage):
        """A freshly initialised net: new weights, its own shuffling seed."""
        net = DACNet(
            self._build_module(X[0].numel(), self._module_generator(random_state)),
            criterion=nn.BCELoss,
            max_epochs=max_epochs,
            augment=(
                random_affine
                if self.augment and self._input_shape is not None
                else None
            ),
            # Batch norm cannot normalise a batch of one sample, and a short
            # last batch would have few pairs: drop it.
            **self._net_kwargs(
                random_state,
                schedule=[
                    (
                        "threshold_schedule",
                        ThresholdSchedule(
                            self.upper, self.lower, self.eta, self.lower_slope
                        ),
                    )
                ],
                stage=stage,
                batch_size=self._training_batch_size(len(X)),
                iterator_train__drop_last=True,
            ),
        )
        net.initialize()
        return net

    def _training_batch_size(self, n_samples):
        """``batch_size``, at most what gives every process a full batch.

        The last, short batch is dropped, and a data-parallel fit
        (``accelerator``) deals the batches out in whole rounds of one per
        process: with fewer than ``processes * batch_size`` samples no
        process would get a batch. An accelerator that splits each batch
        among the processes (``split_batches=True``) needs no such cap.
        """
        accelerator = self._accelerator()
        processes = 1
        if accelerator is not None and not getattr(accelerator, "split_batches", False):
            processes = accelerator.num_processes
        return int(min(self.batch_size, max(2, n_samples // processes)))

    def _partition_modularity(self, net, X, graph, recalibrate=True):
        """Modularity on ``graph`` of the partition ``net`` gives its reference rows."""
        if recalibrate and len(net.history):
            # As at the end of fit: the partition predict would give.
            recalibrate_batch_norm(net.module_, X, net.batch_size)
        scores = self._batched_eval(net.module_, graph.embedding, net.module_.scores)
        return modularity(graph.adjacency, to_numpy(scores.argmax(dim=1)))

    def _neighbours(self, X, random_state):
        """Rows of each training sample's nearest training samples, for the stand-ins."""
        n_samples = len(X)
        if _is_auto(self.n_neighbors):
            n_neighbors = neighbours_within_clusters(n_samples, self.n_clusters)
        else:
            n_neighbors = self.n_neighbors
        candidates = reference_indices(
            n_samples, random_state, self._neighbour_reference_size
        )
        return nearest_neighbours(
            X,
            # At most every other candidate: a sample is not its own neighbour.
            min(n_neighbors, len(candidates) - 1),
            candidates=torch.as_tensor(candidates, device=X.device),
        )

    def _embed(self, X):
        return self._batched_eval(self.net_.module_, X)

    def _scores(self, X):
        """Scores of all ``n_clusters`` outputs (evaluation mode)."""
        module = self.net_.module_
        return self._batched_eval(module, X, module.scores)

    def _kept_scores(self, X):
        return self._kept_columns(self._scores(X))

    def _kept_columns(self, scores):
        """The columns of ``scores`` of the clusters that were kept."""
        return scores[:, torch.as_tensor(self._kept_clusters, device=scores.device)]

    def _predict_proba(self, X):
        # The label feature rescaled to sum to one over the kept clusters is
        # the softmax of their scores; computed from the scores, it cannot
        # underflow to an all-zero row. In float64, so rows sum to 1 closely.
        return torch.softmax(self._kept_scores(X).double(), dim=1)

    def _predict(self, X):
        return self._finite(self._kept_scores(X)).argmax(dim=1)

    def _embed_and_predict(self, X):
        scores = self._finite(self._scores(X))
        return LabelFeatures.features(scores), self._kept_columns(scores).argmax(dim=1)
