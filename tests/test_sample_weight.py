"""``sample_weight`` in ``fit``, ``fit_predict`` and ``score``, as KMeans takes it.

What is checked for every estimator: ``None`` and all ones give the same fit
bit for bit (equal weights of any size train as no weights), unequal weights
change the training loss; a sample of
weight 0 changes nothing (the fit equals the fit without it) and still gets
its ``predict`` label; integer weights equal repeated samples in the k-means
steps (the k-means on an untrained network's embedding, the centres of the
heads' clusters, ``inertia_``, ``score``, DCN's centre update, DEC's target,
IMSAT's entropies); invalid weights raise a ValueError naming the problem.
"""

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils.validation import _check_sample_weight

from conftest import all_estimators, fast_estimator
from skdeepcluster import DCN, DEC, IMSAT, SNNLKMeans
from skdeepcluster._dac import pairwise_loss
from skdeepcluster._dcn import update_centroids
from skdeepcluster._imsat import entropy_terms, kl_divergence
from skdeepcluster._nets import per_sample_loss
from skdeepcluster._snnl import soft_nearest_neighbour_loss
from skdeepcluster._torch_utils import loss_weights
from skdeepcluster.callbacks import target_distribution

ESTIMATORS = all_estimators()
ids = [cls.__name__ for cls in ESTIMATORS]

# Settings under which fit trains nothing: what is left of it is the k-means
# step on the untrained network's embedding (or the heads' clusters, whose
# centres are the mean embeddings of their samples).
# The autoencoder estimators with their k-means step (the neighbour graph's
# partitions take no weights).
NO_TRAINING = {
    "AutoencoderKMeans": dict(pretrain_epochs=0, clustering="kmeans"),
    "ACAIKMeans": dict(pretrain_epochs=0, clustering="kmeans"),
    "SNNLKMeans": dict(pretrain_epochs=0, clustering="kmeans"),
    "DEC": dict(pretrain_epochs=0, clustering_epochs=0, init="spherical-k-means"),
    "DCN": dict(pretrain_epochs=0, clustering_epochs=0, init="k-means"),
    "IMSAT": dict(max_epochs=0),
    "DAC": dict(max_epochs=0),
}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _model(cls, **params):
    return fast_estimator(cls, **{"n_clusters": 3, "random_state": 0, **params})


@pytest.fixture(scope="module")
def weights(blobs):
    # Integer weights 0..3: a quarter of the samples weigh 0.
    return np.random.RandomState(0).randint(0, 4, size=len(blobs[0]))


def test_every_estimator_has_untrained_settings():
    assert {cls.__name__ for cls in ESTIMATORS} == set(NO_TRAINING)


