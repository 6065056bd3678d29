"""Benchmark deep clustering estimators beside k-means on raw features.

Examples
--------
Every estimator with its defaults on scikit-learn's digits, three seeds::

    python benchmarks/run.py --dataset digits --seeds 0 1 2

One estimator on MNIST-test (``../shared/data``), with parameters::

    python benchmarks/run.py AutoencoderKMeans --dataset mnist-test --seeds 0 \\
        --param pretrain_epochs=50

scikit-learn's iris, wine and breast cancer data, each feature standardised::

    python benchmarks/run.py --dataset wine --seeds 0 1 2 --umap

Any image set stored as the files of ``../shared/data`` are (an ``.npz``
with ``X``, one flattened square image of uint8 pixels per row, and ``y``),
named by its path::

    python benchmarks/run.py --dataset path/to/images.npz --seeds 0 1 2

A random part of a data set, ``NAME-N``: ``N`` of its samples drawn at
random (the same draw for every seed and estimator), to measure the
defaults at sizes they were not set on::

    python benchmarks/run.py --dataset mnist-train-5000 --seeds 0 1 2 --umap

MNIST training images in classes of unequal sizes, ``mnist-train-usps`` and
``mnist-train-longtail``, in equal classes of about the same number,
``mnist-train-balanced``, and the first draw's images in USPS's 16x16 format,
``mnist-train-usps-16px`` (``benchmarks/unequal_classes.py``)::

    python benchmarks/run.py --dataset mnist-train-longtail --seeds 0 1 --umap

Fashion-MNIST (Xiao et al. 2017; 28x28 images of clothing, 10 classes),
from the idx files Debian's ``dataset-fashion-mnist`` package installs in
``/usr/share/datasets/fashion-mnist`` (or a ``fashion-mnist`` folder of
``--data-path``)::

    apt-get install dataset-fashion-mnist
    python benchmarks/run.py --dataset fashion-mnist-test --seeds 0 --umap

Images in [-1, 1] instead of [0, 1], ``2 X - 1``, as some image sets are
distributed (torchvision's ``Normalize((0.5,), (0.5,))`` leaves them so);
``input_scaling="auto"`` maps them back into [0, 1], ``--param
input_scaling=None`` lets the networks see them as they are::

    python benchmarks/run.py --dataset orl --seeds 0 1 2 --signed

SNNLKMeans given 1 % of the labels (``use_labels=True`` and ``fit(X, y)`` with
``-1`` for the other 99 %; the scores are still computed on every sample
against the true labels)::

    python benchmarks/run.py SNNLKMeans --dataset mnist-test --label-fraction 0.01

Prints one row per run and a summary (mean and standard deviation over seeds)
of clustering accuracy, NMI, ARI and fit time; ``--json FILE`` also writes the
rows.
"""

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import unequal_classes  # benchmarks/, beside this script
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

import skdeepcluster
from skdeepcluster._memory import count_cached_pretrainings
from skdeepcluster._torch_utils import torch_threads_kept
from skdeepcluster.datasets import (
    _IDX_FILES,
    _read_idx_folder,
    load_digits,
    load_mnist,
)
from skdeepcluster.metrics import clustering_accuracy

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The estimators run when none is named: every estimator of the package.
ESTIMATORS = tuple(
    name
    for name in skdeepcluster.__all__
    if isinstance(getattr(skdeepcluster, name), type)
)


# Small image sets with many classes, as .npz files of uint8 pixels in
# ../shared/data; images are 32x32 and stored upright.
IMAGE_SETS = {"coil20": (1, 32, 32), "orl": (1, 32, 32)}
# scikit-learn's tabular data sets, each feature standardised
# (StandardScaler), as they are usually clustered: data that reaches beyond
# [-1, 1], unlike pixels.
TABULAR_SETS = ("iris", "wine", "breast-cancer")


# Where Debian's dataset-fashion-mnist package puts Fashion-MNIST's idx files
# (MNIST's file names and format).
FASHION_MNIST_SYSTEM = Path("/usr/share/datasets/fashion-mnist")

