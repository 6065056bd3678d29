"""Write the benchmark tables of the documentation from the harness's JSON.

Reads every ``benchmarks/results/<dataset>.json`` written by
``benchmarks/run.py --json`` and writes the files ``doc/benchmarks.rst``
includes, so the published figures are exactly those the harness measured:
``doc/benchmark_results.inc`` (digits, COIL-20, ORL) and
``doc/benchmark_results_mnist.inc`` (MNIST-test, MNIST-train, all of MNIST;
empty until one of their JSON files exists),
``doc/benchmark_results_tabular.inc`` (iris, wine, breast cancer),
``doc/benchmark_results_subsets.inc`` (random parts of MNIST's training
set), ``doc/benchmark_results_unseen.inc`` (Fashion-MNIST) and
``doc/benchmark_results_unequal.inc`` (classes of unequal sizes). One command
regenerates them all::

    python benchmarks/report.py

Each table gives, per estimator, the mean ± standard deviation over the seeds
of the clustering accuracy, NMI, ARI and fit time, and the command that
reproduces it. The MNIST tables add the accuracy each method's paper reports
on MNIST.
"""

import argparse
import ast
import json
import shlex
import sys
from pathlib import Path

import numpy as np

import skdeepcluster
from run import ESTIMATORS

# The estimators that take run.py's --memory (their pretraining is cached).
MEMORY_ESTIMATORS = {
    name
    for name in ESTIMATORS
    if "memory" in getattr(skdeepcluster, name)().get_params()
}

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# Data set file stem -> (section title, one-line description).
SMALL_DATASETS = {
    "digits": ("Digits", "scikit-learn's 1,797 8x8 digit images, 10 classes"),
    "coil20": ("COIL-20", "1,440 32x32 images of 20 objects, 72 poses each"),
    "orl": ("ORL", "400 32x32 face images of 40 people, 10 each"),
}
MNIST_DATASETS = {
    "mnist-test": ("MNIST-test", "MNIST's 10,000 28x28 test images (pixels / 255)"),
    "mnist-train": (
        "MNIST-train",
        "MNIST's 60,000 28x28 training images (pixels / 255)",
    ),
    "mnist-all": ("MNIST", "all 70,000 28x28 MNIST images (pixels / 255)"),
}
# Random parts of MNIST's training set (run.py's NAME-N), sizes on either
# side of the 5,000 samples where several "auto" defaults switch.
SUBSET_DATASETS = {
    f"mnist-train-{n}": (
        f"{n:,} MNIST training images",
        f"{n:,} of MNIST's 60,000 training images drawn at random (pixels / 255)",
    )
    for n in (2000, 5000)
}
# Image data no default was set on, kept outside ../shared/data.
UNSEEN_DATASETS = {
    "fashion-mnist-test": (
        "Fashion-MNIST-test",
        "Fashion-MNIST's 10,000 28x28 test images of clothing, 10 classes "
        "(pixels / 255)",
    ),
    # Below the 5,000 samples where the "auto" defaults switch to the large
    # networks: the small-data defaults on images none was set on.
    "fashion-mnist-test-2000": (
        "2,000 Fashion-MNIST test images",
        "2,000 of Fashion-MNIST's 10,000 test images drawn at random (pixels / 255)",
    ),
}
# Classes of unequal sizes (benchmarks/unequal_classes.py).
UNEQUAL_DATASETS = {
    "mnist-train-usps": (
        "MNIST training images in USPS's class sizes",
        "7,291 of MNIST's training images, as many of each digit as USPS's "
        "training set has (1,194 zeros down to 542 eights; pixels / 255)",
    ),
    "mnist-train-longtail": (
        "MNIST training images in a long tail",
        "8,175 of MNIST's training images, 2,000 of one digit down to 200 of "
        "another, each size 0.77 times the one before (pixels / 255)",
    ),
    "mnist-train-balanced": (
        "MNIST training images in classes of equal sizes",
        "7,290 of MNIST's training images, 729 of each digit (pixels / 255)",
    ),
    "mnist-train-usps-16px": (
        "MNIST training images in USPS's class sizes and format",
        "the 7,291 images of the draw in USPS's class sizes, each cropped to "
        "its digit, which then fills a 16x16 frame as in USPS (pixels / 255)",
    ),
}
TABULAR_DATASETS = {
    "iris": ("Iris", "scikit-learn's iris, 150 samples of 4 features, 3 classes"),
    "wine": ("Wine", "scikit-learn's wine, 178 samples of 13 features, 3 classes"),
    "breast-cancer": (
        "Breast cancer",
        "scikit-learn's breast cancer, 569 samples of 30 features, 2 classes",
    ),
}
# Generated file -> the data sets it holds; doc/benchmarks.rst includes each
# where its data sets are discussed.
OUTPUTS = {
    ROOT / "doc" / "benchmark_results.inc": SMALL_DATASETS,
    ROOT / "doc" / "benchmark_results_mnist.inc": MNIST_DATASETS,
    ROOT / "doc" / "benchmark_results_tabular.inc": TABULAR_DATASETS,
    ROOT / "doc" / "benchmark_results_subsets.inc": SUBSET_DATASETS,
    ROOT / "doc" / "benchmark_results_unseen.inc": UNSEEN_DATASETS,
    ROOT / "doc" / "benchmark_results_unequal.inc": UNEQUAL_DATASETS,
}
# The reference rows' labels; {input} names what they cluster.
REFERENCE_ROWS = {
    "KMeans(raw)": "k-means ({input})",
    "UMAP+KMeans(raw)": "UMAP + k-means ({input}, reference)",
    "UMAP+GMM(raw)": "UMAP + GMM ({input}, reference)",
}
# Clustering accuracy each method's paper reports on MNIST, a column of the
# MNIST tables.
PAPER_MNIST_ACCURACY = {
    "ACAIKMeans": "0.962 (Berthelot et al., 2019; 256-d latent)",
    "DEC": "0.843 (Xie et al., 2016)",
    "DCN": "0.83 (Yang et al., 2017)",
    "IMSAT": "0.984 with VAT, 0.896 with RPT (Hu et al., 2017)",
    "DAC": "0.978 (Chang et al., 2017)",
}
PAPER_NOTE = (
    "The paper column is the clustering accuracy each paper reports on MNIST; "
    "most papers train on all 70,000 images, so their figures are a "
    "reference, not the same experiment."
)


