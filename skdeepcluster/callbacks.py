"""The training schedules of the methods, as skorch callbacks.

Each estimator installs the schedule callbacks of a stage as named callbacks
of the skorch net that trains it; passing a callback under the same name in
the estimator's ``callbacks`` replaces the default one (see the user guide's
training control page):

* :class:`NeighbourRefresh`, named ``"neighbour_refresh"``: the
  pretraining stage of every autoencoder estimator;
* :class:`DECTargetUpdate`, ``"target_update"``: the clustering stage of
  :class:`~skdeepcluster.DEC`;
* :class:`ThresholdSchedule`, ``"threshold_schedule"``:
  :class:`~skdeepcluster.DAC`;
* :class:`TemperatureAnnealing`, ``"temperature_annealing"``, and
  :class:`PseudoLabelRefresh`, ``"pseudo_label_refresh"``: the pretraining
  stage of :class:`~skdeepcluster.SNNLKMeans`.

A schedule callback keeps its own bookkeeping (the labels at the last
refresh, a k-means seed) and sets the state the net's loss reads on the net
it is called with (``net.target_``, ``net.upper_``, ...); it does not train
anything itself. Like skorch's :class:`~skorch.callbacks.EarlyStopping`, its
parameters are set in ``__init__``, its state in ``on_train_begin``, and it
decides at ``on_epoch_begin`` or ``on_epoch_end``; to end training it calls
``net.stop_before_next_epoch()``, which lets the epoch under way finish.

The nets are fed the training data as a dataset whose ``X`` attribute is the
whole training tensor, which the callbacks read in ``on_train_begin``
(``X``) and at each epoch (``dataset_train``).
When ``fit`` is given unequal sample weights, the nets hold them, scaled to
a mean of one, as ``net.sample_weight_`` while they train (``None`` for
equal weights), and the callbacks that count samples (DEC's target and
label change, the pseudo-labels' k-means) weigh them.
"""

import numpy as np
import torch
from skorch.callbacks import Callback

from ._docstrings import fill_doc
from ._graph import reference_indices
from ._torch_utils import fit_kmeans, nearest_neighbours, to_numpy, weighted_mean

__all__ = [
    "DECTargetUpdate",
    "NeighbourRefresh",
    "PseudoLabelRefresh",
    "TemperatureAnnealing",
    "ThresholdSchedule",
]

#: Labelled samples among which :class:`PseudoLabelRefresh` looks for each
#: sample's nearest one (a random subset above this number), which keeps a
#: refresh linear in the number of samples.
MAX_LABELLED_REFERENCE = 10_000


def _sample_weight(net):
    """The weights of the samples ``net`` trains on; ``None`` for equal weights.

    The skdeepcluster nets hold them while they train (scaled to a mean of
    one); a net without them weighs its samples equally.
    """
    return getattr(net, "sample_weight_", None)


# -- DEC ----------------------------------------------------------------------


def target_distribution(q, weight=None):
    """DEC's auxiliary target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')``.

    Squaring sharpens each row towards its most confident cluster, and
    dividing by the soft cluster frequency ``f_j = sum_i q_ij`` keeps large
    clusters from absorbing the others. With sample weights ``w``, the
    frequency is ``f_j = sum_i w_i q_ij``, as if sample ``i`` appeared
    ``w_i`` times.

    Parameters
    ----------
    q : torch.Tensor of shape (n_samples, n_clusters)
        Soft assignments; rows sum to one.
    weight : torch.Tensor of shape (n_samples,), default=None
        Sample weights; ``None`` weighs the samples equally.

    Returns
    -------
    p : torch.Tensor of shape (n_samples, n_clusters)
        Rows sum to one.
    """
    frequency = q.sum(dim=0) if weight is None else weight @ q
    sharpened = q.pow(2) / frequency
    return sharpened / sharpened.sum(dim=1, keepdim=True)


