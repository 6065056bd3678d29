"""skorch's controls on the estimators: callbacks, optimiser, routed keywords.

Every estimator passes ``callbacks``, ``optimizer`` and the
``optimizer__*``, ``iterator_train__*`` and ``callbacks__*`` keywords on to
each skorch net of its fit; ``verbose=1`` prints one headed table per stage.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochScoring,
    GradientNormClipping,
    LoadInitState,
    LRScheduler,
)

from conftest import all_estimators, fast_estimator
from skdeepcluster import DAC, DCN, DEC, IMSAT, ACAIKMeans, AutoencoderKMeans

# The stages of a fit with the test settings (tests/conftest.py): IMSAT's
# three starts are as long as its whole training, so no stage follows them.
STAGES = {
    "ACAIKMeans": ["pretraining"],
    "AutoencoderKMeans": ["pretraining"],
    "DAC": ["training"],
    "DCN": ["pretraining", "clustering"],
    "DEC": ["pretraining", "clustering"],
    "IMSAT": ["start 1 of 3", "start 2 of 3", "start 3 of 3"],
    "SNNLKMeans": ["pretraining"],
}

# Filled by EpochRecorder. Each net trains a copy of the callbacks given to
# the estimator, so the copies report here rather than on the instance the
# test holds.
SEEN = []


class EpochRecorder(Callback):
    """Record ``(stage, epoch)`` in SEEN at the end of every epoch."""

    def on_epoch_end(self, net, **kwargs):
        SEEN.append((net.stage, len(net.history)))


class CountEpochs(Callback):
    """Count epochs on the instance itself (state a shared copy would leak)."""

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


class ClusteringOnlyEarlyStopping(EarlyStopping):
    """EarlyStopping that watches the clustering stage only."""

    def on_epoch_end(self, net, **kwargs):
        if net.stage == "clustering":
            super().on_epoch_end(net, **kwargs)


def _never_improves(**params):
    # A relative threshold of 0.5: no epoch after the first lowers the loss
    # by half, so training stops after 1 + patience epochs.
    return EarlyStopping(
        monitor="train_loss", threshold=0.5, sink=lambda _: None, **params
    )


@pytest.mark.parametrize(
    "callbacks",
    [[1], [("stop", "EarlyStopping")], [(1, EpochRecorder())]],
    ids=["int", "name-and-str", "int-name"],
)
def test_callbacks_that_skorch_cannot_run_are_rejected(blobs, callbacks):
    X, _ = blobs
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, callbacks=callbacks)
    with pytest.raises(TypeError, match="callbacks must be skorch callbacks"):
        model.fit(X)


def test_a_callback_class_is_accepted(blobs):
    # skorch instantiates a callback given as a class.
    X, _ = blobs
    SEEN.clear()
    fast_estimator(AutoencoderKMeans, n_clusters=3, callbacks=[EpochRecorder]).fit(X)
    assert ("pretraining", 1) in SEEN


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_callbacks_see_every_stage(cls, blobs):
    X, _ = blobs
    SEEN.clear()
    model = fast_estimator(
        cls, n_clusters=3, callbacks=[EpochRecorder()], random_state=0
    )
    model.fit(X)
    stages = list(dict.fromkeys(stage for stage, _ in SEEN))
    assert stages == STAGES[cls.__name__]
    for stage in stages:
        epochs = [epoch for seen_stage, epoch in SEEN if seen_stage == stage]
        assert epochs == list(range(1, len(epochs) + 1))
    # The last stage trained the fitted net.
    assert epochs[-1] == len(model.net_.history)


def test_named_callbacks_and_callbacks_keywords(blobs):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        callbacks=[("count", CountEpochs())],
        callbacks__print_log__floatfmt=".2f",
        random_state=0,
    ).fit(X)
    callbacks = dict(model.net_.callbacks_)
    assert callbacks["count"].epochs_ == model.n_iter_
    assert callbacks["print_log"].floatfmt == ".2f"


def test_callbacks_are_copied_per_net_and_fit(blobs):
    X, _ = blobs
    counter = CountEpochs()
    model = fast_estimator(DCN, n_clusters=3, callbacks=[counter], random_state=0)
    model.fit(X)
    model.fit(X)
    # The parameter itself never trains: get_params is unchanged by fit.
    assert model.callbacks[0] is counter
    assert not hasattr(counter, "epochs_")
    # The fitted clustering net counted its own epochs only: neither the
    # pretraining net's nor the first fit's.
    fitted = dict(model.net_.callbacks_)["CountEpochs"]
    assert fitted is not counter
    assert fitted.epochs_ == len(model.net_.history) == 3
    assert clone(model).callbacks[0] is not counter


def test_early_stopping_ends_the_stage_not_the_fit(blobs):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans,
        n_clusters=3,
        pretrain_epochs=50,
        callbacks=[_never_improves(patience=2)],
        random_state=0,
    ).fit(X)
    assert model.n_iter_ == 3
    assert model.labels_.shape == (len(X),)


def test_early_stopping_in_one_stage(blobs):
    X, _ = blobs
    SEEN.clear()
    stop = ClusteringOnlyEarlyStopping(
        monitor="train_loss", threshold=0.5, patience=1, sink=lambda _: None
    )
    fast_estimator(
        DCN,
        n_clusters=3,
        clustering_epochs=20,
        callbacks=[EpochRecorder(), stop],
        random_state=0,
    ).fit(X)
    stages = [stage for stage, _ in SEEN]
    assert stages.count("pretraining") == 5
    assert stages.count("clustering") == 2


# Settings under which the kept net trains in several stages (partial_fit
# calls): the kept start trains on, then the refinement's moves.
RESUMED_STAGES = {
    "DAC": dict(n_init=2, init_epochs=2, max_epochs=5),
    "IMSAT": dict(n_init=2, init_epochs=2),
}


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_lr_scheduler_steps_once_per_epoch(cls, blobs):
    # skorch's LRScheduler rebuilds its PyTorch scheduler whenever a stage
    # resumes training, which steps it once more: the schedule must still
    # advance by exactly one step per epoch of the kept net.
    X, _ = blobs
    scheduler = LRScheduler(policy="StepLR", step_size=1, gamma=0.5)
    model = fast_estimator(
        cls,
        n_clusters=3,
        callbacks=[scheduler],
        random_state=0,
        **RESUMED_STAGES.get(cls.__name__, {}),
    ).fit(X)
    lr = model.net_.optimizer_.param_groups[0]["lr"]
    assert lr == pytest.approx(model.net_.lr * 0.5 ** len(model.net_.history))


@pytest.mark.parametrize("cls", [DAC, IMSAT], ids=lambda cls: cls.__name__)
def test_each_epoch_of_the_history_names_its_stage(cls, blobs):
    # The kept start's history runs through three stages: its short start,
    # its further training, the refinement.
    X, _ = blobs
    model = fast_estimator(
        cls, n_clusters=3, random_state=0, **RESUMED_STAGES[cls.__name__]
    ).fit(X)
    stages = list(model.net_.history[:, "event_stage"])
    kept = model.start_information_ if cls is IMSAT else model.start_modularity_
    best = int(np.argmax(kept)) + 1
    n_refinement = stages.count("refinement")
    n_training = len(stages) - model.init_epochs - n_refinement
    assert n_training > 0 and n_refinement > 0
    assert stages == (
        [f"start {best} of 2"] * model.init_epochs
        + [f"training of start {best}"] * n_training
        + ["refinement"] * n_refinement
    )


def _decay_every_batch(step):
    return 0.9**step


class RateOfEachBatch(Callback):
    """Records, in each batch of the history, the learning rate it stepped with."""

    def on_grad_computed(self, net, named_parameters, batch=None, **kwargs):
        net.history.record_batch("lr_used", net.optimizer_.param_groups[0]["lr"])


@pytest.mark.parametrize("cls", [DAC, IMSAT], ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    "policy, kwargs",
    [
        ("LambdaLR", {"lr_lambda": _decay_every_batch}),
        ("StepLR", {"step_size": 1, "gamma": 0.9}),
    ],
)
def test_lr_scheduler_stepped_every_batch_counts_batches(cls, policy, kwargs, blobs):
    # A per-batch schedule resumes where it stopped when the kept start
    # trains on and through the refinement, by batches, not epochs: a
    # closed-form schedule (LambdaLR) as a chained one (StepLR).
    X, _ = blobs
    scheduler = LRScheduler(policy=policy, step_every="batch", **kwargs)
    model = fast_estimator(
        cls,
        n_clusters=3,
        callbacks=[scheduler, RateOfEachBatch()],
        random_state=0,
        **RESUMED_STAGES[cls.__name__],
    ).fit(X)
    used = [
        batch["lr_used"] for epoch in model.net_.history for batch in epoch["batches"]
    ]
    expected = model.net_.lr * 0.9 ** np.arange(len(used))
    np.testing.assert_allclose(used, expected, rtol=1e-6)


def test_checkpoint_per_stage(blobs, tmp_path):
    X, _ = blobs
    checkpoint = Checkpoint(
        monitor=None,
        dirname=str(tmp_path),
        f_params="{net.stage}.pt",
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
    )
    model = fast_estimator(
        DCN, n_clusters=3, callbacks=[checkpoint], random_state=0
    ).fit(X)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "clustering.pt",
        "pretraining.pt",
    ]
    saved = torch.load(tmp_path / "clustering.pt", weights_only=True)
    for name, value in model.net_.module_.state_dict().items():
        torch.testing.assert_close(saved[name], value)
    # The stage's checkpoint loads back into the fitted net, as in skorch.
    model.net_.load_params(f_params=tmp_path / "clustering.pt")


def test_optimizer_and_its_keywords(blobs):
    X, _ = blobs
    model = fast_estimator(
        DEC,
        n_clusters=3,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.5,
        random_state=0,
    ).fit(X)
    optimizer = model.net_.optimizer_
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.5
    assert optimizer.param_groups[0]["lr"] == model.clustering_lr


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_optimizers_use_the_multi_tensor_update_with_the_same_labels(cls, blobs):
    # foreach=True, which PyTorch picks by default on CUDA only, computes
    # Adam's per-tensor update for all parameters at once: same labels.
    X, _ = blobs
    default = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    net = default.net_
    # ACAIKMeans' critic has an optimiser of its own.
    for optimizer in (net.optimizer_, getattr(net, "critic_optimizer_", None)):
        assert optimizer is None or optimizer.defaults["foreach"] is True
    loop = fast_estimator(
        cls, n_clusters=3, random_state=0, optimizer__foreach=False
    ).fit(X)
    assert loop.net_.optimizer_.defaults["foreach"] is False
    np.testing.assert_array_equal(default.labels_, loop.labels_)


def test_multi_tensor_update_only_for_optimizers_that_name_it(blobs):
    X, _ = blobs

    class PlainSGD(torch.optim.SGD):
        def __init__(self, params, lr, **kwargs):
            if "foreach" in kwargs:
                raise TypeError("PlainSGD takes no foreach")
            super().__init__(params, lr=lr)

    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, optimizer=PlainSGD, random_state=0
    ).fit(X)
    assert isinstance(model.net_.optimizer_, PlainSGD)
    assert model.net_.optimizer_.defaults["foreach"] is None


def test_iterator_train_keywords(blobs):
    X, _ = blobs
    # 90 samples in batches of 16: the last, short batch is dropped.
    model = fast_estimator(
        IMSAT, n_clusters=3, n_init=1, iterator_train__drop_last=True, random_state=0
    ).fit(X)
    sizes = {batch["train_batch_size"] for batch in model.net_.history[:, "batches"][0]}
    assert sizes == {16}


def test_grid_search_over_optimizer_keyword(blobs):
    X, _ = blobs

    def weight_decay(estimator, X, y=None):
        return estimator.net_.optimizer_.param_groups[0]["weight_decay"]

    search = GridSearchCV(
        fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0),
        {"optimizer__weight_decay": [0.0, 1e-3]},
        scoring=weight_decay,
        cv=2,
    ).fit(X)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], [0.0, 1e-3])
    assert search.best_estimator_.optimizer__weight_decay == 1e-3


def test_routed_keywords_are_parameters():
    model = AutoencoderKMeans(optimizer__weight_decay=1e-4)
    assert model.get_params()["optimizer__weight_decay"] == 1e-4
    model.set_params(
        optimizer__weight_decay=1e-2, iterator_train__num_workers=2, lr=0.1
    )
    assert model.get_params()["optimizer__weight_decay"] == 1e-2
    assert model.get_params()["iterator_train__num_workers"] == 2
    assert model.lr == 0.1
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert "optimizer__weight_decay" not in AutoencoderKMeans().get_params()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"module__hidden": 3}, "'optimizer__', 'iterator_train__', 'callbacks__'"),
        # A misspelt parameter is named with the one it most likely meant.
        ({"n_clusterz": 3}, "'n_clusterz'. Did you mean 'n_clusters'\\?"),
        ({"optimizer__lr": 0.1}, "set lr instead"),
        ({"iterator_train__batch_size": 8}, "set batch_size instead"),
        # torch would speak of the shuffle and batch size the package sets.
        (
            {"iterator_train__sampler": torch.utils.data.SequentialSampler(range(3))},
            "iterator_train__sampler.*pass iterator_train__shuffle=False",
        ),
        (
            {
                "iterator_train__batch_sampler": [[0, 1]],
                "iterator_train__shuffle": False,
            },
            "batch_sampler.*and batch_size=1",
        ),
    ],
)
def test_unknown_or_reserved_keywords_raise_in_fit(params, message, blobs):
    X, _ = blobs
    # As scikit-learn requires, neither construction nor set_params raises.
    with pytest.raises(ValueError, match=message):
        fast_estimator(AutoencoderKMeans, **params).fit(X)
    with pytest.raises(ValueError, match=message):
        fast_estimator(AutoencoderKMeans).set_params(**params).fit(X)


@pytest.mark.parametrize(
    "params, error, message",
    [
        # Before any training, naming the keyword: not a TypeError from the
        # optimiser or the DataLoader once a net starts, nor silently ignored.
        ({"optimizer__momentum": 0.9}, TypeError, "Adam takes no keyword.*momentum"),
        (
            {"iterator_train__shufle": False},
            TypeError,
            "DataLoader.*'shufle'. Did you mean 'iterator_train__shuffle'\\?",
        ),
        ({"critic_optimizer__betas": 0.5}, ValueError, "unexpected parameter"),
        ({"callbacks__recorder": 1}, TypeError, "callbacks__recorder=1"),
        ({"callbacks__printlog__sink": print}, ValueError, "named 'printlog'"),
        # Callables that build no optimiser, named before skorch calls them.
        (
            {"optimizer": lambda params, lr: None},
            TypeError,
            "must build a torch.optim.Optimizer.*returned NoneType",
        ),
        ({"optimizer": dict}, ValueError, "optimizer dict\\(params, lr=.*failed"),
        (
            {"optimizer__betas": (2.0, 0.9)},
            ValueError,
            "optimizer Adam.*failed: Invalid beta",
        ),
        # Built, but unable to step on the nets' dense gradients.
        (
            {"optimizer": torch.optim.SparseAdam},
            ValueError,
            "optimizer SparseAdam cannot take a training step: .*dense gradients",
        ),
        # No validation data to score: it would record nothing.
        (
            {"callbacks": [EpochScoring(lambda net, X, y: 0.0)]},
            ValueError,
            "no validation data for the callback EpochScoring.*on_train=True",
        ),
        # Loading the last checkpoint as each stage begins would start every
        # stage from the one before it.
        (
            {"callbacks": [LoadInitState(Checkpoint(monitor="train_loss_best"))]},
            ValueError,
            "cannot use skorch's LoadInitState: a fit trains its nets in stages",
        ),
        ({"callbacks": [("load", LoadInitState)]}, ValueError, "LoadInitState"),
        # skorch's default callbacks are replaced by keyword, not in callbacks.
        ({"callbacks": [("print_log", None)]}, ValueError, "callbacks__print_log="),
        # Options of the worker processes, without any: torch asserts when
        # the first batch is read (timeout) or fails as a net starts.
        ({"iterator_train__timeout": 5.0}, ValueError, "timeout=5.0.*num_workers"),
        (
            {"iterator_train__prefetch_factor": 4, "iterator_train__num_workers": 0},
            ValueError,
            "prefetch_factor=4.*no workers",
        ),
        ({"iterator_train__persistent_workers": True}, ValueError, "no workers"),
    ],
)
def test_routed_keywords_nothing_takes_raise_in_fit(params, error, message, blobs):
    X, _ = blobs
    with pytest.raises(error, match=message):
        fast_estimator(AutoencoderKMeans, n_clusters=3, **params).fit(X)


def test_closure_optimizers_train_where_the_step_has_a_closure(blobs):
    # skorch's step passes a closure, which L-BFGS evaluates; ACAIKMeans
    # steps its two optimisers without one, and says so before training.
    X, _ = blobs
    params = {"n_clusters": 3, "optimizer": torch.optim.LBFGS, "random_state": 0}
    model = fast_estimator(AutoencoderKMeans, **params).fit(X)
    assert np.isfinite(model.net_.history[-1, "train_loss"])
    with pytest.raises(
        TypeError, match="LBFGS cannot take a training step .*without a closure"
    ):
        fast_estimator(ACAIKMeans, **params).fit(X)


def _callbacks(model):
    return dict(model.net_.callbacks_)


@pytest.mark.parametrize(
    "params, took_effect",
    [
        (
            {"optimizer": torch.optim.SGD, "optimizer__momentum": 0.9},
            lambda model: model.net_.optimizer_.param_groups[0]["momentum"] == 0.9,
        ),
        (
            {"optimizer__param_groups": [("encoder.*", {"lr": 1e-4})]},
            lambda model: (
                [g["lr"] for g in model.net_.optimizer_.param_groups]
                == [1e-4, model.lr]
            ),
        ),
        (
            {"iterator_train__worker_init_fn": print},
            lambda model: (
                model.net_.get_iterator(
                    model.net_.get_dataset(torch.zeros(4, 4)), training=True
                ).worker_init_fn
                is print
            ),
        ),
        (
            # No foreach=True beside it, which torch would reject.
            {"optimizer__fused": True},
            lambda model: (
                model.net_.optimizer_.param_groups[0]["fused"]
                and not model.net_.optimizer_.param_groups[0]["foreach"]
            ),
        ),
        (
            # A sampler of the user's, in place of the shuffling.
            {
                "iterator_train__shuffle": False,
                "iterator_train__sampler": torch.utils.data.SequentialSampler(
                    range(90)
                ),
            },
            lambda model: isinstance(
                model.net_.get_iterator(
                    model.net_.get_dataset(torch.zeros(90, 4)), training=True
                ).sampler,
                torch.utils.data.SequentialSampler,
            ),
        ),
        (
            {"callbacks__print_log": None},
            lambda model: "print_log" not in _callbacks(model),
        ),
        (
            {"callbacks__print_log__sink": print},
            lambda model: _callbacks(model)["print_log"].sink is print,
        ),
        (
            {
                "callbacks": [("clip", GradientNormClipping())],
                "callbacks__clip__gradient_clip_value": 1.0,
            },
            lambda model: _callbacks(model)["clip"].gradient_clip_value == 1.0,
        ),
        (
            # A callback given under a name replaces the one of that name.
            {
                "callbacks": [("clip", GradientNormClipping())],
                "callbacks__clip": GradientNormClipping(gradient_clip_value=2.0),
            },
            lambda model: _callbacks(model)["clip"].gradient_clip_value == 2.0,
        ),
        (
            # skorch numbers unnamed callbacks of one class.
            {
                "callbacks": [GradientNormClipping(), GradientNormClipping()],
                "callbacks__GradientNormClipping_2__gradient_clip_value": 1.0,
            },
            lambda model: (
                _callbacks(model)["GradientNormClipping_2"].gradient_clip_value == 1.0
            ),
        ),
    ],
    ids=[
        "optimizer",
        "param_groups",
        "iterator",
        "fused",
        "sampler",
        "remove",
        "parameter",
        "named parameter",
        "replace",
        "numbered",
    ],
)
def test_routed_keywords_that_reach_something_take_effect(params, took_effect, blobs):
    X, _ = blobs
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, **params).fit(X)
    assert took_effect(model)


@pytest.mark.parametrize("value", [GradientNormClipping(), None])
def test_a_callback_keyword_naming_no_callback_is_rejected(value, blobs):
    # skorch only replaces or removes the nets' callbacks by name, and would
    # silently ignore this one.
    X, _ = blobs
    model = fast_estimator(AutoencoderKMeans, n_clusters=3, callbacks__clip=value)
    with pytest.raises(
        ValueError,
        match=r"no callback named 'clip'.*pass callbacks=\[\('clip', callback\)\]",
    ):
        model.fit(X)


@pytest.mark.parametrize(
    "params", [{"callbacks": EpochRecorder()}, {"optimizer": "adam"}]
)
def test_parameter_constraints(params, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="must be"):
        fast_estimator(AutoencoderKMeans, n_clusters=3, **params).fit(X)


# -- progress output ---------------------------------------------------------


@pytest.mark.parametrize("verbose", [1, 0])
@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_progress_follows_the_print_log_sink(cls, verbose, blobs, capsys, tmp_path):
    # Headings, tables, a stage's early stop, the cache's hit and the closing
    # line all go where the table is sent: a logger, say, not stdout. As for
    # skorch's table, verbose=0 silences print only.
    X, _ = blobs
    lines = []
    params = {"n_clusters": 3, "verbose": verbose, "random_state": 0}
    if "memory" in cls().get_params():
        params["memory"] = str(tmp_path)
        fast_estimator(cls, **{**params, "verbose": 0}).fit(X)
    model = fast_estimator(cls, callbacks__print_log__sink=lines.append, **params)
    model.fit(X)
    assert capsys.readouterr().out == ""
    assert lines[-1].startswith(f"{cls.__name__}: 3 clusters")
    if "memory" in params:
        assert f"{cls.__name__}: pretraining loaded from the cache (memory)" in lines
    if cls is DEC:
        assert any(" stopped after epoch " in line for line in lines)


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_verbose_heads_each_stage_without_colour(cls, blobs, capsys):
    X, _ = blobs
    fast_estimator(cls, n_clusters=3, verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    # Lines of the estimator's own: stage headings, a stage's early stop
    # (DEC's tolerance), then the closing line.
    own = [line for line in out.splitlines() if line.startswith(f"{cls.__name__}: ")]
    *headings, summary = [line for line in own if " stopped after epoch " not in line]
    assert [heading.split(": ", 1)[1].split(" (up to ")[0] for heading in headings] == (
        STAGES[cls.__name__]
    )
    # The last line says what the fit ended with.
    assert out.splitlines()[-1] == summary
    model_clusters = summary.split(": ", 1)[1].split(" clusters")[0]
    assert model_clusters == "3"
    # capsys is not a terminal: no ANSI colour codes.
    assert "\x1b[" not in out
    # Every row of a table has one value per column of its header.
    n_columns = None
    for line in out.splitlines():
        if line in own:
            n_columns = None
        elif line.split()[0] == "epoch":
            n_columns = len(line.split())
        elif not set(line) <= {"-", " "}:  # all but the rules under headers
            assert len(line.split()) == n_columns, line


def test_colours_on_a_terminal(blobs, capsys, monkeypatch):
    X, _ = blobs
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    fast_estimator(AutoencoderKMeans, n_clusters=3, verbose=1, random_state=0).fit(X)
    assert "\x1b[" in capsys.readouterr().out


def test_loss_terms_are_columns_from_the_first_epoch(blobs, capsys):
    X, _ = blobs
    model = fast_estimator(
        AutoencoderKMeans, n_clusters=3, smoothing_weight=1.0, verbose=1, random_state=0
    ).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "AutoencoderKMeans: pretraining (up to 5 epochs)"
    assert lines[1].split() == [
        "epoch",
        "reconstruction_loss",
        "smoothing_loss",
        "train_loss",
        "dur",
    ]
    assert sum(line.split()[0] == "epoch" for line in lines) == 1
    history = model.net_.history
    # The smoothing term starts halfway (smoothing_start=0.5): zero before.
    assert history[:, "smoothing_loss"][:2] == [0.0, 0.0]
    assert all(value > 0 for value in history[:, "smoothing_loss"][2:])
    for epoch in history:
        batches = epoch["batches"]
        sizes = [batch["train_batch_size"] for batch in batches]
        for term in ("reconstruction_loss", "train_loss"):
            values = [batch[term] for batch in batches]
            assert epoch[term] == pytest.approx(np.average(values, weights=sizes))


@pytest.mark.parametrize(
    "params",
    [
        {"callbacks": [EarlyStopping()]},
        {"callbacks": [EarlyStopping]},
        {"callbacks": [("stop", EarlyStopping(monitor="valid_acc"))]},
        {"callbacks": [Checkpoint]},
        {
            "callbacks": [("stop", EarlyStopping(monitor="train_loss"))],
            "callbacks__stop": EarlyStopping(),
        },
    ],
    ids=["instance", "class", "named", "checkpoint", "keyword"],
)
def test_callbacks_monitoring_a_validation_score_are_rejected(params, blobs):
    # No validation split: skorch would fail with a KeyError after an epoch.
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0, **params)
    with pytest.raises(ValueError, match="monitor='train_loss'"):
        model.fit(X)


@pytest.mark.parametrize(
    "params",
    [
        {"callbacks": [EarlyStopping(monitor="train_loss")]},
        {
            "callbacks": [EarlyStopping],
            "callbacks__EarlyStopping__monitor": "train_loss",
        },
        {
            "callbacks": [("EarlyStopping", None)],
            "callbacks__EarlyStopping": EarlyStopping(),
            "callbacks__EarlyStopping__monitor": "train_loss",
        },
    ],
    ids=["instance", "class", "keyword"],
)
def test_callbacks_monitoring_the_training_loss_run(params, blobs):
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0, **params).fit(X)
    assert _callbacks(model)["EarlyStopping"].monitor == "train_loss"


@pytest.mark.parametrize(
    "cls, groups, unmatched",
    [
        # IMSAT's parameters are body.* and head.*: nothing to match.
        (IMSAT, [("encoder.*", {"lr": 1e-4})], "'encoder.*'"),
        # Every encoder parameter was taken by the first pattern.
        (DEC, [("encoder.*", {"lr": 1e-4}), ("encoder.0.*", {})], "'encoder.0.*'"),
        # The centres exist in the clustering stage only, and count.
        (DEC, [("centers", {"lr": 1e-2}), ("decoder.*", {"lr": 1e-4})], None),
    ],
    ids=["other-network", "shadowed", "later-stage"],
)
def test_param_groups_patterns_that_set_nothing_warn(cls, groups, unmatched, blobs):
    # skorch drops a pattern that matches nothing without a word.
    X, _ = blobs
    model = fast_estimator(
        cls, n_clusters=3, random_state=0, optimizer__param_groups=groups
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
    caught = [w for w in caught if "param_groups" in str(w.message)]
    if unmatched is None:
        assert caught == []
    else:
        assert len(caught) == 1
        assert f"pattern(s) {unmatched} matched no parameter" in str(caught[0].message)
        assert caught[0].filename == __file__


@pytest.mark.parametrize(
    "params",
    [
        {"callbacks": [("lr", LRScheduler("Bogus"))]},
        {
            "callbacks": [("lr", LRScheduler("StepLR", step_size=1))],
            "callbacks__lr__policy": "StepLr",
        },
        {"callbacks": [("lr", LRScheduler)], "callbacks__lr__policy": "Bogus"},
    ],
    ids=["instance", "keyword", "class"],
)
def test_an_unknown_lr_scheduler_policy_is_rejected(params, blobs):
    # skorch would look the name up when training begins: an AttributeError.
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0, **params)
    with pytest.raises(ValueError, match="LRScheduler policy '(Bogus|StepLr)'"):
        model.fit(X)


@pytest.mark.parametrize(
    "callback, stage",
    [
        # A loss term of DEC's clustering stage, not of its pretraining.
        (EarlyStopping(monitor="clustering_loss"), "pretraining"),
        (EarlyStopping(monitor="train_los"), "pretraining"),
        # skorch's Checkpoint speaks of validation data.
        (Checkpoint(monitor="train_los_best"), "pretraining"),
        # skorch's LRScheduler of a plateau raises a ValueError of its own.
        (
            LRScheduler(
                torch.optim.lr_scheduler.ReduceLROnPlateau, monitor="clustering_loss"
            ),
            "pretraining",
        ),
    ],
    ids=["other-stage", "typo", "checkpoint", "plateau"],
)
def test_callbacks_monitoring_a_key_a_stage_lacks_say_so(callback, stage, blobs):
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, random_state=0, callbacks=[callback])
    key = callback.monitor
    with pytest.raises(ValueError, match=f"reads '{key}'.*the {stage} stage of DEC"):
        model.fit(X)


def test_epoch_scoring_on_the_training_data_records_its_score(blobs):
    X, _ = blobs
    scoring = EpochScoring(lambda net, X, y: 1.5, on_train=True, name="score")
    model = fast_estimator(DEC, n_clusters=3, random_state=0, callbacks=[scoring])
    assert model.fit(X).net_.history[-1, "score"] == 1.5


def test_one_planned_epoch_is_singular(blobs, capsys):
    X, _ = blobs
    fast_estimator(
        AutoencoderKMeans, n_clusters=3, pretrain_epochs=1, verbose=1, random_state=0
    ).fit(X)
    assert capsys.readouterr().out.splitlines()[0] == (
        "AutoencoderKMeans: pretraining (up to 1 epoch)"
    )


def test_verbose_dec_says_why_it_stopped_early(blobs, capsys):
    X, _ = blobs
    model = fast_estimator(DEC, n_clusters=3, tol=1.0, verbose=1, random_state=0)
    model.fit(X)
    lines = capsys.readouterr().out.splitlines()
    stop = [line for line in lines if "below tol=1" in line]
    assert len(stop) == 1
    assert stop[0].startswith(f"DEC: stopped after epoch {model.n_iter_}: ")
    # After the clustering stage's last row, before the closing line.
    assert lines.index(stop[0]) == len(lines) - 2


class GradientSeen(Callback):
    """Records, in each batch of the history, that its gradients were offered."""

    def on_grad_computed(self, net, named_parameters, batch=None, **kwargs):
        net.history.record_batch("gradient_seen", len(list(named_parameters)) > 0)


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_gradient_callbacks_see_every_training_batch(cls, blobs):
    # GradientNormClipping and the like act in on_grad_computed; a net with
    # a training step of its own (ACAIKMeans') must call it as skorch's does.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0)
    model.set_params(callbacks=[("gradient_seen", GradientSeen())]).fit(X)
    batches = model.net_.history[-1, "batches"]
    assert batches
    assert all(batch.get("gradient_seen") for batch in batches)


class StopAfterFirstEpoch(EarlyStopping):
    """An EarlyStopping on a condition of its own, stopping as skorch's does."""

    def on_epoch_end(self, net, **kwargs):
        if net.stage == "pretraining":
            raise KeyboardInterrupt


class StopFromOwnCallback(Callback):
    def on_epoch_end(self, net, **kwargs):
        if net.stage == "pretraining":
            net.stop_before_next_epoch()


@pytest.mark.parametrize(
    "stopper", [StopAfterFirstEpoch(monitor="train_loss"), StopFromOwnCallback()]
)
def test_a_callback_of_ones_own_ends_the_stage_it_runs_in(stopper, blobs):
    # The stage ends after its first epoch and the fit goes on, as with
    # EarlyStopping's own condition; only Ctrl-C stops the whole fit.
    X, _ = blobs
    model = fast_estimator(DCN, n_clusters=3, random_state=0, callbacks=[stopper])
    model.fit(X)
    assert len(model.pretrain_history_) == 1
    assert len(model.net_.history) == model.clustering_epochs
