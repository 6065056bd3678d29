"""Drop-in behaviour for scikit-learn's model selection tools, which pass
``y`` to ``fit``: no estimator may train on it unless explicitly asked."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from conftest import all_estimators, fast_estimator
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
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(np.mean(expected))
    refit = clone(estimator).set_params(**search.best_params_).fit(X)
    np.testing.assert_array_equal(search.best_estimator_.labels_, refit.labels_)
