"""Slow quality tests on real MNIST-test (run with ``pytest -m slow``).

They read ``../shared/data/mnist_test.npz`` and skip where it is absent. The
quality bars of the issues are measured by ``benchmarks/run.py``; these tests
only guard the direction (the deep method beats k-means on raw pixels).
"""

import pytest
from sklearn.cluster import KMeans

from conftest import SHARED_DATA
from skdeepcluster import AutoencoderKMeans
from skdeepcluster.datasets import load_mnist
from skdeepcluster.metrics import clustering_accuracy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SHARED_DATA / "mnist_test.npz").exists(),
        reason=f"real MNIST not found at {SHARED_DATA}/mnist_test.npz",
    ),
]


@pytest.fixture(scope="module")
def mnist_test():
    return load_mnist("test", path=SHARED_DATA, return_X_y=True)


@pytest.fixture(scope="module")
def raw_kmeans_accuracy(mnist_test):
    X, y = mnist_test
    return clustering_accuracy(y, KMeans(10, n_init=10, random_state=0).fit_predict(X))


def test_autoencoder_kmeans_beats_raw_kmeans(mnist_test, raw_kmeans_accuracy):
    X, y = mnist_test
    labels = AutoencoderKMeans(n_clusters=10, random_state=0).fit_predict(X)
    assert clustering_accuracy(y, labels) > raw_kmeans_accuracy + 0.05
