"""The schedule callbacks on their own, and as the estimators' replaceable defaults.

Each schedule callback is driven here through skorch's hooks on a stand-in
net that has only what the callback reads (a history, the embedding or the
soft assignments) and records what it sets, so that its values can be
checked epoch by epoch against the formulas of the papers.
"""

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from skorch.callbacks import Callback
from skorch.history import History

from conftest import fast_estimator
from skdeepcluster import DAC, DEC, AutoencoderKMeans, SNNLKMeans
from skdeepcluster.callbacks import (
    DECTargetUpdate,
    NeighbourRefresh,
    PseudoLabelRefresh,
    TemperatureAnnealing,
    ThresholdSchedule,
    target_distribution,
)


class StubNet:
    """What the schedule callbacks use of a net, with a stop flag to inspect."""

    def __init__(self, **attributes):
        self.history = History()
        self.device = "cpu"
        self.stop_requested = False
        self.stopped_at = None
        vars(self).update(attributes)

    def stop_before_next_epoch(self):
        if not self.stop_requested:
            self.stopped_at = len(self.history)
        self.stop_requested = True


def train(callback, net, X, max_epochs, on_epoch=None):
    """Run skorch's hook sequence for up to ``max_epochs`` epochs.

    Stops, as :class:`~skdeepcluster._nets.ClusteringNet` does, at the start
    of the epoch after a stop was requested. ``on_epoch(net)`` runs in the
    middle of every epoch (where the batches would be).
    """
    dataset = SimpleNamespace(X=X)
    callback.initialize()
    callback.on_train_begin(net, X=dataset)
    for _ in range(max_epochs):
        if net.stop_requested:
            break
        net.history.new_epoch()
        callback.on_epoch_begin(net, dataset_train=dataset)
        if on_epoch is not None:
            on_epoch(net)
        callback.on_epoch_end(net, dataset_train=dataset)
    callback.on_train_end(net, X=dataset)
    return net


def column(net, key):
    return [row.get(key) for row in net.history]


# -- ThresholdSchedule --------------------------------------------------------


def test_threshold_schedule_values_over_epochs():
    # u = upper - lambda and l = lower + lower_slope * lambda, lambda growing
    # by eta * (1 + lower_slope) a step: here u falls by 0.12 and l rises by
    # 0.06 an epoch, so u > l for epochs 0..2 only (0.59 <= 0.63 at epoch 3).
    callback = ThresholdSchedule(upper=0.95, lower=0.45, eta=0.08, lower_slope=0.5)
    seen = []
    net = train(
        callback,
        StubNet(),
        torch.zeros(4, 1),
        max_epochs=20,
        on_epoch=lambda net: seen.append((net.upper_, net.lower_)),
    )
    expected = [(0.95 - 0.12 * e, 0.45 + 0.06 * e) for e in range(3)]
    np.testing.assert_allclose(seen, expected)
    np.testing.assert_allclose(column(net, "upper"), [u for u, _ in expected])
    np.testing.assert_allclose(column(net, "lower"), [l for _, l in expected])
    # The stop is requested at the end of the last epoch with u > l.
    assert net.stopped_at == 3
    assert callback.thresholds(3)[0] <= callback.thresholds(3)[1]


def test_threshold_schedule_stops_before_training_when_thresholds_cross():
    net = train(
        ThresholdSchedule(upper=0.5, lower=0.6), StubNet(), torch.zeros(4, 1), 5
    )
    assert net.stopped_at == 0
    assert len(net.history) == 0


# -- DECTargetUpdate ----------------------------------------------------------


def _soft_assignments(labels_per_call, n_clusters=2):
    """A stand-in for DECNet.soft_assignments: Q peaked on the given labels."""
    calls = iter(labels_per_call)

    def soft_assignments(X):
        labels = torch.as_tensor(next(calls))
        q = torch.full((len(labels), n_clusters), 0.1)
        q[torch.arange(len(labels)), labels] = 0.9
        return q

    return soft_assignments


