"""Cluster scikit-learn's digits with every skdeepcluster estimator.

Prints clustering accuracy, NMI, ARI and fit time beside k-means on the raw
pixels. Uses the estimators' defaults with ``n_clusters=10``; needs no
download (the digits ship with scikit-learn). Run with ``make demo``.

The estimators built on an autoencoder share one pretraining cache
(``memory``, a temporary directory): a fit whose pretraining repeats an
earlier one (same data and same pretraining settings, e.g. DEC after
AutoencoderKMeans) loads it instead of training again, and gives the same
labels as without the cache.
"""

import tempfile
import time

from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import skdeepcluster
from skdeepcluster._memory import count_cached_pretrainings
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy


def main():
    X, y = load_digits(return_X_y=True)
    print(f"digits: {X.shape[0]} images of {X.shape[1]} pixels, 10 classes\n")
    print(f"{'estimator':<22}{'accuracy':>10}{'NMI':>8}{'ARI':>8}{'fit (s)':>10}")
    with tempfile.TemporaryDirectory() as cache:
        models = {"KMeans (raw pixels)": KMeans(10, n_init=10, random_state=0)}
        for name in skdeepcluster.__all__:
            obj = getattr(skdeepcluster, name)
            if isinstance(obj, type):
                model = obj(n_clusters=10, random_state=0)
                if "memory" in model.get_params():
                    model.set_params(memory=cache)
                models[name] = model
        reused = []
        for name, model in models.items():
            stored = count_cached_pretrainings(cache)
            start = time.perf_counter()
            labels = model.fit_predict(X)
            seconds = time.perf_counter() - start
            # A fit with a cache that stored nothing new loaded its pretraining.
            hit = (
                "memory" in model.get_params()
                and count_cached_pretrainings(cache) == stored
            )
            reused += [name] if hit else []
            print(
                f"{name + (' *' if hit else ''):<22}"
                f"{clustering_accuracy(y, labels):>10.3f}"
                f"{normalized_mutual_info_score(y, labels):>8.3f}"
                f"{adjusted_rand_score(y, labels):>8.3f}{seconds:>10.1f}",
                flush=True,
            )
    if reused:
        print(
            "\n* loaded the autoencoder pretraining of an earlier fit from the "
            "cache (memory=...);\n  its fit time leaves the pretraining out."
        )


if __name__ == "__main__":
    main()
