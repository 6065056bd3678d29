"""benchmarks/report.py renders the harness's JSON rows as the docs' tables."""

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPORT = Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"


@pytest.fixture(scope="module")
def report():
    # benchmarks/ is not a package: load the script by its path, with its
    # folder importable as when it runs (it imports run.py).
    sys.path.insert(0, str(REPORT.parent))
    try:
        spec = importlib.util.spec_from_file_location("benchmark_report", REPORT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPORT.parent))
    return module


def _rows(estimator, seeds, accuracies, params="{}", label_fraction=None):
    # The fields benchmarks/run.py --json writes for every run.
    return [
        dict(
            estimator=estimator,
            seed=seed,
            dataset="mnist-test",
            params=params,
            label_fraction=label_fraction,
            acc=acc,
            nmi=acc - 0.1,
            ari=acc - 0.2,
            fit_s=10.0 * (seed + 1),
        )
        for seed, acc in zip(seeds, accuracies)
    ]


def _entry(text, label):
    """The five cells after ``label`` in a list-table (the row's figures)."""
    lines = text.splitlines()
    start = lines.index(f"   * - {label}")
    return [line.removeprefix("     - ") for line in lines[start + 1 : start + 6]]


def test_mnist_table_from_json(report, tmp_path):
    dec = _rows("DEC", [0, 1, 2], [0.90, 0.92, 0.94])
    rows = (
        _rows("KMeans(raw)", [0, 1, 2], [0.54, 0.55, 0.53])
        + dec
        + _rows("ACAIKMeans", [0, 1, 2, 3], [0.8, 0.9, 0.8, 0.9])
        + _rows("SNNLKMeans", [0, 1, 2], [0.85, 0.9, 0.95], label_fraction=0.01)
    )
    (tmp_path / "mnist-test.json").write_text(json.dumps(rows))
    text = report.render(report.MNIST_DATASETS, tmp_path)

    assert "\nMNIST-test\n----------\n" in text
    assert "MNIST-train" not in text  # no JSON, no section
    assert "over seeds 0, 1, 2," in text
    expected = [
        f"{np.mean(values):.3f} ± {np.std(values):.3f}"
        for values in ([row[key] for row in dec] for key in ("acc", "nmi", "ari"))
    ]
    assert _entry(text, ":class:`DEC`") == [
        *expected,
        "20.0",  # mean fit time of seeds 0, 1, 2: 10, 20, 30 s
        report.PAPER_MNIST_ACCURACY["DEC"],
    ]
    assert _entry(text, "k-means (raw pixels)")[4] == "--"
    # Rows that differ from the others say how.
    assert "   * - :class:`ACAIKMeans` (seeds 0, 1, 2, 3)" in text
    assert "   * - :class:`SNNLKMeans` (1 % of the labels)" in text
    # One command per set of options and seeds, naming its estimators.
    assert (
        "    OMP_NUM_THREADS=1 python benchmarks/run.py DEC --dataset mnist-test "
        "--seeds 0 1 2\n" in text
    )
    assert (
        "benchmarks/run.py SNNLKMeans --dataset mnist-test --seeds 0 1 2 "
        "--label-fraction 0.01 --no-kmeans\n" in text
    )
    assert report.PAPER_NOTE in text


def test_one_run_gives_its_command(report, tmp_path):
    rows = _rows("KMeans(raw)", [0, 1], [0.5, 0.6]) + _rows("DCN", [0, 1], [0.8, 0.9])
    for row in rows:
        row["threads"] = 2
    (tmp_path / "mnist-all.json").write_text(json.dumps(rows))
    text = report.render(report.MNIST_DATASETS, tmp_path)
    # Not every estimator ran, so the command names the one that did, with
    # the thread count it ran with.
    assert (
        "    OMP_NUM_THREADS=2 python benchmarks/run.py DCN --dataset mnist-all "
        "--seeds 0 1 --json benchmarks/results/mnist-all.json\n" in text
    )


