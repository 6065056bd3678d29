"""The ``memory`` parameter (cached pretraining) and reusing a fitted autoencoder."""

import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import EpochScoring, LRScheduler
from test_large_data import as_memmap

import skdeepcluster._autoencoder_base
from conftest import fast_estimator
from skdeepcluster import DCN, DEC, ACAIKMeans, AutoencoderKMeans, SNNLKMeans, _memory
from skdeepcluster._autoencoder_base import BaseAutoencoderClusterer
from skdeepcluster._memory import count_cached_pretrainings
from skdeepcluster._nets import ClusteringNet

AUTOENCODER_ESTIMATORS = [AutoencoderKMeans, ACAIKMeans, SNNLKMeans, DEC, DCN]


@pytest.fixture
def pretrainings(monkeypatch):
    """A list that gets one entry for every pretraining net actually trained."""
    calls = []
    partial_fit = ClusteringNet.partial_fit

    def counting_partial_fit(net, *args, **kwargs):
        if net.stage == "pretraining":
            calls.append(type(net).__name__)
        return partial_fit(net, *args, **kwargs)

    monkeypatch.setattr(ClusteringNet, "partial_fit", counting_partial_fit)
    return calls


def _fit(cls, X, **params):
    return fast_estimator(cls, **{"n_clusters": 3, "random_state": 0, **params}).fit(X)


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS)
def test_hit_skips_pretraining_and_gives_the_same_fit(
    cls, blobs, tmp_path, pretrainings
):
    X, _ = blobs
    reference = _fit(cls, X)
    miss = _fit(cls, X, memory=str(tmp_path))
    hit = _fit(cls, X, memory=str(tmp_path))
    assert len(pretrainings) == 2  # the reference and the miss, not the hit
    for model in (miss, hit):
        assert_array_equal(model.labels_, reference.labels_)
        assert_allclose(model.cluster_centers_, reference.cluster_centers_, rtol=1e-6)
        assert_allclose(model.transform(X), reference.transform(X), rtol=1e-6)
    history = getattr(hit, "pretrain_history_", hit.net_.history)
    expected = getattr(reference, "pretrain_history_", reference.net_.history)
    assert history[:, "train_loss"] == expected[:, "train_loss"]


def test_hit_leaves_the_generators_as_training_does(blobs, tmp_path, monkeypatch):
    # ACAI's training draws from the net's generators, so a hit that did not
    # restore their states would leave them where training started.
    X, _ = blobs
    states = []
    pretrain = BaseAutoencoderClusterer._pretrain

    def recording_pretrain(self, *args, **kwargs):
        net = pretrain(self, *args, **kwargs)
        states.append(
            [
                net.iterator_train__generator.get_state(),
                net.device_generator.get_state(),
            ]
        )
        return net

    monkeypatch.setattr(BaseAutoencoderClusterer, "_pretrain", recording_pretrain)
    _fit(ACAIKMeans, X)
    _fit(ACAIKMeans, X, memory=str(tmp_path))
    _fit(ACAIKMeans, X, memory=str(tmp_path))
    for other in states[1:]:
        for state, expected in zip(other, states[0], strict=True):
            assert torch.equal(state, expected)


def test_hit_with_user_modules_that_draw_gives_the_same_fit(
    blobs, tmp_path, pretrainings
):
    # Dropout in the user's encoder draws from torch's global generator,
    # which the fit seeds: its state is part of the key and restored on a hit.
    X, _ = blobs
    torch.manual_seed(0)
    modules = dict(
        encoder=torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2)
        ),
        decoder=torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Linear(8, 4)),
    )
    reference = _fit(DCN, X, **modules)
    miss = _fit(DCN, X, memory=str(tmp_path), **modules)
    hit = _fit(DCN, X, memory=str(tmp_path), **modules)
    assert len(pretrainings) == 2
    for model in (miss, hit):
        assert_array_equal(model.labels_, reference.labels_)
        assert_allclose(model.transform(X), reference.transform(X), rtol=1e-6)


