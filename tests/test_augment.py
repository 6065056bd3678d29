"""``augment``: the autoencoder estimators and IMSAT train on deformed images."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from conftest import all_estimators, fast_estimator
from skdeepcluster import IMSAT, AutoencoderKMeans, _nets
from skdeepcluster._autoencoder_base import BaseAutoencoderClusterer
from skdeepcluster._nets import ClusteringNet
from skdeepcluster.base import BaseDeepClusterer

# The estimators whose augment is True, False or "auto" (DAC's is its own).
DEFORMING_ESTIMATORS = [
    cls
    for cls in all_estimators()
    if issubclass(cls, BaseAutoencoderClusterer) or cls is IMSAT
]
ids = [cls.__name__ for cls in DEFORMING_ESTIMATORS]


def deforming_estimator(cls, **params):
    """``fast_estimator``; IMSAT with one start, so its one net is the kept one."""
    if cls is IMSAT:
        params = {"n_init": 1, **params}
    return fast_estimator(cls, **params)


@pytest.fixture(scope="module")
def digits():
    """150 of scikit-learn's 8x8 digits of three classes, flat."""
    X, y = load_digits(n_class=3, return_X_y=True)
    return (X[:150] / 16).astype(np.float32), y[:150]


@pytest.fixture
def deformations(monkeypatch):
    """Record the shape of every batch ``random_affine`` deforms."""
    shapes = []
    original = _nets.random_affine

    def recording(X, *args, **kwargs):
        shapes.append(tuple(X.shape))
        return original(X, *args, **kwargs)

    monkeypatch.setattr(_nets, "random_affine", recording)
    return shapes


def _training_batches(model):
    """Number of training batches of every net the fit trained."""
    histories = [model.net_.history]
    if hasattr(model, "pretrain_history_"):  # DEC and DCN: two stages
        histories.append(model.pretrain_history_)
    return sum(len(epoch["batches"]) for history in histories for epoch in history)


@pytest.mark.parametrize("cls", DEFORMING_ESTIMATORS, ids=ids)
def test_every_training_batch_is_deformed_as_images(cls, digits, deformations):
    X, _ = digits
    model = deforming_estimator(cls, n_clusters=3, augment=True, random_state=0).fit(X)
    assert len(deformations) == _training_batches(model) > 0
    # One-channel 8x8 images, read from the 64 flat features.
    assert {shape[1:] for shape in deformations} == {(1, 8, 8)}


@pytest.mark.parametrize("augment", [False, "auto"])
@pytest.mark.parametrize("cls", DEFORMING_ESTIMATORS, ids=ids)
def test_without_augment_nothing_is_deformed(cls, augment, digits, deformations):
    # "auto" (the default) leaves small data as it is: 150 images here.
    X, _ = digits
    model = deforming_estimator(cls, n_clusters=3, augment=augment, random_state=0).fit(
        X
    )
    assert deformations == []
    assert model.augment_ is False


@pytest.fixture
def large_from_100(monkeypatch):
    """Data count as large (``"auto"`` sizes) from 100 samples on."""
    monkeypatch.setattr(BaseDeepClusterer, "_LARGE_DATA", 100)


@pytest.mark.parametrize("cls", DEFORMING_ESTIMATORS, ids=ids)
def test_auto_deforms_large_image_sets_as_augment_true_does(
    cls, digits, deformations, large_from_100
):
    X, _ = digits
    model = deforming_estimator(cls, n_clusters=3, random_state=0).fit(X)
    assert model.augment_ is True
    assert {shape[1:] for shape in deformations} == {(1, 8, 8)}
    assert len(deformations) == _training_batches(model)
    explicit = deforming_estimator(cls, n_clusters=3, augment=True, random_state=0).fit(
        X
    )
    np.testing.assert_array_equal(model.labels_, explicit.labels_)
    np.testing.assert_array_equal(model.transform(X), explicit.transform(X))