# -- None, ones and equal weights ----------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_none_equals_all_ones(cls, blobs):
    X, _ = blobs
    unweighted = _model(cls).fit(X)
    ones = _model(cls).fit(X, sample_weight=np.ones(len(X)))
    assert_array_equal(ones.labels_, unweighted.labels_)
    assert_array_equal(ones.cluster_centers_, unweighted.cluster_centers_)
    assert ones.inertia_ == unweighted.inertia_
    assert_array_equal(ones.transform(X), unweighted.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_equal_weights_train_as_no_weights(cls, blobs):
    # A weighted mean with equal weights is the plain mean: the losses are
    # computed exactly as without weights, and inertia_ scales with them.
    # KMeans itself, given weights of 3, rounds differently in the last bits
    # (DEC and DCN train on from its centres), hence the tolerance.
    X, _ = blobs
    unweighted = _model(cls).fit(X)
    threes = _model(cls).fit(X, sample_weight=np.full(len(X), 3.0))
    assert_allclose(threes.transform(X), unweighted.transform(X), atol=1e-5)
    assert_array_equal(threes.labels_, unweighted.labels_)
    assert threes.inertia_ == pytest.approx(3 * unweighted.inertia_, rel=1e-4)


# -- zero weights ----------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_zero_weight_samples_are_left_out(cls, blobs, weights):
    X, _ = blobs
    kept = weights > 0
    # Non-negative, so that input_scaling="auto" maps X onto [0, 1] by its
    # range, whose top the left-out samples hold: as if removed, they set
    # no scale.
    X = X - X.min()
    X[~kept] *= 10
    weighted = _model(cls).fit(X, sample_weight=weights)
    without = _model(cls).fit(X[kept], sample_weight=weights[kept])
    assert weighted.labels_.shape == (len(X),)
    assert_array_equal(weighted.labels_[kept], without.labels_)
    assert_array_equal(weighted.cluster_centers_, without.cluster_centers_)
    assert weighted.inertia_ == without.inertia_
    assert_array_equal(weighted.transform(X), without.transform(X))
    # The left-out samples are labelled as predict labels new data.
    assert_array_equal(weighted.labels_[~kept], weighted.predict(X[~kept]))
    assert_array_equal(weighted.labels_, weighted.predict(X))


def test_zero_weights_leave_out_the_labels_too(blobs, weights):
    # SNNLKMeans trains on y: a left-out sample's label goes with it.
    X, y = blobs
    kept = weights > 0
    model = _model(SNNLKMeans, use_labels=True)
    weighted = model.fit(X, y, sample_weight=weights).labels_.copy()
    without = model.fit(X[kept], y[kept], sample_weight=weights[kept]).labels_
    assert_array_equal(weighted[kept], without)


# -- integer weights and repeated samples in the k-means steps --------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_integer_weights_equal_repeats_in_the_kmeans_step(cls, blobs, weights):
    X, _ = blobs
    params = NO_TRAINING[cls.__name__]
    weighted = _model(cls, **params).fit(X, sample_weight=weights)
    repeated = _model(cls, **params).fit(np.repeat(X, weights, axis=0))
    first_copy = np.cumsum(weights) - weights
    kept = weights > 0
    assert_array_equal(weighted.labels_[kept], repeated.labels_[first_copy[kept]])
    assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-5)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-5)
    if hasattr(weighted, "kmeans_"):
        assert_allclose(
            weighted.kmeans_.cluster_centers_,
            repeated.kmeans_.cluster_centers_,
            rtol=1e-5,
        )
        assert weighted.kmeans_.inertia_ == pytest.approx(
            repeated.kmeans_.inertia_, rel=1e-5
        )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_score_and_inertia_weigh_like_kmeans(cls, blobs, weights):
    X, _ = blobs
    model = _model(cls).fit(X, sample_weight=weights)
    # inertia_ is -score of the training data, with its weights.
    assert model.inertia_ == pytest.approx(-model.score(X, sample_weight=weights))
    assert model.score(X, sample_weight=weights) == pytest.approx(
        model.score(np.repeat(X, weights, axis=0)), rel=1e-6
    )
    assert model.score(X, sample_weight=np.ones(len(X))) == model.score(X)
    with pytest.raises(ValueError, match="sample_weight"):
        model.score(X, sample_weight=np.ones(len(X) + 1))
    # As fit: a negative weight would flip the sign of its sample's term.
    with pytest.raises(ValueError, match="Negative values.*sample_weight"):
        model.score(X, sample_weight=-np.ones(len(X)))


def test_dcn_centre_update_counts_weights_as_repeats():
    rng = np.random.default_rng(0)
    centers = torch.as_tensor(rng.normal(size=(3, 4)))
    counts = torch.as_tensor(rng.integers(1, 50, size=3).astype(float))
    Z = torch.as_tensor(rng.normal(size=(20, 4)))
    labels = torch.as_tensor(rng.integers(0, 3, size=20))
    weight = torch.as_tensor(rng.integers(0, 4, size=20))
    expected_centers, expected_counts = centers.clone(), counts.clone()
    update_centroids(
        expected_centers,
        expected_counts,
        Z.repeat_interleave(weight, dim=0),
        labels.repeat_interleave(weight),
    )
    update_centroids(centers, counts, Z, labels, weight.double())
    torch.testing.assert_close(centers, expected_centers)
    torch.testing.assert_close(counts, expected_counts)


def test_dec_target_counts_weights_as_repeats():
    rng = np.random.default_rng(0)
    q = torch.softmax(torch.as_tensor(rng.normal(size=(12, 4))), dim=1)
    weight = torch.as_tensor(rng.integers(1, 4, size=12))
    repeated = target_distribution(q.repeat_interleave(weight, dim=0))
    first_copy = torch.cumsum(weight, 0) - weight
    torch.testing.assert_close(
        target_distribution(q, weight.double()), repeated[first_copy]
    )


def test_imsat_terms_count_weights_as_repeats():
    # With the weights scaled to a mean of one, as training scales them.
    rng = np.random.default_rng(0)
    logits = torch.as_tensor(rng.normal(size=(12, 4)))
    other = torch.as_tensor(rng.normal(size=(12, 4)))
    counts = torch.as_tensor(rng.integers(1, 4, size=12))
    weight = counts / counts.double().mean()
    for weighted, repeated in zip(
        entropy_terms(logits, weight),
        entropy_terms(logits.repeat_interleave(counts, dim=0)),
    ):
        torch.testing.assert_close(weighted, repeated)
    torch.testing.assert_close(
        kl_divergence(logits, other, weight),
        kl_divergence(
            logits.repeat_interleave(counts, dim=0),
            other.repeat_interleave(counts, dim=0),
        ),
    )


