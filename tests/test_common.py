"""scikit-learn's estimator checks over every estimator in the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import FAST_PARAMS, all_estimators, fast_estimator

# scikit-learn's sparse-container checks treat any estimator with
# predict_proba as a classifier: after fit and predict succeed on sparse input
# they read get_tags(estimator).classifier_tags.multi_class, which is None
# for a clusterer, and fail with an AttributeError raised inside the check.
# The same behaviour is tested in test_dropin.py (sparse input gives the dense
# results, every sparse format is accepted).
_SPARSE_CHECK_BUG = (
    "scikit-learn's check reads classifier_tags.multi_class for any estimator "
    "with predict_proba; classifier_tags is None for a clusterer"
)

# The check fits once with integer weights and once with every sample
# repeated that many times, and asks for the same predictions. A network
# trained on mini-batches cannot give them: the repeated data has more rows,
# so other batches, another number of steps per epoch and another shuffling
# (repeats equal weights only in expectation over the batches). scikit-learn
# marks the same check as failing for KMeans and MiniBatchKMeans.
# test_sample_weight.py checks what does hold: zero weights give exactly the
# fit without those samples, and the k-means steps (the k-means on the
# embedding, DCN's centre update, inertia_) treat integer weights as repeats.
_SAMPLE_WEIGHT_EQUIVALENCE = (
    "integer weights equal repeated samples only in expectation for training "
    "on mini-batches (different batches and number of steps), as for KMeans"
)

# Checks expected to fail, with the reason, per estimator class name.
EXPECTED_FAILED_CHECKS = {
    cls.__name__: {
        "check_estimator_sparse_array": _SPARSE_CHECK_BUG,
        "check_estimator_sparse_matrix": _SPARSE_CHECK_BUG,
        "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT_EQUIVALENCE,
        "check_sample_weight_equivalence_on_sparse_data": _SAMPLE_WEIGHT_EQUIVALENCE,
    }
    for cls in all_estimators()
}


def test_every_estimator_has_fast_params():
    # A new estimator must be registered with tiny settings, or the common
    # checks below would silently run its full-size defaults.
    assert all_estimators(), "no estimator discovered"
    missing = {cls.__name__ for cls in all_estimators()} - set(FAST_PARAMS)
    assert not missing


@parametrize_with_checks(
    [fast_estimator(cls, random_state=0) for cls in all_estimators()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(
        type(est).__name__, {}
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
