"""scikit-learn's estimator checks over every estimator in the package."""

import functools

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.estimator_checks import estimator_checks_generator

from conftest import FAST_PARAMS, all_estimators, fast_estimator

# scikit-learn's sparse-container checks end with a classifier's assertion:
# an estimator with predict_proba must return one column per class of the
# check's y (two if its classifier_tags say binary-only, else four), read from
# get_tags(estimator).classifier_tags, which is None for a clusterer (so the
# check raises AttributeError). A clusterer's columns are its clusters, as
# many as it found (see BaseDeepClusterer), which no tag can announce:
# declaring classifier tags would only swap the AttributeError for a shape
# mismatch. These two checks are therefore not run as they stand;
# test_sparse_containers runs their contract with the clusterer's shapes.
_CLASSIFIER_SHAPED = (
    "ends with a classifier's predict_proba shape assertion (one column per "
    "class, read from classifier_tags, None for a clusterer); "
    "test_sparse_containers runs the contract with a clusterer's shapes"
)

# The check fits once with integer weights and once with every sample
# repeated that many times, and asks for the same predictions. A network
# trained on mini-batches cannot give them: the repeated data has more rows,
# so other batches, another number of steps per epoch and another shuffling
# (repeats equal weights only in expectation over the batches). scikit-learn
# lists the same checks as failing for KMeans. test_sample_weight.py checks
# what does hold: zero weights give exactly the fit without those samples,
# and the k-means steps (the k-means on the embedding, DCN's centre update,
# inertia_) treat integer weights as repeats.
_SAMPLE_WEIGHT_EQUIVALENCE = (
    "integer weights equal repeated samples only in expectation for training "
    "on mini-batches (different batches and number of steps); scikit-learn "
    "lists KMeans as failing these checks too"
)

# The checks not run, by name, with the reason.
LEFT_OUT_CHECKS = {
    "check_estimator_sparse_array": _CLASSIFIER_SHAPED,
    "check_estimator_sparse_matrix": _CLASSIFIER_SHAPED,
    "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT_EQUIVALENCE,
    "check_sample_weight_equivalence_on_sparse_data": _SAMPLE_WEIGHT_EQUIVALENCE,
}


def _check_name(check):
    return (
        check.func.__name__ if isinstance(check, functools.partial) else check.__name__
    )


def _check_id(check):
    """The check's name with its keyword arguments, as scikit-learn names it."""
    keywords = getattr(check, "keywords", {})
    arguments = ",".join(f"{key}={value}" for key, value in keywords.items())
    return f"{_check_name(check)}({arguments})" if arguments else _check_name(check)


CHECKS = [
    pytest.param(estimator, check, id=f"{type(estimator).__name__}-{_check_id(check)}")
    for cls in all_estimators()
    for estimator, check in estimator_checks_generator(
        fast_estimator(cls, random_state=0)
    )
    if _check_name(check) not in LEFT_OUT_CHECKS
]


def test_every_estimator_has_fast_params():
    # A new estimator must be registered with tiny settings, or the common
    # checks below would silently run its full-size defaults.
    assert all_estimators(), "no estimator discovered"
    missing = {cls.__name__ for cls in all_estimators()} - set(FAST_PARAMS)
    assert not missing


def test_only_the_listed_checks_are_left_out():
    # Guards the filter above: a renamed check would otherwise disappear
    # silently, and a new one would be left out unnoticed.
    generated = {
        _check_name(check)
        for estimator, check in estimator_checks_generator(
            fast_estimator(all_estimators()[0], random_state=0)
        )
    }
    assert set(LEFT_OUT_CHECKS) <= generated
    run = {_check_name(check) for _, check in (param.values for param in CHECKS)}
    assert run == generated - set(LEFT_OUT_CHECKS)


@pytest.mark.parametrize("estimator, check", CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _sparse_formats(X_csr):
    """``X_csr`` in every format scikit-learn's sparse checks use, with
    32-bit and (csr, csc, coo) 64-bit indices."""
    yield "csr", X_csr.copy()
    for sparse_format in ["dok", "lil", "dia", "bsr", "csc", "coo"]:
        yield sparse_format, X_csr.asformat(sparse_format)
    X_coo = X_csr.asformat("coo")
    X_coo.row = X_coo.row.astype(np.int64)
    X_coo.col = X_coo.col.astype(np.int64)
    yield "coo_64", X_coo
    for sparse_format in ["csc", "csr"]:
        X = X_csr.asformat(sparse_format)
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
        yield f"{sparse_format}_64", X


# Eight clusters of 40 random points: some estimators use fewer and warn so,
# which is what the shape assertion allows for.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array])
@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_sparse_containers(cls, container):
    # check_estimator_sparse_array/_matrix with a clusterer's shapes: the
    # same data, formats and calls, and predict_proba with one column per
    # cluster found. Beyond the check, every format gives the dense fit.
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 3))
    X[X < 0.6] = 0
    y = (4 * rng.uniform(size=X.shape[0])).astype(np.int32)
    dense = fast_estimator(cls, random_state=0).fit(X)
    for sparse_format, X_sparse in _sparse_formats(container(X)):
        estimator = fast_estimator(cls, random_state=0).fit(X_sparse, y)
        n_found = estimator.cluster_centers_.shape[0]
        assert estimator.predict(X_sparse).shape == (40,), sparse_format
        assert estimator.predict_proba(X_sparse).shape == (40, n_found), sparse_format
        np.testing.assert_array_equal(
            estimator.labels_, dense.labels_, err_msg=sparse_format
        )