def test_dec_target_update_stops_when_assignments_stop_changing():
    # Train-begin refresh, then one refresh per epoch: half the samples
    # change cluster at epoch 1, one in eight at epoch 2, none at epoch 3.
    labels = [
        [0, 0, 0, 0, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0, 1, 1],
        [1, 1, 1, 0, 0, 0, 1, 1],
        [1, 1, 1, 0, 0, 0, 1, 1],
    ]
    net = StubNet(soft_assignments=_soft_assignments(labels))
    train(DECTargetUpdate(update_interval=1, tol=0.1), net, torch.zeros(8, 1), 10)
    assert column(net, "label_change") == [0.5, 0.125, 0.0]
    assert net.stopped_at == 3


def test_dec_target_update_refreshes_every_update_interval_epochs():
    labels = [[0, 1, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1]]
    targets = []
    net = StubNet(soft_assignments=_soft_assignments(labels))
    train(
        DECTargetUpdate(update_interval=2, tol=0.0),
        net,
        torch.zeros(4, 1),
        6,
        on_epoch=lambda net: targets.append(net.target_),
    )
    assert column(net, "label_change") == [None, 0.25, None, 0.25, None, 0.0]
    # P is held fixed between refreshes, and is DEC's sharpened target of Q.
    assert targets[0] is targets[1] and targets[2] is targets[3]
    assert targets[1] is not targets[2]
    q = _soft_assignments(labels[1:2])(None)
    torch.testing.assert_close(targets[2], target_distribution(q))
    # tol=0 never stops, even when nothing changes.
    assert not net.stop_requested


def test_dec_target_update_keeps_no_per_sample_state():
    labels = [[0, 1, 0, 1]] * 3
    callback = DECTargetUpdate()
    train(callback, StubNet(soft_assignments=_soft_assignments(labels)), None, 1)
    assert callback.labels_ is None


def test_dec_target_update_weighs_the_samples():
    # The net's sample weights (mean one): the label change is the changed
    # samples' share of the weight, and the target's cluster frequencies are
    # weighted. Sample 0 (weight 2.5) changes at epoch 1, sample 3 (weight
    # 0.5) at epoch 2: 0.625 and 0.125, where counting samples would give
    # 0.25 twice and not stop at tol=0.2.
    labels = [[0, 0, 1, 1], [1, 0, 1, 1], [1, 0, 1, 0]]
    weight = torch.tensor([2.5, 0.5, 0.5, 0.5])
    targets = []
    net = StubNet(soft_assignments=_soft_assignments(labels), sample_weight_=weight)
    train(
        DECTargetUpdate(update_interval=1, tol=0.2),
        net,
        torch.zeros(4, 1),
        2,
        on_epoch=lambda net: targets.append(net.target_),
    )
    assert column(net, "label_change") == [0.625, 0.125]
    assert net.stopped_at == 2
    q = _soft_assignments(labels[1:2])(None)
    torch.testing.assert_close(targets[1], target_distribution(q, weight))
    assert not torch.allclose(targets[1], target_distribution(q))


# -- TemperatureAnnealing -----------------------------------------------------


@pytest.mark.parametrize("initial, decay", [(1.0, 0.55), (2.0, 1.0), (0.3, 0.0)])
def test_temperature_annealing_values(initial, decay):
    seen = []
    net = train(
        TemperatureAnnealing(initial, decay),
        StubNet(),
        torch.zeros(4, 1),
        6,
        on_epoch=lambda net: seen.append(net.temperature_),
    )
    expected = [initial / (1 + epoch) ** decay for epoch in range(6)]
    np.testing.assert_allclose(seen, expected)
    np.testing.assert_allclose(column(net, "temperature"), expected)
    assert seen == sorted(seen, reverse=True)


# -- PseudoLabelRefresh -------------------------------------------------------


@pytest.fixture
def three_groups():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 20)
    Z = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])[truth]
    Z = Z + rng.normal(scale=0.3, size=Z.shape)
    return torch.as_tensor(Z, dtype=torch.float32), truth


def _labelling_net(Z, given=None):
    labels = torch.full((len(Z),), -1) if given is None else given.clone()
    return StubNet(embed=lambda X: Z, given_labels=given, labels_=labels)