def mean_std(values, digits=3):
    """``mean ± std`` of ``values``; a single run's value alone (its std says nothing)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def _over(seeds):
    """What a table's figures are: one seed's, or means over several."""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"mean ± standard deviation over seeds {', '.join(map(str, seeds))}"


def _seeds(rows):
    return sorted({row["seed"] for row in rows})


def _options(row):
    """The run's options beyond the data set: its parameters and label fraction."""
    return row["params"], row["label_fraction"]


def _label(name, options, seeds, common_seeds, input_name):
    label = REFERENCE_ROWS.get(name, f":class:`{name}`").format(input=input_name)
    params, fraction = options
    notes = [f"``{key}={value!r}``" for key, value in ast.literal_eval(params).items()]
    if fraction is not None:
        notes.append(f"{100 * fraction:g} % of the labels")
    if seeds != common_seeds:
        notes.append(f"seeds {', '.join(map(str, seeds))}")
    return f"{label} ({'; '.join(notes)})" if notes else label


def _runs(rows):
    """``rows`` by estimator and options: {(name, options): rows}."""
    runs = {}
    for row in rows:
        runs.setdefault((row["estimator"], _options(row)), []).append(row)
    return runs


def common_seeds(rows):
    """The seeds most estimators ran with (the table states them once)."""
    seed_sets = [tuple(_seeds(runs)) for runs in _runs(rows).values()]
    return list(max(dict.fromkeys(seed_sets), key=seed_sets.count))


def _fit_time(runs):
    """Mean fit time; with a pretraining loaded from ``--memory``, its own time."""
    fit = np.mean([r["fit_s"] for r in runs])
    if not all(r.get("pretraining_cached") for r in runs):
        return f"{fit:.1f}"
    pretrain = np.mean([r["pretrain_s"] for r in runs])
    return f"{fit:.1f} + {pretrain:.1f} (pretraining from the cache)"


