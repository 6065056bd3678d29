"""AutoencoderKMeans: the autoencoder stage, k-means on its embedding, decoding."""

import functools

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from conftest import fast_estimator
from skdeepcluster import DCN, DEC, ACAIKMeans, AutoencoderKMeans, SNNLKMeans
from skdeepcluster._graph import neighbour_votes
from skdeepcluster._torch_utils import nearest_neighbours
from skdeepcluster.metrics import clustering_accuracy
from skdeepcluster.nn import MLPDecoder, MLPEncoder


def test_labels_are_kmeans_of_the_embedding(blobs):
    # With clustering="kmeans", labels_ and cluster_centers_ are exactly
    # k-means on transform(X).
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, clustering="kmeans", random_state=0
    ).fit(X)
    Z = model.transform(X)
    distances = ((Z[:, None, :] - model.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(distances.argmin(1), model.labels_)
    assert model.inertia_ == pytest.approx(distances.min(1).sum(), rel=1e-4)


def test_training_reduces_reconstruction_loss(blobs):
    X, _ = blobs
    # Raw 2-D embedding: on the unit circle (normalize_embedding=True) a
    # 2-D code cannot hold 4-D blobs well enough to halve the error.
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        pretrain_epochs=20,
        normalize_embedding=False,
        random_state=0,
    ).fit(X)
    losses = model.net_.history[:, "train_loss"]
    assert len(losses) == 20 == model.n_iter_
    assert losses[-1] < 0.5 * losses[0]


def test_separates_blobs(blobs):
    X, y = blobs
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, pretrain_epochs=30, random_state=0
    )
    assert clustering_accuracy(y, model.fit_predict(X)) > 0.9


def test_inverse_transform_of_centres_gives_prototypes(blobs):
    # Decoded centres live in input space, near the mean of their cluster
    # rather than of the whole data.
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, pretrain_epochs=100, lr=1e-2, random_state=0
    ).fit(X)
    prototypes = model.inverse_transform(model.cluster_centers_)
    assert prototypes.shape == (3, X.shape[1])
    for k, prototype in enumerate(prototypes):
        own = np.linalg.norm(prototype - X[model.labels_ == k].mean(0))
        assert own < np.linalg.norm(prototype - X.mean(0))


def test_inverse_transform_rejects_wrong_width(blobs):
    X, _ = blobs
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="embeddings of shape"):
        model.inverse_transform(np.zeros((2, 5)))


def test_user_modules_are_copied_not_trained(blobs):
    # The modules passed as parameters are left untouched (clone/refit safety).
    X, _ = blobs
    encoder, decoder = MLPEncoder(4, (8,), 2), MLPDecoder(2, (8,), 4)
    before = [p.detach().clone() for p in encoder.parameters()]
    model = AutoencoderKMeans(
        3, encoder=encoder, decoder=decoder, pretrain_epochs=5, random_state=0
    ).fit(X)
    for p, q in zip(encoder.parameters(), before):
        torch.testing.assert_close(p, q)
    assert model.net_.module_.encoder is not encoder
    assert model.transform(X).shape == (len(X), 2)


def test_encoder_without_decoder_is_an_error(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="both encoder and decoder"):
        AutoencoderKMeans(3, encoder=MLPEncoder(4, (8,), 2), pretrain_epochs=1).fit(X)


_ENCODER = torch.nn.Sequential(
    torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
)


@pytest.mark.parametrize(
    "encoder, decoder, message",
    [
        (_ENCODER, torch.nn.Linear(5, 4), r"decoder failed on the encoder's output"),
        (_ENCODER, torch.nn.Linear(2, 3), r"decoder must return .* \(2, 4\)"),
        (
            torch.nn.Linear(4, 2).double(),
            torch.nn.Linear(2, 4).double(),
            r"encoder has parameters of dtype \['torch.float64'\]",
        ),
        (
            torch.nn.Linear(3, 2),
            torch.nn.Linear(2, 4),
            r"encoder failed on a batch of shape \(2, 4\)",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Unflatten(1, (2, 2))),
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4)),
            r"encoder must return .* \(batch, embedding\).* \(2, 2, 2\)",
        ),
        (torch.nn.Unflatten(1, (2, 2)), torch.nn.Flatten(), "no trainable parameters"),
    ],
    ids=["decoder input", "decoder output", "float64", "encoder input", "3-D", "none"],
)
@pytest.mark.parametrize("cls", [AutoencoderKMeans, DEC], ids=lambda c: c.__name__)
def test_wrong_user_modules_are_named_before_training(
    blobs, cls, encoder, decoder, message
):
    X, _ = blobs
    model = cls(3, encoder=encoder, decoder=decoder, pretrain_epochs=1)
    with pytest.raises(ValueError, match=message):
        model.fit(X)


