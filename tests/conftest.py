"""Shared fixtures and the tiny settings every estimator is tested with."""

import inspect
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import skdeepcluster
from skdeepcluster.base import BaseDeepClusterer
from skdeepcluster.metrics import clustering_accuracy

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Tiny networks and few epochs: enough for scikit-learn's checks (e.g. ARI >
# 0.4 on three blobs) in a fraction of a second each. Every estimator in the
# package must appear here; test_common.py fails if one is missing.
FAST_PARAMS = {
    "ACAIKMeans": dict(
        hidden_dims=(16,), embedding_dim=2, pretrain_epochs=5, batch_size=16
    ),
    "AutoencoderKMeans": dict(
        hidden_dims=(16,), embedding_dim=2, pretrain_epochs=5, batch_size=16
    ),
    "DAC": dict(hidden_dims=(32, 32), eta=0.05, batch_size=16),
    "DCN": dict(
        hidden_dims=(16,),
        embedding_dim=2,
        pretrain_epochs=5,
        clustering_epochs=3,
        # One epoch on the held start partition, then the alternation.
        initial_partition_epochs=1,
        batch_size=16,
    ),
    "DEC": dict(
        hidden_dims=(16,),
        embedding_dim=2,
        pretrain_epochs=5,
        clustering_epochs=3,
        # One epoch on the start partition, then self-training from Q.
        initial_partition_epochs=1,
        batch_size=16,
    ),
    "IMSAT": dict(hidden_dims=(16,), max_epochs=5, batch_size=16),
    "SNNLKMeans": dict(
        hidden_dims=(16,),
        embedding_dim=2,
        pretrain_epochs=5,
        warmup_epochs=2,
        batch_size=16,
    ),
}


def all_estimators():
    """Every public estimator class exported by the package."""
    return sorted(
        (
            obj
            for obj in vars(skdeepcluster).values()
            if inspect.isclass(obj)
            and issubclass(obj, BaseDeepClusterer)
            and not inspect.isabstract(obj)
        ),
        key=lambda cls: cls.__name__,
    )


def fast_estimator(cls, **params):
    """An instance of ``cls`` with the tiny test settings (plus ``params``)."""
    return cls(**{**FAST_PARAMS[cls.__name__], **params})


def assert_gains_over_kmeans_start(make_model, X, y, n_seeds=8):
    """Check that training beats its k-means start over the first ``n_seeds`` seeds.

    ``make_model(seed)`` returns an unfitted DEC or DCN whose start is
    ``kmeans_``'s partition. The accuracy of ``labels_`` must be higher on
    average and on most seeds: a start whose clusters cut across the classes
    can lose, so the claim is not made for each seed.
    """
    from skdeepcluster.metrics import clustering_accuracy

    starts, ends = [], []
    for seed in range(n_seeds):
        model = make_model(seed).fit(X)
        starts.append(clustering_accuracy(y, model.kmeans_.labels_))
        ends.append(clustering_accuracy(y, model.labels_))
    assert np.mean(ends) > np.mean(starts)
    assert sum(end > start for start, end in zip(starts, ends)) > n_seeds / 2


@pytest.fixture
def layouts(monkeypatch):
    """A list that gets one entry for every UMAP layout actually computed."""
    import umap

    calls = []
    fit_transform = umap.UMAP.fit_transform

    def counting_fit_transform(reducer, X, *args, **kwargs):
        calls.append(len(X))
        return fit_transform(reducer, X, *args, **kwargs)

    monkeypatch.setattr(umap.UMAP, "fit_transform", counting_fit_transform)
    return calls