@fill_doc
class DECTargetUpdate(Callback):
    """Refresh DEC's target distribution and stop when the labels settle.

    DEC [1]_ trains the encoder and the centres to minimise ``KL(P || Q)``,
    where ``Q`` are the Student's t soft assignments of the samples to the
    centres and ``P`` the sharpened target
    ``p_ij ∝ q_ij^2 / sum_i q_ij``, which favours confident assignments and
    penalises large clusters. ``P`` is
    held fixed between refreshes: it is computed from ``Q`` over all the
    training data when training begins and again at the end of every
    ``update_interval``-th epoch, and set on the net as ``net.target_``
    (one row per training sample).

    At each refresh the fraction of samples whose most likely cluster
    changed since the previous refresh is recorded in the net's history as
    ``label_change``; when it is below ``tol``, training stops before the
    next epoch (the paper's convergence criterion).

    When the net trains on weighted samples (``sample_weight`` in DEC's
    ``fit``; the net holds the weights as ``net.sample_weight_``, ``None``
    for equal weights), the soft cluster frequencies of the target are
    weighted sums, ``f_j = sum_i w_i q_ij``, and ``label_change`` is the
    changed samples' share of the total weight.

    With ``initial_epochs`` and a net that holds ``initial_assignments_``
    (the start partition, one cluster per training sample), the target is
    that partition itself, one-hot, for the first ``initial_epochs`` epochs;
    the first refresh from ``Q`` follows them, and its ``label_change`` is
    measured against the start partition. With ``initial_lr`` those epochs
    train at that rate in place of the net's ``lr`` (every parameter group
    scaled alike), and the optimiser's rates are restored after them; a
    divergence in them names the parameter ``initial_lr_name``.

    This is the default ``"target_update"`` callback of the clustering
    stage of :class:`~skdeepcluster.DEC`, built from its
    ``initial_partition_epochs``, ``update_interval`` and ``tol``.

    Parameters
    ----------
    update_interval : int, default=1
        Epochs between two refreshes of the target.
    tol : float, default=1e-3
        Stop when fewer than this fraction of the samples changed cluster
        between two refreshes (0.1 % in [1]_). ``0`` never stops.
    initial_epochs : int, default=0
        Epochs during which the target is the net's ``initial_assignments_``,
        one-hot, when it has them. ``0`` starts from ``Q``, as in [1]_.
    initial_lr : float, default=None
        Learning rate of those epochs in place of the net's ``lr``;
        ``None`` keeps the net's.
    initial_lr_name : str, default="lr"
        The estimator's parameter that sets ``initial_lr``, which the error
        raised when those epochs diverge asks to lower.

    Attributes
    ----------
    labels_ : torch.Tensor of shape (n_samples,) or None
        The most likely cluster of each sample at the last refresh; ``None``
        outside training.

    References
    ----------
    {reference_dec}

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DEC
    >>> from skdeepcluster.callbacks import DECTargetUpdate
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = DEC(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...             pretrain_epochs=5, clustering_epochs=6, random_state=0,
    ...             callbacks=[("target_update", DECTargetUpdate(3, tol=0))])
    >>> [row.get("label_change") is not None for row in model.fit(X).net_.history]
    [False, False, True, False, False, True]
    """

    def __init__(
        self,
        update_interval=1,
        tol=1e-3,
        initial_epochs=0,
        initial_lr=None,
        initial_lr_name="lr",
    ):
        self.update_interval = update_interval
        self.tol = tol
        self.initial_epochs = initial_epochs
        self.initial_lr = initial_lr
        self.initial_lr_name = initial_lr_name

    def refresh(self, net, X):
        """Set ``net.target_`` from the net's current ``Q`` on ``X``.

        Parameters
        ----------
        net : skorch.NeuralNet
            DEC's clustering net; ``net.soft_assignments(X)`` gives ``Q``,
            and ``net.sample_weight_``, when set, the samples' weights.
        X : torch.Tensor of shape (n_samples, ...)
            The training samples.

        Returns
        -------
        labels : torch.Tensor of shape (n_samples,)
            The most likely cluster of each sample under ``Q``.
        """
        q = net.soft_assignments(X)
        net.target_ = target_distribution(q, _sample_weight(net))
        return q.argmax(dim=1)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        initial = getattr(net, "initial_assignments_", None)
        self.held_epochs_ = self.initial_epochs if initial is not None else 0
        self.rates_ = None
        self.stopped_ = None
        if not self.held_epochs_:
            self.labels_ = self.refresh(net, X.X)
            return
        # The start partition as the target: the network learns to make it
        # its own nearest-centre partition before self-training sharpens Q.
        self.labels_ = torch.as_tensor(initial, dtype=torch.long, device=net.device)
        n_clusters = net.module_.centers.shape[0]
        net.target_ = torch.nn.functional.one_hot(self.labels_, n_clusters).float()
        if self.initial_lr is not None:
            groups = net.optimizer_.param_groups
            self.rates_ = [group["lr"] for group in groups]
            for group in groups:
                group["lr"] *= self.initial_lr / net.lr
            self.lr_name_, net.lr_name = net.lr_name, self.initial_lr_name

    def _restore_rates(self, net):
        """Give the optimiser back the rates it had before the held epochs."""
        if getattr(self, "rates_", None) is None:
            return
        for group, rate in zip(net.optimizer_.param_groups, self.rates_):
            group["lr"] = rate
        net.lr_name = self.lr_name_
        self.rates_ = None

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        epoch = len(net.history) - self.held_epochs_
        if epoch == 0:
            self._restore_rates(net)
        if epoch < 0 or epoch % self.update_interval:
            return
        labels = self.refresh(net, dataset_train.X)
        # The fraction of samples that changed cluster, by weight.
        changed = (labels != self.labels_).float()
        change = weighted_mean(changed, _sample_weight(net)).item()
        self.labels_ = labels
        net.history.record("label_change", change)
        if change < self.tol:
            self.stopped_ = (len(net.history), change)
            net.stop_before_next_epoch()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Training stopped within the held epochs: the rates are restored
        # all the same, for a later partial_fit.
        self._restore_rates(net)
        stopped = self.stopped_
        if stopped is not None:
            # Said after the table's last row, where the table goes: why the
            # stage ended early.
            name = getattr(net, "estimator_name", type(net).__name__)
            message = (
                f"{name}: stopped after epoch {stopped[0]}: {stopped[1]:.2%} of "
                f"the samples changed cluster, below tol={self.tol:g}"
            )
            if hasattr(net, "say"):
                net.say(message)
            elif getattr(net, "verbose", 0):
                # A plain skorch net.
                print(message)
        self.stopped_ = None
        # Per-sample state, not kept (nor pickled) with the fitted net.
        self.labels_ = None