def test_user_modules_are_tried_without_changing_their_statistics(blobs):
    # The trial batch runs in evaluation mode: batch norm's running
    # statistics, which training would update, stay as given.
    X, _ = blobs
    encoder = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.BatchNorm1d(2))
    decoder = torch.nn.Linear(2, 4)
    model = AutoencoderKMeans(3, encoder=encoder, decoder=decoder, pretrain_epochs=0)
    model.fit(X)
    trained = model.net_.module_.encoder[1]
    torch.testing.assert_close(trained.running_mean, torch.zeros(2))
    assert int(trained.num_batches_tracked) == 0


@pytest.mark.parametrize(
    "cls",
    [AutoencoderKMeans, ACAIKMeans, SNNLKMeans, DEC, DCN],
    ids=lambda c: c.__name__,
)
def test_batch_norm_encoder_skips_a_last_batch_of_one_sample(blobs, cls):
    # 31 samples in batches of 10: the fourth batch would hold one sample,
    # which batch norm cannot normalise in training mode.
    X, _ = blobs
    encoder = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU()
    )
    model = fast_estimator(
        cls, n_clusters=3, encoder=encoder, decoder=torch.nn.Linear(8, 4), batch_size=10
    ).fit(X[:31])
    batches = model.net_.history[-1, "batches"]
    assert [batch["train_batch_size"] for batch in batches] == [10, 10, 10]
    assert model.labels_.shape == (31,)


def test_batch_norm_on_maps_keeps_a_last_batch_of_one_sample(blobs):
    # BatchNorm2d normalises one sample's map (four values per channel here):
    # nothing is dropped.
    X, _ = blobs
    encoder = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 2, 2)),
        torch.nn.Conv2d(1, 4, 1),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 2),
    )
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        encoder=encoder,
        decoder=torch.nn.Linear(2, 4),
        batch_size=10,
    ).fit(X[:31])
    batches = model.net_.history[-1, "batches"]
    assert [batch["train_batch_size"] for batch in batches] == [10, 10, 10, 1]


def test_input_shape_uses_convolutions():
    rng = np.random.default_rng(0)
    X = rng.random((40, 2 * 8 * 8), dtype=np.float32)
    model = AutoencoderKMeans(
        2, input_shape=(2, 8, 8), pretrain_epochs=2, random_state=0
    ).fit(X)
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.net_.module_.modules())
    assert model.inverse_transform(model.cluster_centers_).shape == (2, 128)


def test_zero_pretrain_epochs_is_kmeans_on_random_projection(blobs):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        pretrain_epochs=0,
        clustering="kmeans",
        kmeans_selection="inertia",
        random_state=0,
    ).fit(X)
    assert len(model.net_.history) == 0
    expected = KMeans(3, n_init=10, random_state=model.kmeans_.random_state).fit(
        model.transform(X)
    )
    np.testing.assert_allclose(model.inertia_, expected.inertia_, rtol=1e-4)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_clusters=0), "n_clusters"),
        (dict(pretrain_epochs=-1), "pretrain_epochs"),
        (dict(lr=0.0), "lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(embedding_dim=0), "embedding_dim"),
        (dict(hidden_dims="wide"), "hidden_dims"),
        (dict(encoder="mlp"), "encoder"),
        (dict(smoothing_weight=-1.0), "smoothing_weight"),
        (dict(n_neighbors=0), "n_neighbors"),
        (dict(smoothing_start=1.5), "smoothing_start"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        AutoencoderKMeans(**params).fit(X)


def test_verbose_prints_progress(blobs, capsys):
    X, _ = blobs
    fast_estimator(AutoencoderKMeans, n_clusters=3, verbose=1, random_state=0).fit(X)
    assert "train_loss" in capsys.readouterr().out


def test_nearest_neighbours_match_scikit_learn():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 5)).astype(np.float32)
    # Chunks smaller than the data, so the self-exclusion is checked across chunks.
    ours = nearest_neighbours(torch.as_tensor(Z), 4, chunk_size=64).numpy()
    expected = NearestNeighbors(n_neighbors=4).fit(Z).kneighbors(return_distance=False)
    np.testing.assert_array_equal(np.sort(ours, axis=1), np.sort(expected, axis=1))


