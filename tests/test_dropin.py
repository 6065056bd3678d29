"""Drop-in behaviour for scikit-learn's model selection tools, which pass
``y`` to ``fit``: no estimator may train on it unless explicitly asked."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

import skdeepcluster.base
from conftest import all_estimators, fast_estimator
from skdeepcluster import DEC
from skdeepcluster._torch_utils import nearest_center
from skdeepcluster.metrics import ari_scorer

ESTIMATORS = all_estimators()
ids = [cls.__name__ for cls in ESTIMATORS]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_cross_validation_does_not_train_on_y(cls, blobs):
    X, y = blobs
    estimator = fast_estimator(cls, n_clusters=3, random_state=0)
    cv = KFold(3, shuffle=True, random_state=0)
    results = cross_validate(
        estimator, X, y, cv=cv, scoring=ari_scorer, return_estimator=True
    )
    for (train, test), fitted, score in zip(
        cv.split(X), results["estimator"], results["test_score"]
    ):
        unsupervised = clone(estimator).fit(X[train])
        np.testing.assert_array_equal(fitted.labels_, unsupervised.labels_)
        assert score == ari_scorer(unsupervised, X[test], y[test])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_grid_search_does_not_train_on_y(cls, blobs):
    X, y = blobs
    estimator = fast_estimator(cls, n_clusters=3, random_state=0)
    cv = KFold(2, shuffle=True, random_state=0)
    search = GridSearchCV(
        estimator, {"n_clusters": [2, 3]}, scoring=ari_scorer, cv=cv
    ).fit(X, y)
    for i, n_clusters in enumerate(search.cv_results_["param_n_clusters"]):
        expected = [
            ari_scorer(
                clone(estimator).set_params(n_clusters=n_clusters).fit(X[train]),
                X[test],
                y[test],
            )
            for train, test in cv.split(X)
        ]
        mean_score = search.cv_results_["mean_test_score"][i]
        assert mean_score == pytest.approx(np.mean(expected))
    refit = clone(estimator).set_params(**search.best_params_).fit(X)
    np.testing.assert_array_equal(search.best_estimator_.labels_, refit.labels_)


@pytest.fixture(scope="module")
def duplicated_digits():
    # 40 copies each of 5 distinct rows, more clusters than distinct points:
    # every distance ties with a copy's, and some centres may coincide.
    from sklearn.datasets import load_digits

    X = load_digits().data[:5].astype(np.float32) / 16.0
    return np.repeat(X, 40, axis=0)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predict_on_training_data_is_labels(cls, duplicated_digits, blobs):
    for X in (duplicated_digits, blobs[0]):
        model = fast_estimator(cls, n_clusters=10, random_state=0).fit(X)
        labels = model.predict(X)
        assert model.labels_.dtype == labels.dtype == np.intp
        np.testing.assert_array_equal(labels, model.labels_)
        np.testing.assert_array_equal(model.fit_predict(X), labels)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.filterwarnings("ignore:.*put the training samples in only")
def test_empty_clusters_are_dropped_by_every_estimator(cls, duplicated_digits):
    # 5 distinct rows and 10 clusters: at most 5 clusters can hold a sample,
    # whether the clusters come from k-means, centroids or an output layer.
    X = duplicated_digits
    with pytest.warns(ConvergenceWarning, match="empty clusters were removed") as rec:
        model = fast_estimator(cls, n_clusters=10, random_state=0).fit(X)
    # Once, as KMeans says it: not also each inner k-means on the embedding.
    assert sum("Number of distinct clusters" in str(w.message) for w in rec) == 1
    n_found = len(model.cluster_centers_)
    assert n_found <= 5
    np.testing.assert_array_equal(np.unique(model.labels_), np.arange(n_found))
    assert model.cluster_centers_.shape[1] == model.transform(X[:1]).shape[1]
    noise = np.random.default_rng(0).normal(size=(50, X.shape[1])).astype(np.float32)
    assert model.predict_proba(noise).shape == (50, n_found)
    assert 0 <= model.predict(noise).min() and model.predict(noise).max() < n_found


WITH_N_INIT = [cls for cls in ESTIMATORS if "n_init" in cls().get_params()]


def test_n_init_is_on_every_estimator():
    assert WITH_N_INIT == ESTIMATORS


# DAC's "auto" depends on the input (starts with input_shape only): its own
# tests cover it.
NUMERIC_N_INIT = [cls for cls in WITH_N_INIT if cls().n_init != "auto"]


@pytest.mark.parametrize(
    "cls", NUMERIC_N_INIT, ids=[cls.__name__ for cls in NUMERIC_N_INIT]
)
def test_n_init_auto_is_the_numeric_default(cls, blobs):
    X, _ = blobs
    default = cls().n_init
    assert isinstance(default, int)
    auto = fast_estimator(cls, n_clusters=3, n_init="auto", random_state=0).fit(X)
    numeric = fast_estimator(cls, n_clusters=3, n_init=default, random_state=0).fit(X)
    assert auto._n_init == default
    np.testing.assert_array_equal(auto.labels_, numeric.labels_)
    np.testing.assert_array_equal(auto.cluster_centers_, numeric.cluster_centers_)
    with pytest.raises(ValueError, match="n_init"):
        fast_estimator(cls, n_init="best").fit(X)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array])
def test_sparse_input_gives_the_dense_results(cls, container, blobs):
    X, _ = blobs
    # Zeros, so that the sparse copy stores fewer than all entries.
    X = np.where(np.abs(X) < 1.0, 0.0, X).astype(np.float32)
    X_sparse = container(X)
    assert X_sparse.nnz < X.size
    dense = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    sparse = fast_estimator(cls, n_clusters=3, random_state=0).fit(X_sparse)
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    np.testing.assert_array_equal(sparse.cluster_centers_, dense.cluster_centers_)
    np.testing.assert_array_equal(dense.predict(X_sparse), dense.predict(X))
    np.testing.assert_array_equal(dense.transform(X_sparse), dense.transform(X))
    np.testing.assert_array_equal(dense.predict_proba(X_sparse), dense.predict_proba(X))
    assert dense.score(X_sparse) == dense.score(X)


def test_sparse_inference_densifies_one_batch_at_a_time(blobs):
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0).fit(X)
    # More rows than one inference batch (at least 1024), so that the
    # batches of a sparse matrix are sliced and densified one by one.
    X_large = sp.csr_matrix(np.tile(X, (30, 1)))
    densified = []
    original = skdeepcluster.base._densify

    def spy(batch):
        densified.append(batch.shape[0])
        return original(batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(skdeepcluster.base, "_densify", spy)
        labels = model.predict(X_large)
    assert len(densified) > 1 and max(densified) < X_large.shape[0]
    np.testing.assert_array_equal(labels, np.tile(model.labels_, 30))


@pytest.mark.parametrize("sparse_format", ["coo", "lil", "dok", "bsr", "dia"])
def test_every_sparse_format_is_accepted(sparse_format, blobs):
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0).fit(X)
    X_sparse = sp.csr_matrix(X).asformat(sparse_format)
    refit = fast_estimator(DEC, n_clusters=3, random_state=0).fit(X_sparse)
    np.testing.assert_array_equal(refit.labels_, model.labels_)
    np.testing.assert_array_equal(model.predict(X_sparse), model.labels_)


def test_sparse_values_beyond_float32_are_rejected(blobs):
    X, _ = blobs
    X = sp.csr_matrix(X.astype(np.float64))
    X[0, 0] = 1e300
    with pytest.raises(ValueError, match="float32"):
        fast_estimator(DEC, n_clusters=3).fit(X)


def test_nearest_center_is_exact_and_ties_go_to_the_lowest_index():
    # Far from the origin, torch.cdist's matrix-product path (used above 25
    # rows) loses the differences between distances; nearest_center does not.
    generator = torch.Generator().manual_seed(0)
    Z = 1000 + torch.rand(200, 4, generator=generator)
    centers = 1000 + torch.rand(10, 4, generator=generator)
    expected = torch.cdist(Z.double(), centers.double()).argmin(dim=1)
    np.testing.assert_array_equal(nearest_center(Z, centers), expected)
    one_by_one = torch.cat(
        [nearest_center(Z[i : i + 1], centers) for i in range(len(Z))]
    )
    np.testing.assert_array_equal(one_by_one, expected)
    # A duplicated centre never wins over its first copy.
    doubled = torch.cat([centers, centers])
    np.testing.assert_array_equal(nearest_center(Z, doubled), expected)
    reversed_twice = centers.flip(0).repeat(2, 1)
    np.testing.assert_array_equal(nearest_center(Z, reversed_twice), 9 - expected)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_inertia_is_the_training_sum_of_squares(cls, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    assert model.inertia_ == -model.score(X)
    Z = model.transform(X).astype(np.float64)
    expected = ((Z - model.cluster_centers_[model.labels_]) ** 2).sum()
    assert model.inertia_ == pytest.approx(expected, rel=1e-4)
