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

# Checks expected to fail, with the reason, per estimator class name.
EXPECTED_FAILED_CHECKS = {
    cls.__name__: {
        "check_estimator_sparse_array": _SPARSE_CHECK_BUG,
        "check_estimator_sparse_matrix": _SPARSE_CHECK_BUG,
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