def test_a_run_of_every_estimator_names_none(report, tmp_path):
    rows = _rows("KMeans(raw)", [0], [0.5])
    for name in report.ESTIMATORS:
        rows += _rows(name, [0], [0.8])
    (tmp_path / "mnist-all.json").write_text(json.dumps(rows))
    text = report.render(report.MNIST_DATASETS, tmp_path)
    assert (
        "    OMP_NUM_THREADS=1 python benchmarks/run.py --dataset mnist-all "
        "--seeds 0 --json benchmarks/results/mnist-all.json\n" in text
    )


def test_no_json_renders_only_comments(report, tmp_path):
    text = report.render(report.MNIST_DATASETS, tmp_path)
    # Every line is part of an rST comment, so the page shows nothing.
    assert all(line.startswith(("..", "   ")) or not line for line in text.splitlines())


def test_committed_tables_are_up_to_date(report):
    # The committed includes are what the committed JSON files render to:
    # a result added without running benchmarks/report.py fails here.
    if not all(output.exists() for output in report.OUTPUTS):
        pytest.skip("the committed tables are not in this copy (an sdist)")
    for output, datasets in report.OUTPUTS.items():
        assert report.render(datasets) == output.read_text(), output.name


def test_pretraining_loaded_from_the_cache_is_shown_with_its_time(report, tmp_path):
    autoencoder = _rows("AutoencoderKMeans", [0, 1], [0.9, 0.9])
    dec = _rows("DEC", [0, 1], [0.92, 0.94])
    for row in autoencoder:
        row.update(pretraining_cached=False, pretrain_s=row["fit_s"] - 1.0)
    for row in dec:
        row.update(pretraining_cached=True, pretrain_s=100.0)
    imsat = _rows("IMSAT", [0], [0.97])
    (tmp_path / "mnist-test.json").write_text(json.dumps(autoencoder + dec + imsat))
    text = report.render(report.MNIST_DATASETS, tmp_path)

    # DEC's fits loaded the pretraining the autoencoder's fits ran.
    assert (
        _entry(text, ":class:`DEC`")[3] == "15.0 + 100.0 (pretraining from the cache)"
    )
    assert _entry(text, ":class:`AutoencoderKMeans`")[3] == "15.0"
    commands = [line for line in text.splitlines() if "benchmarks/run.py" in line]
    assert "--memory CACHE_DIR" in next(c for c in commands if "DEC" in c)
    assert "--memory" not in next(c for c in commands if "IMSAT" in c)


def test_runs_with_other_threads_or_cache_get_their_own_command(report, tmp_path):
    dec = _rows("DEC", [0], [0.97])
    dec[0].update(threads=2, pretraining_cached=True, pretrain_s=100.0)
    snnl = _rows("SNNLKMeans", [0], [0.97])
    imsat = _rows("IMSAT", [0], [0.97])
    imsat[0].update(threads=2)
    dac = _rows("DAC", [0], [0.97])
    rows = dec + snnl + imsat + dac
    (tmp_path / "mnist-all.json").write_text(json.dumps(rows))
    text = report.render(report.MNIST_DATASETS, tmp_path)
    commands = [line for line in text.splitlines() if "benchmarks/run.py" in line]
    # IMSAT and DAC have no pretraining to cache: they join the command of
    # their thread count, with or without --memory.
    assert commands == [
        "    OMP_NUM_THREADS=2 python benchmarks/run.py DEC IMSAT --dataset "
        "mnist-all --seeds 0 --no-kmeans --memory CACHE_DIR",
        "    OMP_NUM_THREADS=1 python benchmarks/run.py DAC SNNLKMeans --dataset "
        "mnist-all --seeds 0 --no-kmeans",
    ]


def test_a_run_of_every_estimator_with_memory_is_one_command(report, tmp_path):
    rows = _rows("KMeans(raw)", [0], [0.5])
    for name in report.ESTIMATORS:
        rows += _rows(name, [0], [0.9])
        if name in report.MEMORY_ESTIMATORS:
            rows[-1].update(pretraining_cached=False, pretrain_s=1.0)
    (tmp_path / "mnist-all.json").write_text(json.dumps(rows))
    text = report.render(report.MNIST_DATASETS, tmp_path)
    commands = [line for line in text.splitlines() if "benchmarks/run.py" in line]
    assert commands == [
        "    OMP_NUM_THREADS=1 python benchmarks/run.py --dataset mnist-all --seeds 0 "
        "--memory CACHE_DIR --json benchmarks/results/mnist-all.json"
    ]
    assert {"IMSAT", "DAC"}.isdisjoint(report.MEMORY_ESTIMATORS)


