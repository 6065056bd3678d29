"""SNNLKMeans: the soft nearest neighbour loss, its temperature, and the labels."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs, make_moons
from sklearn.metrics import adjusted_rand_score

from conftest import fast_estimator
from skdeepcluster import AutoencoderKMeans, SNNLKMeans
from skdeepcluster._nets import AutoencoderNet
from skdeepcluster._snnl import (
    SNNLNet,
    _AutoPartition,
    soft_nearest_neighbour_loss,
)
from skdeepcluster.callbacks import PseudoLabelRefresh, annealed_temperature


@pytest.fixture
def final_net_labels(monkeypatch):
    """The net's labels as training ends (the net drops them afterwards)."""
    recorded = []
    on_train_end = SNNLNet.on_train_end

    def record(self, *args, **kwargs):
        recorded.append(self.labels_.cpu().numpy())
        on_train_end(self, *args, **kwargs)

    monkeypatch.setattr(SNNLNet, "on_train_end", record)
    return recorded


def _brute_force_snnl(features, labels, temperature):
    keep = labels >= 0
    squared = ((features[:, None] - features[None]) ** 2).sum(-1)
    pairs = squared[np.ix_(keep, keep)]
    distance = squared / pairs[~np.eye(len(pairs), dtype=bool)].mean()
    terms = []
    for i in range(len(features)):
        if labels[i] < 0:
            continue
        others = [j for j in range(len(features)) if j != i and labels[j] >= 0]
        same = [j for j in others if labels[j] == labels[i]]
        if not same:
            continue
        num = np.exp(-distance[i, same] / temperature).sum()
        den = np.exp(-distance[i, others] / temperature).sum()
        terms.append(-np.log(num / den))
    return np.mean(terms)


def test_loss_matches_its_definition():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 5))
    labels = np.array([0, 0, 1, 1, 2, -1, 0, 1, -1, 3, 2, 2])  # class 3 alone
    for temperature in (0.1, 1.0, 5.0):
        loss = soft_nearest_neighbour_loss(
            torch.as_tensor(features), torch.as_tensor(labels), temperature
        )
        assert loss.item() == pytest.approx(
            _brute_force_snnl(features, labels, temperature), rel=1e-6
        )


def test_loss_is_low_when_classes_are_apart_and_scale_free():
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(np.repeat([0, 1], 10))
    apart = torch.as_tensor(
        np.vstack([rng.normal([5, 0], 0.3, (10, 2)), rng.normal([0, 5], 0.3, (10, 2))])
    )
    shuffled = labels[torch.randperm(20, generator=torch.Generator().manual_seed(0))]
    low = soft_nearest_neighbour_loss(apart, labels, 0.1)
    assert low < soft_nearest_neighbour_loss(apart, shuffled, 0.1)
    assert low == pytest.approx(
        soft_nearest_neighbour_loss(100 * apart, labels, 0.1).item()
    )


def test_loss_without_positive_pairs_is_zero_and_differentiable():
    features = torch.randn(4, 3, requires_grad=True)
    for labels in ([0, 1, 2, 3], [-1, -1, -1, -1], [0, -1, -1, -1]):
        loss = soft_nearest_neighbour_loss(features, torch.tensor(labels), 1.0)
        assert loss.item() == 0.0
        loss.backward()


def test_two_rows_of_one_sample_are_not_neighbours():
    # A labelled sample in the batch and again among the anchors: its copy
    # is no neighbour of its label (that pair would lower the loss by itself).
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 1, 0, 1])
    with_copy = soft_nearest_neighbour_loss(
        features, labels, 1.0, sample_ids=torch.tensor([5, 7, 5, 9])
    )
    # Sample 5's only other row is itself: no positive pair, no term; the
    # other rows keep theirs, the copy counting once more in their sums.
    assert with_copy.item() > 0
    only_copy = soft_nearest_neighbour_loss(
        features[:3], labels[:3], 1.0, sample_ids=torch.tensor([5, 7, 5])
    )
    assert only_copy.item() == 0.0
    assert soft_nearest_neighbour_loss(features[:3], labels[:3], 1.0).item() > 0