def test_joblib_memory_instance(blobs, tmp_path, pretrainings):
    X, _ = blobs
    memory = joblib.Memory(tmp_path, verbose=0)
    first = _fit(DEC, X, memory=memory)
    second = _fit(DEC, X, memory=memory)
    assert len(pretrainings) == 1
    assert_array_equal(first.labels_, second.labels_)


def test_miss_when_data_changes(blobs, tmp_path, pretrainings):
    X, _ = blobs
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    X_changed = X.copy()
    X_changed[0, 0] += 0.5
    _fit(AutoencoderKMeans, X_changed, memory=str(tmp_path))
    assert len(pretrainings) == 2


def test_key_of_a_strided_memmap_follows_its_rows_without_copying_them(
    tmp_path, pretrainings
):
    # joblib hashes an array that is not contiguous (a column slice of a
    # memory map) by copying it whole; the key holds a digest of its rows,
    # read a few at a time, instead.
    import tracemalloc

    rng = np.random.default_rng(0)
    X_map = as_memmap(rng.normal(size=(3000, 512)), tmp_path / "X.npy")
    view = X_map[:, :384]
    assert not (view.flags.c_contiguous or view.flags.f_contiguous)
    cache = str(tmp_path / "cache")
    params = dict(pretrain_epochs=1, batch_size=256, clustering="kmeans")
    # A first fit imports what fitting imports lazily, which tracemalloc
    # would count.
    _fit(AutoencoderKMeans, np.asarray(view[:100]), **params)
    tracemalloc.start()
    try:
        first = _fit(AutoencoderKMeans, view, memory=cache, **params)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < view.nbytes / 2
    hit = _fit(AutoencoderKMeans, view, memory=cache, **params)
    assert_array_equal(hit.labels_, first.labels_)
    assert len(pretrainings) == 2  # the warm-up fit and the miss
    _fit(AutoencoderKMeans, X_map[:, 1:385], memory=cache, **params)
    assert len(pretrainings) == 3


@pytest.mark.parametrize("layout", ["in memory", "memory-mapped"])
def test_miss_when_the_input_scaling_changes(blobs, tmp_path, pretrainings, layout):
    # Rows read from a file are divided by input_scale_ when read: the key
    # must hold the divisor as well as the rows.
    X, _ = blobs
    X = (X - X.min()) * 10  # non-negative, above 1: "auto" divides it
    if layout == "memory-mapped":
        X = as_memmap(X, tmp_path / "X.npy")
    memory = str(tmp_path / "cache")
    # Held, as "auto" follows the scaling: the networks are then the same.
    params = dict(normalize_embedding=False)
    _fit(AutoencoderKMeans, X, memory=memory, **params)
    cached = _fit(AutoencoderKMeans, X, memory=memory, input_scaling=None, **params)
    assert len(pretrainings) == 2
    fresh = _fit(AutoencoderKMeans, X, input_scaling=None, **params)
    assert_array_equal(cached.transform(X), fresh.transform(X))


@pytest.mark.parametrize("package", ["skdeepcluster", "skorch", "torch"])
def test_miss_when_a_training_package_changes_version(
    blobs, tmp_path, pretrainings, monkeypatch, package
):
    # The training loop's code is not part of what joblib hashes: an entry
    # written by another version of the code that trains must not be loaded.
    X, _ = blobs
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    module = __import__(package)
    monkeypatch.setattr(module, "__version__", module.__version__ + ".other")
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    assert len(pretrainings) == 2


def test_miss_when_the_package_source_changes(
    blobs, tmp_path, pretrainings, monkeypatch
):
    # A development install keeps its version number through edits: the
    # key holds a digest of the package's source as well.
    X, _ = blobs
    _fit(AutoencoderKMeans, X, memory=str(tmp_path / "cache"))
    monkeypatch.setattr(_memory, "_source_digest", lambda package: "edited")
    _fit(AutoencoderKMeans, X, memory=str(tmp_path / "cache"))
    assert len(pretrainings) == 2