def test_smoothing_starts_at_the_given_fraction_of_training(blobs):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        pretrain_epochs=6,
        smoothing_weight=1.0,
        smoothing_start=0.5,
        random_state=0,
    ).fit(X)
    has_term = ["smoothing_loss" in epoch["batches"][0] for epoch in model.net_.history]
    assert has_term == [False, False, False, True, True, True]
    # Training state is dropped after fit, so the fitted net pickles small.
    assert model.net_.smoothing_targets_ is None

    plain = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        pretrain_epochs=6,
        smoothing_weight=0.0,
        random_state=0,
    ).fit(X)
    assert not any(
        "smoothing_loss" in epoch["batches"][0] for epoch in plain.net_.history
    )


def test_smoothing_targets_are_halfway_to_the_neighbourhood_mean(blobs):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        n_neighbors=5,
        normalize_embedding=True,
        random_state=0,
    ).fit(X)
    net = model.net_
    X_tensor = torch.as_tensor(X)
    refresh = dict(net.callbacks_)["neighbour_refresh"]
    targets = refresh.targets(net, X_tensor).numpy()
    Z = model.transform(X)
    neighbours = (
        NearestNeighbors(n_neighbors=5).fit(Z).kneighbors(return_distance=False)
    )
    expected = (Z + Z[neighbours].mean(axis=1)) / 2
    # The embedding is on the unit sphere, so the targets are put back on it.
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(targets, expected, atol=1e-5)


def test_smoothing_contracts_clusters(blobs):
    # Relative to a plain autoencoder, the smoothing term shrinks each blob
    # in the embedding compared with the distances between blobs.
    X, y = blobs

    def spread(model):
        Z = model.transform(X)
        within = np.mean([Z[y == k].var(axis=0).sum() for k in range(3)])
        return within / Z.var(axis=0).sum()

    params = dict(
        n_clusters=3, pretrain_epochs=40, smoothing_start=0.25, random_state=0
    )
    smoothed = fast_estimator(AutoencoderKMeans, smoothing_weight=5.0, **params).fit(X)
    plain = fast_estimator(AutoencoderKMeans, smoothing_weight=0.0, **params).fit(X)
    assert spread(smoothed) < spread(plain)


@pytest.mark.parametrize("n_samples, large", [(300, False), (6000, True)])
def test_auto_sizes_follow_the_number_of_samples(n_samples, large):
    # "auto" picks the network and the epochs from n_samples (the smoothing:
    # see below); only the resolution is checked here, so training is skipped.
    X = np.random.default_rng(0).normal(size=(n_samples, 5)).astype(np.float32)
    model = AutoencoderKMeans(n_clusters=3, batch_size=100)
    model._check_params_vs_input(X)
    assert model._hidden_dims == ((500, 500, 2000) if large else (256, 128))
    steps_per_epoch = int(np.ceil(n_samples / 100))
    assert model._pretrain_epochs == max(100, int(np.ceil(2000 / steps_per_epoch)))
    assert model._pretrain_epochs * steps_per_epoch >= 2000


@pytest.mark.parametrize("n_samples, large", [(300, False), (6000, True)])
@pytest.mark.parametrize(
    "cls, default_is_auto",
    [
        (AutoencoderKMeans, False),
        (ACAIKMeans, False),
        (DEC, False),
        (DCN, False),
        # SNNLKMeans keeps the smoothing on large data beside labels, with
        # its pseudo-labels (benchmarks/NOTES.rst; without labels, see
        # tests/test_snnl.py).
        (functools.partial(SNNLKMeans, use_labels=True), True),
    ],
)
def test_smoothing_default_and_auto_rule(cls, default_is_auto, n_samples, large):
    # The default resolves to no smoothing at any size, except labelled
    # SNNLKMeans'; "auto" is 1.0 from 5,000 samples on.
    X = np.random.default_rng(0).normal(size=(n_samples, 5)).astype(np.float32)
    auto = 1.0 if large else 0.0
    model = cls(n_clusters=3, batch_size=100)
    model._check_params_vs_input(X)
    assert model._smoothing_weight == (auto if default_is_auto else 0.0)
    model.set_params(smoothing_weight="auto")._check_params_vs_input(X)
    assert model._smoothing_weight == auto


