"""Peak memory of fit, predict and transform on memory-mapped input.

Writes two float32 ``.npy`` files in ``--dir``: all 70,000 MNIST images
(pixels / 255, 220 MB), and ``--rows`` rows (default 1,000,000, 3.1 GB) of
MNIST images repeated. Each measurement then runs in a fresh Python process
that opens a file with ``numpy.load(..., mmap_mode="r")`` and reports:

* peak RSS (``VmHWM``), which also counts the pages of the mapped file that
  the kernel keeps in memory after they were read (page cache it can drop);
* peak anonymous memory (``RssAnon``, sampled every few milliseconds): the
  memory the process allocated itself, which is what a copy of the input
  would show in;
* both before the call (after the imports and the data or model loading),
  so that the increase is the call's.

Measured: ``AutoencoderKMeans.fit`` on the 70,000 images (default network,
``--epochs`` pretraining epochs) from the memory map and, for comparison,
from the same array loaded into memory; ``predict`` and ``transform`` of the
large file by a model fitted on 2,000 images with a small network. The
files are deleted at the end unless ``--keep``.

    python benchmarks/out_of_core.py --dir /path/with/4GB/free
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

from run import DEFAULT_DATA


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


def child(task, path, model_path, epochs, threads):
    import torch

    from skdeepcluster import AutoencoderKMeans

    torch.set_num_threads(threads)
    X = np.load(path, mmap_mode="r")
    if task == "fit-in-memory":
        X = np.array(X)
    model = None
    if task in ("predict", "transform"):
        with open(model_path, "rb") as file:
            model = pickle.load(file)
    before_anon, before_rss = memory_status()
    start = time.perf_counter()
    with AnonymousPeak() as peak:
        if task.startswith("fit"):
            AutoencoderKMeans(
                n_clusters=10, pretrain_epochs=epochs, n_init=1, random_state=0
            ).fit(X)
        elif task == "predict":
            model.predict(X)
        else:
            model.transform(X)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                task=task,
                rows=len(X),
                seconds=round(seconds, 1),
                anon_before_mib=round(before_anon),
                anon_peak_mib=round(peak.peak),
                rss_before_mib=round(before_rss),
                rss_peak_mib=round(memory_status()[1]),
            )
        )
    )


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--data-path", default=os.environ.get("SKDC_DATA", DEFAULT_DATA)
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path, args.model, args.epochs, args.threads)
        return

    from skdeepcluster import AutoencoderKMeans

    args.dir.mkdir(parents=True, exist_ok=True)
    mnist, small, large = write_files(args.dir, args.rows, args.data_path)
    model_path = args.dir / "model.pkl"
    model = AutoencoderKMeans(
        n_clusters=10, hidden_dims=(64,), pretrain_epochs=2, random_state=0
    ).fit(mnist[:2000])
    with open(model_path, "wb") as file:
        pickle.dump(model, file)
    del mnist, model
    runs = [
        ("fit-memmap", small),
        ("fit-in-memory", small),
        ("predict", large),
        ("transform", large),
    ]
    try:
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
                task,
                "--path",
                str(path),
                "--model",
                str(model_path),
            ]
            subprocess.run(command, check=True)
    finally:
        if not args.keep:
            for path in (small, large, model_path):
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