def test_source_digest_follows_every_file_of_the_package(tmp_path):
    package = Path(_memory.__file__).parent
    copies = []
    for name in ("same", "edited", "added"):
        copy = tmp_path / name
        shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(copy)
    with open(copies[1] / "nn" / "__init__.py", "a") as file:
        file.write("# edited\n")
    (copies[2] / "_extra.py").write_text("")
    digests = [_memory._source_digest(copy) for copy in copies]
    assert digests[0] == _memory._source_digest(package)
    assert len(set(digests)) == 3


def test_progress_settings_stay_out_of_the_key(blobs, tmp_path, pretrainings):
    # Where the table goes and how it looks change nothing that is trained,
    # unless print_log is replaced by a callback of one's own.
    X, _ = blobs
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    _fit(
        AutoencoderKMeans,
        X,
        memory=str(tmp_path),
        callbacks__print_log__sink=print,
        callbacks__print_log__floatfmt=".2f",
    )
    assert len(pretrainings) == 1
    for name in ("first", "second"):
        _fit(
            AutoencoderKMeans,
            X,
            memory=str(tmp_path),
            callbacks__print_log=EpochScoring,
            callbacks__print_log__scoring=_zero,
            callbacks__print_log__on_train=True,
            callbacks__print_log__name=name,
        )
    assert len(pretrainings) == 3


def _zero(net, X, y):
    return 0.0


def test_miss_when_the_cpu_threads_change(blobs, tmp_path, pretrainings):
    # The thread count orders floating-point sums in training: a hit must
    # give what training with the current count would.
    X, _ = blobs
    threads = torch.get_num_threads()
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    try:
        torch.set_num_threads(threads + 1)
        _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    finally:
        torch.set_num_threads(threads)
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    assert len(pretrainings) == 2


@pytest.mark.parametrize(
    "params",
    [
        dict(embedding_dim=3),
        dict(hidden_dims=(8,)),
        dict(pretrain_epochs=4),
        dict(lr=1e-2),
        dict(batch_size=8),
        # The blobs reach beyond [-1, 1], where "auto" means False.
        dict(normalize_embedding=True),
        # The blobs' 4 features read as 2x2 images.
        dict(augment=True),
        dict(optimizer=torch.optim.SGD),
        dict(optimizer__weight_decay=1e-3),
        dict(random_state=1),
        # A callback can change the training (here its learning rate).
        dict(callbacks=[LRScheduler(policy="StepLR", step_size=1)]),
    ],
    ids=lambda params: next(iter(params)),
)
def test_miss_when_a_pretraining_parameter_changes(
    blobs, tmp_path, pretrainings, params
):
    X, _ = blobs
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    _fit(AutoencoderKMeans, X, memory=str(tmp_path), **params)
    assert len(pretrainings) == 2


def test_hit_when_a_parameter_is_given_as_an_equal_number_of_another_type(
    blobs, tmp_path, pretrainings
):
    X, _ = blobs
    first = _fit(AutoencoderKMeans, X, memory=str(tmp_path), smoothing_weight=0)
    second = _fit(AutoencoderKMeans, X, memory=str(tmp_path), smoothing_weight=0.0)
    assert len(pretrainings) == 1
    assert_array_equal(first.labels_, second.labels_)


def test_miss_when_the_given_encoder_changes(blobs, tmp_path, pretrainings):
    X, _ = blobs

    def modules(seed):
        torch.manual_seed(seed)
        encoder = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
        )
        decoder = torch.nn.Sequential(
            torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
        )
        return dict(encoder=encoder, decoder=decoder)

    _fit(AutoencoderKMeans, X, memory=str(tmp_path), **modules(0))
    _fit(AutoencoderKMeans, X, memory=str(tmp_path), **modules(0))
    assert len(pretrainings) == 1
    _fit(AutoencoderKMeans, X, memory=str(tmp_path), **modules(1))
    assert len(pretrainings) == 2


