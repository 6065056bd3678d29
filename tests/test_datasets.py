import gzip
import hashlib
import io
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import SHARED_DATA
from skdeepcluster import datasets
from skdeepcluster.datasets import load_digits, load_mnist


def test_load_digits_scaled():
    bunch = load_digits()
    assert bunch.data.shape == (1797, 64)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0 and bunch.data.max() == 1
    assert bunch.images_shape == (1, 8, 8)


def _idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def _write_idx(path, array):
    with gzip.open(path, "wb") as f:
        f.write(_idx_bytes(array))


def test_load_mnist_reads_idx_files(tmp_path):
    images = np.arange(3 * 784).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 2, 1]))
    X, y = load_mnist(
        "test", path=tmp_path, data_home=tmp_path / "home", return_X_y=True
    )
    assert X.shape == (3, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X * 255, images.reshape(3, -1))
    np.testing.assert_array_equal(y, [7, 2, 1])


def test_load_mnist_reads_npz(tmp_path):
    np.savez(
        tmp_path / "mnist_test.npz",
        X=np.full((2, 784), 255, np.uint8),
        y=np.array([1, 2]),
    )
    bunch = load_mnist(path=tmp_path, data_home=tmp_path / "home", scale=False)
    assert bunch.data.dtype == np.uint8 and bunch.data.max() == 255
    assert bunch.images_shape == (1, 28, 28)


def test_load_mnist_does_not_download_unless_asked(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist("train", path=tmp_path, data_home=tmp_path / "home")


def test_load_mnist_rejects_unknown_subset():
    with pytest.raises(ValueError, match="subset"):
        load_mnist("validation")


@pytest.mark.skipif(
    not (SHARED_DATA / "mnist_test.npz").exists(),
    reason="../shared/data/mnist_test.npz is absent",
)
def test_load_shared_mnist_test():
    X, y = load_mnist("test", path=SHARED_DATA, return_X_y=True)
    assert X.shape == (10000, 784)
    np.testing.assert_array_equal(np.bincount(y)[:3], [980, 1135, 1032])


# Tiny stand-ins for the official test files, and their MD5s patched in as
# the expected ones.
_IMAGES = np.arange(4 * 784).reshape(4, 28, 28) % 256
_LABELS = np.array([3, 1, 4, 1])
_FAKE = {
    "t10k-images-idx3-ubyte": _idx_bytes(_IMAGES),
    "t10k-labels-idx1-ubyte": _idx_bytes(_LABELS),
}


@pytest.fixture
def fake_server(monkeypatch):
    """Serve the tiny files for urlopen; record the URLs asked for."""
    monkeypatch.setattr(
        datasets,
        "_IDX_MD5",
        {stem: hashlib.md5(data).hexdigest() for stem, data in _FAKE.items()},
    )
    served = {stem: gzip.compress(data) for stem, data in _FAKE.items()}
    requested = []

    def urlopen(url, timeout=None):
        requested.append(url)
        stem = url.rsplit("/", 1)[1].removesuffix(".gz")
        return io.BytesIO(served[stem])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return served, requested


def test_load_mnist_downloads_and_verifies(tmp_path, fake_server):
    X, y = load_mnist(data_home=tmp_path, download=True, scale=False, return_X_y=True)
    np.testing.assert_array_equal(X, _IMAGES.reshape(4, -1))
    np.testing.assert_array_equal(y, _LABELS)
    # Only the verified files remain: no temporary file is left behind.
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    # A second call reads the cache without downloading.
    _, requested = fake_server
    load_mnist(data_home=tmp_path, download=True)
    assert len(requested) == 2


def test_load_mnist_rejects_bad_checksum_download(tmp_path, fake_server):
    served, _ = fake_server
    served["t10k-labels-idx1-ubyte"] = gzip.compress(_idx_bytes(np.array([0, 0, 0, 0])))
    with pytest.raises(OSError, match="t10k-labels-idx1-ubyte.*MD5"):
        load_mnist(data_home=tmp_path, download=True)
    # The file that failed its check was not kept, under any name.
    assert not any("labels" in p.name for p in (tmp_path / "mnist").iterdir())


def test_load_mnist_redownloads_truncated_cache(tmp_path, fake_server):
    cache = tmp_path / "mnist"
    cache.mkdir()
    # A truncated file, as an interrupted download leaves.
    truncated = gzip.compress(_FAKE["t10k-images-idx3-ubyte"])[:100]
    (cache / "t10k-images-idx3-ubyte.gz").write_bytes(truncated)
    with pytest.raises(OSError, match="t10k-images-idx3-ubyte.gz.*download=True"):
        load_mnist(data_home=tmp_path)
    _, requested = fake_server
    X, _ = load_mnist(data_home=tmp_path, download=True, scale=False, return_X_y=True)
    np.testing.assert_array_equal(X, _IMAGES.reshape(4, -1))
    assert any("t10k-images" in url for url in requested)
    load_mnist(data_home=tmp_path)  # the replaced file now passes


def test_load_mnist_offline_error_says_where_to_put_files(tmp_path, monkeypatch):
    def urlopen(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(
        ConnectionError,
        match="failed.*place t10k-images-idx3-ubyte.gz.*an mnist_test.npz",
    ):
        load_mnist(data_home=tmp_path, download=True)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_load_mnist_rejects_count_mismatch(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", _IMAGES)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="4 images but 10 labels"):
        load_mnist(path=tmp_path, data_home=tmp_path / "home")


def test_load_mnist_rejects_invalid_idx_header(tmp_path):
    # Labels where the images should be: a 1-d idx file.
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", _LABELS)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", _LABELS)
    with pytest.raises(OSError, match="t10k-images-idx3-ubyte.gz.*header"):
        load_mnist(path=tmp_path, data_home=tmp_path / "home")


def test_load_mnist_rejects_truncated_user_file(tmp_path):
    # An uncompressed idx file whose data stops short of its header's shape.
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        _FAKE["t10k-images-idx3-ubyte"][:-5]
    )
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", _LABELS)
    with pytest.raises(OSError, match="truncated"):
        load_mnist(path=tmp_path, data_home=tmp_path / "home")