def test_harness_counts_only_pretrainings_in_the_cache(report, tmp_path):
    # A fit that loaded its pretraining may still cache a UMAP layout: the
    # row must say the pretraining came from the cache.
    harness = sys.modules["run"]
    cached = tmp_path / "joblib" / "skdeepcluster"
    for function in ("_memory/_fit_pretraining", "_graph/umap_layout"):
        entry = cached / function / "0123abcd"
        entry.mkdir(parents=True)
        (entry / "output.pkl").write_bytes(b"")
    assert harness.count_cached_pretrainings(str(tmp_path)) == 1
    assert harness.count_cached_pretrainings(None) == 0


def test_harness_loads_an_image_set_by_its_path(report, tmp_path):
    # report imported the harness (benchmarks/run.py) as the module run.
    harness = sys.modules["run"]
    pixels = np.arange(3 * 16, dtype=np.uint8).reshape(3, 16) * 5
    np.savez_compressed(tmp_path / "images.npz", X=pixels, y=np.array([0, 1, 1]))
    X, y, images_shape = harness.load(str(tmp_path / "images.npz"), data_path=None)
    np.testing.assert_array_equal(X, (pixels / 255.0).astype(np.float32))
    assert X.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 1, 1])
    assert images_shape == (1, 4, 4)


def test_harness_maps_images_onto_minus_one_to_one(report, tmp_path):
    harness = sys.modules["run"]
    pixels = np.array([[0, 51, 255, 102]], dtype=np.uint8)
    np.savez_compressed(tmp_path / "images.npz", X=pixels, y=np.array([0]))
    X, _, _ = harness.load(str(tmp_path / "images.npz"), data_path=None)
    mapped = harness.signed(X, "images")
    np.testing.assert_allclose(mapped, [[-1.0, -0.6, 1.0, -0.2]], atol=1e-6)
    assert mapped.dtype == np.float32
    # Standardised features are not intensities in [0, 1].
    with pytest.raises(SystemExit, match="wine does not lie within"):
        harness.signed(harness.load("wine", data_path=None)[0], "wine")


def _write_idx(path, array):
    # MNIST's idx format: two zero bytes, type 0x08 (unsigned bytes), the
    # number of dimensions, one big-endian size per dimension, the bytes.
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_harness_reads_fashion_mnist_from_its_idx_files(report, tmp_path):
    harness = sys.modules["run"]
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([9, 2, 1]))
    X, y, images_shape = harness.load("fashion-mnist-test", data_path=tmp_path)
    np.testing.assert_array_equal(X, (images.reshape(3, -1) / 255.0).astype(np.float32))
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [9, 2, 1])
    assert images_shape == (1, 28, 28)
    # A random part of it, as of any data set.
    assert harness.load("fashion-mnist-test-2", data_path=tmp_path)[0].shape == (2, 784)
    with pytest.raises(SystemExit, match="subsets are test and train"):
        harness.load("fashion-mnist-valid", data_path=tmp_path)
    # Checked as MNIST's files are: as many labels as images.
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([9, 2]))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        harness.load("fashion-mnist-test", data_path=tmp_path)


def test_harness_draws_a_random_part_of_a_data_set(report):
    harness = sys.modules["run"]
    X, y, _ = harness.load("wine", data_path=None)
    part, part_y, images_shape = harness.load("wine-50", data_path=None)
    assert part.shape == (50, 13) and images_shape is None
    # Rows of the whole set, with their own labels, each drawn once.
    rows = [np.flatnonzero((X == row).all(axis=1)) for row in part]
    assert all(len(match) == 1 for match in rows)
    indices = np.concatenate(rows)
    assert len(set(indices)) == 50
    np.testing.assert_array_equal(part_y, y[indices])
    # The same draw every time, whatever the run's seed.
    np.testing.assert_array_equal(harness.load("wine-50", data_path=None)[0], part)
    with pytest.raises(SystemExit, match="wine has 178 samples"):
        harness.load("wine-200", data_path=None)