def test_estimators_with_the_same_pretraining_share_entries(
    blobs, tmp_path, pretrainings
):
    X, y = blobs
    # In [0, 1], where normalize_embedding="auto" is DEC's True.
    X = (X - X.min()) / (X.max() - X.min())
    reference = _fit(DEC, X)
    assert len(pretrainings) == 1
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    assert len(pretrainings) == 2
    # The clustering parameters do not change the pretraining.
    dec = _fit(DEC, X, memory=str(tmp_path))
    _fit(DEC, X, memory=str(tmp_path), clustering_epochs=1, alpha=2.0)
    _fit(DCN, X, memory=str(tmp_path))
    assert len(pretrainings) == 2
    assert_array_equal(dec.labels_, reference.labels_)
    # Without labels or pseudo-labels SNNLKMeans trains the plain
    # autoencoder: AutoencoderKMeans' entry, and its labels.
    snnl = _fit(SNNLKMeans, X, memory=str(tmp_path))
    assert len(pretrainings) == 2
    assert_array_equal(
        snnl.labels_, _fit(AutoencoderKMeans, X, memory=str(tmp_path)).labels_
    )
    # ACAI, and SNNL with labels, train another net class: entries of their
    # own.
    _fit(ACAIKMeans, X, memory=str(tmp_path))
    fast_estimator(
        SNNLKMeans, n_clusters=3, random_state=0, use_labels=True, memory=str(tmp_path)
    ).fit(X, y)
    assert pretrainings[2:] == ["ACAINet", "SNNLNet"]


def test_count_of_cached_pretrainings_leaves_out_umap_layouts(blobs, tmp_path):
    # DEC loads AutoencoderKMeans' pretraining but caches a layout of its
    # own: the count, which tells a cache hit (demo, benchmarks), stays 1.
    X, _ = blobs
    X = (X - X.min()) / (X.max() - X.min())
    assert count_cached_pretrainings(str(tmp_path)) == 0
    _fit(AutoencoderKMeans, X, memory=str(tmp_path))
    assert count_cached_pretrainings(str(tmp_path)) == 1
    _fit(DEC, X, memory=str(tmp_path))
    assert len(list(tmp_path.rglob("output.pkl"))) > 1  # its layout too
    assert count_cached_pretrainings(str(tmp_path)) == 1
    assert count_cached_pretrainings(None) == 0


def test_search_over_n_clusters_lays_out_once(blobs, tmp_path, layouts):
    # The pretraining does not depend on n_clusters, nor, from 10 clusters
    # up, the UMAP layout of its embedding (a candidate of
    # clustering="auto"): with memory, such candidates compute both once.
    X, _ = blobs
    fits = {
        n_clusters: _fit(
            AutoencoderKMeans, X, n_clusters=n_clusters, memory=str(tmp_path)
        )
        for n_clusters in (10, 11, 12)
    }
    assert layouts == [len(X)]
    uncached = _fit(AutoencoderKMeans, X, n_clusters=12)
    assert len(layouts) == 2
    assert_array_equal(fits[12].labels_, uncached.labels_)


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS)
def test_clone_and_get_params_keep_memory(cls, tmp_path):
    memory = joblib.Memory(tmp_path, verbose=0)
    model = fast_estimator(cls, memory=memory)
    assert model.get_params()["memory"] is memory
    # clone deep-copies parameters that are not estimators: the copy caches
    # in the same place.
    assert clone(model).memory.location == memory.location
    assert clone(fast_estimator(cls, memory=str(tmp_path))).memory == str(tmp_path)
    assert fast_estimator(cls).memory is None


def test_memory_none_trains_without_the_cache(blobs, monkeypatch, pretrainings):
    X, _ = blobs

    def fail(*args, **kwargs):
        raise AssertionError("memory=None must not go through the cache")

    monkeypatch.setattr(skdeepcluster._autoencoder_base, "pretrain_with_memory", fail)
    first = _fit(DEC, X)
    second = _fit(DEC, X)
    assert len(pretrainings) == 2
    assert_array_equal(first.labels_, second.labels_)