def test_auto_leaves_features_that_are_not_pixels(digits, deformations, large_from_100):
    X, _ = digits
    # The same 64 values per sample in a fixed shuffled order: a square
    # number of features, but neighbouring features no longer go together.
    shuffled = X[:, np.random.default_rng(0).permutation(X.shape[1])]
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    assert not model.fit(shuffled).augment_
    assert deformations == []


@pytest.mark.parametrize(
    "input_shape, deformed", [((1, 8, 8), True), ((4, 4, 4), False)]
)
def test_auto_deforms_with_input_shape_only_as_the_square_image(
    input_shape, deformed, digits, deformations, large_from_100
):
    X, _ = digits
    model = AutoencoderKMeans(
        n_clusters=3, input_shape=input_shape, pretrain_epochs=1, random_state=0
    ).fit(X)
    assert model.augment_ is deformed
    assert bool(deformations) is deformed


@pytest.mark.parametrize("cls", DEFORMING_ESTIMATORS, ids=ids)
def test_augmented_fit_is_reproducible_and_inference_sees_the_samples(cls, digits):
    X, _ = digits
    params = dict(n_clusters=3, augment=True, random_state=0)
    model = deforming_estimator(cls, **params).fit(X)
    again = deforming_estimator(cls, **params).fit(X)
    np.testing.assert_array_equal(model.labels_, again.labels_)
    np.testing.assert_array_equal(model.transform(X), again.transform(X))
    # Inference draws no deformation: the same embedding on every call.
    np.testing.assert_array_equal(model.transform(X), model.transform(X))
    plain = deforming_estimator(cls, n_clusters=3, random_state=0).fit(X)
    assert not np.allclose(model.transform(X), plain.transform(X))


def test_deformed_batch_keeps_its_shape_and_indices():
    module = torch.nn.Linear(16, 2)
    plain = ClusteringNet(module, criterion=torch.nn.MSELoss)
    deforming = ClusteringNet(
        module,
        criterion=torch.nn.MSELoss,
        augment_shape=(1, 4, 4),
        device_generator=torch.Generator(),
    )
    X = torch.rand(5, 16)
    indices = torch.arange(5)
    assert plain.augmented_batch((X, indices)) == (X, indices)
    deformed, kept = deforming.augmented_batch((X, indices))
    assert deformed.shape == X.shape and kept is indices
    assert not torch.equal(deformed, X)


@pytest.mark.parametrize("cls", DEFORMING_ESTIMATORS, ids=ids)
def test_augment_true_on_features_that_are_not_square_images_raises(cls, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="60 features.*input_shape"):
        deforming_estimator(cls, n_clusters=3, augment=True).fit(X[:, :60])


def test_images_that_are_not_square_need_input_shape(digits):
    X, _ = digits
    # With input_shape the images may have any shape (the convolutional
    # network): 6x10 here.
    model = AutoencoderKMeans(
        n_clusters=3,
        augment=True,
        input_shape=(1, 6, 10),
        pretrain_epochs=1,
        random_state=0,
    ).fit(X[:, :60])
    assert model.net_.augment_shape == (1, 6, 10)


@pytest.mark.parametrize("fitted", [False, True], ids=["unfitted", "fitted"])
@pytest.mark.parametrize("cls", DEFORMING_ESTIMATORS, ids=ids)
def test_pickle_from_before_augment_trains_on_the_samples_as_given(
    cls, fitted, digits, deformations, large_from_100
):
    # A model pickled before augment existed has no such attribute; loaded,
    # it takes the value it trained with, so get_params, clone and a refit
    # work and train as before: on data that the default "auto" would
    # deform (large from 100 samples on here), nothing is deformed.
    X, _ = digits
    model = deforming_estimator(cls, n_clusters=3, random_state=0)
    if fitted:
        model.fit(X)
    state = model.__getstate__()
    del state["augment"]
    loaded = cls.__new__(cls)
    loaded.__setstate__(state)
    assert loaded.get_params()["augment"] is False
    if fitted:
        np.testing.assert_array_equal(loaded.predict(X), model.labels_)
    deformations.clear()
    clone(loaded).fit(X)
    assert deformations == []