def test_one_label_per_class_gives_no_pairs_to_the_loss(blobs):
    # Three labelled samples, one per class, are drawn as anchors into every
    # batch, which also holds them at times: they share a label with no
    # other sample, so the soft nearest neighbour term stays zero.
    X, y = blobs
    partial = np.full(len(y), -1)
    for label in np.unique(y):
        first = np.flatnonzero(y == label)[0]
        partial[first] = label
    model = fast_estimator(
        SNNLKMeans,
        n_clusters=3,
        use_labels=True,
        pseudo_labels=False,
        warmup_epochs=0,
        random_state=0,
    ).fit(X, partial)
    terms = [
        batch["clustering_loss"]
        for epoch in model.net_.history
        for batch in epoch["batches"]
    ]
    assert len(terms) > 0 and all(term == 0.0 for term in terms)


def test_annealed_temperature():
    assert annealed_temperature(0, 0.55) == 1.0
    assert annealed_temperature(9, 1.0) == pytest.approx(0.1)
    assert annealed_temperature(5, 0.0) == 1.0


@pytest.mark.parametrize("temperature", ["annealed", 0.3])
def test_temperature_schedule_in_history(temperature, blobs):
    X, y = blobs
    model = fast_estimator(
        SNNLKMeans,
        n_clusters=3,
        temperature=temperature,
        temperature_decay=0.7,
        use_labels=True,
        random_state=0,
    ).fit(X, y)
    recorded = model.net_.history[:, "temperature"]
    if temperature == "annealed":
        expected = [1 / (1 + epoch) ** 0.7 for epoch in range(model.n_iter_)]
    else:
        expected = [0.3] * model.n_iter_
    np.testing.assert_allclose(recorded, expected)


def _square_of_blobs():
    # Four blobs at the corners of a square: "left/right" and "bottom/top"
    # are equally good 2-clusterings, so only the labels can choose. (The
    # tests using it keep the raw 2-D embedding: on the unit circle the
    # four blobs would become four arcs, a different geometry.)
    corners = [(-4, -4), (-4, 4), (4, -4), (4, 4)]
    X, corner = make_blobs(
        n_samples=160, centers=corners, cluster_std=0.7, random_state=0
    )
    return X.astype(np.float32), np.array(corners)[corner]


@pytest.mark.parametrize("axis", [0, 1])
def test_partial_labels_choose_the_clustering(axis, final_net_labels):
    X, position = _square_of_blobs()
    side = (position[:, axis] > 0).astype(int)
    y = np.full(len(X), -1)
    labelled = np.random.default_rng(0).choice(len(X), 24, replace=False)  # 15 %
    y[labelled] = side[labelled]
    model = SNNLKMeans(
        2,
        hidden_dims=(16,),
        embedding_dim=2,
        pretrain_epochs=30,
        batch_size=32,
        alpha=10.0,
        pseudo_labels=False,
        normalize_embedding=False,
        warmup_epochs=0,
        use_labels=True,
        random_state=0,
    ).fit(X, y)
    assert adjusted_rand_score(side, model.labels_) > 0.9
    np.testing.assert_array_equal(model.classes_, [0, 1])
    # Only the given labels are known to the net: the others stay -1.
    (net_labels,) = final_net_labels
    np.testing.assert_array_equal(net_labels[labelled], side[labelled])
    assert (np.delete(net_labels, labelled) == -1).all()


def test_fit_predict_uses_the_labels():
    # scikit-learn's ClusterMixin.fit_predict drops y; SNNLKMeans passes it
    # on (with use_labels=True), so the labels pick the split along either axis of the square.
    X, position = _square_of_blobs()
    params = dict(
        hidden_dims=(16,),
        embedding_dim=2,
        pretrain_epochs=30,
        batch_size=32,
        alpha=10.0,
        pseudo_labels=False,
        normalize_embedding=False,
        warmup_epochs=0,
        use_labels=True,
        random_state=0,
    )
    y = np.full(len(X), -1)
    labelled = np.random.default_rng(0).choice(len(X), 24, replace=False)
    for axis in (0, 1):
        side = (position[:, axis] > 0).astype(int)
        y[labelled] = side[labelled]
        model = SNNLKMeans(2, **params)
        labels = model.fit_predict(X, y)
        np.testing.assert_array_equal(model.classes_, [0, 1])
        np.testing.assert_array_equal(labels, SNNLKMeans(2, **params).fit(X, y).labels_)
        assert adjusted_rand_score(side, labels) > 0.9