# Seed of the draw of a random part of a data set ("mnist-train-5000"): one
# draw, whatever the seeds of the runs.
SUBSAMPLE_SEED = 0


def signed(X, name):
    """Images ``X`` in [0, 1] mapped onto [-1, 1], ``2 X - 1``, in their dtype."""
    if X.min() < 0 or X.max() > 1:
        raise SystemExit(f"--signed: {name} does not lie within [0, 1]")
    return (2 * X - 1).astype(X.dtype)


def load(name, data_path):
    if name in unequal_classes.NAMES:
        X, y = unequal_classes.load(name, data_path)
        return (X / 255.0).astype(np.float32), y.astype(np.int64), square_images(X)
    # A trailing number: never an .npz path, nor a data set's own name.
    match = re.fullmatch(r"(.+)-(\d+)", name)
    if match:
        X, y, images_shape = load(match.group(1), data_path)
        n_samples = int(match.group(2))
        if not 0 < n_samples <= len(X):
            raise SystemExit(f"{name}: {match.group(1)} has {len(X)} samples")
        part = np.random.RandomState(SUBSAMPLE_SEED).permutation(len(X))[:n_samples]
        return X[part], y[part], images_shape
    if name.endswith(".npz"):
        return load_npz(name)
    if name == "digits":
        bunch = load_digits()
    elif name.startswith("fashion-mnist-"):
        return load_fashion_mnist(name.rsplit("-", 1)[1], data_path)
    elif name.startswith("mnist-"):
        bunch = load_mnist(name.split("-", 1)[1], path=data_path)
    elif name in TABULAR_SETS:
        return load_tabular(name)
    elif name in IMAGE_SETS:
        with np.load(Path(data_path) / f"{name}.npz") as data:
            X = (data["X"] / 255.0).astype(np.float32)
            return X, data["y"].astype(np.int64), IMAGE_SETS[name]
    else:
        raise SystemExit(f"unknown dataset {name!r}")
    return bunch.data, bunch.target, bunch.images_shape


