"""A fit that cannot succeed fails loudly and leaves the estimator consistent.

Divergence (a non-finite loss or weight), Ctrl-C, input beyond float32,
impossible layer widths and collapsed clusterings, for every estimator.
"""

import copy
import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet

from conftest import all_estimators, fast_estimator
from skdeepcluster import (
    DAC,
    DCN,
    DEC,
    IMSAT,
    ACAIKMeans,
    AutoencoderKMeans,
    SNNLKMeans,
)
from skdeepcluster.exceptions import TrainingDivergedError

ESTIMATORS = all_estimators()
AUTOENCODER_ESTIMATORS = [
    cls for cls in ESTIMATORS if "embedding_dim" in cls().get_params()
]

# Learning rates that make each training stage diverge, with the stage
# name the error must give.
DIVERGING = [
    *[(cls, {"lr": 1e20}, "pretraining", "lr") for cls in AUTOENCODER_ESTIMATORS],
    # Self-training from the first clustering epoch: clustering_lr.
    (
        DEC,
        {"clustering_lr": 1e20, "initial_partition_epochs": 0},
        "clustering",
        "clustering_lr",
    ),
    # The epochs on the start partition train at lr (none in pretraining).
    (DEC, {"lr": 1e20, "pretrain_epochs": 0}, "clustering", "lr"),
    (DCN, {"clustering_lr": 1e20}, "clustering", "clustering_lr"),
    (IMSAT, {"lr": 1e20}, "start 1 of 3", "lr"),
    (IMSAT, {"lr": 1e20, "n_init": 1}, "training", "lr"),
    (DAC, {"lr": 1e20}, "training", "lr"),
]

# Every training stage of every estimator (a prefix of the net's ``stage``),
# with the parameters that make the estimator run it.
STAGES = [
    *[(cls, "pretraining", {}) for cls in AUTOENCODER_ESTIMATORS],
    (DEC, "clustering", {}),
    (DCN, "clustering", {}),
    (IMSAT, "start 1 of 3", {}),
    (IMSAT, "start 3 of 3", {}),
    (IMSAT, "training of start", {"init_epochs": 2}),
    (DAC, "training", {}),
]


def _ids(case):
    return case.__name__ if isinstance(case, type) else None


@functools.cache
def _fitted(cls, X_bytes):
    X = np.frombuffer(X_bytes, dtype=np.float32).reshape(-1, 4)
    return fast_estimator(cls, n_clusters=3, random_state=0).fit(X)


def fitted(cls, X):
    """A fitted estimator of ``cls`` on ``X`` (a private copy of a cached fit)."""
    return copy.deepcopy(_fitted(cls, np.ascontiguousarray(X).tobytes()))


def fitted_state(estimator):
    """The fitted attributes (trailing underscore) of ``estimator``, by identity."""
    return {k: id(v) for k, v in vars(estimator).items() if k.endswith("_")}


# -- divergence --------------------------------------------------------------


@pytest.mark.parametrize("cls, params, stage, lr_name", DIVERGING, ids=_ids)
def test_divergence_raises_and_leaves_estimator_unfitted(
    blobs, cls, params, stage, lr_name
):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0, **params)
    before = dict(vars(model))
    with pytest.raises(TrainingDivergedError) as excinfo:
        model.fit(X)
    message = str(excinfo.value)
    assert f"{cls.__name__} diverged during {stage}" in message
    assert "epoch 1" in message
    assert "Scale the input to [0, 1] or standardise it" in message
    assert f"lower {lr_name} (now 1e+20)" in message
    assert vars(model) == before
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_weight_is_found_anywhere(dtype, value):
    from skdeepcluster._nets import _all_finite

    weights = torch.randn(40, 30).to(dtype)
    assert _all_finite(weights)
    for row, column in [(0, 0), (17, 4), (39, 29)]:
        broken = weights.clone()
        broken[row, column] = value
        assert not _all_finite(broken)
    assert _all_finite(torch.empty(0, dtype=dtype))