def test_pseudo_labels_for_unlabelled_samples_with_partial_labels(
    blobs, final_net_labels
):
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, pseudo_labels=True, random_state=0
    ).fit(X, y_partial)
    (net_labels,) = final_net_labels
    labelled = y_partial >= 0
    np.testing.assert_array_equal(net_labels[labelled], y_partial[labelled])
    assert (net_labels >= 0).all()
    # On well-separated blobs seeded k-means recovers the true class.
    assert (net_labels == y).mean() > 0.9


def test_given_classes_name_the_clusters(blobs):
    # With one class per cluster, cluster k is the k-th class of classes_
    # (k-means is seeded by the classes), whatever order the names sort in.
    X, y = blobs
    names = np.array([30, 10, 20])[y]
    y_partial = np.where(np.arange(len(y)) % 5 == 0, names, -1)
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, random_state=0
    ).fit(X, y_partial)
    np.testing.assert_array_equal(model.classes_, [10, 20, 30])
    assert (model.classes_[model.labels_] == names).mean() > 0.9


@pytest.mark.parametrize("clustering", ["spectral", "umap"])
def test_given_classes_name_the_clusters_of_a_graph_partition(clustering, blobs):
    # A graph partition numbers its clusters arbitrarily; they are matched
    # to the classes by the labelled samples.
    X, y = blobs
    names = np.array([30, 10, 20])[y]
    y_partial = np.where(np.arange(len(y)) % 5 == 0, names, -1)
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, clustering=clustering, random_state=0
    ).fit(X, y_partial)
    assert model.clustering_ == clustering
    assert (model.classes_[model.labels_] == names).mean() > 0.9
    assert (model.classes_[model.predict(X)] == names).mean() > 0.9


def test_labels_wait_for_the_warm_up(blobs):
    # The soft nearest neighbour term starts after warmup_epochs, given
    # labels or not.
    X, y = blobs
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, random_state=0
    ).fit(X, y)
    history = model.net_.history
    warm_up_batches = history[0, "batches"] + history[1, "batches"]
    assert all("clustering_loss" not in batch for batch in warm_up_batches)
    assert min(history[2, "batches", :, "clustering_loss"]) > 0


def test_first_pseudo_labelling_restarts_kmeans(blobs, monkeypatch):
    # init="k-means": the partition the loss keeps comes from n_init k-means
    # restarts; the
    # later refreshes warm-start from the previous centres.
    # Every k-means of the package is fitted by _torch_utils.fit_kmeans.
    from skdeepcluster import _torch_utils

    calls = []

    class RecordingKMeans(_torch_utils.KMeans):
        def fit(self, X, y=None, sample_weight=None):
            calls.append((self.n_init, isinstance(self.init, str)))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(_torch_utils, "KMeans", RecordingKMeans)
    X, _ = blobs
    model = fast_estimator(
        SNNLKMeans,
        n_clusters=3,
        n_init=4,
        init="k-means",
        pseudo_labels=True,
        random_state=0,
    ).fit(X)
    n_refreshes = model.n_iter_ - model.warmup_epochs
    assert calls[0] == (4, True)
    assert calls[1:n_refreshes] == [(1, False)] * (n_refreshes - 1)


def test_auto_partition_follows_curved_clusters():
    # init="auto" starts the pseudo-labels from the partition
    # AutoencoderKMeans keeps with clustering="auto": on two interleaved
    # half-circles a graph partition, where k-means' two round groups cut
    # both (adjusted Rand index about 0.24).
    X, y = make_moons(300, noise=0.05, random_state=0)
    Z = torch.as_tensor(X, dtype=torch.float32)
    labels, centers = _AutoPartition(2, 10, 10, "modularity")(Z, 0)
    assert adjusted_rand_score(y, labels) > 0.95
    # The centres the next refresh warm-starts from: the clusters' means.
    means = [X[labels == k].mean(axis=0) for k in range(2)]
    np.testing.assert_allclose(centers, means, rtol=1e-5)


