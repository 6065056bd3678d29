"""Peak memory of fit, predict and transform on memory-mapped input.

Writes two float32 ``.npy`` files in ``--dir``: all 70,000 MNIST images
(pixels / 255, 220 MB), and ``--rows`` rows (default 1,000,000, 3.1 GB) of
MNIST images repeated. Each measurement then runs in a fresh Python process
that opens a file with ``numpy.load(..., mmap_mode="r")`` and reports:

* peak anonymous memory (``RssAnon``, sampled every 2 ms): the memory the
  process allocated itself, which is what a copy of the input would show in;
* peak RSS (``VmHWM``), which also counts the pages of the mapped file that
  the kernel keeps in memory after they were read (page cache it can drop);
* both before the call (after the imports and the data or model loading),
  so that the increase is the call's;
* for ``predict`` and ``transform``, the size of the returned array and the
  increase beyond it (``extra``): what inference held besides its output.

Measured for each estimator of ``--estimators`` (default: all seven):

* ``fit-memmap``: ``fit`` on the 70,000 images from the memory map, with the
  default network and ``--epochs`` epochs of every training stage (see
  :func:`fit_params`); for the estimators of ``--in-memory``
  (default: AutoencoderKMeans) also ``fit-in-memory``, the same fit on the
  array loaded into memory, for comparison;
* ``predict`` and ``transform`` of the large file by a model fitted on
  2,000 images with a small network (see :func:`small_params`) and
  pickled. AutoencoderKMeans, ACAIKMeans and SNNLKMeans are fitted with
  ``clustering="spectral"``, so that their ``predict`` is the vote of the
  nearest reference samples; the nearest-centre rule of
  ``clustering="kmeans"`` is DCN's ``predict``.

Every measurement is printed as a table and, with ``--json``, written as a
JSON list (after each run, so that an interrupted run keeps the finished
ones). The files are deleted at the end unless ``--keep``.

    OMP_NUM_THREADS=1 python benchmarks/out_of_core.py --dir /path/with/4GB/free \\
        --json benchmarks/results/out_of_core.json
    python benchmarks/out_of_core.py --dir /tmp/ooc --estimators DEC IMSAT \\
        --rows 100000 --epochs 1
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from run import DEFAULT_DATA, ESTIMATORS

# The estimators whose final clustering is a parameter (see the docstring).
_WITH_CLUSTERING = ("AutoencoderKMeans", "ACAIKMeans", "SNNLKMeans")
_AUTOENCODER = (*_WITH_CLUSTERING, "DEC", "DCN")

# Rows of the training file the inference models are fitted on.
SMALL_FIT_ROWS = 2000


def estimator_class(name):
    import skdeepcluster

    return getattr(skdeepcluster, name)


def small_params(name):
    """Settings of the model whose inference is measured: a small network."""
    params = dict(n_clusters=10, hidden_dims=(64,), random_state=0)
    if name in _AUTOENCODER:
        params.update(pretrain_epochs=2)
    if name in _WITH_CLUSTERING:
        params.update(clustering="spectral")
    if name in ("DEC", "DCN"):
        params.update(clustering_epochs=2)
    if name == "IMSAT":
        params.update(max_epochs=2, n_init=1)
    if name == "DAC":
        params.update(max_epochs=2)
    return params


def fit_params(name, epochs):
    """Settings of the fit on all of MNIST: the default network, few epochs.

    Every training stage runs ``epochs`` epochs; k-means and IMSAT run one
    start (``n_init=1``), as only the memory of a fit is measured.
    """
    params = dict(n_clusters=10, random_state=0)
    if name in _AUTOENCODER:
        # Without the image deformations of augment="auto", as the rows were
        # measured: they add time and a deformed copy of each batch, no more.
        params.update(pretrain_epochs=epochs, n_init=1, augment=False)
    if name in ("DEC", "DCN"):
        params.update(clustering_epochs=epochs)
    if name == "IMSAT":
        params.update(max_epochs=epochs, n_init=1)
    if name == "DAC":
        params.update(max_epochs=epochs)
    return params


def memory_status():
    """Current anonymous memory and peak RSS of this process, in MiB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields["RssAnon"], fields["VmHWM"]


class AnonymousPeak:
    """Largest ``RssAnon`` seen while the block runs (sampled every 2 ms)."""

    def __enter__(self):
        self.peak = memory_status()[0]
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, memory_status()[0])
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, memory_status()[0])