# -- DAC ----------------------------------------------------------------------


def thresholds_after(n_steps, upper, lower, eta, lower_slope):
    """Thresholds ``(u, l)`` after ``n_steps`` epochs of :func:`threshold_schedule`.

    ``lambda = n_steps * eta * (1 + lower_slope)``, ``u = upper - lambda``
    and ``l = lower + lower_slope * lambda``; valid while ``u > l``.

    Examples
    --------
    >>> from skdeepcluster.callbacks import thresholds_after
    >>> thresholds_after(0, 0.95, 0.455, 0.009, 0.1)
    (0.95, 0.455)
    """
    lam = n_steps * eta * (1.0 + lower_slope)
    return upper - lam, lower + lower_slope * lam


def threshold_schedule(
    upper=0.95, lower=0.455, eta=0.009, lower_slope=0.1, max_epochs=None
):
    """Thresholds ``(u, l)`` of DAC's adaptive schedule, one pair per epoch.

    The values :class:`ThresholdSchedule` sets, epoch after epoch, listed in
    advance (see there for the schedule); the list ends before the first
    epoch with ``u <= l``.

    Parameters
    ----------
    upper, lower : float, default=0.95, 0.455
        Thresholds of the first epoch, ``lower < upper``.
    eta : float, default=0.009
        Step size of ``lambda``.
    lower_slope : float, default=0.1
        How fast ``l`` rises relative to how fast ``u`` falls.
    max_epochs : int, default=None
        Truncate the schedule to this many epochs.

    Returns
    -------
    thresholds : list of tuple of float
        ``(u, l)`` of each epoch, in order.

    Examples
    --------
    >>> from skdeepcluster.callbacks import threshold_schedule
    >>> schedule = threshold_schedule()
    >>> len(schedule), schedule[0]
    (46, (0.95, 0.455))
    """
    thresholds = []
    epoch = 0
    while max_epochs is None or epoch < max_epochs:
        u, l = thresholds_after(epoch, upper, lower, eta, lower_slope)
        if u <= l:
            break
        thresholds.append((u, l))
        epoch += 1
    return thresholds


