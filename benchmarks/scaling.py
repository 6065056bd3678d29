"""Time per epoch of the smoothed AutoencoderKMeans pretraining against n_samples.

Trains the default network (``d-500-500-2000-10``, batch 256) with the
neighbourhood smoothing term from the first epoch (``smoothing_start=0``) on
the first 10,000, 20,000, 40,000 and 70,000 MNIST images (MNIST-test first,
then the training set, pixels / 255), and prints each epoch's wall time
(training plus the smoothing targets computed at its start, which include
the neighbour search) and the time of the neighbour search alone. The
ratios to the first size show how the cost grows: linearly, an epoch on
70,000 images costs 7 times one on 10,000.

    python benchmarks/scaling.py
    python benchmarks/scaling.py --sizes 10000 70000 --epochs 3
    python benchmarks/scaling.py --exact   # all pairs, for comparison

``--exact`` searches the neighbours among all samples, as the estimators do
up to 10,000 samples, to show the quadratic cost the candidate subset
avoids.
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch
from skorch.callbacks import Callback

import skdeepcluster._torch_utils
from run import DEFAULT_DATA
from skdeepcluster import AutoencoderKMeans
from skdeepcluster._autoencoder_base import BaseAutoencoderClusterer
from skdeepcluster.datasets import load_mnist


class EpochClock(Callback):
    """Wall time of each epoch, from the end of the previous one.

    skorch's own ``dur`` starts after the net's ``on_epoch_begin``, which is
    where the smoothing targets are computed; this clock includes them.
    """

    def on_train_begin(self, net, **kwargs):
        self.times_ = []
        self.last_ = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        now = time.perf_counter()
        self.times_.append(now - self.last_)
        self.last_ = now


def epoch_times(X, epochs, seed):
    """Wall time of each epoch, and of each neighbour search, of one fit."""
    model = AutoencoderKMeans(
        n_clusters=10,
        pretrain_epochs=epochs,
        smoothing_weight=1.0,
        smoothing_start=0.0,
        # The training loop's own cost: the rows were measured without the
        # image deformations that augment="auto" adds from 5,000 images on.
        augment=False,
        n_init=1,
        random_state=seed,
        callbacks=[EpochClock()],
    )
    searches = []
    search = skdeepcluster._torch_utils.nearest_neighbours

    def timed_search(*args, **kwargs):
        start = time.perf_counter()
        found = search(*args, **kwargs)
        searches.append(time.perf_counter() - start)
        return found

    skdeepcluster._torch_utils.nearest_neighbours = timed_search
    try:
        model.fit(X)
    finally:
        skdeepcluster._torch_utils.nearest_neighbours = search
    # The estimator gives each net a copy of its callbacks.
    (clock,) = [cb for _, cb in model.net_.callbacks_ if isinstance(cb, EpochClock)]
    return clock.times_, searches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000, 70_000]
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--exact", action="store_true", help="search all pairs at every size"
    )
    parser.add_argument(
        "--data-path", default=os.environ.get("SKDC_DATA", DEFAULT_DATA)
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.exact:
        BaseAutoencoderClusterer._SMOOTHING_CANDIDATES = max(args.sizes)
    X = np.concatenate(
        [
            load_mnist(subset, path=args.data_path, return_X_y=True)[0]
            for subset in ("test", "train")
        ]
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{args.epochs} epochs, neighbour search "
        f"{'exact' if args.exact else 'among candidates'}"
    )
    print(
        f"{'n_samples':>9}  {'epoch (s)':>9}  {'ratio':>6}  "
        f"{'search (s)':>10}  {'ratio':>6}  epochs (s)"
    )
    first = None
    for n_samples in args.sizes:
        times, searches = epoch_times(X[:n_samples], args.epochs, args.seed)
        epoch, search = statistics.median(times), statistics.median(searches)
        first = first or (epoch, search)
        print(
            f"{n_samples:>9}  {epoch:>9.2f}  {epoch / first[0]:>6.2f}  "
            f"{search:>10.3f}  {search / first[1]:>6.2f}  "
            + " ".join(f"{t:.2f}" for t in times),
            flush=True,
        )


if __name__ == "__main__":
    main()
