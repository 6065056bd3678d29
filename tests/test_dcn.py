"""DCN: the centroid update rule, the joint training stage and its outputs."""

import numpy as np
import pytest
import torch
from skorch.callbacks import EarlyStopping, EpochScoring

from conftest import assert_gains_over_kmeans_start, fast_estimator
from skdeepcluster import DCN
from skdeepcluster._dcn import update_centroids


def test_update_centroids_hand_checked():
    # One sample at a time, with c_k <- c_k + 1 and m_k <- m_k - (m_k - z) / c_k:
    # centre 0 (count 1): (0, 0) -> (1, 0) with (2, 0) -> (2, 0) with (4, 0);
    # centre 1 (count 3): (10, 10) -> (10, 11) with (10, 14);
    # centre 2 gets nothing and stays.
    centers = torch.tensor([[0.0, 0.0], [10.0, 10.0], [5.0, 5.0]])
    counts = torch.tensor([1.0, 3.0, 2.0])
    Z = torch.tensor([[2.0, 0.0], [4.0, 0.0], [10.0, 14.0]])
    update_centroids(centers, counts, Z, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(
        centers, torch.tensor([[2.0, 0.0], [10.0, 11.0], [5.0, 5.0]])
    )
    torch.testing.assert_close(counts, torch.tensor([3.0, 4.0, 2.0]))


def test_update_centroids_equals_sequential_rule():
    rng = np.random.default_rng(0)
    centers = torch.as_tensor(rng.normal(size=(3, 4)))
    counts = torch.as_tensor(rng.integers(1, 50, size=3).astype(float))
    Z = torch.as_tensor(rng.normal(size=(40, 4)))
    labels = torch.as_tensor(rng.integers(0, 3, size=40))
    expected_centers, expected_counts = centers.clone(), counts.clone()
    for z, k in zip(Z, labels):
        expected_counts[k] += 1
        expected_centers[k] -= (expected_centers[k] - z) / expected_counts[k]
    update_centroids(centers, counts, Z, labels)
    torch.testing.assert_close(centers, expected_centers)
    torch.testing.assert_close(counts, expected_counts)


def test_alternation_improves_on_the_kmeans_start(overlapping_blobs):
    # A short pretraining into two dimensions leaves k-means on the (unit
    # circle) embedding far from perfect, so the alternation, which pulls
    # each sample to its centre from the first batch, has errors to correct.
    X, y = overlapping_blobs
    assert_gains_over_kmeans_start(
        lambda seed: DCN(
            4,
            hidden_dims=(32,),
            embedding_dim=2,
            pretrain_epochs=5,
            clustering_epochs=30,
            batch_size=32,
            init="k-means",
            initial_partition_epochs=0,
            normalize_embedding=True,
            random_state=seed,
        ),
        X,
        y,
    )


def _within_over_total(Z, labels):
    within = sum(
        ((Z[labels == k] - Z[labels == k].mean(0)) ** 2).sum()
        for k in np.unique(labels)
    )
    return within / ((Z - Z.mean(0)) ** 2).sum()


def test_kmeans_term_tightens_the_clusters(overlapping_blobs):
    # The same pretrained network (same random_state) before and after the
    # joint training: the k-means term makes clusters more compact relative to
    # the spread of the whole embedding.
    X, _ = overlapping_blobs
    params = dict(
        n_clusters=4,
        kmeans_weight=100.0,
        clustering_lr=1e-3,
        init="k-means",
        random_state=0,
    )
    before = fast_estimator(DCN, clustering_epochs=0, **params).fit(X)
    after = fast_estimator(DCN, clustering_epochs=20, **params).fit(X)
    np.testing.assert_array_equal(before.labels_, before.kmeans_.labels_)
    assert _within_over_total(after.transform(X), after.labels_) < _within_over_total(
        before.transform(X), before.labels_
    )


def test_history_records_both_loss_terms(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(DCN, n_clusters=4, clustering_epochs=4, random_state=0).fit(
        X
    )
    assert model.n_iter_ == 4 == len(model.net_.history)
    batch = model.net_.history[-1, "batches", 0]
    assert batch["train_loss"] == pytest.approx(
        batch["reconstruction_loss"] + batch["clustering_loss"], rel=1e-5
    )


def test_clustering_loss_scale():
    # kmeans_weight / 2 times the squared distance to the assigned centre,
    # averaged over the batch and divided by the number of input features.
    from skdeepcluster._dcn import DCNNet
    from skdeepcluster.nn import Autoencoder, MLPDecoder, MLPEncoder

    net = DCNNet(
        Autoencoder(MLPEncoder(6, (4,), 2), MLPDecoder(2, (4,), 6)),
        criterion=torch.nn.MSELoss,
        kmeans_weight=3.0,
    ).initialize()
    net.centers_ = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    net.assignments_ = torch.tensor([0, 1])
    embedding = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    loss = net.clustering_loss(embedding, torch.tensor([0, 1]), torch.zeros(2, 6), True)
    assert loss.item() == pytest.approx(3.0 / 2 * (25 + 1) / 2 / 6)


def test_kmeans_state_is_not_shared_with_kmeans_(overlapping_blobs, monkeypatch):
    from skdeepcluster._dcn import DCNNet

    counts = []
    on_train_end = DCNNet.on_train_end

    def record(self, *args, **kwargs):
        counts.append(self.counts_.sum().item())
        on_train_end(self, *args, **kwargs)

    monkeypatch.setattr(DCNNet, "on_train_end", record)
    X, _ = overlapping_blobs
    model = fast_estimator(
        DCN,
        n_clusters=4,
        clustering_epochs=5,
        initial_partition_epochs=2,
        random_state=0,
    ).fit(X)
    assert not np.allclose(model.cluster_centers_, model.kmeans_.cluster_centers_)
    # Each counter started at its k-means cluster size and grew by one per
    # assignment: n_samples per epoch of alternation, none while the initial
    # partition was held.
    assert counts == [pytest.approx(len(X) * (1 + 3))]
    # The k-means state is training state, not kept with the fitted model.
    for name in ("assignments_", "centers_", "counts_"):
        assert not hasattr(model.net_, name)


def test_initial_partition_is_held_for_its_epochs(overlapping_blobs):
    from skorch.callbacks import Callback

    from skdeepcluster._dcn import DCNNet

    states = []

    class RecordState(Callback):
        def on_epoch_end(self, net, **kwargs):
            if isinstance(net, DCNNet):
                states.append((net.assignments_.clone(), net.centers_.clone()))

    X, _ = overlapping_blobs
    model = fast_estimator(
        DCN,
        n_clusters=4,
        clustering_epochs=4,
        initial_partition_epochs=2,
        random_state=0,
        callbacks=[RecordState()],
    ).fit(X)
    # The network trained in every epoch ...
    losses = model.net_.history[:, "train_loss"]
    assert losses[1] < losses[0]
    # ... while the partition's assignments and centres stayed as they
    # started for two epochs, and then moved.
    start = torch.as_tensor(model.kmeans_.labels_, dtype=torch.long)
    for assignments, centers in states[:2]:
        torch.testing.assert_close(assignments, start)
        torch.testing.assert_close(centers, states[0][1])
    assert not torch.equal(states[3][1], states[0][1])


@pytest.mark.parametrize("smoothing_weight, held", [(0.0, 30), (1.0, 0)])
def test_auto_epochs_hold_the_partition_unless_pretrained_with_smoothing(
    overlapping_blobs, smoothing_weight, held
):
    # "auto": 30 held epochs after a plain pretraining, none after one with
    # the neighbourhood smoothing, and 15 alternating epochs after them.
    X, _ = overlapping_blobs
    model = fast_estimator(
        DCN,
        n_clusters=4,
        smoothing_weight=smoothing_weight,
        clustering_epochs="auto",
        initial_partition_epochs="auto",
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == held + 15
    assert model.net_.initial_epochs == held


def test_joint_training_continues_pretraining_optimiser(overlapping_blobs, monkeypatch):
    from skdeepcluster._dcn import DCNNet

    steps = []
    on_train_begin = DCNNet.on_train_begin

    def record(self, *args, **kwargs):
        state = self.optimizer_.state
        steps.append([float(state[p]["step"]) for p in self.module_.parameters()])
        on_train_begin(self, *args, **kwargs)

    monkeypatch.setattr(DCNNet, "on_train_begin", record)
    X, _ = overlapping_blobs
    model = fast_estimator(DCN, n_clusters=4, random_state=0).fit(X)
    pretraining_steps = sum(len(epoch["batches"]) for epoch in model.pretrain_history_)
    # Every weight's Adam moments were those of all the pretraining steps.
    n_weights = len(list(model.net_.module_.parameters()))
    assert steps == [[pretraining_steps] * n_weights]


def test_carry_optimizer_state_copies_only_between_same_classes():
    from skdeepcluster._torch_utils import carry_optimizer_state

    shared, own = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    source = torch.optim.Adam([shared])
    (shared**2).sum().backward()
    source.step()
    target = torch.optim.Adam([shared, own])
    carry_optimizer_state(source, target)
    assert set(target.state) == {shared}
    torch.testing.assert_close(
        target.state[shared]["exp_avg"], source.state[shared]["exp_avg"]
    )
    # A copy: the target's steps leave the source's moments alone.
    assert target.state[shared]["exp_avg"] is not source.state[shared]["exp_avg"]
    sgd = torch.optim.SGD([shared], lr=0.1, momentum=0.9)
    carry_optimizer_state(source, sgd)
    assert not sgd.state


def test_same_random_state_same_result(overlapping_blobs):
    X, _ = overlapping_blobs
    a = fast_estimator(DCN, n_clusters=4, random_state=7).fit(X)
    b = fast_estimator(DCN, n_clusters=4, random_state=7).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_predict_agrees_with_labels(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(DCN, n_clusters=4, clustering_epochs=10, random_state=0).fit(
        X
    )
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_array_equal(model.predict_proba(X).argmax(1), model.labels_)


def test_inverse_transform_decodes_centres(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(DCN, n_clusters=4, random_state=0).fit(X)
    assert model.inverse_transform(model.cluster_centers_).shape == (4, X.shape[1])


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(kmeans_weight=-1.0), "kmeans_weight"),
        (dict(initial_partition_epochs=-1), "initial_partition_epochs"),
        (dict(clustering_epochs=-1), "clustering_epochs"),
        (dict(clustering_lr=0.0), "clustering_lr"),
        (dict(n_init=0), "n_init"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        DCN(**params).fit(X)


@pytest.mark.parametrize("winner", ["kmeans", "spectral", "umap"])
def test_auto_init_starts_from_the_partition_of_highest_modularity(
    overlapping_blobs, force_most_modular, winner
):
    extended = force_most_modular(DCN, winner)
    X, _ = overlapping_blobs
    # No joint training: the centres are the initial ones.
    model = fast_estimator(DCN, n_clusters=4, clustering_epochs=0, random_state=0)
    model.fit(X)
    assert model.initial_clustering_ == winner
    if winner == "kmeans":
        assert not extended
        np.testing.assert_allclose(
            model.cluster_centers_, model.kmeans_.cluster_centers_, rtol=1e-6
        )
        return
    # Each centre is the mean embedding of its cluster in the graph partition.
    (assignments,) = extended
    Z = model.transform(X)
    expected = np.stack([Z[assignments == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(model.cluster_centers_, expected, rtol=1e-4, atol=1e-6)


def test_init_kmeans_skips_the_graph_partitions(overlapping_blobs, monkeypatch):
    from skdeepcluster import _autoencoder_base

    def fail(*args, **kwargs):
        raise AssertionError("graph partition computed with init='k-means'")

    monkeypatch.setattr(_autoencoder_base, "umap_partition", fail)
    monkeypatch.setattr(_autoencoder_base, "spectral_partition", fail)
    X, _ = overlapping_blobs
    model = fast_estimator(DCN, n_clusters=4, init="k-means", random_state=0).fit(X)
    assert model.initial_clustering_ == "kmeans"


class ClusteringStageEarlyStopping(EarlyStopping):
    """EarlyStopping acting in DCN's clustering stage only."""

    def on_epoch_end(self, net, **kwargs):
        if net.stage == "clustering":
            super().on_epoch_end(net, **kwargs)

    def on_train_end(self, net, **kwargs):
        if net.stage == "clustering":
            super().on_train_end(net, **kwargs)


def test_reloading_the_best_epoch_reloads_its_centres(blobs):
    # A score lowest at the second clustering epoch: EarlyStopping with
    # load_best reloads that epoch's weights at the end of the stage, and the
    # centres must be that epoch's too, as a run stopped there would have.
    X, _ = blobs
    best = ClusteringStageEarlyStopping(
        monitor="epochs_from_second",
        patience=100,
        load_best=True,
        sink=lambda *args: None,
    )
    scoring = EpochScoring(
        lambda net, X, y: abs(len(net.history) - 2),
        name="epochs_from_second",
        on_train=True,
        use_caching=False,
    )
    params = {"n_clusters": 3, "random_state": 0}
    model = fast_estimator(
        DCN, clustering_epochs=4, callbacks=[scoring, best], **params
    )
    model.fit(X)
    stopped = fast_estimator(DCN, clustering_epochs=2, **params).fit(X)
    last = fast_estimator(DCN, clustering_epochs=4, **params).fit(X)
    assert model.n_iter_ == 4
    for reloaded, reference in zip(
        model.net_.module_.parameters(), stopped.net_.module_.parameters()
    ):
        torch.testing.assert_close(reloaded, reference, rtol=0, atol=0)
    np.testing.assert_array_equal(model.cluster_centers_, stopped.cluster_centers_)
    assert not np.allclose(model.cluster_centers_, last.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, stopped.labels_)
    # The module keeps them, so that a checkpoint of the stage loads into it.
    np.testing.assert_array_equal(
        model.net_.module_.state_dict()["dcn_centers"].numpy(),
        model.net_.cluster_centers_,
    )