class ThresholdSchedule(Callback):
    """DAC's adaptive selection thresholds, widened every epoch.

    DAC [1]_ labels a pair of samples "same cluster" when the similarity of
    their label features is above an upper threshold ``u``, "different"
    when it is below a lower threshold ``l``, and leaves it out otherwise.
    It writes the thresholds as functions of an adaptive parameter
    ``lambda``: ``u(lambda) = upper - lambda`` and
    ``l(lambda) = lower + lower_slope * lambda``, and adds ``u - l`` to its
    objective. Each epoch is one gradient step of size ``eta`` on
    ``lambda``, i.e. ``lambda += eta * (1 + lower_slope)``, so the selection
    of training pairs widens linearly (:meth:`thresholds` gives the pair of
    any epoch).

    The thresholds of the current epoch are set on the net as ``net.upper_``
    and ``net.lower_`` (when training begins, and at the end of each epoch
    for the next one), and each epoch's pair is recorded in the history as
    ``upper`` and ``lower``. Training stops before the first epoch with
    ``u <= l``.

    This is the default ``"threshold_schedule"`` callback of
    :class:`~skdeepcluster.DAC`, built from its ``upper``, ``lower``, ``eta``
    and ``lower_slope``.

    Parameters
    ----------
    upper : float, default=0.95
        Upper threshold of the first epoch.
    lower : float, default=0.455
        Lower threshold of the first epoch.
    eta : float, default=0.009
        Step size of ``lambda`` per epoch.
    lower_slope : float, default=0.1
        How fast ``l`` rises relative to how fast ``u`` falls.

    References
    ----------
    .. [1] Chang, J., Wang, L., Meng, G., Xiang, S. and Pan, C. (2017).
       "Deep Adaptive Image Clustering". ICCV.

    Examples
    --------
    >>> from skdeepcluster.callbacks import ThresholdSchedule
    >>> ThresholdSchedule().thresholds(0)
    (0.95, 0.455)
    """

    def __init__(self, upper=0.95, lower=0.455, eta=0.009, lower_slope=0.1):
        self.upper = upper
        self.lower = lower
        self.eta = eta
        self.lower_slope = lower_slope

    @fill_doc
    def thresholds(self, epoch):
        """Thresholds of an epoch.

        Parameters
        ----------
        {epoch}

        Returns
        -------
        upper, lower : float
            ``u`` and ``l`` of that epoch; training stops before the first
            epoch where ``upper <= lower``.
        """
        return thresholds_after(
            epoch, self.upper, self.lower, self.eta, self.lower_slope
        )

    def _set_thresholds(self, net, epoch):
        """Set ``net.upper_`` and ``net.lower_``; stop training once they cross.

        A net training toward given targets (DAC's refinement stage) selects
        no pairs, so the crossing does not stop it.
        """
        net.upper_, net.lower_ = self.thresholds(epoch)
        refining = getattr(net, "has_targets", lambda: False)()
        if net.upper_ <= net.lower_ and not refining:
            net.stop_before_next_epoch()

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self._set_thresholds(net, len(net.history))

    def on_epoch_end(self, net, **kwargs):
        net.history.record("upper", net.upper_)
        net.history.record("lower", net.lower_)
        self._set_thresholds(net, len(net.history))


# -- SNNL ---------------------------------------------------------------------


@fill_doc
def annealed_temperature(epoch, decay):
    """Temperature ``1 / (1 + epoch) ** decay`` of Agarap & Azcarraga (2020).

    Parameters
    ----------
    {epoch}
    decay : float
        Exponent; ``0`` keeps the temperature at 1.

    Returns
    -------
    float

    Examples
    --------
    >>> from skdeepcluster.callbacks import annealed_temperature
    >>> annealed_temperature(0, 0.55), round(annealed_temperature(3, 0.5), 3)
    (1.0, 0.5)
    """
    return TemperatureAnnealing(decay=decay).temperature(epoch)