def load_tabular(name):
    """Standardised ``X`` and ``y`` of scikit-learn's data set ``name``."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    bunch = getattr(datasets, "load_" + name.replace("-", "_"))()
    X = StandardScaler().fit_transform(bunch.data).astype(np.float32)
    return X, bunch.target.astype(np.int64), None


def load_fashion_mnist(subset, data_path):
    """Fashion-MNIST's ``subset`` ("test" or "train"), pixels / 255.

    Its idx files have MNIST's names and format, and are read and checked
    as :func:`~skdeepcluster.datasets.load_mnist` reads MNIST's (without
    MNIST's checksums): from a ``fashion-mnist`` folder of ``data_path``,
    else from where Debian's ``dataset-fashion-mnist`` package installs
    them.
    """
    if subset not in _IDX_FILES:
        raise SystemExit(f"fashion-mnist-{subset}: the subsets are test and train")
    folders = [Path(data_path) / "fashion-mnist", FASHION_MNIST_SYSTEM]
    for folder in folders:
        found = _read_idx_folder(folder, subset)
        if found is not None:
            break
    else:
        raise SystemExit(
            f"Fashion-MNIST's {subset} idx files are in neither "
            + " nor ".join(map(str, folders))
            + " (apt-get install dataset-fashion-mnist)"
        )
    images, labels = found
    return (images / 255.0).astype(np.float32), labels, (1, 28, 28)


def load_npz(path):
    """``X`` (pixels / 255 when stored as uint8) and ``y`` of the file ``path``.

    The images are taken to be square, one channel.
    """
    with np.load(path) as data:
        X, y = data["X"], data["y"].astype(np.int64)
    X = (X / 255.0 if X.dtype == np.uint8 else X).astype(np.float32)
    return X, y, square_images(X)


def square_images(X):
    """``(1, side, side)`` when each row of ``X`` is a square image, else ``None``."""
    side = round(X.shape[1] ** 0.5)
    return (1, side, side) if side * side == X.shape[1] else None


class UMAPThen:
    """Reference: UMAP to 10 dimensions (``min_dist=0``), then a clusterer.

    The baseline of McConville et al. (N2D, 2020) applied to the raw
    features.
    """

    def __init__(self, clusterer, seed):
        self.clusterer, self.seed = clusterer, seed

    def fit_predict(self, X, y=None):
        # The estimators run after it keep the thread count they were
        # started with.
        with torch_threads_kept():
            return self._fit_predict(X)

    def _fit_predict(self, X):
        import umap

        # One job: UMAP runs on one thread with a random_state anyway, and
        # warns when asked for more.
        embedding = umap.UMAP(
            n_components=10, min_dist=0.0, random_state=self.seed, n_jobs=1
        ).fit_transform(X)
        return self.clusterer.fit_predict(embedding)


def parse_params(pairs):
    params = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def partial_labels(y, fraction, seed):
    """``y`` with all but a stratified random ``fraction`` replaced by ``-1``."""
    rng = np.random.RandomState(seed)
    y_partial = np.full_like(y, -1)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n_kept = max(1, int(round(fraction * len(members))))
        kept = rng.choice(members, n_kept, replace=False)
        y_partial[kept] = label
    return y_partial


def evaluate(make_model, X, y, seed, label_fraction=None):
    model = make_model(seed)
    y_fit = None if label_fraction is None else partial_labels(y, label_fraction, seed)
    memory = getattr(model, "memory", None)
    cached_before = count_cached_pretrainings(memory)
    start = time.perf_counter()
    labels = model.fit_predict(X, y_fit)
    seconds = time.perf_counter() - start
    row = dict(
        acc=clustering_accuracy(y, labels),
        nmi=normalized_mutual_info_score(y, labels),
        ari=adjusted_rand_score(y, labels),
        fit_s=seconds,
        # PyTorch threads: another count gives another training trajectory.
        threads=torch.get_num_threads(),
    )
    if hasattr(model, "clustering_"):
        # Which partition clustering="auto" kept.
        row["clustering"] = model.clustering_
    if memory is not None:
        # A fit that added no entry to the cache loaded its pretraining from
        # it: fit_s leaves out the pretraining, whose epochs were timed when
        # it ran.
        history = getattr(model, "pretrain_history_", None) or model.net_.history
        row["pretraining_cached"] = count_cached_pretrainings(memory) == cached_before
        row["pretrain_s"] = float(sum(history[:, "dur"]))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("estimators", nargs="*", help="class names (default: all)")
    parser.add_argument(
        "--dataset",
        default="digits",
        help="digits, mnist-test, mnist-train, mnist-all, coil20, orl, "
        "fashion-mnist-test, fashion-mnist-train, "
        + ", ".join(unequal_classes.NAMES)
        + ", "
        "iris, wine, breast-cancer (standardised), or the path of an .npz file "
        "of images (X, y) as those in ../shared/data; NAME-N: N samples of NAME "
        "drawn at random",
    )
    parser.add_argument(
        "--data-path", default=os.environ.get("SKDC_DATA", DEFAULT_DATA)
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        help="name=value passed to every estimator",
    )
    parser.add_argument(
        "--images", action="store_true", help="pass input_shape of the dataset's images"
    )
    parser.add_argument(
        "--signed",
        action="store_true",
        help="map the images from [0, 1] onto [-1, 1] (2 X - 1) before fitting",
    )
    parser.add_argument(
        "--no-kmeans", action="store_true", help="skip the raw k-means baseline"
    )
    parser.add_argument(
        "--umap",
        action="store_true",
        help="add UMAP + KMeans and UMAP + GMM on the raw features as reference rows",
    )
    parser.add_argument(
        "--label-fraction",
        type=float,
        help="pass this stratified fraction of "
        "the labels to fit, -1 for the rest, and set "
        "use_labels=True (for semi-supervised SNNLKMeans)",
    )
    parser.add_argument(
        "--memory",
        help="cache directory passed as memory= to the estimators that take it: "
        "estimators with the same pretraining settings (AutoencoderKMeans, DEC, "
        "DCN with defaults) then pretrain once per seed. Each row records the "
        "pretraining time its fit includes or loaded (pretrain_s), and whether "
        "it loaded it (pretraining_cached: no entry was added during the fit, "
        "so give runs at the same time directories of their own)",
    )
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument(
        "--append",
        action="store_true",
        help="with --json, add the rows to those the file holds instead of "
        "replacing them (each results file gathers several commands)",
    )
    args = parser.parse_args(argv)

    X, y, images_shape = load(args.dataset, args.data_path)
    if args.signed:
        X = signed(X, args.dataset)
    n_clusters = len(np.unique(y))
    params = parse_params(args.param)
    if args.images:
        if images_shape is None:
            parser.error(f"--images: the rows of {args.dataset} are not square images")
        params["input_shape"] = images_shape
    names = args.estimators or list(ESTIMATORS)
    candidates = (
        {}
        if args.no_kmeans
        else {
            "KMeans(raw)": lambda seed: KMeans(n_clusters, n_init=10, random_state=seed)
        }
    )
    if args.umap:
        candidates["UMAP+KMeans(raw)"] = lambda seed: UMAPThen(
            KMeans(n_clusters, n_init=10, random_state=seed), seed
        )
        candidates["UMAP+GMM(raw)"] = lambda seed: UMAPThen(
            GaussianMixture(n_clusters, random_state=seed), seed
        )
    for name in names:
        cls = getattr(skdeepcluster, name)
        cls_params = dict(params)
        # Estimators ignore y unless asked to use it (SNNLKMeans' use_labels);
        # the others cluster without the labels, as before.
        if args.label_fraction is not None and "use_labels" in cls().get_params():
            cls_params["use_labels"] = True
        if args.memory and "memory" in cls().get_params():
            cls_params["memory"] = args.memory
        candidates[name] = lambda seed, cls=cls, cls_params=cls_params: cls(
            n_clusters=n_clusters, random_state=seed, **cls_params
        )

    print(
        f"# dataset={args.dataset} n={len(X)} d={X.shape[1]} seeds={args.seeds} params={params}"
        f"{' in [-1, 1]' if args.signed else ''}"
        f" label_fraction={args.label_fraction}"
    )
    print(
        f"{'estimator':<22}{'seed':>5}{'acc':>8}{'nmi':>8}{'ari':>8}{'fit_s':>9}",
        flush=True,
    )
    rows, kept = [], []
    if args.append and args.json and Path(args.json).exists():
        kept = json.loads(Path(args.json).read_text())
    for name, make_model in candidates.items():
        for seed in args.seeds:
            row = dict(
                estimator=name,
                seed=seed,
                dataset=args.dataset,
                # The reference rows take none of the estimators' parameters.
                params=repr(params if name in names else {}),
                label_fraction=args.label_fraction,
                # Only on the rows it concerns, so the others keep their form.
                **({"input_range": "[-1, 1]"} if args.signed else {}),
                **evaluate(make_model, X, y, seed, args.label_fraction),
            )
            rows.append(row)
            if args.json:
                # After every run, so an interrupted benchmark keeps its rows.
                Path(args.json).write_text(json.dumps(kept + rows, indent=2))
            print(
                f"{name:<22}{seed:>5}{row['acc']:>8.4f}{row['nmi']:>8.4f}{row['ari']:>8.4f}{row['fit_s']:>9.1f}",
                flush=True,
            )
    print("\n# summary: mean ± std over seeds")
    for name in candidates:
        sub = [r for r in rows if r["estimator"] == name]
        summary = "  ".join(
            f"{key} {np.mean([r[key] for r in sub]):.4f}±{np.std([r[key] for r in sub]):.4f}"
            for key in ("acc", "nmi", "ari", "fit_s")
        )
        print(f"{name:<22}{summary}")
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
