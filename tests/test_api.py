"""Behaviour every estimator shares: input validation, reproducibility, and
working inside scikit-learn's tooling (Pipeline, GridSearchCV, clone, pickle)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from conftest import all_estimators, fast_estimator
from skdeepcluster import DCN, ACAIKMeans, AutoencoderKMeans, SNNLKMeans
from skdeepcluster.metrics import ari_scorer

ESTIMATORS = all_estimators()
ids = [cls.__name__ for cls in ESTIMATORS]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_same_random_state_gives_same_labels(cls, blobs):
    # Reproducibility on CPU: every random source follows random_state.
    X, _ = blobs
    first = fast_estimator(cls, n_clusters=3, random_state=42).fit(X)
    second = fast_estimator(cls, n_clusters=3, random_state=42).fit(X)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_allclose(first.transform(X), second.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_fit_leaves_global_torch_rng_alone(cls, blobs):
    # Seeding must not reset the user's global torch generator.
    X, _ = blobs
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_fitted_attributes_are_consistent(cls, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    n_found = len(model.cluster_centers_)
    assert model.labels_.shape == (len(X),)
    assert set(np.unique(model.labels_)) == set(range(n_found))
    assert model.n_features_in_ == X.shape[1]
    assert model.n_iter_ >= 1
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), n_found)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    embedding = model.transform(X)
    assert embedding.shape == (len(X), model.cluster_centers_.shape[1])
    assert embedding.dtype == np.float32
    names = model.get_feature_names_out()
    assert len(names) == embedding.shape[1]
    assert names[0].startswith(cls.__name__.lower())


@pytest.mark.parametrize(
    "cls, params",
    [
        (ACAIKMeans, {"clustering": "kmeans"}),
        (AutoencoderKMeans, {"clustering": "kmeans"}),
        (SNNLKMeans, {"clustering": "kmeans"}),
        (DCN, {}),
    ],
    ids=["ACAIKMeans", "AutoencoderKMeans", "SNNLKMeans", "DCN"],
)
def test_predict_proba_is_a_students_t_kernel_around_the_centres(cls, params, blobs):
    # With centres to predict by, q_ij is proportional to
    # 1 / (1 + |z_i - mu_j|^2), the kernel of DEC with alpha=1.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0, **params).fit(X)
    Z = model.transform(X).astype(np.float64)
    squared = ((Z[:, None, :] - model.cluster_centers_[None]) ** 2).sum(axis=2)
    kernel = 1.0 / (1.0 + squared)
    expected = kernel / kernel.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-4)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_score_prefers_own_clusters(cls, blobs):
    # score is higher (better) on the data the model fits than on noise
    # spread over the same range.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    noise = np.random.default_rng(0).uniform(X.min(), X.max(), size=X.shape)
    assert np.isfinite(model.score(X))
    assert model.score(X) > model.score(noise)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_score_runs_the_network_once(cls, blobs):
    # The labels and the distances to their centres come from one pass, and
    # the score of the training data is the fit's inertia.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    first_layer = next(
        layer
        for layer in model.net_.module_.modules()
        if isinstance(layer, torch.nn.Linear)
    )
    passes = []
    hook = first_layer.register_forward_hook(lambda *args: passes.append(1))
    try:
        score = model.score(X)
    finally:
        hook.remove()
    assert len(passes) == 1
    assert score == pytest.approx(-model.inertia_, rel=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_inference_streams_memmap_in_batches(cls, blobs, tmp_path):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    # Three inference batches of at most 1024 rows, the last one short.
    rng = np.random.RandomState(0)
    X_new = (X[rng.randint(len(X), size=2500)] + rng.normal(0, 0.1, (2500, 4))).astype(
        np.float32
    )
    # The reference: the same outputs computed on the whole tensor at once.
    with torch.no_grad():
        whole = model._training_data(X_new)
        Z = model._embed(whole).numpy()
        labels = model._predict(whole).numpy()
        proba = model._predict_proba(whole).numpy().astype(np.float64)
    proba /= proba.sum(axis=1, keepdims=True)
    centers = model.cluster_centers_[labels]
    inertia = ((Z - centers) ** 2).sum(axis=1).astype(np.float64).sum()

    stored = np.lib.format.open_memmap(
        tmp_path / "X.npy", "w+", np.float32, X_new.shape
    )
    stored[:] = X_new
    stored.flush()
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    batch_sizes = []
    to_tensor = model._batch_to_tensor

    def spy(X_batch):
        batch_sizes.append(len(X_batch))
        return to_tensor(X_batch)

    model._batch_to_tensor = spy
    np.testing.assert_array_equal(model.transform(X_map), Z)
    np.testing.assert_array_equal(model.predict(X_map), labels)
    np.testing.assert_allclose(model.predict_proba(X_map), proba, rtol=1e-6, atol=1e-12)
    assert model.score(X_map) == pytest.approx(-inertia, rel=1e-5)
    # Only batches reach the device, never all of X.
    assert batch_sizes == [1024, 1024, 452] * 4


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_pickle_roundtrip_keeps_predictions(cls, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_allclose(restored.transform(X), model.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_clone_is_unfitted_copy(cls, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "labels_")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_pipeline_and_grid_search(cls, blobs):
    X, y = blobs
    pipe = make_pipeline(
        StandardScaler(), fast_estimator(cls, n_clusters=3, random_state=0)
    )
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),)
    name = pipe.steps[-1][0]
    search = GridSearchCV(
        pipe,
        {f"{name}__n_clusters": [2, 3]},
        scoring=ari_scorer,
        cv=KFold(2, shuffle=True, random_state=0),
    ).fit(X, y)
    # Scored on held-out folds, the three blobs' own number wins.
    assert search.best_params_[f"{name}__n_clusters"] == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_[-1].labels_.shape == (len(X),)


BAD_INPUTS = {
    "nan": (
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, np.nan, X),
        ValueError,
        "NaN",
    ),
    "inf": (
        lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, np.inf, X),
        ValueError,
        "infinity",
    ),
    "strings": (
        lambda X: np.full(X.shape, "a", dtype=object),
        ValueError,
        "could not convert",
    ),
    "empty": (lambda X: X[:0], ValueError, "0 sample"),
    "one_dimensional": (lambda X: X[:, 0], ValueError, "Expected 2D array"),
    "too_few_samples": (
        lambda X: X[:2],
        ValueError,
        "n_samples=2 should be >= n_clusters=3",
    ),
}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_clear_error(cls, case, blobs):
    X, _ = blobs
    make_bad, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message):
        fast_estimator(cls, n_clusters=3).fit(make_bad(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_wrong_feature_count_at_predict(cls, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    for method in (model.predict, model.transform, model.predict_proba, model.score):
        with pytest.raises(ValueError, match="features"):
            method(X[:, :-1])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize(
    "device, message",
    [
        ("gpu", "not understood"),
        ("cuda:x", "not understood"),
        (0, "must be an instance of 'str'"),
    ],
)
def test_unknown_device_is_rejected(cls, device, message, blobs):
    X, _ = blobs
    error = TypeError if not isinstance(device, str) else ValueError
    with pytest.raises(error, match=message):
        fast_estimator(cls, n_clusters=3, device=device).fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_cuda_without_gpu_is_a_clear_error(cls, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="CUDA is not available"):
        fast_estimator(cls, n_clusters=3, device="cuda").fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_runs_on_cuda(cls, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, device="cuda", random_state=0).fit(X)
    assert next(model.net_.module_.parameters()).is_cuda
    np.testing.assert_array_equal(model.predict(X), model.labels_)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_input_shape_must_match_features(cls, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="input_shape"):
        fast_estimator(cls, n_clusters=3, input_shape=(1, 3, 3)).fit(X)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_input_shape_as_list(cls):
    # A list, as hidden_dims accepts, describes the same images as a tuple.
    X, _ = make_blobs(n_samples=40, n_features=64, centers=2, random_state=0)
    X = MinMaxScaler().fit_transform(X).astype(np.float32)
    labels = [
        fast_estimator(cls, n_clusters=2, input_shape=shape, random_state=0)
        .fit(X)
        .labels_
        for shape in ((1, 8, 8), [1, 8, 8])
    ]
    np.testing.assert_array_equal(labels[0], labels[1])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_inference_keeps_the_fitted_input_shape(cls):
    # As every parameter, input_shape takes effect at the next fit: the
    # fitted network still takes samples of the shape it was trained on.
    X, _ = make_blobs(n_samples=40, n_features=64, centers=2, random_state=0)
    X = MinMaxScaler().fit_transform(X).astype(np.float32)
    model = fast_estimator(cls, n_clusters=2, input_shape=(1, 8, 8), random_state=0)
    model.fit(X)
    labels, embedding = model.predict(X), model.transform(X)
    for shape in ((1, 4, 16), None):
        model.set_params(input_shape=shape)
        np.testing.assert_array_equal(model.predict(X), labels)
        np.testing.assert_array_equal(model.transform(X), embedding)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_torch_tensors_are_taken_as_their_values(cls, blobs):
    # A tensor that requires grad (an output of a torch model), or in
    # bfloat16, is data like its values; NumPy alone takes neither.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    labels = model.predict(X)
    from_tensor = fast_estimator(cls, n_clusters=3, random_state=0)
    from_tensor.fit(torch.tensor(X, requires_grad=True))
    np.testing.assert_array_equal(from_tensor.labels_, model.labels_)
    np.testing.assert_array_equal(
        model.predict(torch.tensor(X, requires_grad=True)), labels
    )
    rounded = torch.tensor(X).to(torch.bfloat16)
    np.testing.assert_array_equal(
        model.predict(rounded), model.predict(rounded.float().numpy())
    )
    weight = np.linspace(0.5, 1.5, len(X))
    tensor_weight = torch.tensor(weight, requires_grad=True)
    assert model.score(X, sample_weight=tensor_weight) == model.score(
        X, sample_weight=weight
    )
    weighted = fast_estimator(cls, n_clusters=3, random_state=0)
    weighted.fit(X, sample_weight=tensor_weight)
    np.testing.assert_array_equal(
        weighted.labels_,
        fast_estimator(cls, n_clusters=3, random_state=0)
        .fit(X, sample_weight=weight)
        .labels_,
    )
    if hasattr(model, "inverse_transform"):
        Z = model.transform(X)
        np.testing.assert_array_equal(
            model.inverse_transform(torch.tensor(Z, requires_grad=True)),
            model.inverse_transform(Z),
        )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_numpy_integer_batch_size(cls, blobs):
    # As a grid built from np.arange passes it; torch's samplers take only
    # Python ints.
    X, _ = blobs
    labels = [
        fast_estimator(cls, n_clusters=3, random_state=0, batch_size=size)
        .fit(X)
        .labels_
        for size in (16, np.int64(16))
    ]
    np.testing.assert_array_equal(labels[0], labels[1])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("name", ["n_clusters", "batch_size", "embedding_dim"])
def test_booleans_are_not_counts(cls, name, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3)
    if name not in model.get_params():
        pytest.skip(f"{cls.__name__} has no {name}")
    with pytest.raises(ValueError, match=f"'{name}' parameter .* the boolean True"):
        model.set_params(**{name: True}).fit(X)


@pytest.mark.parametrize("shape", [(1, 64), (True, 8, 8), (1, 8, 8.0), (0, 8, 8)])
def test_input_shape_needs_three_positive_integers(shape):
    X = np.random.default_rng(0).random((40, 64), dtype=np.float32)
    with pytest.raises(ValueError, match="three positive integers"):
        AutoencoderKMeans(2, input_shape=shape).fit(X)


# The estimators whose fitted autoencoder keeps a decoder that matches the
# final encoder (DEC with its default reconstruction term); IMSAT and DAC
# never had one.
DECODING = {"AutoencoderKMeans", "ACAIKMeans", "SNNLKMeans", "DCN", "DEC"}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_inverse_transform_only_with_a_decoder(cls):
    assert hasattr(cls(), "inverse_transform") == (cls.__name__ in DECODING)


@pytest.mark.parametrize("device", ["cpu:0", torch.device("cpu", 0)], ids=str)
def test_cpu_with_an_index_is_the_cpu(device, blobs):
    # torch accepts an index on the CPU and ignores it; so does the package.
    X, _ = blobs
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0)
    reference = clone(model).fit(X)
    model.set_params(device=device).fit(X)
    np.testing.assert_array_equal(model.labels_, reference.labels_)
    assert next(model.net_.module_.parameters()).device == torch.device("cpu")