@fill_doc
class TemperatureAnnealing(Callback):
    """Lower the soft nearest neighbour loss's temperature epoch by epoch.

    Agarap & Azcarraga [1]_ anneal the temperature of the soft nearest
    neighbour loss [2]_ as ``T = initial / (1 + epoch) ** decay`` (with
    ``initial=1``), so that the loss first compares each sample with many
    neighbours and then with fewer and fewer, pulling the classes apart
    progressively. ``decay=0`` keeps the temperature at ``initial``.

    At the start of every epoch the temperature is set on the net as
    ``net.temperature_`` and recorded in the history as ``temperature``.

    This is the default ``"temperature_annealing"`` callback of the
    pretraining stage of :class:`~skdeepcluster.SNNLKMeans`: with
    ``temperature="annealed"`` it anneals from 1 with
    ``decay=temperature_decay``; with a number ``T`` it keeps
    ``initial=T``, ``decay=0``.

    Parameters
    ----------
    initial : float, default=1.0
        Temperature of the first epoch.
    decay : float, default=0.55
        Exponent of the decrease.

    References
    ----------
    {reference_snnl}

    Examples
    --------
    >>> from skdeepcluster.callbacks import TemperatureAnnealing
    >>> [round(TemperatureAnnealing(decay=1.0).temperature(e), 2) for e in range(4)]
    [1.0, 0.5, 0.33, 0.25]
    """

    def __init__(self, initial=1.0, decay=0.55):
        self.initial = initial
        self.decay = decay

    @fill_doc
    def temperature(self, epoch):
        """Temperature of an epoch.

        Parameters
        ----------
        {epoch}

        Returns
        -------
        temperature : float
            ``initial / (1 + epoch) ** decay``.
        """
        try:
            return self.initial / (1.0 + epoch) ** self.decay
        except OverflowError:
            # A large decay: the temperature underflows, and the net reports
            # the term's divergence, naming the temperature.
            return 0.0

    def on_epoch_begin(self, net, **kwargs):
        net.temperature_ = self.temperature(len(net.history) - 1)
        net.history.record("temperature", net.temperature_)