@pytest.mark.parametrize("init", ["auto", "k-means"])
def test_init_sets_the_first_pseudo_labelling(blobs, init):
    X, _ = blobs
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, init=init, pseudo_labels=True, random_state=0
    ).fit(X)
    refresh = dict(model.net_.callbacks_)["pseudo_label_refresh"]
    if init == "auto":
        assert isinstance(refresh.init, _AutoPartition)
        assert (refresh.init.n_clusters, refresh.init.n_init) == (3, model._n_init)
    else:
        assert refresh.init == "k-means"


def _with_refresh(refresh, **params):
    """Tiny SNNLKMeans for 3 clusters whose pseudo-labels ``refresh`` makes."""
    return fast_estimator(
        SNNLKMeans,
        n_clusters=3,
        callbacks=[("pseudo_label_refresh", refresh)],
        random_state=0,
        **params,
    )


def test_callable_init_gives_the_first_pseudo_labels(blobs, final_net_labels):
    X, y = blobs
    calls = []

    def init(Z, seed, sample_weight):
        calls.append((tuple(Z.shape), seed, sample_weight))
        centers = np.stack(
            [Z[torch.as_tensor(y == k)].mean(0).numpy() for k in range(3)]
        )
        return y, centers

    refresh = PseudoLabelRefresh(3, start=2, n_init=1, init=init)
    model = _with_refresh(refresh, pretrain_epochs=5).fit(X)
    # Called once, at the first refresh; later refreshes warm-start k-means.
    used = dict(model.net_.callbacks_)["pseudo_label_refresh"]
    assert calls == [((len(X), model.embedding_dim), used.seed_, None)]
    change = [row.get("label_change") for row in model.net_.history]
    assert change[:3] == [None, None, None]
    assert all(c is not None for c in change[3:])
    (net_labels,) = final_net_labels
    assert adjusted_rand_score(y, net_labels) > 0.9


@pytest.mark.parametrize(
    "partition, message",
    [
        (
            lambda Z: (np.zeros(len(Z) - 1, dtype=int), np.zeros((3, Z.shape[1]))),
            "one integer label per sample",
        ),
        (
            lambda Z: (np.zeros(len(Z)), np.zeros((3, Z.shape[1]))),
            "one integer label per sample",
        ),
        (
            lambda Z: (np.full(len(Z), 3), np.zeros((3, Z.shape[1]))),
            r"labels in range\(3\)",
        ),
        (
            lambda Z: (np.zeros(len(Z), dtype=int), np.zeros((2, Z.shape[1]))),
            "finite centres of shape",
        ),
        (
            lambda Z: (np.zeros(len(Z), dtype=int), np.full((3, Z.shape[1]), np.nan)),
            "finite centres of shape",
        ),
    ],
)
def test_pseudo_label_refresh_rejects_a_bad_init_partition(blobs, partition, message):
    X, _ = blobs
    refresh = PseudoLabelRefresh(
        3, start=1, init=lambda Z, seed, sample_weight: partition(Z)
    )
    model = _with_refresh(refresh)
    with pytest.raises(ValueError, match=message):
        model.fit(X)


def test_callable_init_may_return_tensors(blobs):
    X, y = blobs
    centers = []

    def init(Z, seed, sample_weight):
        centers.append(
            torch.stack([Z[torch.as_tensor(y == k)].mean(0) for k in range(3)])
        )
        return torch.as_tensor(y, device=Z.device), centers[-1]

    refresh = PseudoLabelRefresh(3, start=2, n_init=1, init=init)
    model = _with_refresh(refresh, pretrain_epochs=4).fit(X)
    # Called once, in the third epoch; the fourth epoch's refresh
    # warm-started k-means from the returned centres.
    assert len(centers) == 1
    assert [row.get("label_change") is not None for row in model.net_.history] == [
        False,
        False,
        False,
        True,
    ]


def test_pseudo_label_refresh_rejects_an_unknown_init(blobs):
    X, _ = blobs
    refresh = PseudoLabelRefresh(3, start=1, init="spectral")
    model = _with_refresh(refresh)
    with pytest.raises(ValueError, match="init must be 'k-means' or a callable"):
        model.fit(X)


