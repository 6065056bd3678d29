"""DAC: threshold schedule, pair selection, pairwise loss and outputs."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs, make_classification
from sklearn.exceptions import ConvergenceWarning

from conftest import SHARED_DATA, assert_targets_numbered_after_the_net, fast_estimator
from skdeepcluster import DAC
from skdeepcluster import _dac as dac_module
from skdeepcluster import _input as input_module
from skdeepcluster._dac import (
    ConvClassifier,
    LabelFeatures,
    pairwise_loss,
    random_affine,
    select_pairs,
)
from skdeepcluster._input import square_image_shape
from skdeepcluster.callbacks import threshold_schedule
from skdeepcluster.datasets import load_mnist
from skdeepcluster.metrics import clustering_accuracy


@pytest.fixture(scope="module")
def separated_blobs():
    X, y = make_blobs(
        n_samples=120, centers=3, n_features=6, cluster_std=0.5, random_state=2
    )
    return X.astype(np.float32), y


# -- schedule -------------------------------------------------------------


def test_schedule_paper_defaults():
    schedule = threshold_schedule()
    u, l = np.array(schedule).T
    assert schedule[0] == (0.95, 0.455)
    # lambda grows by 1.1 * 0.009 per epoch: u falls by that, l rises by a tenth.
    np.testing.assert_allclose(np.diff(u), -0.0099)
    np.testing.assert_allclose(np.diff(l), 0.00099)
    # They cross once lambda >= 0.45, i.e. after ceil(0.45 / 0.0099) epochs.
    assert len(schedule) == 46
    assert (u > l).all()


@pytest.mark.parametrize(
    "upper, lower, eta, lower_slope", [(0.9, 0.1, 0.1, 0.0), (0.99, 0.5, 0.02, 1.0)]
)
def test_schedule_monotone_and_stops_when_thresholds_cross(
    upper, lower, eta, lower_slope
):
    schedule = threshold_schedule(upper, lower, eta, lower_slope)
    u, l = np.array(schedule).T
    assert (np.diff(u) < 0).all()
    assert (np.diff(l) >= 0).all()
    assert (u > l).all()
    # One more step would make them cross.
    lam = len(schedule) * eta * (1 + lower_slope)
    assert upper - lam <= lower + lower_slope * lam


def test_schedule_truncated_by_max_epochs():
    assert threshold_schedule(max_epochs=3) == threshold_schedule()[:3]
    assert threshold_schedule(max_epochs=0) == []


def test_net_follows_schedule_and_stops(separated_blobs):
    X, _ = separated_blobs
    model = DAC(
        3,
        hidden_dims=(16,),
        eta=0.1,
        lower_slope=0.5,
        max_epochs=50,
        batch_size=32,
        refinement_epochs=0,
        random_state=0,
    ).fit(X)
    history = model.net_.history
    expected = threshold_schedule(0.95, 0.455, 0.1, 0.5)
    assert model.n_iter_ == len(expected) < 50
    np.testing.assert_allclose(history[:, "upper"], [u for u, _ in expected])
    np.testing.assert_allclose(history[:, "lower"], [l for _, l in expected])
    # Widening the thresholds selects more pairs.
    selected = np.add(history[:, "positive_pairs"], history[:, "negative_pairs"])
    assert selected[-1] > selected[0]


def test_max_epochs_caps_training(separated_blobs):
    X, _ = separated_blobs
    model = DAC(
        3,
        hidden_dims=(16,),
        max_epochs=2,
        batch_size=32,
        refinement_epochs=0,
        random_state=0,
    )
    model.fit(X)
    assert model.n_iter_ == 2
    assert len(model.net_.history) == 2


# -- pair selection and loss ----------------------------------------------


def test_select_pairs_hand_checked():
    similarity = torch.tensor(
        [
            [1.00, 0.97, 0.20, 0.60],
            [0.97, 1.00, 0.50, 0.95],
            [0.20, 0.50, 1.00, 0.10],
            [0.60, 0.95, 0.10, 1.00],
        ]
    )
    positive, negative = select_pairs(similarity, upper=0.95, lower=0.5)
    # Strictly above u; the diagonal is never a pair; 0.95 itself is ignored.
    expected_positive = torch.zeros(4, 4, dtype=torch.bool)
    expected_positive[0, 1] = expected_positive[1, 0] = True
    # Strictly below l; 0.5 and 0.6 are in the ignored band.
    expected_negative = torch.zeros(4, 4, dtype=torch.bool)
    for i, j in [(0, 2), (2, 3)]:
        expected_negative[i, j] = expected_negative[j, i] = True
    assert torch.equal(positive, expected_positive)
    assert torch.equal(negative, expected_negative)


def test_pairwise_loss_hand_checked():
    # Unit, non-negative features: sim(a, b) = 0.8 (positive), sim(a, c) =
    # 0.2 (negative), sim(b, c) = 0.52 (ignored).
    c = [0.2, 0.6, np.sqrt(0.6)]
    features = torch.tensor(
        [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], c], dtype=torch.float32, requires_grad=True
    )
    loss, n_positive, n_negative = pairwise_loss(features, upper=0.7, lower=0.3)
    # Each pair counts twice, (i, j) and (j, i).
    assert (n_positive, n_negative) == (2, 2)
    expected = (2 * -np.log(0.8) + 2 * -np.log(1 - 0.2)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # c only receives the gradient of the (a, c) negative pair (twice, over
    # 4 pairs): d(-log(1 - a.c))/dc = a / (1 - a.c) = a / 0.8, pushing c away
    # from a; the ignored (b, c) pair contributes nothing.
    torch.testing.assert_close(features.grad[2], torch.tensor([0.625, 0.0, 0.0]))


def test_pairs_selected_from_reference():
    # Training on perturbed copies: targets from the reference features,
    # similarities (and gradients) from the features.
    reference = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    features = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8]])
    _, n_positive, n_negative = pairwise_loss(features, 0.9, 0.1, reference)
    assert (n_positive, n_negative) == (2, 4)
    _, n_positive, n_negative = pairwise_loss(features, 0.9, 0.1)
    assert (n_positive, n_negative) == (2, 0)


def test_random_affine_small_deformation():
    torch.manual_seed(0)
    X = torch.zeros(4, 1, 28, 28)
    X[:, :, 10:18, 12:16] = 1
    moved = random_affine(X)
    assert moved.shape == X.shape
    assert not torch.equal(moved, X)
    # Small deformations: most of the ink stays, none appears from nowhere.
    assert ((moved - X).abs().sum((1, 2, 3)) < X.sum((1, 2, 3))).all()
    assert (moved >= 0).all() and (moved <= 1 + 1e-6).all()
    zero = random_affine(X, max_rotation=0.0, max_shift=0.0, scale_range=(1.0, 1.0))
    torch.testing.assert_close(zero, X)


def test_pairwise_loss_with_no_pair_selected_is_zero_with_gradient():
    features = torch.nn.functional.normalize(torch.rand(5, 3), dim=1).requires_grad_()
    loss, n_positive, n_negative = pairwise_loss(features, upper=1.0, lower=0.0)
    assert (n_positive, n_negative) == (0, 0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


def test_label_features_are_unit_non_negative():
    module = LabelFeatures(ConvClassifier((1, 8, 8), 4), 4)
    features = module(torch.randn(6, 1, 8, 8))
    assert features.shape == (6, 4)
    assert (features >= 0).all()
    torch.testing.assert_close(features.norm(dim=1), torch.ones(6))
    similarity = features @ features.T
    assert ((similarity >= 0) & (similarity <= 1 + 1e-6)).all()


def test_batch_norm_statistics_of_every_row_of_sorted_data():
    # Rows sorted by class, as scikit-learn's wine: three groups far apart.
    # Batches taken in this order would each hold one or two groups and
    # drop the rows of the last incomplete batch, most of the last group.
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = torch.repeat_interleave(centres, torch.tensor([59, 71, 48]), dim=0)
    X = X + torch.randn(len(X), 2, generator=torch.Generator().manual_seed(0))
    layer = torch.nn.BatchNorm1d(2, momentum=0.3).eval()
    dac_module.recalibrate_batch_norm(layer, X, 64)
    # Equally weighted batch means of batches of nearly equal sizes over
    # every row: the mean over all rows, and about their variance (a batch
    # misses the spread between the batches' means).
    torch.testing.assert_close(layer.running_mean, X.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(layer.running_var, X.var(0), atol=0, rtol=0.05)
    assert layer.momentum == 0.3
    assert not layer.training


def test_batch_norm_statistics_without_a_batch_of_one_sample():
    # Five rows in batches of at most two would leave one alone, which batch
    # norm cannot normalise: two batches instead.
    layer = torch.nn.BatchNorm1d(2)
    dac_module.recalibrate_batch_norm(layer, torch.randn(5, 2), 2)
    assert layer.num_batches_tracked == 2


# -- estimator ------------------------------------------------------------


def test_clusters_separated_blobs(separated_blobs):
    X, y = separated_blobs
    model = fast_estimator(DAC, n_clusters=3, random_state=0).fit(X)
    # Chance is about 1/3. DAC from random weights can settle with two blobs
    # sharing one label feature, so this only asserts clearly better than
    # chance (at least one blob isolated and the other two mostly apart).
    assert clustering_accuracy(y, model.labels_) > 0.6


def test_outputs_consistent(separated_blobs):
    X, _ = separated_blobs
    model = fast_estimator(DAC, n_clusters=3, random_state=0).fit(X)
    Z = model.transform(X)
    proba = model.predict_proba(X)
    assert Z.shape == (len(X), 3)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, rtol=1e-5)
    # predict_proba is the label feature rescaled to sum to one.
    np.testing.assert_allclose(proba, Z / Z.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_array_equal(proba.argmax(1), model.labels_)
    # Centres are the mean label feature of each cluster.
    for k, center in enumerate(model.cluster_centers_):
        np.testing.assert_allclose(center, Z[model.labels_ == k].mean(0), rtol=1e-5)


def test_empty_clusters_are_dropped(separated_blobs):
    X, _ = separated_blobs
    # Far more clusters than tight blobs, with the untrained network: its
    # output barely varies within a blob, so most entries win nowhere.
    with pytest.warns(ConvergenceWarning, match="empty clusters were removed"):
        model = fast_estimator(DAC, n_clusters=12, max_epochs=0, random_state=0).fit(X)
    n_found = len(model.cluster_centers_)
    assert n_found < 12
    assert set(np.unique(model.labels_)) == set(range(n_found))
    assert model.predict_proba(X).shape == (len(X), n_found)
    assert model.predict(X).max() < n_found
    assert model.transform(X).shape == (len(X), 12)


@pytest.fixture(scope="module")
def two_kinds_of_images():
    # 8x8 images with either the top half or the left half bright.
    rng = np.random.default_rng(0)
    top = np.zeros((8, 8), np.float32)
    top[:4] = 1
    images = np.stack([top, top.T])[np.arange(40) % 2] + rng.normal(0, 0.1, (40, 8, 8))
    return images.reshape(40, 64).astype(np.float32), np.arange(40) % 2


def test_conv_network_on_images(two_kinds_of_images):
    X, y = two_kinds_of_images
    model = DAC(
        2, input_shape=(1, 8, 8), augment=False, eta=0.1, batch_size=20, random_state=0
    ).fit(X)
    assert isinstance(model.net_.module_.body, ConvClassifier)
    assert clustering_accuracy(y, model.labels_) == 1.0


def test_augmentation_only_with_images(
    two_kinds_of_images, separated_blobs, monkeypatch
):
    X, _ = two_kinds_of_images
    seen = []
    original = dac_module.random_affine

    def spy(batch, **kwargs):
        seen.append(batch.shape)
        return original(batch, **kwargs)

    monkeypatch.setattr(dac_module, "random_affine", spy)
    model = DAC(
        2, input_shape=(1, 8, 8), n_init=1, max_epochs=2, batch_size=20, random_state=0
    )
    model.fit(X)
    # Two epochs of two batches, each augmented once.
    assert seen == [(20, 1, 8, 8)] * 4
    assert model.net_.augment is spy
    seen.clear()
    DAC(2, input_shape=(1, 8, 8), augment=False, max_epochs=1, batch_size=20).fit(X)
    DAC(3, max_epochs=1, batch_size=20, hidden_dims=(8,)).fit(separated_blobs[0])
    assert seen == []


def test_flat_samples_trained_on_their_neighbours(separated_blobs, monkeypatch):
    X, _ = separated_blobs
    batches = []
    original = dac_module.DACNet.stand_ins

    def spy(net, batch, indices):
        stand_ins = original(net, batch, indices)
        batches.append((indices.clone(), stand_ins.clone(), net.neighbours_.clone()))
        return stand_ins

    monkeypatch.setattr(dac_module.DACNet, "stand_ins", spy)
    model = DAC(
        3,
        hidden_dims=(8,),
        max_epochs=2,
        batch_size=30,
        refinement_epochs=0,
        random_state=0,
    )
    model.fit(X)
    # 120 samples in 3 clusters: a third of the mean cluster size is 13, capped
    # at 10 neighbours.
    assert len(batches) == 2 * 4
    rows = torch.as_tensor(X)
    for indices, stand_ins, neighbours in batches:
        assert neighbours.shape == (120, 10)
        # Each stand-in is one of the sample's ten nearest other samples.
        distances = torch.cdist(rows[indices], rows)
        distances[torch.arange(len(indices)), indices] = torch.inf
        tenth = distances.sort(dim=1).values[:, 9]
        to_stand_in = torch.cdist(rows[indices], stand_ins).diagonal()
        assert torch.all(to_stand_in <= tenth + 1e-5)
        assert torch.all(to_stand_in > 0)
    # Training state only: the fitted net keeps neither the table nor the data.
    assert not hasattr(model.net_, "neighbours_")
    assert not hasattr(model.net_, "train_samples_")


def test_keeps_the_start_with_the_highest_modularity(two_kinds_of_images):
    from skdeepcluster._graph import modularity, neighbour_graph

    X, _ = two_kinds_of_images
    # Starts as long as the whole fit: the kept network is a finished start.
    model = DAC(
        2,
        input_shape=(1, 8, 8),
        n_init=3,
        init_epochs=2,
        max_epochs=2,
        batch_size=20,
        random_state=0,
    ).fit(X)
    assert model.start_modularity_.shape == (3,)
    graph = neighbour_graph(X, 10)
    assert modularity(graph, model.labels_) == pytest.approx(
        model.start_modularity_.max()
    )


def test_kept_start_trains_on_to_max_epochs(separated_blobs, monkeypatch):
    X, _ = separated_blobs
    calls = []
    original = dac_module.DACNet.stand_ins

    def spy(net, batch, indices):
        calls.append(net)
        return original(net, batch, indices)

    monkeypatch.setattr(dac_module.DACNet, "stand_ins", spy)
    model = DAC(
        3,
        hidden_dims=(8,),
        n_init=2,
        init_epochs=1,
        max_epochs=3,
        batch_size=30,
        # The training of the starts alone, without refinement epochs.
        refinement_epochs=0,
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == 3 == len(model.net_.history)
    assert model.start_modularity_.shape == (2,)
    # Two one-epoch starts, then two more epochs of the kept one, all on
    # neighbour stand-ins (four batches an epoch).
    assert len(calls) == 4 * (2 + 2)
    assert calls[-1] is model.net_
    assert len({id(net) for net in calls}) == 2


def _two_short_starts(X, **params):
    """DAC fitted with two 1-epoch starts, the kept one trained to epoch 5.

    Without refinement epochs, the kept weights are the final ones.
    """
    return DAC(
        3,
        hidden_dims=(8,),
        n_init=2,
        init_epochs=1,
        max_epochs=5,
        batch_size=30,
        refinement_epochs=0,
        random_state=0,
        **params,
    ).fit(X)


def test_kept_start_keeps_its_epoch_with_the_highest_modularity(separated_blobs):
    from skorch.callbacks import Callback

    class RecordWeights(Callback):
        def initialize(self):
            self.weights = {}
            return self

        def on_epoch_end(self, net, **kwargs):
            if net.stage.startswith("training"):
                weights = [p.detach().clone() for p in net.module_.parameters()]
                self.weights[len(net.history)] = weights

    X, _ = separated_blobs
    model = _two_short_starts(X, callbacks=[("record", RecordWeights())])
    history = model.net_.history
    # The kept start's score after its first epoch, then one per epoch.
    scores = {1: model.start_modularity_.max()}
    scores.update({epoch: history[epoch - 1, "modularity"] for epoch in range(2, 6)})
    assert model.best_epoch_ == max(scores, key=scores.get)
    assert model.n_iter_ == 5
    record = dict(model.net_.callbacks_)["record"]
    if model.best_epoch_ > 1:
        for kept, recorded in zip(
            model.net_.module_.parameters(), record.weights[model.best_epoch_]
        ):
            torch.testing.assert_close(kept.detach(), recorded)
    # The scores and the kept weights are training state.
    assert not hasattr(model.net_, "epoch_score_")
    assert not hasattr(model.net_, "best_epoch_state_")


def test_kept_start_keeps_its_own_end_when_no_later_epoch_scores_higher(
    separated_blobs, monkeypatch
):
    # Each score lower than the one before: the first start is kept, and no
    # epoch after it beats the score it was kept with.
    X, _ = separated_blobs
    scores = itertools.count()
    monkeypatch.setattr(
        DAC, "_partition_modularity", lambda *args, **kwargs: -float(next(scores))
    )
    model = _two_short_starts(X)
    assert model.start_modularity_.argmax() == 0
    assert model.best_epoch_ == 1


def test_a_single_start_keeps_its_last_epoch(separated_blobs):
    X, _ = separated_blobs
    model = DAC(
        3,
        hidden_dims=(8,),
        n_init=1,
        max_epochs=3,
        batch_size=30,
        refinement_epochs=0,
        random_state=0,
    ).fit(X)
    assert model.best_epoch_ == model.n_iter_ == 3
    assert "modularity" not in model.net_.history[-1]


# -- input_shape="auto" -------------------------------------------------------


@pytest.fixture(scope="module")
def digit_images():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def test_square_image_shape_recognises_images(digit_images):
    X, _ = digit_images
    assert square_image_shape(X) == (1, 8, 8)
    # Read row by row from a sparse matrix alike.
    assert square_image_shape(sp.csr_matrix(X)) == (1, 8, 8)


def _random_walks(n_samples, n_steps):
    return np.cumsum(np.random.default_rng(0).normal(size=(n_samples, n_steps)), 1)


@pytest.mark.parametrize(
    "make_X",
    [
        # The digits with their pixels shuffled: square, not a pixel layout.
        lambda X: X[:, np.random.default_rng(0).permutation(64)],
        # Tabular features that number a square.
        lambda X: make_classification(500, 64, n_informative=8, random_state=0)[0],
        # A signal of 256 values: smooth along the rows of its square, but
        # alike half a row apart.
        lambda X: _random_walks(500, 256),
        # Not a square number of features.
        lambda X: X[:, :63],
        # Too small to be an image (7 x 7).
        lambda X: X.reshape(-1, 8, 8)[:, :7, :7].reshape(-1, 49),
        # A constant image: no pixel varies.
        lambda X: np.ones((20, 64)),
    ],
    ids=["permuted", "tabular", "signal", "not-square", "7x7", "constant"],
)
def test_square_image_shape_rejects_other_features(digit_images, make_X):
    X, _ = digit_images
    assert square_image_shape(make_X(X)) is None


@pytest.mark.parametrize(
    "limits, n_read",
    [
        (dict(_IMAGE_TEST_ROWS=100), 100),
        # Large images: fewer rows, as many as make about the values allowed.
        (dict(_IMAGE_TEST_VALUES=64 * 50), 50),
    ],
)
def test_square_image_shape_reads_evenly_spaced_rows(
    digit_images, monkeypatch, limits, n_read
):
    X, _ = digit_images
    read = []

    class Rows:
        shape = X.shape

        def __getitem__(self, rows):
            read.append(rows)
            return X[rows]

    for name, value in limits.items():
        monkeypatch.setattr(input_module, name, value)
    assert square_image_shape(Rows()) == (1, 8, 8)
    (rows,) = read
    assert len(rows) == n_read and rows[0] == 0 and rows[-1] == len(X) - 1
    assert np.ptp(np.diff(rows)) <= 1


@pytest.mark.parametrize("min_per_cluster, expected", [(20, (1, 8, 8)), (300, None)])
def test_auto_input_shape_needs_images_enough_per_cluster(
    digit_images, monkeypatch, min_per_cluster, expected
):
    X, _ = digit_images
    X = X[:600]  # 200 per cluster
    monkeypatch.setattr(DAC, "_MIN_IMAGES_PER_CLUSTER", min_per_cluster)
    model = DAC(
        3, max_epochs=1, n_init=1, refinement_epochs=0, batch_size=100, random_state=0
    ).fit(X)
    assert model.input_shape_ == expected
    body = model.net_.module_.body
    assert isinstance(body, ConvClassifier) == (expected is not None)


def test_auto_input_shape_trains_as_the_shape_given(digit_images, monkeypatch):
    # "auto" builds exactly the estimator of the shape it chose: the same
    # starts, stand-ins and refinement, the same labels.
    X, _ = digit_images
    X = X[:400]
    monkeypatch.setattr(DAC, "_MIN_IMAGES_PER_CLUSTER", 20)
    params = dict(max_epochs=2, init_epochs=1, refinement_epochs=1, batch_size=100)
    auto = DAC(4, random_state=0, **params).fit(X)
    given = DAC(4, input_shape=(1, 8, 8), random_state=0, **params).fit(X)
    assert auto.input_shape_ == given.input_shape_ == (1, 8, 8)
    assert auto.start_modularity_.shape == (3,)
    np.testing.assert_array_equal(auto.labels_, given.labels_)
    np.testing.assert_array_equal(auto.predict(X[:50]), given.predict(X[:50]))


def test_auto_input_shape_keeps_flat_features(separated_blobs, monkeypatch):
    X, _ = separated_blobs
    monkeypatch.setattr(DAC, "_MIN_IMAGES_PER_CLUSTER", 1)
    model = fast_estimator(DAC, n_clusters=3, random_state=0).fit(X)
    assert model.input_shape_ is None


def test_inference_keeps_the_fitted_input_shape(digit_images, monkeypatch):
    X, _ = digit_images
    monkeypatch.setattr(DAC, "_MIN_IMAGES_PER_CLUSTER", 20)
    model = DAC(
        3, max_epochs=1, n_init=1, refinement_epochs=0, batch_size=100, random_state=0
    ).fit(X[:300])
    labels = model.predict(X[:300])
    model.set_params(input_shape=None)
    np.testing.assert_array_equal(model.predict(X[:300]), labels)


@pytest.mark.parametrize("input_shape, expected", [((1, 8, 8), 3), (None, 1)])
def test_auto_starts_only_for_images(two_kinds_of_images, input_shape, expected):
    X, _ = two_kinds_of_images
    model = DAC(
        2,
        input_shape=input_shape,
        hidden_dims=(8,),
        max_epochs=1,
        batch_size=20,
        random_state=0,
    ).fit(X)
    assert model.start_modularity_.shape == (expected,)


@pytest.mark.parametrize(
    "n_samples, n_clusters, params, expected",
    [
        (120, 3, {}, 10),
        (400, 40, {}, 3),
        (20, 10, {}, 1),
        (120, 3, dict(n_neighbors=4), 4),
        # Never more than the other samples.
        (6, 2, dict(n_neighbors=50), 5),
    ],
)
def test_number_of_neighbours(n_samples, n_clusters, params, expected):
    X = torch.as_tensor(np.random.RandomState(0).rand(n_samples, 3))
    model = DAC(n_clusters, **params)
    neighbours = model._neighbours(X, np.random.RandomState(0))
    assert neighbours.shape == (n_samples, expected)


def test_neighbours_searched_among_a_subset_above_the_cap(monkeypatch):
    monkeypatch.setattr(DAC, "_neighbour_reference_size", 50)
    X = torch.as_tensor(np.random.RandomState(0).rand(200, 3))
    neighbours = DAC(2, n_neighbors=5)._neighbours(X, np.random.RandomState(0))
    assert neighbours.shape == (200, 5)
    assert len(torch.unique(neighbours)) <= 50


def test_no_neighbour_stand_ins_without_augment(separated_blobs, monkeypatch):
    X, _ = separated_blobs

    def fail(*args, **kwargs):
        raise AssertionError("stand-ins used with augment=False")

    monkeypatch.setattr(dac_module.DACNet, "stand_ins", fail)
    DAC(3, augment=False, hidden_dims=(8,), max_epochs=1, batch_size=30).fit(X)


def test_reproducible(separated_blobs):
    X, _ = separated_blobs
    first = fast_estimator(DAC, n_clusters=3, random_state=3).fit(X)
    second = fast_estimator(DAC, n_clusters=3, random_state=3).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    other = fast_estimator(DAC, n_clusters=3, random_state=4).fit(X)
    assert not np.array_equal(first.transform(X), other.transform(X))


# -- the partition the refinement starts from (clustering) -----------------


@pytest.mark.parametrize("clustering", ["umap", "auto"])
def test_net_trained_toward_the_input_layout_when_it_is_kept(
    known_layout, separated_blobs, clustering
):
    # With "auto", the layout's partition more modular than the net's.
    X, layout, calls = known_layout(
        DAC, separated_blobs, win=True if clustering == "auto" else None
    )
    model = fast_estimator(
        DAC,
        n_clusters=3,
        max_epochs=2,
        refinement_epochs=30,
        clustering=clustering,
        # On the samples themselves: neighbour stand-ins blur the cut.
        augment=False,
        random_state=0,
    ).fit(X)
    assert len(calls) == 1
    # The graph the moves act on: the input's, over every training sample.
    np.testing.assert_array_equal(np.sort(calls[0][0].reference), np.arange(len(X)))
    assert model.clustering_ == "umap"
    assert model.n_split_merge_moves_ == 0
    # No move, yet the net trained toward the layout's partition.
    assert model.n_iter_ == 32
    assert model.net_.stage == "refinement"
    assert clustering_accuracy(layout, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_refinement_targets_numbered_after_the_net(
    known_layout, separated_blobs, refinement_targets
):
    # The layout's k-means numbers its clusters in any order; trained toward
    # as numbered, they would move whole clusters from output to output.
    X, _, _ = known_layout(DAC, separated_blobs)
    fast_estimator(
        DAC,
        n_clusters=3,
        max_epochs=2,
        refinement_epochs=2,
        clustering="umap",
        random_state=0,
    ).fit(X)
    assert_targets_numbered_after_the_net(refinement_targets)


@pytest.mark.parametrize(
    "params",
    [
        # On images the moves act on the hidden layer's graph: "auto" keeps
        # the net's partition.
        dict(input_shape=(1, 2, 3), n_init=1),
        # No refinement, no other partition to learn.
        dict(refinement_epochs=0),
        dict(clustering="net"),
    ],
)
def test_no_input_layout(known_layout, separated_blobs, params):
    X, _, calls = known_layout(DAC, separated_blobs)
    model = fast_estimator(
        DAC, n_clusters=3, max_epochs=2, random_state=0, **params
    ).fit(X)
    assert calls == []
    assert model.clustering_ == "net"


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(lower=0.9, upper=0.5), "lower=0.9 must be smaller than upper=0.5"),
        (dict(lower=0.5, upper=0.5), "must be smaller than upper"),
        (dict(upper=1.5), "upper"),
        (dict(lower=0.0), "lower"),
        (dict(eta=0.0), "eta"),
        (dict(lower_slope=-1.0), "lower_slope"),
        (dict(max_epochs=-1), "max_epochs"),
        (dict(n_neighbors=0), "n_neighbors"),
        (dict(n_neighbors="many"), "n_neighbors"),
        (dict(n_init=0), "n_init"),
        (dict(init_epochs=0), "init_epochs"),
        (dict(clustering="kmeans"), "clustering"),
    ],
)
def test_bad_params(separated_blobs, params, match):
    X, _ = separated_blobs
    with pytest.raises(ValueError, match=match):
        fast_estimator(DAC, **params).fit(X)


def test_needs_two_samples():
    with pytest.raises(ValueError, match="n_samples >= 2"):
        DAC(1).fit(np.ones((1, 3)))


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA / "mnist_test.npz").exists(), reason="real MNIST not found"
)
def test_mnist_images_beat_raw_kmeans():
    # Direction guard only (minutes on a CPU); the accuracy bar is
    # measured with benchmarks/run.py.
    X, y = load_mnist("test", path=SHARED_DATA, return_X_y=True)
    raw = clustering_accuracy(y, KMeans(10, n_init=10, random_state=0).fit_predict(X))
    # The default reads the pixels as 28x28 images: 1,000 a class.
    model = DAC(10, random_state=0)
    labels = model.fit_predict(X)
    assert model.input_shape_ == (1, 28, 28)
    assert clustering_accuracy(y, labels) > raw + 0.05