def test_pair_and_neighbour_losses_with_unit_weights_are_unweighted():
    # DAC's and SNNL's weights act on pairs; weights of one leave them as
    # they are, and zero-like small weights of a sample remove its pairs.
    rng = np.random.default_rng(0)
    features = torch.nn.functional.normalize(
        torch.softmax(torch.as_tensor(rng.normal(size=(10, 3))), dim=1), dim=1
    )
    labels = torch.as_tensor(rng.integers(0, 2, size=10))
    ones = torch.ones(10, dtype=features.dtype)
    torch.testing.assert_close(
        pairwise_loss(features, 0.9, 0.5, weight=ones)[0],
        pairwise_loss(features, 0.9, 0.5)[0],
    )
    torch.testing.assert_close(
        soft_nearest_neighbour_loss(features, labels, 0.5, ones),
        soft_nearest_neighbour_loss(features, labels, 0.5),
    )
    # A sample whose weight is negligible counts as absent.
    tiny = torch.ones(10, dtype=features.dtype)
    tiny[0] = 1e-12
    torch.testing.assert_close(
        pairwise_loss(features, 0.9, 0.5, weight=tiny)[0],
        pairwise_loss(features[1:], 0.9, 0.5)[0],
    )
    torch.testing.assert_close(
        soft_nearest_neighbour_loss(features, labels, 0.5, tiny),
        soft_nearest_neighbour_loss(features[1:], labels[1:], 0.5),
    )


# -- the weighted losses -----------------------------------------------------------


def test_per_sample_loss_averages_to_the_criterion():
    rng = np.random.default_rng(0)
    a, b = (torch.as_tensor(rng.normal(size=(6, 2, 3))) for _ in range(2))
    mse = torch.nn.MSELoss()
    torch.testing.assert_close(per_sample_loss(mse, a, b).mean(), mse(a, b))
    assert mse.reduction == "mean"
    log_q = torch.log_softmax(a.flatten(1), dim=1)
    p = torch.softmax(b.flatten(1), dim=1)
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    torch.testing.assert_close(per_sample_loss(kl, log_q, p).mean(), kl(log_q, p))
    with pytest.raises(ValueError, match="reduction"):
        per_sample_loss(torch.nn.MSELoss(reduction="sum"), a, b)


def test_loss_weights_are_scaled_to_mean_one():
    device = torch.device("cpu")
    assert loss_weights(None, device) is None
    assert loss_weights(np.full(5, 2.5), device) is None
    weight = loss_weights(np.array([1.0, 2.0, 3.0, 6.0]), device)
    torch.testing.assert_close(weight, torch.tensor([1 / 3, 2 / 3, 1.0, 2.0]))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_unequal_weights_reach_the_training_loss(cls, blobs, at_train_begin):
    # Every net gets the weights, scaled to a mean of one, while it trains.
    X, _ = blobs
    seen = at_train_begin(lambda net: net.sample_weight_)
    sample_weight = np.linspace(1.0, 3.0, len(X))
    model = _model(cls).fit(X, sample_weight=sample_weight)
    assert seen
    for weight in seen:
        torch.testing.assert_close(
            weight,
            torch.as_tensor(sample_weight / sample_weight.mean(), dtype=torch.float32),
        )
    # Training state, not kept with the fitted nets.
    assert not hasattr(model.net_, "sample_weight_")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_unequal_weights_change_the_first_training_loss(cls, blobs, at_train_begin):
    # The first net's first batch: the same samples through the same initial
    # network, weighted or not. Its loss changes only if the weights reach
    # the loss itself.
    X, _ = blobs
    nets = at_train_begin(lambda net: net)

    def first_batch_loss(sample_weight):
        nets.clear()
        _model(cls).fit(X, sample_weight=sample_weight)
        return nets[0].history[0, "batches", 0, "train_loss"]

    unweighted = first_batch_loss(None)
    assert first_batch_loss(np.ones(len(X))) == unweighted
    assert first_batch_loss(np.linspace(1.0, 3.0, len(X))) != pytest.approx(
        unweighted, rel=1e-4
    )