def test_pseudo_labels_start_at_start_and_follow_the_embedding(three_groups):
    Z, truth = three_groups
    seen = []
    torch.manual_seed(0)
    net = train(
        PseudoLabelRefresh(n_clusters=3, start=2, n_init=2),
        _labelling_net(Z),
        Z,
        5,
        on_epoch=lambda net: seen.append(net.labels_.clone()),
    )
    # Unlabelled until epoch 2, then k-means' partition of the embedding.
    assert (seen[0] == -1).all() and (seen[1] == -1).all()
    assert adjusted_rand_score(truth, seen[2].numpy()) == 1.0
    # The change is recorded from the second refresh on; the warm-started
    # k-means keeps the partition of a fixed embedding.
    assert column(net, "label_change") == [None, None, None, 0.0, 0.0]


def test_pseudo_labels_keep_the_given_labels(three_groups):
    Z, truth = three_groups
    given = torch.full((len(Z),), -1)
    labelled = np.arange(0, len(Z), 5)
    given[labelled] = torch.as_tensor(truth[labelled])
    torch.manual_seed(0)
    net = train(PseudoLabelRefresh(start=0), _labelling_net(Z, given), Z, 1)
    # Seeded k-means: cluster k is the given class k, for every sample.
    np.testing.assert_array_equal(net.labels_.numpy(), truth)


def test_pseudo_labels_weigh_the_samples(three_groups):
    # The refresh's k-means is weighted by the net's sample weights: its
    # centres are the weighted means of the three groups, which differ from
    # the plain means as the weights vary within each group.
    Z, truth = three_groups
    weight = torch.linspace(0.2, 1.8, len(Z))
    callback = PseudoLabelRefresh(n_clusters=3, start=0, n_init=2)
    net = _labelling_net(Z)
    net.sample_weight_ = weight
    centres = []
    torch.manual_seed(0)
    train(callback, net, Z, 1, on_epoch=lambda net: centres.append(callback.centers_))
    assert adjusted_rand_score(truth, net.labels_.numpy()) == 1.0
    found = centres[0][net.labels_.numpy()[[0, 20, 40]]]
    groups = [truth == k for k in range(3)]
    weighted = [np.average(Z[g], axis=0, weights=weight[g]) for g in groups]
    np.testing.assert_allclose(found, weighted, rtol=1e-5, atol=1e-5)
    plain = [Z[g].mean(dim=0).numpy() for g in groups]
    assert np.abs(found - plain).max() > 1e-2


def test_seeded_pseudo_labels_need_the_nearest_labelled_sample_to_agree():
    # Two groups on a line, at 0-1 and 10-11, labelled by one sample each,
    # and a class-1 sample labelled at 3. The unlabelled sample at 2.8 is
    # nearer the class-0 centre, but its nearest labelled sample is of
    # class 1: it gets no pseudo-label. Every other sample agrees.
    position = np.concatenate(
        [np.linspace(0, 1, 10), np.linspace(10, 11, 10), [3.0, 2.8]]
    )
    Z = torch.as_tensor(position[:, None], dtype=torch.float32)
    given = torch.full((len(Z),), -1)
    given[[0, 10, 20]] = torch.tensor([0, 1, 1])
    net = train(PseudoLabelRefresh(start=0), _labelling_net(Z, given), Z, 1)
    expected = np.array([0] * 10 + [1] * 10 + [1, -1])
    np.testing.assert_array_equal(net.labels_.numpy(), expected)
    assert column(net, "pseudo_labelled") == [pytest.approx(18 / 19)]


