"""Time a grid search of DEC over n_clusters with and without ``memory``.

GridSearchCV fits DEC for five values of ``n_clusters`` on each fold; the
pretraining does not depend on ``n_clusters``, so with a cache it runs once
per fold (and once for the refit) instead of once per fit. Prints the time of
one uncached fit on the whole data, the total time of each search, and
whether both searches scored every candidate alike (they should: a cache hit
gives the same fit).

``--cv 1`` fits and scores every candidate on the whole data, the usual way to
choose ``n_clusters`` for a clustering (no held-out split); the pretraining
then runs once for the whole search. ``--no-plain`` skips the uncached search,
which costs one full fit per candidate and fold.

    python benchmarks/grid_memory.py --dataset digits --pretrain-epochs 20
    python benchmarks/grid_memory.py --dataset mnist-test --cv 1 --no-plain
"""

import argparse
import tempfile
import time

import numpy as np
from sklearn.model_selection import GridSearchCV, KFold

from run import DEFAULT_DATA, load
from skdeepcluster import DEC


def search(estimator, grid, X, y, cv):
    search = GridSearchCV(
        estimator, grid, scoring="adjusted_rand_score", cv=cv, n_jobs=1
    )
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start, search


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits", help="digits or mnist-test")
    parser.add_argument("--data-path", default=DEFAULT_DATA)
    parser.add_argument(
        "--cv", type=int, default=3, help="folds; 1 fits and scores on all data"
    )
    parser.add_argument(
        "--no-plain", action="store_true", help="skip the uncached search"
    )
    parser.add_argument("--pretrain-epochs", default="auto")
    parser.add_argument("--clustering-epochs", type=int, default=50)
    parser.add_argument(
        "--hidden-dims", default="auto", help='"auto" or comma-separated widths'
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X, y, _ = load(args.dataset, args.data_path)
    n_classes = len(np.unique(y))
    grid = {
        "n_clusters": [
            n_classes - 2,
            n_classes - 1,
            n_classes,
            n_classes + 1,
            n_classes + 2,
        ]
    }
    pretrain_epochs = (
        args.pretrain_epochs
        if args.pretrain_epochs == "auto"
        else int(args.pretrain_epochs)
    )
    hidden_dims = (
        "auto"
        if args.hidden_dims == "auto"
        else tuple(int(w) for w in args.hidden_dims.split(","))
    )
    params = dict(
        n_clusters=n_classes,
        hidden_dims=hidden_dims,
        pretrain_epochs=pretrain_epochs,
        clustering_epochs=args.clustering_epochs,
        # Without the image deformations augment="auto" adds from 5,000
        # images on (MNIST-test), as the rows were measured.
        augment=False,
        random_state=args.seed,
    )
    if args.cv == 1:
        cv = [(np.arange(len(X)), np.arange(len(X)))]
    else:
        cv = KFold(args.cv, shuffle=True, random_state=args.seed)
    print(
        f"{args.dataset}: {X.shape[0]} samples, {X.shape[1]} features; "
        f"DEC({', '.join(f'{k}={v!r}' for k, v in params.items())}); "
        f"grid n_clusters={grid['n_clusters']}, {args.cv} folds"
    )

    start = time.perf_counter()
    DEC(**params).fit(X)
    one_fit = time.perf_counter() - start
    print(f"one fit, no cache:  {one_fit:8.1f} s", flush=True)

    with tempfile.TemporaryDirectory() as cache:
        cached_time, cached = search(DEC(**params, memory=cache), grid, X, y, cv)
    print(
        f"grid, memory=dir:   {cached_time:8.1f} s  ({cached_time / one_fit:.2f}x "
        f"one fit); best n_clusters {cached.best_params_['n_clusters']} "
        f"(ARI {cached.best_score_:.3f})",
        flush=True,
    )
    if args.no_plain:
        return
    plain_time, plain = search(DEC(**params), grid, X, y, cv)
    print(
        f"grid, no cache:     {plain_time:8.1f} s  "
        f"({plain_time / cached_time:.1f}x the cached search)"
    )
    same = np.array_equal(
        plain.cv_results_["mean_test_score"], cached.cv_results_["mean_test_score"]
    )
    print(f"same scores: {same}")


if __name__ == "__main__":
    main()