def child(name, task, path, model_path, epochs, threads):
    """Run one measurement; print it as a JSON line."""
    import torch

    torch.set_num_threads(threads)
    X = np.load(path, mmap_mode="r")
    if task == "fit-in-memory":
        X = np.array(X)
    model = None
    if task.startswith("fit"):
        params = fit_params(name, epochs)
        model = estimator_class(name)(**params)
    else:
        with open(model_path, "rb") as file:
            model = pickle.load(file)
        params = small_params(name)
    before_anon, before_rss = memory_status()
    start = time.perf_counter()
    result = None
    with AnonymousPeak() as peak:
        if task.startswith("fit"):
            model.fit(X)
        elif task == "predict":
            result = model.predict(X)
        else:
            result = model.transform(X)
    seconds = time.perf_counter() - start
    record = dict(
        estimator=name,
        task=task,
        rows=len(X),
        params={key: repr(value) for key, value in params.items()},
        seconds=round(seconds, 1),
        anon_before_mib=round(before_anon),
        anon_peak_mib=round(peak.peak),
        anon_increase_mib=round(peak.peak - before_anon),
        rss_before_mib=round(before_rss),
        rss_peak_mib=round(memory_status()[1]),
    )
    if result is not None:
        output = result.nbytes / 2**20
        record.update(
            output_shape=list(result.shape),
            output_mib=round(output, 1),
            extra_mib=round(peak.peak - before_anon - output),
        )
    if hasattr(model, "clustering_"):
        record["clustering_"] = model.clustering_
    print(json.dumps(record), flush=True)


def write_files(directory, rows, data_path):
    from skdeepcluster.datasets import load_mnist

    mnist = np.concatenate(
        [
            load_mnist(subset, path=data_path, return_X_y=True)[0]
            for subset in ("test", "train")
        ]
    )
    small = directory / "mnist.npy"
    np.save(small, mnist)
    large = directory / "large.npy"
    stored = np.lib.format.open_memmap(large, "w+", np.float32, (rows, 784))
    for start in range(0, rows, len(mnist)):
        stop = min(start + len(mnist), rows)
        stored[start:stop] = mnist[: stop - start]
    stored.flush()
    del stored
    return mnist, small, large


def print_table(records):
    header = (
        f"{'estimator':<18} {'task':<14} {'rows':>9} {'s':>7} "
        f"{'before':>7} {'peak':>7} {'increase':>8} {'output':>7} {'extra':>6}"
    )
    print(
        "\nAnonymous memory in MiB (increase = peak - before; extra = increase "
        "- output)"
    )
    print(header)
    print("-" * len(header))
    for r in records:
        print(
            f"{r['estimator']:<18} {r['task']:<14} {r['rows']:>9,} "
            f"{r['seconds']:>7.1f} {r['anon_before_mib']:>7} "
            f"{r['anon_peak_mib']:>7} {r['anon_increase_mib']:>8} "
            f"{r.get('output_mib', ''):>7} {r.get('extra_mib', ''):>6}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument(
        "--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS)
    )
    parser.add_argument(
        "--in-memory",
        nargs="*",
        choices=ESTIMATORS,
        default=["AutoencoderKMeans"],
        help="estimators whose fit is also measured on the array in memory",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=("fit", "predict", "transform"),
        default=["fit", "predict", "transform"],
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--data-path", default=os.environ.get("SKDC_DATA", DEFAULT_DATA)
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.task, args.path, args.model, args.epochs, args.threads)
        return

    args.dir.mkdir(parents=True, exist_ok=True)
    mnist, small, large = write_files(args.dir, args.rows, args.data_path)
    model_paths = {}
    records = []
    try:
        if {"predict", "transform"} & set(args.tasks):
            for name in args.estimators:
                model = estimator_class(name)(**small_params(name))
                model.fit(mnist[:SMALL_FIT_ROWS])
                model_paths[name] = args.dir / f"{name}.pkl"
                with open(model_paths[name], "wb") as file:
                    pickle.dump(model, file)
        del mnist
        for name in args.estimators:
            runs = []
            if "fit" in args.tasks:
                runs.append(("fit-memmap", small))
                if name in args.in_memory:
                    runs.append(("fit-in-memory", small))
            runs += [(task, large) for task in ("predict", "transform")]
            runs = [run for run in runs if run[0].split("-")[0] in args.tasks]
            for task, path in runs:
                command = [
                    sys.executable,
                    __file__,
                    "--dir",
                    str(args.dir),
                    "--epochs",
                    str(args.epochs),
                    "--threads",
                    str(args.threads),
                    "--child",
                    name,
                    "--task",
                    task,
                    "--path",
                    str(path),
                    "--model",
                    str(model_paths.get(name, "")),
                ]
                output = subprocess.run(
                    command, check=True, stdout=subprocess.PIPE, text=True
                ).stdout
                records.append(json.loads(output.strip().splitlines()[-1]))
                print(json.dumps(records[-1]), flush=True)
                if args.json:
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps(records, indent=1) + "\n")
    finally:
        if not args.keep:
            for path in (small, large, *model_paths.values()):
                path.unlink(missing_ok=True)
    print_table(records)


if __name__ == "__main__":
    main()