def test_harness_draws_mnist_in_classes_of_unequal_sizes(report, tmp_path):
    harness = sys.modules["run"]
    unequal = sys.modules["unequal_classes"]
    # A stand-in for MNIST's training set, 2,000 images of each digit, each
    # image's pixels its own row number so that a drawn row can be traced.
    y = np.repeat(np.arange(10), 2000)
    X = (np.arange(len(y))[:, None] // np.array([1, 256]) % 256).astype(np.uint8)
    X = np.repeat(X, 392, axis=1)
    np.savez(tmp_path / "mnist_train.npz", X=X, y=y)
    usps_X, usps_y, images_shape = harness.load("mnist-train-usps", tmp_path)
    assert images_shape == (1, 28, 28) and usps_X.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(usps_y), unequal.USPS_TRAIN_SIZES)
    tail_X, tail_y, _ = harness.load("mnist-train-longtail", tmp_path)
    sizes = np.bincount(tail_y)
    np.testing.assert_array_equal(np.sort(sizes)[::-1], unequal.LONG_TAIL_SIZES)
    assert unequal.LONG_TAIL_SIZES[0] == 10 * unequal.LONG_TAIL_SIZES[-1]
    for images, digits in ((usps_X, usps_y), (tail_X, tail_y)):
        # Each image drawn once, with its own label.
        rows = np.round(images[:, 0] * 255) + 256 * np.round(images[:, -1] * 255)
        assert len(np.unique(rows)) == len(rows)
        np.testing.assert_array_equal(y[rows.astype(np.int64)], digits)
    # The same draws every time.
    np.testing.assert_array_equal(harness.load("mnist-train-usps", tmp_path)[0], usps_X)
    balanced_y = harness.load("mnist-train-balanced", tmp_path)[1]
    np.testing.assert_array_equal(np.bincount(balanced_y), [729] * 10)
    # The USPS-sized draw again, each image in USPS's format.
    small_X, small_y, images_shape = harness.load("mnist-train-usps-16px", tmp_path)
    assert images_shape == (1, 16, 16) and small_X.shape == (len(usps_y), 256)
    np.testing.assert_array_equal(small_y, usps_y)


def test_usps_format_crops_the_digit_and_keeps_its_aspect(report):
    unequal = sys.modules["unequal_classes"]
    # A digit-like bar, 20 pixels high and 10 wide, off the centre of the frame,
    # beside a faint smudge below the ink threshold.
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2:22, 5:15] = 255
    image[25:, 25:] = unequal.INK
    small = unequal.in_usps_format(image.reshape(1, -1)).reshape(16, 16)
    # The bar fills the frame's height, centred, at its own width (8 of 16
    # pixels), antialiasing blurring only the columns at its edges.
    np.testing.assert_array_equal(small[:, 5:11], 255)
    np.testing.assert_array_equal(small[:, :3], 0)
    np.testing.assert_array_equal(small[:, 13:], 0)
    np.testing.assert_array_equal(small[:, 4:12], small[:, 4:12][:, ::-1])


@pytest.mark.parametrize(
    "name, shape",
    [("iris", (150, 4)), ("wine", (178, 13)), ("breast-cancer", (569, 30))],
)
def test_harness_standardises_the_tabular_sets(report, name, shape):
    harness = sys.modules["run"]
    X, y, images_shape = harness.load(name, data_path=None)
    assert X.shape == shape and X.dtype == np.float32 and len(y) == shape[0]
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=1e-4)
    assert images_shape is None


def test_tabular_reference_rows_name_the_features(report, tmp_path):
    rows = _rows("KMeans(raw)", [0], [0.8]) + _rows("DEC", [0], [0.9])
    (tmp_path / "wine.json").write_text(json.dumps(rows))
    text = report.render(report.TABULAR_DATASETS, results=tmp_path)
    assert "   * - k-means (standardised features)" in text
    assert "raw pixels" not in text