@pytest.mark.parametrize(
    "n_samples, held",
    [
        # 30 epochs of up to 240 steps: all held.
        (300, 30),
        (1_800, 30),
        # 40 steps an epoch: 400 steps are 10 epochs.
        (10_000, 10),
        # 274 steps an epoch: the first epoch that reaches 400 steps.
        (70_000, 2),
    ],
)
def test_auto_held_epochs_are_capped_at_400_steps_for_dec(n_samples, held):
    # The rule stated in DEC's docstring of initial_partition_epochs; DCN
    # keeps its 30 epochs at every size.
    X = np.zeros((n_samples, 5), dtype=np.float32)
    dcn = DCN(n_clusters=3, batch_size=256)
    dcn._check_params_vs_input(X)
    assert dcn._initial_partition_epochs == 30
    model = DEC(n_clusters=3, batch_size=256)
    model._check_params_vs_input(X)
    assert model._initial_partition_epochs == held
    model.set_params(smoothing_weight=1.0)._check_params_vs_input(X)
    assert model._initial_partition_epochs == 0
    model.set_params(initial_partition_epochs=7)._check_params_vs_input(X)
    assert model._initial_partition_epochs == 7


def test_explicit_sizes_are_used_as_given():
    X = np.zeros((300, 5), dtype=np.float32)
    model = AutoencoderKMeans(
        n_clusters=3, hidden_dims=[7, 3], pretrain_epochs=4, smoothing_weight=0.5
    )
    model._check_params_vs_input(X)
    assert (model._hidden_dims, model._pretrain_epochs, model._smoothing_weight) == (
        (7, 3),
        4,
        0.5,
    )


def test_voters_are_a_third_of_the_mean_cluster_size_when_fewer():
    # ORL: 400 faces of 40 people. Ten voters would reach mostly into other
    # people's clusters, and a small cluster could lose its own samples.
    assert AutoencoderKMeans(n_clusters=40)._voters(400) == 3
    assert AutoencoderKMeans(n_clusters=10)._voters(10_000) == 10
    assert AutoencoderKMeans(n_clusters=10, n_neighbors=5)._voters(10_000) == 5


@pytest.mark.parametrize("changed", [{"n_clusters": 30}, {"n_neighbors": 1}])
def test_predict_counts_the_fits_voters_after_set_params(overlapping_blobs, changed):
    # The number of voters follows n_clusters and n_neighbors; resolved
    # when fitting, so that predict(X_train) still reproduces labels_.
    X, _ = overlapping_blobs
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=4, clustering="spectral", random_state=0
    ).fit(X)
    model.set_params(**changed)
    assert model._voters(len(model.reference_embedding_)) != model._n_voters
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_pickle_without_the_fits_voters_counts_the_parameters(overlapping_blobs):
    # A model pickled before the count was resolved at fit.
    X, _ = overlapping_blobs
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=4, clustering="spectral", random_state=0
    ).fit(X)
    state = model.__getstate__()
    del state["_n_voters"]
    loaded = AutoencoderKMeans.__new__(AutoencoderKMeans)
    loaded.__setstate__(state)
    assert loaded._n_voters == model._n_voters
    np.testing.assert_array_equal(loaded.predict(X), model.labels_)


def test_predict_uses_the_voters_of_the_reference_samples(blobs):
    X, _ = blobs
    # 90 samples in 3 clusters: a third of the mean size is 10 voters.
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        n_neighbors=20,
        clustering="spectral",
        random_state=0,
    ).fit(X)
    reference = torch.as_tensor(model.reference_embedding_)
    voters = model._n_voters
    assert voters == model._voters(len(reference)) < model.n_neighbors
    expected = neighbour_votes(
        torch.as_tensor(model.transform(X)),
        reference,
        torch.as_tensor(model._reference_labels),
        voters,
        len(model.cluster_centers_),
    )
    np.testing.assert_allclose(model.predict_proba(X) * voters, expected.numpy())