@pytest.fixture
def known_layout(monkeypatch):
    """Replace the UMAP layout's partition that competes with a net's; record it.

    ``install(cls, (X, y), win=None, layout=join_and_cut)`` patches
    ``cls._layout_partition`` to return a known partition of blobs ``X``
    with labels ``y``: ``layout(X, y)``, by default one that joins blobs 0
    and 1 and cuts blob 2 in two, so that the fitted labels show whether the
    net learnt it. Split-and-merge moves are turned off, so the
    candidates compete as they are. With ``win=True`` (``False``) that
    partition scores above (below) every possible modularity, in
    ``[-1/2, 1]``; every other partition scores its real modularity. Returns
    ``X``, the layout's labels of all of ``X``, and the list of
    ``(graph, labels)`` of every call.
    """
    from skdeepcluster import base

    def join_and_cut(X, y):
        labels = np.where(y == 1, 0, y)
        labels[(y == 2) & (X[:, 0] > np.median(X[y == 2, 0]))] = 1
        return labels

    def install(cls, blobs, win=None, layout=join_and_cut):
        X, y = blobs
        layout = layout(X, y)
        calls = []

        def layout_partition(self, graph, random_state):
            calls.append((graph, layout[graph.reference]))
            return calls[-1][1]

        monkeypatch.setattr(cls, "_layout_partition", layout_partition)
        monkeypatch.setattr(
            base, "split_merge", lambda adjacency, labels, **_: (labels, 0)
        )
        if win is not None:
            real = base.modularity

            def modularity(adjacency, labels):
                if calls and labels is calls[-1][1]:
                    return 2.0 if win else -1.0
                return real(adjacency, labels)

            monkeypatch.setattr(base, "modularity", modularity)
        return X, layout, calls

    return install


@pytest.fixture
def refinement_targets(monkeypatch):
    """Record the partitions of every refinement toward a kept partition.

    Returns a list to which each refinement appends ``[net_labels,
    targets]``: the net's partition of the reference samples, and the
    partition the net then trains toward (``None`` when it does not train).
    """
    records = []
    kept_partition = BaseDeepClusterer._kept_partition
    train_toward = BaseDeepClusterer._train_toward

    def recording_kept_partition(self, graph, net_labels, *args):
        records.append([net_labels, None])
        return kept_partition(self, graph, net_labels, *args)

    def recording_train_toward(net, dataset, graph, labels, *args, **state):
        records[-1][1] = labels
        return train_toward(net, dataset, graph, labels, *args, **state)

    monkeypatch.setattr(BaseDeepClusterer, "_kept_partition", recording_kept_partition)
    monkeypatch.setattr(
        BaseDeepClusterer, "_train_toward", staticmethod(recording_train_toward)
    )
    return records


@pytest.fixture
def force_most_modular(monkeypatch):
    """Make one partition the most modular; record the graph partitions extended.

    ``force(cls, winner)`` patches the modularity so that ``winner``
    (``"kmeans"``, ``"spectral"`` or ``"umap"``, scored in that order) has the
    highest, and returns the list into which every partition
    ``cls._extend_partition`` extends to all samples is appended.
    """
    from skdeepcluster import _autoencoder_base

    def force(cls, winner):
        order = ["kmeans", "spectral", "umap"]
        scores = iter([1.0 if name == winner else 0.0 for name in order])
        monkeypatch.setattr(_autoencoder_base, "modularity", lambda *_: next(scores))
        extended = []
        extend_partition = cls._extend_partition

        def record(self, *args):
            extended.append(extend_partition(self, *args))
            return extended[-1]

        monkeypatch.setattr(cls, "_extend_partition", record)
        return extended

    return force


@pytest.fixture
def at_train_begin(monkeypatch):
    """Read every net of a fit as it starts training.

    ``at_train_begin(read)`` returns the list into which ``read(net)`` is
    appended for each net, once the net has set up its training state (the
    sample weights, the generators), which is dropped when the fit ends.
    """
    from skdeepcluster._nets import ClusteringNet

    def install(read):
        values = []
        on_train_begin = ClusteringNet.on_train_begin

        def recording(net, *args, **kwargs):
            on_train_begin(net, *args, **kwargs)
            values.append(read(net))

        monkeypatch.setattr(ClusteringNet, "on_train_begin", recording)
        return values

    return install


@pytest.fixture(scope="session")
def blobs():
    X, y = make_blobs(
        n_samples=90, centers=3, n_features=4, cluster_std=0.6, random_state=0
    )
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def overlapping_blobs():
    # Close enough that k-means on a tiny pretrained embedding is imperfect,
    # so DEC's and DCN's refinement has something to do.
    X, y = make_blobs(
        n_samples=240, centers=4, n_features=8, cluster_std=2.0, random_state=3
    )
    return X.astype(np.float32), y


def assert_targets_numbered_after_the_net(records):
    """The targets take the net's output numbers that keep most samples' own."""
    ((net_labels, targets),) = records
    assert targets is not None
    # The targets differ from the net's partition (the layout's), yet each
    # of their clusters takes the output it shares most samples with.
    assert adjusted_rand_score(net_labels, targets) < 1
    kept = (targets == net_labels).mean()
    assert kept == clustering_accuracy(net_labels, targets)
