"""scikit-learn's estimator checks over every estimator in the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import FAST_PARAMS, all_estimators, fast_estimator

# Checks expected to fail, with the reason, per estimator class name.
EXPECTED_FAILED_CHECKS = {}


def test_every_estimator_has_fast_params():
    # A new estimator must be registered with tiny settings, or the common
    # checks below would silently run its full-size defaults.
    assert all_estimators(), "no estimator discovered"
    missing = {cls.__name__ for cls in all_estimators()} - set(FAST_PARAMS)
    assert not missing


@parametrize_with_checks(
    [fast_estimator(cls, random_state=0) for cls in all_estimators()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
