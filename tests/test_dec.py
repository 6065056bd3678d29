"""DEC: target distribution, self-training stage, stopping rule and outputs."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from conftest import assert_gains_over_kmeans_start, fast_estimator
from skdeepcluster import DEC
from skdeepcluster._dec import DECNet, log_student_t_assignment
from skdeepcluster._torch_utils import cluster_means, student_t_assignment
from skdeepcluster.callbacks import target_distribution


def test_target_distribution_hand_checked():
    # Balanced clusters (f = [1, 1]): p is q squared and renormalised.
    q = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    p = target_distribution(q)
    expected = torch.tensor([[0.36, 0.16], [0.16, 0.36]]) / 0.52
    torch.testing.assert_close(p, expected)


def test_target_distribution_rows_sum_to_one_and_sharpen():
    rng = np.random.default_rng(0)
    q = torch.softmax(torch.as_tensor(rng.normal(size=(50, 5))), dim=1)
    # Make every column equally frequent so only the sharpening acts.
    q = torch.cat([q.roll(k, dims=1) for k in range(5)])
    p = target_distribution(q)
    torch.testing.assert_close(p.sum(1), torch.ones(len(p), dtype=p.dtype))
    assert torch.equal(p.argmax(1), q.argmax(1))
    assert (p.max(1).values > q.max(1).values).all()


def test_target_distribution_penalises_large_clusters():
    # A sample undecided between a crowded and a rare cluster is pushed to
    # the rare one by the division by the cluster frequency.
    q = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.5, 0.5]])
    p = target_distribution(q)
    assert p[3, 1] > 0.5


@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_log_assignment_matches_student_t(alpha):
    rng = np.random.default_rng(1)
    Z = torch.as_tensor(rng.normal(size=(20, 3)))
    centers = torch.as_tensor(rng.normal(size=(4, 3)))
    torch.testing.assert_close(
        log_student_t_assignment(Z, centers, alpha).exp(),
        student_t_assignment(Z, centers, alpha),
    )
    # And the kernel itself, for alpha != 1.
    kernel = (1 + torch.cdist(Z, centers) ** 2 / alpha) ** (-(alpha + 1) / 2)
    torch.testing.assert_close(
        student_t_assignment(Z, centers, alpha), kernel / kernel.sum(1, keepdim=True)
    )


def test_refinement_improves_on_the_kmeans_start(overlapping_blobs):
    # A short pretraining into two dimensions leaves k-means on the embedding
    # imperfect, so the self-training, which sharpens the partition it starts
    # from, has errors to correct. (In two dimensions the directions alone
    # cannot separate four blobs, hence the raw embedding, init="k-means" and
    # the paper's alpha; and the paper's self-training alone, from Q, without
    # IDEC's reconstruction term.)
    X, y = overlapping_blobs
    assert_gains_over_kmeans_start(
        lambda seed: DEC(
            4,
            hidden_dims=(32,),
            embedding_dim=2,
            pretrain_epochs=5,
            clustering_epochs=30,
            batch_size=32,
            clustering_lr=1e-3,
            tol=0,
            init="k-means",
            random_state=seed,
            normalize_embedding=False,
            alpha=1.0,
            reconstruction_weight=0,
            initial_partition_epochs=0,
        ),
        X,
        y,
    )


def test_spherical_init_centres_are_mean_embeddings_of_direction_clusters(
    overlapping_blobs,
):
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=0,
        init="spherical-k-means",
        random_state=0,
    ).fit(X)
    assert model.initial_clustering_ == "kmeans"
    Z = model.transform(X)
    directions = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    # kmeans_ clustered the directions ...
    np.testing.assert_array_equal(
        model.kmeans_.predict(directions), model.kmeans_.labels_
    )
    # ... and each starting centre is the mean raw embedding of its group.
    expected = np.stack([Z[model.kmeans_.labels_ == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(model.cluster_centers_, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("winner", ["kmeans", "umap"])
def test_auto_init_centres_are_mean_embeddings_of_the_most_modular_partition(
    overlapping_blobs, force_most_modular, winner
):
    extended = force_most_modular(DEC, winner)
    X, _ = overlapping_blobs
    model = fast_estimator(DEC, n_clusters=4, clustering_epochs=0, random_state=0).fit(
        X
    )
    assert model.init == "auto"
    assert model.initial_clustering_ == winner
    labels = extended[0] if extended else model.kmeans_.labels_
    assert len(extended) == (winner != "kmeans")
    # Each centre is the mean raw embedding of its cluster.
    Z = model.transform(X)
    expected = np.stack([Z[labels == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(model.cluster_centers_, expected, rtol=1e-4, atol=1e-5)


def test_kmeans_init_centres_are_the_kmeans_centres(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC, n_clusters=4, clustering_epochs=0, init="k-means", random_state=0
    ).fit(X)
    np.testing.assert_allclose(
        model.cluster_centers_, model.kmeans_.cluster_centers_, rtol=1e-5
    )


def test_training_decreases_kl_and_moves_centres(overlapping_blobs):
    X, _ = overlapping_blobs
    # The target P is held fixed (never refreshed within 20 epochs), so the
    # KL is one objective that the optimiser must decrease. (With a refresh
    # every epoch P sharpens as Q does, and the logged KL may rise.)
    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=20,
        clustering_lr=1e-3,
        tol=0,
        update_interval=100,
        reconstruction_weight=0,
        initial_partition_epochs=0,
        random_state=0,
    ).fit(X)
    losses = model.net_.history[:, "train_loss"]
    assert len(losses) == 20 == model.n_iter_
    assert losses[-1] < losses[0]
    # cluster_centers_ are the trained parameters, not the k-means ones.
    np.testing.assert_allclose(
        model.cluster_centers_, model.net_.module_.centers.detach().numpy()
    )
    assert not np.allclose(model.cluster_centers_, model.kmeans_.cluster_centers_)


def test_reconstruction_term_adds_weighted_squared_error(
    overlapping_blobs, monkeypatch
):
    X, _ = overlapping_blobs
    # The decoder's weights as the clustering stage starts (the pretrained
    # ones), to check that the term trains the decoder as well as the encoder.
    pretrained = {}
    on_train_begin = DECNet.on_train_begin

    def recording(net, *args, **kwargs):
        on_train_begin(net, *args, **kwargs)
        pretrained.update(
            {k: v.clone() for k, v in net.module_.decoder.state_dict().items()}
        )

    monkeypatch.setattr(DECNet, "on_train_begin", recording)
    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=3,
        tol=0,
        reconstruction_weight=2.5,
        random_state=0,
    ).fit(X)
    assert model.net_.module_.decoder is not None
    for epoch in model.net_.history:
        for batch in epoch["batches"]:
            assert batch["train_loss"] == pytest.approx(
                batch["clustering_loss"] + 2.5 * batch["reconstruction_loss"],
                rel=1e-5,
            )
        assert epoch["reconstruction_loss"] > 0
    # The kept decoder reconstructs from the refined encoder: its error is
    # the logged term.
    Z = torch.as_tensor(model.transform(X))
    with torch.no_grad():
        error = (model.net_.module_.decoder(Z) - torch.as_tensor(X)).pow(2).mean()
    last = model.net_.history[-1, "reconstruction_loss"]
    assert float(error) == pytest.approx(last, rel=0.5)
    trained = model.net_.module_.decoder.state_dict()
    assert pretrained.keys() == trained.keys()
    assert all(not torch.equal(pretrained[k], trained[k]) for k in trained)


def test_without_reconstruction_term_the_decoder_is_dropped(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC, n_clusters=4, reconstruction_weight=0, random_state=0
    ).fit(X)
    assert model.net_.module_.decoder is None
    assert "reconstruction_loss" not in model.net_.history[-1]


def test_same_random_state_same_result(overlapping_blobs):
    X, _ = overlapping_blobs
    a = fast_estimator(DEC, n_clusters=4, random_state=7).fit(X)
    b = fast_estimator(DEC, n_clusters=4, random_state=7).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_predict_and_predict_proba_agree_with_labels(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(DEC, n_clusters=4, clustering_epochs=10, random_state=0).fit(
        X
    )
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), model.labels_)


def test_predict_proba_uses_alpha(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(DEC, n_clusters=4, alpha=4.0, random_state=0).fit(X)
    Z = torch.as_tensor(model.transform(X))
    expected = student_t_assignment(Z, torch.as_tensor(model.cluster_centers_), 4.0)
    np.testing.assert_allclose(model.predict_proba(X), expected.numpy(), rtol=1e-4)


def test_tol_one_stops_at_first_refresh(overlapping_blobs):
    # Any label change is below tol=1, so training stops after the first
    # refresh of P, i.e. after update_interval epochs.
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=20,
        update_interval=3,
        tol=1.0,
        initial_partition_epochs=0,
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == 3
    assert "label_change" in model.net_.history[-1]


def test_tol_zero_runs_the_budget_and_refreshes_every_interval(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=7,
        update_interval=2,
        tol=0,
        initial_partition_epochs=0,
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == 7
    refreshed = ["label_change" in row for row in model.net_.history]
    assert refreshed == [False, True, False, True, False, True, False]


def test_initial_target_is_the_start_partition_then_q(
    overlapping_blobs, force_most_modular
):
    # For initial_partition_epochs the target is the start partition, one-hot;
    # the first refresh from Q ends them, then one every update_interval.
    extended = force_most_modular(DEC, "umap")
    X, _ = overlapping_blobs
    targets = []

    class RecordTarget(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if isinstance(net, DECNet):
                targets.append(net.target_.clone())

    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=6,
        initial_partition_epochs=3,
        update_interval=2,
        tol=0,
        random_state=0,
        callbacks=[RecordTarget()],
    ).fit(X)
    start = torch.nn.functional.one_hot(torch.as_tensor(extended[0]), 4).float()
    for target in targets[:3]:
        torch.testing.assert_close(target, start)
    # From Q: soft rows, no longer the start partition.
    assert 0 < targets[3].min() and targets[3].max() < 1
    refreshed = ["label_change" in row for row in model.net_.history]
    assert refreshed == [False, False, True, False, True, False]
    # Neither target is kept with the fitted net.
    assert not hasattr(model.net_, "target_")
    assert not hasattr(model.net_, "initial_assignments_")


@pytest.mark.parametrize("smoothing_weight, held", [(0.0, True), (1.0, False)])
def test_auto_initial_partition_epochs_unless_pretrained_with_smoothing(
    overlapping_blobs, smoothing_weight, held
):
    # "auto" holds the start partition after a plain pretraining and starts
    # from Q after one with the neighbourhood smoothing: a held epoch
    # refreshes nothing.
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC,
        n_clusters=4,
        smoothing_weight=smoothing_weight,
        clustering_epochs=3,
        initial_partition_epochs="auto",
        tol=0,
        random_state=0,
    ).fit(X)
    refreshed = ["label_change" in row for row in model.net_.history]
    assert refreshed == ([False] * 3 if held else [True] * 3)


def test_initial_partition_epochs_fit_q_to_the_start_partition(
    overlapping_blobs, monkeypatch
):
    # A start partition that is not the nearest-centre one of the embedding
    # (the true classes of overlapping blobs, which k-means on a short
    # pretraining's embedding gets partly wrong): epochs with it as the
    # target must bring Q's labels closer to it than the start centres'.
    # (Without the reconstruction term, which on these unscaled blobs and a
    # 5-epoch pretraining is hundreds of times the KL and would mostly go on
    # pretraining.)
    X, y = overlapping_blobs
    initial_centers = DEC._initial_centers

    def start_from_classes(self, embedding, random_state, sample_weight):
        centers, _ = initial_centers(self, embedding, random_state, sample_weight)
        classes = torch.as_tensor(y)
        return cluster_means(embedding, classes, centers, None), classes

    monkeypatch.setattr(DEC, "_initial_centers", start_from_classes)
    params = dict(
        n_clusters=4,
        clustering_lr=1e-3,
        tol=0,
        reconstruction_weight=0,
        random_state=0,
    )
    before = fast_estimator(DEC, clustering_epochs=0, **params).fit(X)
    after = fast_estimator(
        DEC, clustering_epochs=30, initial_partition_epochs=30, **params
    ).fit(X)
    agreement_before = np.mean(before.labels_ == y)
    assert agreement_before < 0.95
    assert np.mean(after.labels_ == y) > agreement_before + 0.02


@pytest.mark.parametrize("clustering_epochs", [5, 1])
def test_initial_partition_epochs_train_at_lr_then_clustering_lr(
    overlapping_blobs, clustering_epochs
):
    # The held epochs train at the pretraining's rate, self-training at
    # clustering_lr; a stage that ends within the held epochs (1 of 2) also
    # gives the optimiser back its rate.
    X, _ = overlapping_blobs
    rates = []

    class RecordRate(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if isinstance(net, DECNet):
                rates.append(net.optimizer_.param_groups[0]["lr"])

    model = fast_estimator(
        DEC,
        n_clusters=4,
        lr=3e-3,
        clustering_lr=2e-4,
        clustering_epochs=clustering_epochs,
        initial_partition_epochs=2,
        tol=0,
        random_state=0,
        callbacks=[RecordRate()],
    ).fit(X)
    expected = ([3e-3] * 2 + [2e-4] * 3)[:clustering_epochs]
    assert rates == pytest.approx(expected)
    assert model.net_.optimizer_.param_groups[0]["lr"] == 2e-4


def test_stops_when_labels_settle(overlapping_blobs):
    # With a vanishing learning rate nothing moves, so the first refresh sees
    # no label change and stops a run budgeted for many epochs.
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC,
        n_clusters=4,
        clustering_epochs=50,
        clustering_lr=1e-12,
        initial_partition_epochs=0,
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == 1
    assert model.net_.history[-1, "label_change"] == 0.0


def test_zero_clustering_epochs_keeps_kmeans_labels(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(
        DEC, n_clusters=4, clustering_epochs=0, init="k-means", random_state=0
    ).fit(X)
    assert model.n_iter_ == 0
    np.testing.assert_array_equal(model.labels_, model.kmeans_.labels_)


def test_inverse_transform_only_with_the_reconstruction_term(overlapping_blobs):
    X, _ = overlapping_blobs
    model = fast_estimator(DEC, n_clusters=4, random_state=0).fit(X)
    # The kept decoder, applied to the final encoder's embedding.
    with torch.no_grad():
        expected = model.net_.module_.decoder(torch.as_tensor(model.transform(X)))
    np.testing.assert_allclose(
        model.inverse_transform(model.transform(X)), expected.numpy(), rtol=1e-5
    )
    assert model.inverse_transform(model.cluster_centers_).shape == (4, X.shape[1])
    without = fast_estimator(DEC, n_clusters=4, reconstruction_weight=0)
    assert not hasattr(without, "inverse_transform")
    assert not hasattr(without.fit(X), "inverse_transform")
    assert without.transform(X).shape == (len(X), 2)
    # What the fit kept decides, not the parameter as it is now.
    assert not hasattr(
        without.set_params(reconstruction_weight=1.0), "inverse_transform"
    )
    assert hasattr(model.set_params(reconstruction_weight=0), "inverse_transform")


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(alpha=0.0), "alpha"),
        (dict(tol=1.5), "tol"),
        (dict(update_interval=0), "update_interval"),
        (dict(clustering_epochs=-1), "clustering_epochs"),
        (dict(clustering_lr=0.0), "clustering_lr"),
        (dict(n_init=0), "n_init"),
        (dict(init="random"), "init"),
        (dict(reconstruction_weight=-1.0), "reconstruction_weight"),
        (dict(initial_partition_epochs=-1), "initial_partition_epochs"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        DEC(**params).fit(X)