def test_no_labels_uses_kmeans_pseudo_labels(blobs, final_net_labels):
    X, y = blobs
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, pretrain_epochs=6, pseudo_labels=True, random_state=0
    ).fit(X)
    history = model.net_.history
    (net_labels,) = final_net_labels
    assert set(net_labels) == {0, 1, 2}
    assert adjusted_rand_score(y, net_labels) > 0.9
    # Refreshed at each epoch after the warm-up (the first refresh has no
    # previous labels to compare with).
    change = [row.get("label_change") for row in history]
    assert change[:3] == [None, None, None]
    assert all(c is not None and 0 <= c <= 1 for c in change[3:])
    # The loss term is absent during the warm-up and positive afterwards.
    assert "clustering_loss" not in history[0, "batches", 0]
    assert min(history[-1, "batches", :, "clustering_loss"]) > 0


def test_without_labels_or_pseudo_labels_trains_the_plain_autoencoder(blobs):
    X, _ = blobs
    plain = fast_estimator(SNNLKMeans, n_clusters=3, random_state=0).fit(X)
    assert type(plain.net_) is AutoencoderNet
    autoencoder = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    np.testing.assert_array_equal(plain.labels_, autoencoder.fit(X).labels_)
    # A pseudo-labelling callback given by name keeps the term's net.
    refresh = ("pseudo_label_refresh", PseudoLabelRefresh(3, start=2, n_init=1))
    with_callback = fast_estimator(
        SNNLKMeans, n_clusters=3, callbacks=[refresh], random_state=0
    ).fit(X)
    assert type(with_callback.net_) is SNNLNet


def test_auto_pseudo_labels_only_beside_labels_on_large_data():
    # Resolved from n_samples at fit, as the autoencoder sizes are.
    model = SNNLKMeans(n_clusters=3, use_labels=True)
    model._check_params_vs_input(np.zeros((4999, 2)))
    assert model._pseudo_labels is False
    model._check_params_vs_input(np.zeros((5000, 2)))
    assert model._pseudo_labels is True
    model.set_params(pseudo_labels=False)._check_params_vs_input(np.zeros((5000, 2)))
    assert model._pseudo_labels is False
    # Without labels, none at any size, and no smoothing: AutoencoderKMeans'
    # plain autoencoder.
    model.set_params(use_labels=False, pseudo_labels="auto")
    model._check_params_vs_input(np.zeros((70_000, 2)))
    assert (model._pseudo_labels, model._smoothing_weight) == (False, 0.0)
    # The smoothing goes with the pseudo-labels; an explicit weight is kept.
    model.set_params(pseudo_labels=True)._check_params_vs_input(np.zeros((5000, 2)))
    assert (model._pseudo_labels, model._smoothing_weight) == (True, 1.0)
    model.set_params(pseudo_labels=False, smoothing_weight=0.5)
    model._check_params_vs_input(np.zeros((5000, 2)))
    assert (model._pseudo_labels, model._smoothing_weight) == (False, 0.5)


@pytest.mark.parametrize(
    "params",
    [
        dict(pseudo_labels=False),
        dict(pseudo_labels="auto"),
        # Pseudo-labels asked for, but the warm-up outlasts the training.
        dict(pseudo_labels=True, warmup_epochs=5),
    ],
)
def test_without_any_label_it_is_a_plain_autoencoder(params, blobs):
    # No labels and no pseudo-labels (or none before training ends): the
    # training is AutoencoderKMeans's, step for step.
    X, _ = blobs
    snnl = fast_estimator(SNNLKMeans, n_clusters=3, random_state=0, **params).fit(X)
    plain = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    np.testing.assert_allclose(snnl.transform(X), plain.transform(X), atol=1e-5)
    assert len(snnl.classes_) == 0


def test_hooks_are_removed_after_fit(blobs):
    X, y = blobs
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, random_state=0
    ).fit(X, y)
    assert all(not m._forward_hooks for m in model.net_.module_.modules())