class PseudoLabelRefresh(Callback):
    """Label the unlabelled samples from the current embedding, every epoch.

    The soft nearest neighbour loss of :class:`~skdeepcluster.SNNLKMeans`
    needs a label per sample. From epoch ``start`` (zero-based) on, at the
    start of every epoch, the samples without a given label are labelled
    from the encoder's current embedding, and the labels are set on the net
    as ``net.labels_`` (one per training sample; the given ones, read from
    ``net.given_labels``, are kept):

    * when no label is given, by k-means with ``n_clusters`` clusters; the
      first refresh restarts it ``n_init`` times from k-means++, or takes
      the partition ``init`` gives when it is a callable (the partition the
      loss then holds on to); later ones warm-start from the previous
      refresh's centres;
    * otherwise by k-means seeded with the mean embedding of each given
      class ("seeded k-means" [1]_), so that each cluster keeps its seed's
      class. A sample keeps its pseudo-label only when its nearest labelled
      sample in the embedding has that label too; the others stay
      unlabelled (``-1``) until a later refresh, so that the loss does not
      learn the errors k-means makes near class boundaries. The fraction of
      unlabelled samples that got a pseudo-label is recorded in the history
      as ``pseudo_labelled``. This agreement test is this package's
      addition (see the benchmarks page).

    From the second refresh on, the fraction of labels that changed is
    recorded in the history as ``label_change``. Nothing is done when every
    sample has a given label. When the net trains on weighted samples
    (``net.sample_weight_``, see :class:`DECTargetUpdate`), the k-means runs
    and the seeds' class means are weighted.

    This is the default ``"pseudo_label_refresh"`` callback of the
    pretraining stage of :class:`~skdeepcluster.SNNLKMeans` (with
    ``pseudo_labels=True``), built from its ``n_clusters``, ``n_init`` and
    ``warmup_epochs``.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of k-means clusters when no label is given.
    start : int, default=0
        First epoch (zero-based) with pseudo-labels.
    n_init : int, default=10
        Number of k-means++ restarts of the first refresh when no label is
        given.
    init : "k-means" or callable, default="k-means"
        The first refresh's partition when no label is given. ``"k-means"``:
        k-means with ``n_init`` restarts. A callable is called as
        ``init(Z, seed, sample_weight)`` with the embedding of the training
        samples (a tensor), the refresh's ``seed_`` and the samples' weights
        (``None`` when equal), and returns ``(labels, centers)``: one label
        per sample in ``range(n_clusters)`` and the centres the next
        refresh's k-means starts from. :class:`~skdeepcluster.SNNLKMeans`
        passes the partition :class:`~skdeepcluster.AutoencoderKMeans` keeps
        with ``clustering="auto"`` (its ``init="auto"``).

    Attributes
    ----------
    seed_ : int
        Seed of the k-means runs, drawn from the net's ``device_generator``
        when training begins (so that it follows the estimator's
        ``random_state``).
    centers_ : ndarray of shape (n_clusters, n_components) or None
        The centres of the last refresh; ``None`` before the first and
        after training.
    labelled_reference_ : ndarray of int or None
        The labelled samples searched for each sample's nearest one (all of
        them up to :data:`MAX_LABELLED_REFERENCE`, a random subset drawn
        from ``seed_`` above); ``None`` before the first refresh with given
        labels and after training.

    References
    ----------
    .. [1] Basu, S., Banerjee, A. and Mooney, R. J. (2002). "Semi-supervised
       clustering by seeding". ICML.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import SNNLKMeans
    >>> from skdeepcluster.callbacks import PseudoLabelRefresh
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> refresh = PseudoLabelRefresh(n_clusters=3, start=2, n_init=1)
    >>> model = SNNLKMeans(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...                    pretrain_epochs=5, warmup_epochs=2, random_state=0,
    ...                    callbacks=[("pseudo_label_refresh", refresh)]).fit(X)
    >>> ["label_change" in row for row in model.net_.history]
    [False, False, False, True, True]
    """

    def __init__(self, n_clusters=8, start=0, n_init=10, init="k-means"):
        self.n_clusters = n_clusters
        self.start = start
        self.n_init = n_init
        self.init = init

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        # From the net's own generator: drawing it from the estimator's
        # random_state would change the batch order relative to
        # AutoencoderKMeans.
        generator = getattr(net, "device_generator", None)
        self.seed_ = int(
            torch.randint(
                np.iinfo(np.int32).max,
                (),
                generator=generator,
                device=None if generator is None else generator.device,
            )
        )
        self.centers_ = None
        self.labelled_reference_ = None
        if not (
            callable(self.init)
            or (isinstance(self.init, str) and self.init == "k-means")
        ):
            raise ValueError(
                f"PseudoLabelRefresh's init must be 'k-means' or a callable, "
                f"got {self.init!r}."
            )

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        epoch = len(net.history) - 1
        given = net.given_labels
        n_given = 0 if given is None else int((given >= 0).sum())
        if epoch < self.start or n_given >= len(net.labels_):
            return
        previous = net.labels_
        net.labels_ = self.pseudo_labels(net, dataset_train.X).to(net.device)
        if epoch > self.start:
            change = (net.labels_ != previous).float().mean().item()
            net.history.record("label_change", change)

    def pseudo_labels(self, net, X):
        """Labels of the training samples from the net's current embedding.

        Parameters
        ----------
        net : skorch.NeuralNet
            The training net; ``net.embed(X)`` gives the embedding,
            ``net.given_labels`` the given labels (``-1`` for none) or
            ``None``, and ``net.sample_weight_``, when set, the samples'
            weights.
        X : torch.Tensor of shape (n_samples, ...)
            The training samples.

        Returns
        -------
        labels : torch.Tensor of shape (n_samples,)
            The given label of each labelled sample, the pseudo-label of the
            others.
        """
        from ._snnl import seeded_kmeans

        Z = net.embed(X)
        given = net.given_labels
        if given is None:
            # The first partition is the one the soft nearest neighbour term
            # then holds on to; later refreshes warm-start from its centres.
            if self.centers_ is None and callable(self.init):
                # A k-means partition of an embedding whose classes are
                # curved strands splits some and merges others, which the
                # term then learns; a partition of the neighbour graph
                # follows the strands.
                labels, centers = self._initial_partition(Z, net)
                self.centers_ = centers
                return torch.as_tensor(labels, device=Z.device)
            # k-means gets as many k-means++ restarts as the final k-means
            # (a single restart often splits one class and merges two).
            init = self.centers_
            kmeans = fit_kmeans(
                Z,
                self.n_clusters,
                n_init=self.n_init if init is None else 1,
                random_state=self.seed_,
                init="k-means++" if init is None else init,
                sample_weight=_sample_weight(net),
            )
            self.centers_ = kmeans.cluster_centers_
            pseudo = torch.as_tensor(kmeans.labels_, device=Z.device)
        else:
            # Seeded k-means: each cluster keeps the class it was seeded
            # with, and the labelled samples keep their own label. Simpler
            # rules (the nearest labelled class mean) ignore the unlabelled
            # samples' own structure, and label spreading over a k-NN graph
            # collapses to a few classes when refreshed during training.
            given = given.to(Z.device)
            kmeans = seeded_kmeans(Z, given, _sample_weight(net))
            pseudo = torch.as_tensor(kmeans.labels_, device=Z.device)
            # Only the pseudo-labels that the nearest labelled sample
            # confirms are kept; the others are left out of the loss until a
            # later refresh agrees. The loss holds on to whatever labels it
            # is given, so a wrong pseudo-label near a class boundary would
            # be learnt rather than corrected.
            nearest = self._nearest_given_labels(Z, given)
            unconfirmed = torch.full_like(pseudo, -1)
            pseudo = torch.where(pseudo == nearest, pseudo, unconfirmed)
            unlabelled = given < 0
            net.history.record(
                "pseudo_labelled", (pseudo[unlabelled] >= 0).float().mean().item()
            )
            pseudo = torch.where(unlabelled, pseudo, given)
        return pseudo.long()

    def _initial_partition(self, Z, net):
        """``init(Z, seed, sample_weight)``, checked: int labels and float centres."""
        labels, centers = self.init(Z, self.seed_, _sample_weight(net))
        # A user's callable may return tensors, on Z's device or not.
        labels = to_numpy(torch.as_tensor(labels))
        centers = to_numpy(torch.as_tensor(centers))
        if labels.shape != (len(Z),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"PseudoLabelRefresh's init must return one integer label per "
                f"sample, shape ({len(Z)},); got {labels.dtype} labels of "
                f"shape {labels.shape}."
            )
        if labels.min() < 0 or labels.max() >= self.n_clusters:
            raise ValueError(
                f"PseudoLabelRefresh's init must return labels in "
                f"range({self.n_clusters}); got labels from {labels.min()} "
                f"to {labels.max()}."
            )
        expected = (self.n_clusters, Z.shape[1])
        if centers.shape != expected or not np.isfinite(centers).all():
            raise ValueError(
                f"PseudoLabelRefresh's init must return finite centres of "
                f"shape {expected}; got shape {centers.shape}."
            )
        return labels.astype(np.int64), centers

    def _nearest_given_labels(self, Z, given):
        """Label of each row's nearest labelled row of ``Z`` (itself excluded).

        The labelled rows searched are at most :data:`MAX_LABELLED_REFERENCE`,
        drawn once per training from ``seed_``, so that a refresh costs time
        linear in the number of samples.
        """
        if self.labelled_reference_ is None:
            labelled = np.flatnonzero(to_numpy(given) >= 0)
            kept = reference_indices(
                len(labelled),
                np.random.RandomState(self.seed_),
                MAX_LABELLED_REFERENCE,
            )
            self.labelled_reference_ = labelled[kept]
        reference = self.labelled_reference_
        if len(reference) < 2:
            # A single labelled sample is everyone's nearest.
            return given[torch.as_tensor(reference, device=given.device)].expand(len(Z))
        nearest = nearest_neighbours(Z, 1, candidates=reference)[:, 0]
        return given[nearest]

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.centers_ = None
        self.labelled_reference_ = None