def test_seeded_pseudo_labels_weigh_the_samples(three_groups, monkeypatch):
    # With given labels, the seeded k-means gets the net's sample weights.
    import skdeepcluster._snnl

    Z, truth = three_groups
    given = torch.full((len(Z),), -1)
    given[::5] = torch.as_tensor(truth[::5])
    weight = torch.linspace(0.2, 1.8, len(Z))
    received = []
    seeded_kmeans = skdeepcluster._snnl.seeded_kmeans

    def recording(Z, labels, sample_weight=None):
        received.append(sample_weight)
        return seeded_kmeans(Z, labels, sample_weight)

    monkeypatch.setattr(skdeepcluster._snnl, "seeded_kmeans", recording)
    net = _labelling_net(Z, given)
    net.sample_weight_ = weight
    train(PseudoLabelRefresh(start=0), net, Z, 1)
    assert len(received) == 1 and received[0] is weight
    np.testing.assert_array_equal(net.labels_.numpy(), truth)


def test_pseudo_labels_leave_fully_labelled_data_alone(three_groups):
    Z, truth = three_groups
    given = torch.as_tensor(truth)
    given[0] = 2  # a wrong label, which a refresh would overwrite
    torch.manual_seed(0)
    net = train(PseudoLabelRefresh(start=0), _labelling_net(Z, given), Z, 2)
    torch.testing.assert_close(net.labels_, given)
    assert column(net, "label_change") == [None, None]


# -- NeighbourRefresh ---------------------------------------------------------


def test_neighbour_refresh_sets_targets_from_start_on():
    Z = torch.tensor([[0.0, 1.0], [0.0, 3.0], [0.0, 10.0]])
    seen = []
    train(
        NeighbourRefresh(n_neighbors=1, start=2),
        StubNet(embed=lambda X: Z, smoothing_weight=0.5, smoothing_targets_=None),
        Z,
        4,
        on_epoch=lambda net: seen.append(net.smoothing_targets_),
    )
    assert seen[:2] == [None, None]
    # Each point halfway to its nearest neighbour.
    expected = torch.tensor([[0.0, 2.0], [0.0, 2.0], [0.0, 6.5]])
    for targets in seen[2:]:
        torch.testing.assert_close(targets, expected)


def test_neighbour_refresh_normalizes_and_skips_an_unweighted_net():
    Z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    net = StubNet(embed=lambda X: Z, smoothing_weight=1.0, smoothing_targets_=None)
    targets = NeighbourRefresh(n_neighbors=2, normalize=True).targets(net, Z)
    np.testing.assert_allclose(targets.norm(dim=1), 1.0, rtol=1e-6)
    unweighted = StubNet(
        embed=lambda X: Z, smoothing_weight=0.0, smoothing_targets_=None
    )
    train(NeighbourRefresh(), unweighted, Z, 2)
    assert unweighted.smoothing_targets_ is None


# -- replacing a default schedule callback ------------------------------------

STAGES = []


