import gzip

import numpy as np
import pytest

from conftest import SHARED_DATA
from skdeepcluster.datasets import load_digits, load_mnist


def test_load_digits_scaled():
    bunch = load_digits()
    assert bunch.data.shape == (1797, 64)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0 and bunch.data.max() == 1
    assert bunch.images_shape == (1, 8, 8)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_load_mnist_reads_idx_files(tmp_path):
    images = np.arange(3 * 784).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 2, 1]))
    X, y = load_mnist("test", path=tmp_path, data_home=tmp_path / "home", return_X_y=True)
    assert X.shape == (3, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X * 255, images.reshape(3, -1))
    np.testing.assert_array_equal(y, [7, 2, 1])


def test_load_mnist_reads_npz(tmp_path):
    np.savez(tmp_path / "mnist_test.npz", X=np.full((2, 784), 255, np.uint8), y=np.array([1, 2]))
    bunch = load_mnist(path=tmp_path, data_home=tmp_path / "home", scale=False)
    assert bunch.data.dtype == np.uint8 and bunch.data.max() == 255
    assert bunch.images_shape == (1, 28, 28)


def test_load_mnist_does_not_download_unless_asked(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist("train", path=tmp_path, data_home=tmp_path / "home")


def test_load_mnist_rejects_unknown_subset():
    with pytest.raises(ValueError, match="subset"):
        load_mnist("validation")


@pytest.mark.skipif(not (SHARED_DATA / "mnist_test.npz").exists(), reason="../shared/data/mnist_test.npz is absent")
def test_load_shared_mnist_test():
    X, y = load_mnist("test", path=SHARED_DATA, return_X_y=True)
    assert X.shape == (10000, 784)
    np.testing.assert_array_equal(np.bincount(y)[:3], [980, 1135, 1032])