# -- neighbourhood smoothing --------------------------------------------------


def neighbourhood_targets(Z, n_neighbors, normalize=False, candidates=None):
    """Smoothing targets: each row of ``Z`` halfway to its neighbours' mean.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_components)
        Embeddings.
    n_neighbors : int
        Number of nearest other rows averaged (at most ``n_samples - 1``).
    normalize : bool, default=False
        Rescale the targets to unit length.
    candidates : array-like of int of shape (n_candidates,), default=None
        Distinct rows of ``Z`` among which the neighbours are searched;
        ``None`` searches all rows.

    Returns
    -------
    targets : torch.Tensor of shape (n_samples, n_components) or None
        ``None`` when fewer than two rows are searched.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.callbacks import neighbourhood_targets
    >>> neighbourhood_targets(torch.tensor([[0.0], [2.0], [10.0]]), 1)
    tensor([[1.],
            [1.],
            [6.]])
    """
    n_searched = len(Z) if candidates is None else len(candidates)
    n_neighbors = min(n_neighbors, n_searched - 1)
    if n_neighbors < 1:
        return None
    neighbours = nearest_neighbours(Z, n_neighbors, candidates=candidates)
    targets = (Z + Z[neighbours].mean(dim=1)) / 2
    if normalize:
        targets = torch.nn.functional.normalize(targets, dim=1)
    return targets