def test_same_seed_same_labels(blobs):
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) % 4 == 0, y, -1)
    a = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=3).fit(
        X, y_partial
    )
    b = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=3).fit(
        X, y_partial
    )
    np.testing.assert_array_equal(a.labels_, b.labels_)


# NumPy 1 warns when a str array is compared with bytes (make test-oldest).
@pytest.mark.filterwarnings("error::FutureWarning")
def test_string_labels_are_accepted(blobs):
    X, y = blobs
    names = np.array(["a", "b", "c"])[y]
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, random_state=0
    ).fit(X, names)
    np.testing.assert_array_equal(model.classes_, ["a", "b", "c"])


def test_string_labels_with_unlabelled_samples(blobs):
    # scikit-learn's convention: dtype object, the integer -1 for unlabelled.
    X, y = blobs
    names = np.array(["a", "b", "c"], dtype=object)[y]
    mask = np.arange(len(y)) % 3 == 0
    model = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=0)
    model.fit(X, np.where(mask, names, -1))
    np.testing.assert_array_equal(model.classes_, ["a", "b", "c"])
    # The same fit as with the labels' integer codes.
    codes = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=0)
    np.testing.assert_array_equal(
        codes.fit(X, np.where(mask, y, -1)).labels_, model.labels_
    )


@pytest.mark.parametrize(
    "labels, message",
    [
        # "-1" as text, as read from a CSV file of string labels.
        (lambda names, mask: np.where(mask, names, "-1"), "the string '-1'"),
        (
            lambda names, mask: np.where(mask, names.astype(bytes), b"-1"),
            "the string '-1'",
        ),
        (
            lambda names, mask: np.where(mask, names.astype(object), "-1"),
            "the string '-1'",
        ),
        (
            lambda names, mask: np.where(mask, names.astype(object), None),
            "labels of one kind",
        ),
    ],
    ids=["str", "bytes", "object", "mixed kinds"],
)
@pytest.mark.filterwarnings("error::FutureWarning")
def test_string_labels_need_the_integer_minus_one(blobs, labels, message):
    X, y = blobs
    names = np.array(["a", "b", "c"])[y]
    y_partial = labels(names, np.arange(len(y)) % 3 == 0)
    with pytest.raises(ValueError, match=message):
        fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True).fit(X, y_partial)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature="hot"), "temperature"),
        (dict(temperature_decay=-0.5), "temperature_decay"),
        (dict(alpha=-1.0), "alpha"),
        (dict(warmup_epochs=-1), "warmup_epochs"),
        (dict(pseudo_labels="yes"), "pseudo_labels"),
        (dict(use_labels="yes"), "use_labels"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        SNNLKMeans(**params).fit(X)


def test_labels_of_wrong_length(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="y has 89 labels but X has 90 samples"):
        fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True).fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"y should be a 1d array.*\(90, 2\)"):
        fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True).fit(X, np.c_[y, y])


@pytest.mark.parametrize(
    "unlabelled, message",
    [
        (np.nan, "y contains NaN or infinity; mark unlabelled samples with -1"),
        (0.5, "non-integer values such as 0.5"),
    ],
)
@pytest.mark.parametrize("dtype", [float, object])
def test_labels_that_are_not_classes_are_rejected(blobs, unlabelled, message, dtype):
    # np.unique would make NaN, or each fraction, a class of its own; in an
    # object array (pandas' missing labels) each NaN would be one.
    X, y = blobs
    y = np.where(np.arange(len(y)) % 2 == 0, y.astype(dtype), unlabelled)
    assert y.dtype == dtype
    with pytest.raises(ValueError, match=message):
        fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True).fit(X, y)


def test_whole_float_labels_are_classes(blobs):
    X, y = blobs
    y = np.where(np.arange(len(y)) % 2 == 0, y, -1)
    model = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=0)
    np.testing.assert_array_equal(
        model.fit(X, y.astype(float)).classes_, [0.0, 1.0, 2.0]
    )


