import numpy as np
import pytest
from sklearn.base import BaseEstimator

from skdeepcluster.metrics import ari_scorer, clustering_accuracy


def test_accuracy_is_invariant_to_renaming():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0


def test_accuracy_counts_best_matching():
    # Cluster 1 holds two 0s and a 1; the best matching maps it to class 0.
    assert clustering_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0]) == pytest.approx(0.8)


def test_accuracy_with_more_clusters_than_classes():
    # Extra clusters cannot be matched and count as errors.
    assert clustering_accuracy([0, 0, 0, 1], [0, 1, 2, 3]) == pytest.approx(0.5)


def test_accuracy_matches_brute_force():
    from itertools import permutations

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    best = max(np.mean(np.array(perm)[p] == y) for perm in permutations(range(4)))
    assert clustering_accuracy(y, p) == pytest.approx(best)


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clustering_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="at least one sample"):
        clustering_accuracy([], [])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_accuracy_rejects_non_finite_labels(bad):
    # As scikit-learn's clustering metrics: not counted as a class.
    with pytest.raises(ValueError, match="NaN|infinity"):
        clustering_accuracy([bad, 0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match="NaN|infinity"):
        clustering_accuracy([0, 0, 1], [0, bad, 1])


def test_ari_scorer_scores_predictions_by_adjusted_rand_index():
    class Fixed(BaseEstimator):
        # A fitted clusterer that predicts one label for every sample.
        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    # All in one cluster: of the 6 pairs, the 2 within a class agree, so the
    # Rand index is 1/3; adjusted for chance, the score is 0.
    X, y = np.zeros((4, 1)), np.array([0, 0, 1, 1])
    assert ari_scorer(Fixed(), X, y) == pytest.approx(0.0)