class NeighbourRefresh(Callback):
    """Recompute the neighbourhood smoothing targets at the start of every epoch.

    The autoencoder estimators can add a neighbourhood smoothing term,
    ``smoothing_weight * mean_i ||z_i - t_i||^2``, to the reconstruction
    loss of their pretraining. The target ``t_i`` is halfway between the
    sample's current embedding and the mean embedding of its
    ``n_neighbors`` nearest neighbours (rescaled to unit length with
    ``normalize``), recomputed from the whole training set at the start of
    every epoch from epoch ``start`` (zero-based) on, and held fixed during
    the epoch. Each epoch thus asks the encoder for one mean-shift step
    [1]_: samples move towards the dense middle of their neighbourhood, and
    clusters that reconstruction laid out as long, thin shapes contract into
    the compact blobs k-means assumes, while reconstruction keeps the
    embedding from collapsing.

    The targets are set on the net as ``net.smoothing_targets_`` (one row
    per training sample). The neighbours are searched among the net's
    ``neighbour_candidates`` when it has them (the estimators draw 10,000
    training samples once per fit on larger data), among all training
    samples otherwise. The callback does nothing on a net whose
    ``smoothing_weight`` is 0.

    This is the default ``"neighbour_refresh"`` callback of the pretraining
    stage of every autoencoder estimator (:class:`~skdeepcluster.AutoencoderKMeans`,
    :class:`~skdeepcluster.ACAIKMeans`, :class:`~skdeepcluster.SNNLKMeans`,
    :class:`~skdeepcluster.DEC`, :class:`~skdeepcluster.DCN`), built from
    their ``n_neighbors``, ``smoothing_start`` (as a fraction of the
    pretraining epochs) and ``normalize_embedding``.

    Parameters
    ----------
    n_neighbors : int, default=10
        Number of neighbours averaged.
    start : int, default=0
        First epoch (zero-based) with smoothing targets.
    normalize : bool, default=False
        Rescale the targets to unit length, for an encoder whose embedding
        has unit length.

    References
    ----------
    .. [1] Comaniciu, D. and Meer, P. (2002). "Mean shift: a robust
       approach toward feature space analysis". IEEE Transactions on
       Pattern Analysis and Machine Intelligence, 24(5).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import AutoencoderKMeans
    >>> from skdeepcluster.callbacks import NeighbourRefresh
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = AutoencoderKMeans(
    ...     n_clusters=3, hidden_dims=(16,), embedding_dim=2, pretrain_epochs=4,
    ...     smoothing_weight=1.0, random_state=0,
    ...     callbacks=[("neighbour_refresh", NeighbourRefresh(5, start=1))],
    ... ).fit(X)
    >>> ["smoothing_loss" in row["batches"][0] for row in model.net_.history]
    [False, True, True, True]
    """

    def __init__(self, n_neighbors=10, start=0, normalize=False):
        self.n_neighbors = n_neighbors
        self.start = start
        self.normalize = normalize

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        epoch = len(net.history) - 1
        if net.smoothing_weight > 0 and epoch >= self.start:
            net.smoothing_targets_ = self.targets(net, dataset_train.X)

    def targets(self, net, X):
        """Smoothing targets of the training samples under the net's encoder.

        Parameters
        ----------
        net : skorch.NeuralNet
            The training net; ``net.embed(X)`` gives the embedding.
        X : torch.Tensor of shape (n_samples, ...)
            The training samples.

        Returns
        -------
        targets : torch.Tensor of shape (n_samples, n_components) or None
            Each sample's embedding moved halfway to the mean embedding of
            its ``n_neighbors`` nearest neighbours; ``None`` for a single
            sample.
        """
        Z = net.embed(X).flatten(start_dim=1)
        # The net's candidates (drawn once per fit on large data) bound the
        # search; without them it is exact.
        candidates = getattr(net, "neighbour_candidates", None)
        return neighbourhood_targets(
            Z, self.n_neighbors, self.normalize, candidates=candidates
        )


# The name each estimator installs a schedule callback under (see the module
# docstring); a callback passed under one of these names replaces it.
SCHEDULE_NAMES = {
    DECTargetUpdate: "target_update",
    NeighbourRefresh: "neighbour_refresh",
    PseudoLabelRefresh: "pseudo_label_refresh",
    TemperatureAnnealing: "temperature_annealing",
    ThresholdSchedule: "threshold_schedule",
}