def test_labels_are_ignored_unless_asked(blobs):
    # By default y is ignored like every other clusterer ignores it, so a
    # model selection tool that passes y cannot leak the labels into fit.
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    with_y = fast_estimator(SNNLKMeans, n_clusters=3, random_state=0).fit(X, y_partial)
    without_y = fast_estimator(SNNLKMeans, n_clusters=3, random_state=0).fit(X)
    np.testing.assert_array_equal(with_y.labels_, without_y.labels_)
    np.testing.assert_array_equal(with_y.transform(X), without_y.transform(X))
    assert len(with_y.classes_) == 0
    # Even y of the wrong length is ignored, as by KMeans.
    fast_estimator(SNNLKMeans, n_clusters=3, random_state=0).fit(X, y[:-1])


def test_use_labels_changes_the_training(blobs):
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    unsupervised = fast_estimator(SNNLKMeans, n_clusters=3, random_state=0).fit(
        X, y_partial
    )
    supervised = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, random_state=0
    ).fit(X, y_partial)
    assert not np.allclose(supervised.transform(X), unsupervised.transform(X))
    np.testing.assert_array_equal(supervised.classes_, [0, 1, 2])
    # The given classes seed the final k-means: cluster k is class k.
    assert (supervised.labels_ == y).mean() > 0.9


def test_use_labels_without_y(blobs):
    X, _ = blobs
    with pytest.raises(
        ValueError, match="use_labels=True but fit was called without y"
    ):
        fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True).fit(X)


def test_training_state_is_dropped(blobs):
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) % 5 == 0, y, -1)
    model = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=0)
    model.fit(X, y_partial)
    for name in ("labels_", "anchor_indices_", "anchor_X_"):
        assert not hasattr(model.net_, name)


def test_auto_warmup_is_four_fifths_of_the_pretraining():
    # warmup_epochs="auto" follows the resolved pretraining length, so the
    # SNNL term starts at the same point of training on small and large data.
    X = np.zeros((300, 5), dtype=np.float32)
    model = SNNLKMeans(n_clusters=3, pretrain_epochs=50)
    model._check_params_vs_input(X)
    assert model._warmup_epochs == 40
    model = SNNLKMeans(n_clusters=3, pretrain_epochs=50, warmup_epochs=7)
    model._check_params_vs_input(X)
    assert model._warmup_epochs == 7


def test_labels_all_unlabelled_warn_and_train_without_them(blobs):
    X, _ = blobs
    model = fast_estimator(SNNLKMeans, n_clusters=3, use_labels=True, random_state=0)
    with pytest.warns(UserWarning, match="every label in y is -1") as record:
        model.fit(X, np.full(len(X), -1))
    # The warning names the caller's line, not one inside the package.
    assert record[0].filename == __file__
    unlabelled = fast_estimator(SNNLKMeans, n_clusters=3, random_state=0).fit(X)
    np.testing.assert_array_equal(model.labels_, unlabelled.labels_)


@pytest.mark.parametrize("pseudo_labels", [True, "auto"])
@pytest.mark.parametrize("unlabelled_by", ["-1", "weight 0"])
def test_without_a_usable_label_it_trains_as_without_labels(
    blobs, monkeypatch, unlabelled_by, pseudo_labels
):
    # Large data, where "auto" gives pseudo-labels beside labels. With
    # pseudo-labels there are no classes to seed k-means with: the fit is
    # the self-training without labels; "auto" then gives none, as without
    # labels.
    monkeypatch.setattr(SNNLKMeans, "_LARGE_DATA", 10)
    X, y = blobs
    params = dict(n_clusters=3, pseudo_labels=pseudo_labels, random_state=0)
    if unlabelled_by == "-1":
        y_partial, weight = np.full(len(X), -1), None
    else:
        # The labelled samples have weight 0, so they and their labels are
        # left out.
        labelled = np.arange(len(X)) % 5 == 0
        y_partial, weight = np.where(labelled, y, -1), np.where(labelled, 0.0, 1.0)
    model = fast_estimator(SNNLKMeans, use_labels=True, **params)
    with pytest.warns(UserWarning, match="no sample is labelled"):
        model.fit(X, y_partial, sample_weight=weight)
    unlabelled = fast_estimator(SNNLKMeans, **params).fit(X, sample_weight=weight)
    np.testing.assert_array_equal(model.labels_, unlabelled.labels_)
    assert len(model.classes_) == 0
