"""Clustering metrics that compare predicted clusters with true classes."""

from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (
    adjusted_rand_score,
    make_scorer,
    normalized_mutual_info_score,
)
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    column_or_1d,
)

__all__ = [
    "clustering_accuracy",
    "clustering_accuracy_scorer",
    "nmi_scorer",
    "ari_scorer",
]


def clustering_accuracy(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes.

    The matching that maximises the number of correctly assigned samples is
    found with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`) on the contingency table.
    When there are more clusters than classes (or the reverse), the unmatched
    ones count as errors.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels to evaluate.

    Returns
    -------
    accuracy : float
        Between 0 and 1; 1 means the clustering equals the classes up to a
        renaming of the clusters.

    References
    ----------
    .. [1] Yang, Y., Xu, D., Nie, F., Yan, S. and Zhuang, Y. (2010). "Image
       clustering using local discriminant models and global integration".
       IEEE Transactions on Image Processing, 19(10).

    Examples
    --------
    >>> from skdeepcluster.metrics import clustering_accuracy
    >>> clustering_accuracy([0, 0, 1, 1, 2], [1, 1, 0, 0, 0])
    0.8
    """
    # As scikit-learn's clustering metrics: NaN or infinite labels are
    # rejected rather than counted as a class of their own.
    labels_true, labels_pred = (
        column_or_1d(
            check_array(labels, ensure_2d=False, dtype=None, ensure_min_samples=0)
        )
        for labels in (labels_true, labels_pred)
    )
    check_consistent_length(labels_true, labels_pred)
    if labels_true.size == 0:
        raise ValueError("clustering_accuracy needs at least one sample.")
    table = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / labels_true.size)


# Scorers for ``GridSearchCV(scoring=...)``: each compares ``estimator.predict(X)``
# with ``y``. Clustering models are fitted without ``y``; the labels are only
# used to score the held-out fold.

#: :func:`clustering_accuracy` of ``predict(X)`` against ``y``.
clustering_accuracy_scorer = make_scorer(clustering_accuracy)
#: Normalised mutual information of ``predict(X)`` against ``y``.
nmi_scorer = make_scorer(normalized_mutual_info_score)
#: Adjusted Rand index of ``predict(X)`` against ``y``.
ari_scorer = make_scorer(adjusted_rand_score)