def test_acai_diverging_critic_run_is_stopped(blobs):
    # Without the check, ACAI's default network would train on at lr=1e4 with an
    # infinite loss (the tiny test network only reaches about 1e33).
    X, _ = blobs
    model = ACAIKMeans(3, lr=1e4, pretrain_epochs=3, batch_size=16, random_state=0)
    with pytest.raises(TrainingDivergedError, match="ACAIKMeans diverged during pre"):
        model.fit(X)


@pytest.mark.parametrize(
    "params", [{"temperature": 1e-30}, {"temperature_decay": 1e3}], ids=str
)
def test_snnl_temperature_too_small_is_named(blobs, params):
    # A decay this large overflowed Python's float power; either way the
    # term's gradients blow up, and the error names the temperature.
    X, y = blobs
    model = fast_estimator(
        SNNLKMeans, n_clusters=3, use_labels=True, random_state=0, **params
    )
    with pytest.raises(TrainingDivergedError, match="raise temperature or lower"):
        model.fit(X, y)


# One estimator per training stage kind.
REFIT_DIVERGING = [DIVERGING[0], *DIVERGING[-5:]]


@pytest.mark.parametrize("cls, params, stage, lr_name", REFIT_DIVERGING, ids=_ids)
def test_failed_refit_keeps_previous_fit(blobs, cls, params, stage, lr_name):
    X, _ = blobs
    model = fitted(cls, X)
    state, labels = fitted_state(model), model.labels_.copy()
    model.set_params(**params)
    with pytest.raises(TrainingDivergedError):
        model.fit(X)
    assert fitted_state(model) == state
    np.testing.assert_array_equal(model.predict(X), labels)


def test_nan_centres_raise_even_without_a_nan_loss(blobs, monkeypatch):
    # The last line of defence, for results the per-batch checks miss.
    X, _ = blobs
    original = DEC._fit

    def poisoned_fit(self, X, y, random_state, sample_weight):
        original(self, X, y, random_state, sample_weight)
        self.cluster_centers_ = np.full_like(self.cluster_centers_, np.nan)

    monkeypatch.setattr(DEC, "_fit", poisoned_fit)
    model = fast_estimator(DEC, n_clusters=3, random_state=0)
    with pytest.raises(TrainingDivergedError, match="non-finite cluster centres"):
        model.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


# -- Ctrl-C ------------------------------------------------------------------


def _interrupt_in(monkeypatch, stage):
    """Make the first training batch of ``stage`` raise KeyboardInterrupt."""
    calls = []
    original = NeuralNet.on_batch_begin

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training and self.stage.startswith(stage):
            calls.append(self.stage)
            raise KeyboardInterrupt
        original(self, net, batch=batch, training=training, **kwargs)

    monkeypatch.setattr(NeuralNet, "on_batch_begin", on_batch_begin)
    return calls


@pytest.mark.parametrize("cls, stage, params", STAGES, ids=_ids)
def test_interrupt_stops_the_whole_fit(blobs, monkeypatch, cls, stage, params):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0, **params)
    before = dict(vars(model))
    calls = _interrupt_in(monkeypatch, stage)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    # Interrupted once, and nothing trained after that.
    assert len(calls) == 1
    assert vars(model) == before
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


@pytest.mark.parametrize("cls, stage, params", STAGES, ids=_ids)
def test_interrupted_refit_keeps_previous_fit(blobs, monkeypatch, cls, stage, params):
    X, _ = blobs
    model = fitted(cls, X).set_params(**params)
    state, labels = fitted_state(model), model.labels_.copy()
    _interrupt_in(monkeypatch, stage)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)
    assert fitted_state(model) == state
    np.testing.assert_array_equal(model.predict(X), labels)


@pytest.mark.parametrize("cls", [DEC, DAC], ids=_ids)
def test_early_stopping_is_not_an_interrupt(blobs, cls):
    # DEC's tolerance and DAC's threshold schedule stop training early
    # through skorch; that must still end in a fitted estimator.
    X, _ = blobs
    params = {"tol": 1.0} if cls is DEC else {"eta": 0.5, "max_epochs": 20}
    model = fast_estimator(cls, n_clusters=3, random_state=0, **params).fit(X)
    assert model.n_iter_ < (3 if cls is DEC else 20)
    check_is_fitted(model)