def test_weighting_one_blob_moves_the_centres_towards_it(blobs):
    # Weights change the fit, in the direction they should: a blob weighted
    # ten times pulls the single centre of a one-cluster fit towards it.
    X, y = blobs
    sample_weight = np.where(y == 0, 10.0, 1.0)
    params = NO_TRAINING["AutoencoderKMeans"]
    from skdeepcluster import AutoencoderKMeans

    unweighted = _model(AutoencoderKMeans, n_clusters=1, **params).fit(X)
    weighted = _model(AutoencoderKMeans, n_clusters=1, **params).fit(
        X, sample_weight=sample_weight
    )
    Z = unweighted.transform(X)
    blob = Z[y == 0].mean(axis=0)
    distance = np.linalg.norm(weighted.cluster_centers_[0] - blob)
    assert distance < np.linalg.norm(unweighted.cluster_centers_[0] - blob)
    assert_allclose(
        weighted.cluster_centers_[0],
        np.average(Z, axis=0, weights=sample_weight),
        rtol=1e-5,
    )


# -- fit_predict, fit_transform and the cache ----------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_fit_predict_and_fit_transform_pass_the_weights(cls, blobs, weights):
    X, _ = blobs
    fitted = _model(cls).fit(X, sample_weight=weights)
    assert_array_equal(
        _model(cls).fit_predict(X, sample_weight=weights), fitted.labels_
    )
    assert_array_equal(
        _model(cls).fit_transform(X, sample_weight=weights), fitted.transform(X)
    )
    # Also in KMeans' positional order: (X, y, sample_weight).
    assert_array_equal(_model(cls).fit_transform(X, None, weights), fitted.transform(X))


def test_memory_keeps_weighted_and_unweighted_pretraining_apart(blobs, tmp_path):
    X, _ = blobs
    sample_weight = np.linspace(1.0, 3.0, len(X))
    memory = joblib.Memory(tmp_path, verbose=0)
    weighted = _model(DEC).fit(X, sample_weight=sample_weight)
    unweighted = _model(DEC).fit(X)
    cached_weighted = _model(DEC, memory=memory).fit(X, sample_weight=sample_weight)
    cached_unweighted = _model(DEC, memory=memory).fit(X)
    hit = _model(DEC, memory=memory).fit(X, sample_weight=sample_weight)
    for cached, reference in (
        (cached_weighted, weighted),
        (cached_unweighted, unweighted),
        (hit, weighted),
    ):
        assert_array_equal(cached.transform(X), reference.transform(X))


# -- invalid weights ---------------------------------------------------------------


def _all_zero_weights_message():
    """What fit says of all-zero weights with this scikit-learn.

    Recent releases reject them in the validation the estimators share with
    KMeans; with earlier ones the estimators' own check does.
    """
    try:
        _check_sample_weight(np.zeros(3), np.ones((3, 1)), ensure_non_negative=True)
    except ValueError:
        return "Sample weights must contain at least one non-zero number"
    return "sample_weight has 0 positive weights but n_clusters=3"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (np.ones(89), r"sample_weight.shape == \(89,\), expected \(90,\)"),
        (np.ones((90, 2)), "1D array"),
        (np.r_[-1.0, np.ones(89)], "Negative values in data passed to `sample_weight`"),
        (np.zeros(90), None),  # see _all_zero_weights_message
        (np.r_[np.nan, np.ones(89)], "sample_weight contains NaN"),
        (np.r_[1.0, 1.0, np.zeros(88)], "2 positive weights but n_clusters=3"),
        # Valid in float64, all 0 or infinite in the networks' float32.
        (np.full(90, 1e-300), "largest weight is 1e-300, beyond the float32"),
        (np.full(90, 1e39), "largest weight is 1e[+]39, beyond the float32"),
    ],
    ids=[
        "length",
        "2d",
        "negative",
        "all-zero",
        "nan",
        "too-few-positive",
        "underflow",
        "overflow",
    ],
)
def test_invalid_weights_raise(cls, blobs, sample_weight, match):
    X, _ = blobs
    model = _model(cls)
    match = _all_zero_weights_message() if match is None else match
    with pytest.raises(ValueError, match=match):
        model.fit(X, sample_weight=sample_weight)
    assert not hasattr(model, "labels_")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_one_positive_weight_raises_in_terms_of_weights(cls, blobs):
    # One sample left to train on, even for one cluster: the message names
    # the weights, not the n_samples=1 the training would see.
    X, _ = blobs
    model = _model(cls, n_clusters=1)
    with pytest.raises(ValueError, match="1 positive weight but n_clusters=1"):
        model.fit(X, sample_weight=np.r_[1.0, np.zeros(len(X) - 1)])


def test_weights_are_not_changed(blobs, weights):
    X, _ = blobs
    sample_weight = weights.astype(np.float64)
    original = sample_weight.copy()
    _model(DCN).fit(X, sample_weight=sample_weight)
    _model(IMSAT).fit(X, sample_weight=sample_weight)
    _model(DEC).fit(X, sample_weight=sample_weight)
    assert_array_equal(sample_weight, original)
