"""IMSAT: loss terms, perturbations, batch norm handling and outputs."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors

from conftest import assert_targets_numbered_after_the_net, fast_estimator
from skdeepcluster import IMSAT
from skdeepcluster._imsat import (
    IMSATNet,
    _kth_neighbour_distance,
    entropy_terms,
    frozen_batch_norm_statistics,
    kl_divergence,
    random_direction,
    vat_direction,
)
from skdeepcluster.metrics import clustering_accuracy


@pytest.fixture(scope="module")
def four_blobs():
    X, y = make_blobs(
        n_samples=200, centers=4, n_features=6, cluster_std=1.0, random_state=1
    )
    return X.astype(np.float32), y


# -- loss terms ------------------------------------------------------------


def test_entropy_terms_hand_checked():
    # p_1 = [1/2, 1/2], p_2 = [1, 0]: H(p_1) = log 2, H(p_2) = 0, so
    # H(Y|X) = log(2) / 2; the mean prediction is [3/4, 1/4], so
    # H(Y) = -(3/4) log(3/4) - (1/4) log(1/4).
    logits = torch.tensor([[0.0, 0.0], [0.0, -1e4]])
    marginal, conditional = entropy_terms(logits)
    assert conditional.item() == pytest.approx(math.log(2) / 2, rel=1e-6)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert marginal.item() == pytest.approx(expected, rel=1e-6)


def test_entropy_terms_extremes():
    # Confident and balanced: H(Y) = log K, H(Y|X) = 0.
    logits = 1e4 * torch.eye(3)
    marginal, conditional = entropy_terms(logits)
    assert marginal.item() == pytest.approx(math.log(3), rel=1e-6)
    assert conditional.item() == pytest.approx(0.0, abs=1e-6)
    # Everything in one cluster: H(Y) = 0, with a finite gradient.
    logits = torch.tensor([[1e4, 0.0, 0.0]] * 4, requires_grad=True)
    marginal, _ = entropy_terms(logits)
    marginal.backward()
    assert marginal.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(logits.grad).all()


def test_kl_divergence_hand_checked():
    p = torch.tensor([[0.5, 0.5]])
    q = torch.tensor([[0.25, 0.75]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p.log(), q.log()).item() == pytest.approx(expected, rel=1e-6)
    assert kl_divergence(q.log(), q.log()).item() == pytest.approx(0.0, abs=1e-7)


def test_loss_combines_terms_with_lam_and_mu():
    net = IMSATNet(torch.nn.Linear(2, 2), criterion=torch.nn.KLDivLoss, lam=0.3, mu=2.0)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    marginal, conditional = entropy_terms(logits)
    loss = net.get_loss(logits, torch.arange(3), training=False)
    assert loss.item() == pytest.approx(-0.3 * (marginal - 2.0 * conditional).item())


# -- perturbations ---------------------------------------------------------


def test_random_direction_has_unit_norm_per_sample():
    torch.manual_seed(0)
    d = random_direction(torch.zeros(5, 2, 3, 3))
    torch.testing.assert_close(d.flatten(1).norm(dim=1), torch.ones(5))


@pytest.mark.parametrize("augmentation", ["vat", "rpt"])
def test_perturbation_norm_equals_radius(augmentation):
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )
    net = IMSATNet(
        module, criterion=torch.nn.KLDivLoss, augmentation=augmentation
    ).initialize()
    X = torch.randn(6, 4)
    radius = torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0, 0.0])
    r = net.perturbation(X, net.module_(X), radius)
    torch.testing.assert_close(r.norm(dim=1), radius)


def test_vat_direction_finds_the_sensitive_input():
    # The prediction depends on the first input only, so the direction that
    # changes it most is +-e_1 for every sample.
    torch.manual_seed(0)
    weight = torch.tensor([[3.0, 0.0, 0.0], [-3.0, 0.0, 0.0]])

    def forward(x):
        return x @ weight.T

    X = torch.randn(8, 3)
    d = vat_direction(forward, X, forward(X), xi=1e-3)
    torch.testing.assert_close(d[:, 0].abs(), torch.ones(8))
    # A random direction is not aligned with it.
    assert (random_direction(X)[:, 0].abs() < 0.99).all()


def test_vat_increases_divergence_more_than_random():
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4)
    )
    X = torch.randn(64, 10)
    logits = module(X).detach()
    vat = vat_direction(module, X, logits, xi=1e-2)
    rand = random_direction(X)
    radius = 0.5
    assert kl_divergence(logits, module(X + radius * vat)) > 2 * kl_divergence(
        logits, module(X + radius * rand)
    )


def test_frozen_batch_norm_keeps_running_statistics():
    bn = torch.nn.BatchNorm1d(3)
    bn(torch.randn(16, 3) + 5.0)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    count = bn.num_batches_tracked.clone()
    with frozen_batch_norm_statistics(bn):
        out = bn(torch.randn(16, 3) - 7.0)
    # Still normalised with the batch's own statistics...
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    # ...without touching the running ones.
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert torch.equal(bn.num_batches_tracked, count)
    assert bn.track_running_stats
    bn(torch.randn(16, 3))
    assert not torch.equal(bn.running_mean, mean)


# -- the estimator ---------------------------------------------------------


def test_perturbation_radius_is_scaled_kth_neighbour_distance(four_blobs):
    X, _ = four_blobs
    model = fast_estimator(
        IMSAT, n_clusters=4, eps=0.5, eps_neighbors=3, random_state=0
    ).fit(X)
    # Fourth column: the sample itself, then its 3 nearest neighbours.
    distances, _ = NearestNeighbors(n_neighbors=4).fit(X).kneighbors(X)
    np.testing.assert_allclose(
        model.perturbation_radius_, 0.5 * distances[:, 3], rtol=1e-5
    )


@pytest.mark.parametrize(
    "n_samples, n_clusters, neighbour",
    [
        # Large clusters: the paper's 10th neighbour.
        (200, 4, 10),
        # 10 samples a cluster: a third of that.
        (80, 8, 3),
        (20, 10, 1),
    ],
)
def test_auto_radius_neighbour_fits_inside_clusters(n_samples, n_clusters, neighbour):
    X = np.random.RandomState(0).rand(n_samples, 3).astype(np.float32)
    model = fast_estimator(IMSAT, n_clusters=n_clusters, random_state=0)
    radius = model.set_params(max_epochs=0, n_init=1).fit(X).perturbation_radius_
    distances, _ = NearestNeighbors(n_neighbors=neighbour + 1).fit(X).kneighbors(X)
    np.testing.assert_allclose(radius, 0.25 * distances[:, neighbour], rtol=1e-5)


def test_fixed_radius_and_neighbours_capped(four_blobs):
    X, _ = four_blobs
    fixed = fast_estimator(
        IMSAT, n_clusters=4, eps=0.3, eps_neighbors=0, random_state=0
    ).fit(X)
    np.testing.assert_array_equal(
        fixed.perturbation_radius_, np.full(len(X), 0.3, np.float32)
    )
    # More neighbours than samples: the farthest sample sets the scale.
    few = X[:12]
    capped = fast_estimator(IMSAT, n_clusters=2, eps_neighbors=50, random_state=0).fit(
        few
    )
    distances, _ = NearestNeighbors(n_neighbors=12).fit(few).kneighbors(few)
    np.testing.assert_allclose(
        capped.perturbation_radius_, 0.25 * distances[:, -1], rtol=1e-5
    )


def _exact_kth_distance(X, k):
    distances, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors()
    return distances[:, -1]


def test_kth_neighbour_distance_exact_on_small_data():
    X = np.random.RandomState(0).randn(300, 5)
    random_state = np.random.RandomState(1)
    distances = _kth_neighbour_distance(X, 10, 300, random_state)
    np.testing.assert_array_equal(distances, _exact_kth_distance(X, 10))
    # No reference sample is drawn, so the fit's later random draws (the
    # nets' seeds) are those they were before the subsampling existed.
    assert random_state.randint(1000) == np.random.RandomState(1).randint(1000)


@pytest.mark.parametrize("k", [10, 3])
def test_kth_neighbour_distance_subsampled_is_close_to_exact(k):
    X = np.random.RandomState(0).randn(5000, 20).astype(np.float32)
    exact = _exact_kth_distance(X, k)
    approx = _kth_neighbour_distance(X, k, 1000, np.random.RandomState(0))
    relative_error = np.abs(approx / exact - 1)
    # The k-th neighbour among 1,000 of 5,000 points lies about
    # 5 ** (1 / 20) - 1 = 8% farther than among all of them; the rescaling by
    # the estimated intrinsic dimension must remove that bias (the median
    # error measured is 2-3%, the bound leaves room for other seeds).
    assert np.median(relative_error) < 0.05
    assert abs(np.median(approx / exact) - 1) < 0.03
    # Without the rescaling the error would show (about 10% measured).
    unscaled = NearestNeighbors(n_neighbors=k).fit(X[:1000]).kneighbors(X[1000:])[0]
    assert np.median(unscaled[:, -1] / exact[1000:]) > 1.05


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_perturbation_radius_subsampled_in_fit(four_blobs):
    X, _ = four_blobs

    def radius(random_state):
        model = fast_estimator(
            IMSAT, n_clusters=4, max_epochs=1, random_state=random_state
        )
        model._radius_reference_size = 100  # of the 200 samples
        return model.fit(X).perturbation_radius_

    first = radius(0)
    np.testing.assert_array_equal(first, radius(0))
    assert not np.array_equal(first, radius(1))
    # Half the data as reference in 6 dimensions: 4-7% median error over
    # reference seeds 0-4.
    exact = 0.25 * _exact_kth_distance(X, 10)
    assert np.median(np.abs(first / exact - 1)) < 0.15


@pytest.mark.parametrize("augmentation", ["vat", "rpt"])
def test_clusters_blobs_with_both_augmentations(augmentation, four_blobs):
    X, y = four_blobs
    # With 16 hidden units a third of the seeds ended by splitting one blob
    # and merging two; with 64, random_state 0-9 all reached at least 0.99.
    model = fast_estimator(
        IMSAT,
        n_clusters=4,
        augmentation=augmentation,
        hidden_dims=(64,),
        max_epochs=30,
        random_state=0,
    ).fit(X)
    assert clustering_accuracy(y, model.labels_) > 0.95
    history = model.net_.history
    # Information maximisation: the batches end up confident and use all
    # four outputs (a marginal entropy above log 3, the most three can give).
    first, last = history[0, "batches", 0], history[-1, "batches", 0]
    assert last["conditional_entropy"] < first["conditional_entropy"]
    assert last["marginal_entropy"] > np.log(3)


def test_same_random_state_same_result_with_vat(four_blobs):
    X, _ = four_blobs
    a = fast_estimator(IMSAT, n_clusters=4, random_state=3).fit(X)
    b = fast_estimator(IMSAT, n_clusters=4, random_state=3).fit(X)
    c = fast_estimator(IMSAT, n_clusters=4, random_state=4).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_keeps_the_start_with_the_highest_information(four_blobs):
    X, _ = four_blobs
    # Starts as long as the whole fit: the kept network is a finished start.
    model = fast_estimator(
        IMSAT,
        n_clusters=4,
        n_init=4,
        init_epochs=3,
        max_epochs=3,
        refinement_epochs=0,
        random_state=0,
    ).fit(X)
    information = model.start_information_
    assert information.shape == (4,)
    assert len(np.unique(information)) == 4  # the starts differ
    kept = model._information(model.net_, torch.as_tensor(X))
    assert kept == pytest.approx(information.max(), rel=1e-6)
    # The information term itself: H(Y) - mu * H(Y|X) on all samples.
    marginal, conditional = entropy_terms(
        torch.log(torch.as_tensor(model.predict_proba(X)))
    )
    assert kept == pytest.approx(float(marginal - model.mu * conditional), rel=1e-4)


def test_kept_start_trains_on_to_max_epochs(four_blobs, at_train_begin):
    X, _ = four_blobs
    nets = at_train_begin(lambda net: net)
    model = fast_estimator(
        IMSAT,
        n_clusters=4,
        n_init=2,
        init_epochs=2,
        max_epochs=5,
        refinement_epochs=0,
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == 5
    assert len(model.net_.history) == 5
    # The start that is not kept stops after init_epochs (the kept one is
    # recorded once more, as it trains on).
    starts = {id(net): net for net in nets}.values()
    assert sorted(len(net.history) for net in starts) == [2, 5]
    # A single start trains for max_epochs, whatever init_epochs says.
    single = fast_estimator(
        IMSAT,
        n_clusters=4,
        n_init=1,
        init_epochs=2,
        max_epochs=5,
        refinement_epochs=0,
        random_state=0,
    ).fit(X)
    assert single.n_iter_ == 5
    assert single.start_information_.shape == (1,)


def test_auto_max_epochs_trains_small_data_for_a_minimum_of_steps(
    four_blobs, monkeypatch
):
    # The rule, with small constants: at least _AUTO_MAX_EPOCHS epochs, and
    # as many more as make _MIN_TRAINING_STEPS optimiser steps.
    monkeypatch.setattr(IMSAT, "_AUTO_MAX_EPOCHS", 2)
    monkeypatch.setattr(IMSAT, "_MIN_TRAINING_STEPS", 30)
    X, _ = four_blobs  # 200 samples
    params = dict(n_clusters=4, n_init=1, refinement_epochs=0, random_state=0)
    fit = fast_estimator(IMSAT, max_epochs="auto", batch_size=20, **params).fit
    assert fit(X).n_iter_ == 3  # 10 steps an epoch: 30 steps take 3 epochs
    assert fit(X[:40]).n_iter_ == 15  # 2 steps an epoch
    # More epochs than the steps need: the epochs.
    fit = fast_estimator(IMSAT, max_epochs="auto", batch_size=100, **params).fit
    monkeypatch.setattr(IMSAT, "_MIN_TRAINING_STEPS", 3)
    assert fit(X).n_iter_ == 2


def test_outputs_are_consistent(four_blobs):
    X, _ = four_blobs
    model = fast_estimator(IMSAT, n_clusters=4, random_state=0).fit(X)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), model.labels_)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    # predict_proba is the network's softmax in evaluation mode.
    module = model.net_.module_.eval()
    with torch.no_grad():
        expected = torch.softmax(module(torch.as_tensor(X)), dim=1).numpy()
    np.testing.assert_allclose(proba, expected[:, model._kept], rtol=1e-4, atol=1e-6)
    # transform is the last hidden layer; centres its per-cluster means.
    Z = model.transform(X)
    assert Z.shape == (len(X), model.hidden_dims[-1])
    for k, center in enumerate(model.cluster_centers_):
        np.testing.assert_allclose(center, Z[model.labels_ == k].mean(0), rtol=1e-5)


def test_prediction_does_not_depend_on_the_batch(four_blobs):
    X, _ = four_blobs
    model = fast_estimator(IMSAT, n_clusters=4, random_state=0).fit(X)
    full = model.predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X[:3]), full[:3], rtol=1e-5)
    # (a copy: the base does not accept negative strides yet)
    np.testing.assert_allclose(
        model.predict_proba(X[::-1].copy()), full[::-1], rtol=1e-5
    )


@pytest.mark.parametrize("augmentation", ["vat", "rpt"])
def test_training_step_updates_running_statistics_from_clean_batch_only(augmentation):
    # One training loss evaluation: the clean forward pass moves the running
    # mean by momentum * (batch mean - running mean); the perturbed passes,
    # with a huge radius, must not move it further.
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 4),
        torch.nn.BatchNorm1d(4),
        torch.nn.ReLU(),
        torch.nn.Linear(4, 3),
    )
    net = IMSATNet(
        module, criterion=torch.nn.KLDivLoss, augmentation=augmentation
    ).initialize()
    net.radius_ = torch.full((12,), 100.0)
    X, indices = torch.randn(12, 5), torch.arange(12)
    bn = net.module_[1]
    before = bn.running_mean.clone()
    with torch.no_grad():
        batch_mean = net.module_[0](X).mean(0)
    net.module_.train()
    net.history.new_epoch()
    net.history.new_batch()
    net.get_loss(net.infer(X), indices, X=X, training=True)
    torch.testing.assert_close(bn.running_mean, 0.9 * before + 0.1 * batch_mean)
    assert bn.num_batches_tracked.item() == 1


def test_unused_clusters_are_never_predicted(four_blobs):
    X, _ = four_blobs
    # Many more outputs than blobs and no push towards balance (lam=0): some
    # outputs win no sample.
    with pytest.warns(ConvergenceWarning, match="clusters"):
        model = fast_estimator(IMSAT, n_clusters=30, lam=0.0, random_state=0).fit(X)
    n_found = len(model.cluster_centers_)
    assert n_found < 30
    assert set(np.unique(model.labels_)) == set(range(n_found))
    noise = np.random.default_rng(0).normal(scale=20, size=(500, X.shape[1]))
    assert model.predict(noise).max() < n_found
    assert model.predict_proba(noise).shape == (500, n_found)


def test_convolutional_variant():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 64)).astype(np.float32)
    X[:20, :32] += 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = IMSAT(
            n_clusters=2,
            input_shape=(1, 8, 8),
            hidden_dims=(8,),
            max_epochs=2,
            batch_size=20,
            random_state=0,
        ).fit(X)
    assert model.transform(X).shape == (40, 8)
    assert model.predict(X).shape == (40,)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(augmentation="flip"), "augmentation"),
        (dict(eps=-0.1), "eps"),
        (dict(eps=0.0), "eps"),
        (dict(eps_neighbors=-1), "eps_neighbors"),
        (dict(eps_neighbors="many"), "eps_neighbors"),
        (dict(xi=0.0), "xi"),
        (dict(lam=-1.0), "lam"),
        (dict(mu=-1.0), "mu"),
        (dict(max_epochs=-1), "max_epochs"),
        (dict(n_init=0), "n_init"),
        (dict(init_epochs=0), "init_epochs"),
        (dict(clustering="kmeans"), "clustering"),
        (dict(batch_size=1), "batch_size"),
        (dict(hidden_dims=(16, 0)), "hidden_dims"),
        (dict(hidden_dims=(), input_shape=(1, 2, 2)), "hidden_dims"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        IMSAT(**params).fit(X)


# -- the partition the refinement starts from (clustering) -----------------


@pytest.fixture(scope="module")
def separated_blobs():
    # Four blobs for three clusters: the net has to join two of them.
    X, y = make_blobs(
        n_samples=160, centers=4, n_features=6, cluster_std=0.5, random_state=2
    )
    return X.astype(np.float32), y


def join_farthest_blobs(X, y):
    """Three groups of four blobs: the two farthest apart joined.

    A partition the net does not reach by itself, which it can learn: the
    self-augmentation term keeps each blob whole, not two apart.
    """
    centres = np.stack([X[y == blob].mean(axis=0) for blob in range(4)])
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    first, second = np.unravel_index(distances.argmax(), distances.shape)
    joined = np.where(y == second, first, y)
    return np.unique(joined, return_inverse=True)[1]


@pytest.mark.parametrize("clustering", ["umap", "auto"])
def test_net_trained_toward_the_hidden_layout_when_it_is_kept(
    known_layout, separated_blobs, clustering
):
    # With "auto", the layout's partition more modular than the net's.
    X, layout, calls = known_layout(
        IMSAT,
        separated_blobs,
        win=True if clustering == "auto" else None,
        layout=join_farthest_blobs,
    )
    model = fast_estimator(
        IMSAT,
        n_clusters=3,
        n_init=1,
        refinement_epochs=30,
        clustering=clustering,
        random_state=0,
    ).fit(X)
    assert len(calls) == 1
    graph = calls[0][0]
    # The layout is of the last hidden layer of every training sample.
    np.testing.assert_array_equal(np.sort(graph.reference), np.arange(len(X)))
    assert graph.embedding.shape == (len(X), 16)
    assert model.clustering_ == "umap"
    assert model.n_split_merge_moves_ == 0
    # No move, yet the net trained toward the layout's partition.
    assert model.n_iter_ == 5 + 30
    assert model.net_.stage == "refinement"
    # The net learnt the layout's partition, which it does not reach alone.
    plain = fast_estimator(
        IMSAT, n_clusters=3, n_init=1, clustering="net", random_state=0
    ).fit(X)
    assert clustering_accuracy(layout, model.labels_) > 0.95
    assert clustering_accuracy(layout, plain.labels_) < 0.9
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_refinement_targets_numbered_after_the_net(
    known_layout, separated_blobs, refinement_targets
):
    # The layout's k-means numbers its clusters in any order; trained toward
    # as numbered, they would move whole clusters from output to output.
    X, _, _ = known_layout(IMSAT, separated_blobs, layout=join_farthest_blobs)
    fast_estimator(
        IMSAT,
        n_clusters=3,
        n_init=1,
        refinement_epochs=2,
        clustering="umap",
        random_state=0,
    ).fit(X)
    assert_targets_numbered_after_the_net(refinement_targets)


@pytest.mark.parametrize(
    "params", [dict(refinement_epochs=0), dict(clustering="net"), dict(max_epochs=0)]
)
def test_no_hidden_layout(known_layout, separated_blobs, params):
    X, _, calls = known_layout(IMSAT, separated_blobs)
    model = fast_estimator(IMSAT, n_clusters=3, n_init=1, random_state=0, **params)
    model.fit(X)
    assert calls == []
    assert model.clustering_ == "net"