# -- input beyond float32 ----------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_values_beyond_float32_are_rejected(blobs, cls):
    X, _ = blobs
    X_huge = X.astype(np.float64)
    X_huge[0, 0] = 1e39
    model = fast_estimator(cls, n_clusters=3, random_state=0)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        model.fit(X_huge)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    model = fitted(cls, X)
    for method in ("predict", "transform", "predict_proba"):
        with pytest.raises(ValueError, match="beyond the float32 range"):
            getattr(model, method)(X_huge)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_values_whose_squares_overflow_warn_and_diverge(blobs, cls):
    # 1e30 fits in float32 but its square does not: the losses (or the batch
    # norm statistics) overflow.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0)
    with pytest.warns(UserWarning, match="whose square overflows float32"):
        with pytest.raises(TrainingDivergedError, match="Scale the input"):
            model.fit(X.astype(np.float64) * 1e30)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_inference_on_values_whose_squares_overflow_is_rejected(blobs, cls):
    # Where training would diverge, inference would silently give NaN
    # probabilities and distances, and labels read from them.
    X, _ = blobs
    model = fitted(cls, X)
    for method in ("predict", "transform", "predict_proba", "score"):
        with pytest.raises(ValueError, match="whose square overflows float32"):
            getattr(model, method)(X.astype(np.float64) * 1e30)


def test_overflow_is_measured_from_the_input_offset(blobs):
    # Shifted data is fitted less its minimum: a new value's square
    # overflows by its distance from that offset, which the message names.
    X, _ = blobs
    X = X - X.min() + 32
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    assert model.input_offset_ == 32
    X_far = X.copy()
    X_far[0, 0] = 1e30
    with pytest.raises(ValueError, match="away from input_offset_=32"):
        model.predict(X_far)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_non_finite_outputs_of_inference_are_rejected(blobs, cls):
    # Overflow inside the network, on input the checks above let through:
    # weights of 1e30 overflow float32 in the first layer. predict's labels
    # (an argmax or a nearest centre) would otherwise be read from NaN.
    X, _ = blobs
    model = fitted(cls, X)
    with torch.no_grad():
        for parameter in model.net_.module_.parameters():
            parameter.fill_(1e30)
    for method in ("predict", "transform", "predict_proba", "score"):
        with pytest.raises(ValueError, match="computed non-finite values"):
            getattr(model, method)(X)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_a_single_sample_is_rejected(blobs, cls):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=1)
    with pytest.raises(
        ValueError, match=r"needs n_samples >= 2 to train, got n_samples=1"
    ):
        model.fit(X[:1])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_as_many_clusters_as_samples_fits(blobs, cls):
    # KMeans accepts n_clusters == n_samples; so must its replacements,
    # graph partitions of the embedding included.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X[:3])
    assert model.labels_.shape == (3,)
    assert model.predict(X[:3]).shape == (3,)


@pytest.mark.parametrize("cls", [IMSAT, DAC], ids=_ids)
def test_batches_of_one_sample_are_rejected(blobs, cls):
    # Their batch normalisation needs two samples in every training batch.
    X, _ = blobs
    with pytest.raises(ValueError, match="needs batch_size >= 2, got 1"):
        fast_estimator(cls, n_clusters=3, batch_size=1).fit(X)


# -- impossible networks -----------------------------------------------------


@pytest.mark.parametrize("hidden_dims", [(0,), (-5,), (16, 0), (2.5,), (True,)])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_impossible_hidden_dims_are_rejected(blobs, cls, hidden_dims):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, hidden_dims=hidden_dims)
    with pytest.raises(ValueError, match=r"hidden_dims of .* must contain positive"):
        model.fit(X)


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS, ids=_ids)
def test_zero_embedding_dim_is_rejected(blobs, cls):
    X, _ = blobs
    with pytest.raises(ValueError, match="'embedding_dim' parameter"):
        fast_estimator(cls, n_clusters=3, embedding_dim=0).fit(X)


@pytest.mark.parametrize("cls", AUTOENCODER_ESTIMATORS, ids=_ids)
def test_one_dimensional_unit_embedding_is_rejected(blobs, cls):
    # Unit length in one dimension leaves -1 and +1: two clusters at most.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, embedding_dim=1, normalize_embedding=True)
    with pytest.raises(ValueError, match="at most 2 of n_clusters=3"):
        model.fit(X)
    # Without normalisation a one-dimensional embedding is allowed.
    clone(model).set_params(normalize_embedding=False, pretrain_epochs=1).fit(X)


