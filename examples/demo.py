"""Cluster scikit-learn's digits with every skdeepcluster estimator.

Prints clustering accuracy, NMI, ARI and fit time beside k-means on the raw
pixels. Uses the estimators' defaults with ``n_clusters=10``; needs no
download (the digits ship with scikit-learn). Run with ``make demo``.
"""

import time

from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import skdeepcluster
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy


def main():
    X, y = load_digits(return_X_y=True)
    models = {"KMeans (raw pixels)": KMeans(10, n_init=10, random_state=0)}
    for name in skdeepcluster.__all__:
        obj = getattr(skdeepcluster, name)
        if isinstance(obj, type):
            models[name] = obj(n_clusters=10, random_state=0)

    print(f"digits: {X.shape[0]} images of {X.shape[1]} pixels, 10 classes\n")
    print(f"{'estimator':<22}{'accuracy':>10}{'NMI':>8}{'ARI':>8}{'fit (s)':>10}")
    for name, model in models.items():
        start = time.perf_counter()
        labels = model.fit_predict(X)
        seconds = time.perf_counter() - start
        print(
            f"{name:<22}{clustering_accuracy(y, labels):>10.3f}"
            f"{normalized_mutual_info_score(y, labels):>8.3f}"
            f"{adjusted_rand_score(y, labels):>8.3f}{seconds:>10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