def test_settings_joblib_cannot_hash_train_without_the_cache(
    blobs, tmp_path, pretrainings
):
    # joblib hashes the key by pickling it: a lambda among the net's
    # settings cannot be, and the pretraining then runs uncached, warned.
    from skorch.callbacks import EpochScoring

    X, _ = blobs
    scoring = EpochScoring(lambda net, X, y: 0.0, on_train=True, name="zero")
    reference = _fit(AutoencoderKMeans, X, callbacks=[scoring])
    with pytest.warns(UserWarning, match="not cached.*lambda"):
        uncached = _fit(AutoencoderKMeans, X, callbacks=[scoring], memory=str(tmp_path))
    assert len(pretrainings) == 2
    assert count_cached_pretrainings(str(tmp_path)) == 0
    assert_array_equal(uncached.labels_, reference.labels_)


def test_memory_without_location_hashes_nothing(blobs, pretrainings):
    # joblib.Memory(location=None) caches nothing: no hashing, no warning.
    import warnings

    from skorch.callbacks import EpochScoring

    X, _ = blobs
    scoring = EpochScoring(lambda net, X, y: 0.0, on_train=True, name="zero")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(
            AutoencoderKMeans,
            X,
            callbacks=[scoring],
            memory=joblib.Memory(location=None, verbose=0),
        )
    assert len(pretrainings) == 1


def test_invalid_memory_raises(blobs):
    X, _ = blobs
    with pytest.raises(InvalidParameterError, match="memory"):
        _fit(DEC, X, memory=5)


@pytest.mark.parametrize("cls", [AutoencoderKMeans, DEC, DCN])
def test_fitted_autoencoder_reused_with_pretrain_epochs_zero(cls, blobs, pretrainings):
    X, _ = blobs
    # k-means on the embedding, as DEC and DCN start with; the unit length
    # DEC keeps on these blobs, which reach beyond [-1, 1].
    fitted = _fit(AutoencoderKMeans, X, clustering="kmeans", normalize_embedding=True)
    modules = fitted.net_.module_
    extra = (
        dict(clustering="kmeans")
        if cls is AutoencoderKMeans
        else dict(clustering_epochs=0)
    )
    reused = _fit(
        cls,
        X,
        encoder=modules.encoder,
        decoder=modules.decoder,
        pretrain_epochs=0,
        normalize_embedding=True,
        **extra,
    )
    assert len(pretrainings) == 1
    # The given weights are used as they are: same embedding, hence (k-means
    # with the same seed) the same clusters.
    assert_allclose(reused.transform(X), fitted.transform(X), rtol=1e-6, atol=1e-7)
    assert_array_equal(reused.labels_, fitted.labels_)
    # Copied, not trained in place.
    assert modules.encoder is not reused.net_.module_.encoder
    assert np.isfinite(reused.cluster_centers_).all()


def test_verbose_hit_says_the_pretraining_was_loaded(blobs, tmp_path, capsys):
    X, _ = blobs
    _fit(DEC, X, memory=str(tmp_path))
    capsys.readouterr()
    _fit(DEC, X, memory=str(tmp_path), verbose=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "DEC: pretraining loaded from the cache (memory)"
    assert not any(line.startswith("DEC: pretraining (") for line in out)


@pytest.mark.parametrize(
    "memory",
    [
        lambda file: str(file),
        lambda file: str(file / "cache"),
    ],
    ids=["file", "below a file"],
)
def test_memory_blocked_by_a_file_raises_before_training(blobs, tmp_path, memory):
    X, _ = blobs
    path = tmp_path / "cache.txt"
    path.write_text("")
    with pytest.raises(ValueError, match="cannot hold a cache: .*cache.txt' is a"):
        _fit(AutoencoderKMeans, X, memory=memory(path))


def test_memory_check_reads_the_file_system_each_time(tmp_path):
    # Nothing is remembered from an earlier fit: a file made since is seen.
    from skdeepcluster._autoencoder_base import _file_in_the_way

    location = tmp_path / "cache.txt" / "cache"
    assert _file_in_the_way(str(location)) is None
    (tmp_path / "cache.txt").write_text("")
    assert _file_in_the_way(str(location)) == str(tmp_path / "cache.txt")