def table(rows, paper=None, input_name="raw pixels"):
    """A list-table of ``rows``, one line per estimator and options.

    ``paper`` maps estimator names to the accuracy their paper reports; when
    given, it fills a last column. ``input_name`` says what the reference
    rows cluster.
    """
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        f"   :widths: {'24 12 12 12 12 28' if paper is not None else '34 16 16 16 14'}",
        "",
        "   * - Estimator",
        "     - Accuracy",
        "     - NMI",
        "     - ARI",
        "     - Fit time (s)",
    ]
    if paper is not None:
        lines.append("     - Paper (accuracy, MNIST)")
    for (name, options), runs in _runs(rows).items():
        label = _label(name, options, _seeds(runs), common_seeds(rows), input_name)
        lines += [
            f"   * - {label}",
            f"     - {mean_std([r['acc'] for r in runs])}",
            f"     - {mean_std([r['nmi'] for r in runs])}",
            f"     - {mean_std([r['ari'] for r in runs])}",
            f"     - {_fit_time(runs)}",
        ]
        if paper is not None:
            lines.append(f"     - {paper.get(name, '--')}")
    return lines


def commands(stem, rows):
    """The ``benchmarks/run.py`` commands that wrote ``rows``.

    One command when every row has the same options, seeds and thread
    count, and every estimator with a pretraining ran with or without
    ``--memory`` alike, with no estimator named (all of them ran);
    otherwise one command per such set, naming its estimators, whose rows
    were gathered into the JSON file afterwards.
    """
    invocations = {}
    # Runs that --memory does not change (the reference rows, estimators
    # without a pretraining): they join a command with or without it.
    either = {}
    for (name, options), runs in _runs(rows).items():
        # Runs with another thread count, or with or without --memory, came
        # from another command.
        n_threads = max(row.get("threads", 1) for row in runs)
        key = (options, tuple(_seeds(runs)), n_threads)
        if name in MEMORY_ESTIMATORS:
            memory = any("pretraining_cached" in row for row in runs)
            invocations.setdefault((*key, memory), set()).add(name)
        else:
            either.setdefault(key, set()).add(name)
    for key, names in either.items():
        memory = (*key, True) in invocations
        invocations.setdefault((*key, memory), set()).update(names)
    lines = []
    for ((params, fraction), seeds, n_threads, memory), names in invocations.items():
        words = [f"OMP_NUM_THREADS={n_threads}", "python", "benchmarks/run.py"]
        if len(invocations) > 1 or not set(ESTIMATORS) <= names:
            words += sorted(names - set(REFERENCE_ROWS))
        words += ["--dataset", stem, "--seeds", *map(str, seeds)]
        for key, value in ast.literal_eval(params).items():
            words += ["--param", shlex.quote(f"{key}={value!r}")]
        if fraction is not None:
            words += ["--label-fraction", f"{fraction:g}"]
        if "KMeans(raw)" not in names:
            words.append("--no-kmeans")
        if memory:
            words += ["--memory", "CACHE_DIR"]
        if names & {"UMAP+KMeans(raw)", "UMAP+GMM(raw)"}:
            words.append("--umap")
        if len(invocations) == 1:
            # Several runs cannot all have written the one file.
            words += ["--json", f"benchmarks/results/{stem}.json"]
        lines.append("    " + " ".join(words))
    return lines


def render(datasets, results=RESULTS):
    """The reStructuredText of the tables of ``datasets`` found in ``results``."""
    out = [
        ".. This file is generated by benchmarks/report.py from",
        "   benchmarks/results/*.json; do not edit it by hand.",
        "",
    ]
    for stem, (title, description) in datasets.items():
        path = Path(results) / f"{stem}.json"
        if not path.exists():
            continue
        rows = json.loads(path.read_text())
        seeds = common_seeds(rows)
        paper = PAPER_MNIST_ACCURACY if stem in MNIST_DATASETS else None
        input_name = (
            "standardised features" if stem in TABULAR_DATASETS else "raw pixels"
        )
        out += [
            title,
            "-" * len(title),
            "",
            f"{description}; {_over(seeds)}, defaults except ``n_clusters``, from::",
            "",
            *commands(stem, rows),
            "",
            *table(rows, paper, input_name),
            "",
        ]
        if paper is not None:
            out += [PAPER_NOTE, ""]
    if len(out) == 3:
        # A comment, so that the page shows nothing in its place.
        out.append(f".. No results of {', '.join(datasets)} have been recorded yet.")
    return "\n".join(out) + "\n"


def main(argv=None):
    # No options: the parser gives --help and rejects a mistyped argument,
    # rather than rewriting the pages whatever is asked.
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    for output, datasets in OUTPUTS.items():
        output.write_text(render(datasets))
        print(f"wrote {output.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