class RecordingTargetUpdate(DECTargetUpdate):
    """DEC's target update that records the stages it was installed in."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        STAGES.append(net.stage)
        super().on_train_begin(net, X=X, y=y, **kwargs)


def test_user_callback_replaces_the_default_by_name(blobs):
    X, _ = blobs
    STAGES.clear()
    replacement = RecordingTargetUpdate(update_interval=2, tol=0.0)
    model = fast_estimator(
        DEC,
        n_clusters=3,
        clustering_epochs=5,
        callbacks=[("target_update", replacement)],
        random_state=0,
    ).fit(X)
    callbacks = dict(model.net_.callbacks_)
    # A copy of the user's callback took the default's place, in the
    # clustering stage only (the pretraining net has no target to update).
    assert isinstance(callbacks["target_update"], RecordingTargetUpdate)
    assert callbacks["target_update"] is not replacement
    assert STAGES == ["clustering"]
    assert [name for name, _ in model.net_.callbacks_].count("target_update") == 1
    # Its schedule ran instead of DEC's update_interval=1 and tol=1e-3:
    # refreshes every second epoch, and all clustering epochs (tol=0).
    assert model.n_iter_ == 5
    assert [("label_change" in row) for row in model.net_.history] == [
        False,
        True,
        False,
        True,
        False,
    ]


def test_schedule_callback_parameters_by_keyword(blobs):
    # skorch's syntax for a named callback's parameter works on the defaults.
    X, _ = blobs
    model = fast_estimator(
        DAC,
        n_clusters=3,
        max_epochs=3,
        callbacks__threshold_schedule__upper=0.9,
        random_state=0,
    ).fit(X)
    assert model.net_.history[0, "upper"] == 0.9
    assert model.net_.history[0, "lower"] == model.lower


def test_replacement_of_a_disabled_default_is_installed(blobs):
    # With pseudo_labels=False SNNLKMeans installs no pseudo-labelling; a
    # callback of that name is installed all the same.
    X, _ = blobs
    model = fast_estimator(
        SNNLKMeans,
        n_clusters=3,
        pseudo_labels=False,
        callbacks=[("pseudo_label_refresh", PseudoLabelRefresh(3, start=2))],
        random_state=0,
    ).fit(X)
    assert "label_change" in model.net_.history[-1]
    assert (
        "label_change"
        not in (
            fast_estimator(
                SNNLKMeans, n_clusters=3, pseudo_labels=False, random_state=0
            )
            .fit(X)
            .net_.history[-1]
        )
    )


def test_removing_a_schedule_the_loss_needs_fails_clearly(blobs):
    X, _ = blobs
    model = fast_estimator(
        DEC, n_clusters=3, callbacks=[("target_update", None)], random_state=0
    )
    with pytest.raises(RuntimeError, match="target_.*schedule callback"):
        model.fit(X)


def test_schedule_name_the_estimator_does_not_use_is_rejected(blobs):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        callbacks=[("target_update", DECTargetUpdate())],
    )
    with pytest.raises(ValueError, match="no schedule callback named 'target_update'"):
        model.fit(X)
    model = fast_estimator(DAC, n_clusters=3, callbacks__target_update__tol=0.0)
    with pytest.raises(ValueError, match="no schedule callback named 'target_update'"):
        model.fit(X)


def test_named_pairs_may_be_lists(blobs):
    # skorch accepts [name, callback] as well as (name, callback).
    X, _ = blobs
    model = fast_estimator(
        DAC,
        n_clusters=3,
        max_epochs=2,
        callbacks=[["threshold_schedule", ThresholdSchedule(upper=0.8)]],
        random_state=0,
    ).fit(X)
    assert model.net_.history[0, "upper"] == 0.8


# -- callbacks that cannot be deep-copied -------------------------------------


class LockedCounter(Callback):
    """Holds a lock once initialised: no deep copy, but a clone works."""

    def __init__(self, step=1):
        self.step = step

    def initialize(self):
        self.lock_ = threading.Lock()
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        with self.lock_:
            self.epochs_ += self.step


class Sink:
    def __init__(self):
        self.lock = threading.Lock()
        self.epochs = 0


class SharedSink(Callback):
    """Its parameter holds a lock: neither deep-copied nor cloned."""

    def __init__(self, sink):
        self.sink = sink

    def on_epoch_end(self, net, **kwargs):
        with self.sink.lock:
            self.sink.epochs += 1


def test_callbacks_that_cannot_be_copied_do_not_break_fit(blobs):
    X, _ = blobs
    # Already initialised (used elsewhere before), so it holds its lock.
    counter, sink = LockedCounter().initialize(), Sink()
    shared = SharedSink(sink)
    model = fast_estimator(
        DEC, n_clusters=3, callbacks=[counter, shared], random_state=0
    ).fit(X)
    callbacks = dict(model.net_.callbacks_)
    # Rebuilt from its parameters for each net: the instance passed is
    # untouched and the fitted net's copy counted its own stage only.
    assert callbacks["LockedCounter"] is not counter
    assert counter.epochs_ == 0
    assert callbacks["LockedCounter"].epochs_ == model.n_iter_
    # Shared by every net: it saw the epochs of both stages.
    assert callbacks["SharedSink"] is shared
    assert sink.epochs == len(model.pretrain_history_) + model.n_iter_


def test_progress_table_initialize_returns_itself():
    # skorch's convention for callbacks' initialize, which the table overrides.
    from skdeepcluster._nets import StagePrintLog

    table = StagePrintLog()
    assert table.initialize() is table