# -- collapsed clusterings ---------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_single_cluster_warns_with_likely_cause(cls):
    # Identical samples: every network maps them to one point.
    X = np.ones((30, 4), dtype=np.float32)
    model = fast_estimator(cls, n_clusters=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="only 1 of 3 clusters") as record:
        model.fit(X)
    # One warning says it, beginning as KMeans' and the empty clusters' do.
    (message,) = [str(w.message) for w in record if "clusters" in str(w.message)]
    assert message.startswith("Number of distinct clusters (1) found smaller than")
    assert "the empty clusters were removed" in message
    assert f"network of {cls.__name__} has probably collapsed" in message
    expected_lr = "lr or clustering_lr" if cls in (DEC, DCN) else "lowering lr"
    assert expected_lr in message
    assert ("pretrain_epochs" in message) == ("pretrain_epochs" in model.get_params())
    assert len(np.unique(model.labels_)) == 1


@pytest.mark.parametrize("cls", ESTIMATORS, ids=_ids)
def test_one_cluster_asked_for_is_no_collapse(blobs, cls):
    X, _ = blobs
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = fast_estimator(cls, n_clusters=1, random_state=0).fit(X)
    assert not [w for w in record if "probably collapsed" in str(w.message)]
    assert set(model.labels_) == {0}


@pytest.mark.parametrize("cls", [DEC, IMSAT], ids=_ids)
@pytest.mark.parametrize(
    "n_distinct, message",
    [
        (1, "only 1 of 3 clusters used"),  # collapsed (_warn_if_collapsed)
        (2, "clusters \\(2\\) found smaller than n_clusters \\(3\\); the empty"),
    ],
)
def test_warnings_about_the_data_name_the_callers_line(cls, n_distinct, message):
    # Raised deep inside fit, through scikit-learn's and skorch's frames,
    # they point at the user's call, here this file, also through a Pipeline.
    # Rows of ones (and of zeros): one-hot rows let DEC's tiny test network
    # map two distinct samples to one cluster for some seeds.
    distinct_rows = np.linspace(1, 0, n_distinct, dtype=np.float32)[:, None]
    X = np.repeat(distinct_rows * np.ones(4, np.float32), 30 // n_distinct, axis=0)
    for model in (
        fast_estimator(cls, n_clusters=3, random_state=0),
        make_pipeline(
            FunctionTransformer(), fast_estimator(cls, n_clusters=3, random_state=0)
        ),
    ):
        with pytest.warns(ConvergenceWarning, match=message) as record:
            model.fit(X)
        ours = [w for w in record if issubclass(w.category, ConvergenceWarning)]
        assert len(ours) == 1
        assert ours[0].filename == __file__


def test_no_collapse_warning_for_a_good_fit(blobs, recwarn):
    X, _ = blobs
    fast_estimator(DEC, n_clusters=3, random_state=0).fit(X)
    assert not [w for w in recwarn if "collapsed" in str(w.message)]


@pytest.mark.parametrize(
    "shape, advice",
    [
        ((30, 8, 8), r"X.reshape\(len\(X\), -1\) and input_shape=\(1, 8, 8\)"),
        ((30, 3, 8, 8), r"X.reshape\(len\(X\), -1\) and input_shape=\(3, 8, 8\)"),
        (
            (30, 8, 8, 3),
            r"X.transpose\(0, 3, 1, 2\).reshape\(len\(X\), -1\) and "
            r"input_shape=\(3, 8, 8\)",
        ),
    ],
    ids=["grey", "channels first", "channels last"],
)
def test_unflattened_images_are_rejected_with_how_to_pass_them(shape, advice, blobs):
    images = np.random.default_rng(0).uniform(size=shape)
    with pytest.raises(ValueError, match=rf"got an array of shape .*{advice}"):
        fast_estimator(DEC, n_clusters=3).fit(images)
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="expects X of shape"):
        model.predict(images)
