"""Checks of the training settings users pass: callbacks, optimisers, keywords.

skorch resolves callbacks, scheduler policies and optimiser or DataLoader
keywords only once training runs, and then fails deep inside it; these
helpers let ``fit`` reject a setting first, naming the parameter and what
to pass instead.
"""

import copy
import difflib
import functools
import inspect
import sys

from sklearn.base import clone
from skorch.callbacks import LRScheduler

from ._nets import ClusteringNet, callback_class


def _callback_name(item):
    """The name of a ``(name, callback)`` entry of ``callbacks``; ``None`` if unnamed."""
    # skorch accepts the pair as a tuple or a list.
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0]
    return None


def _is_callback(obj):
    """Whether ``obj`` is a skorch callback or callback class, as skorch takes them."""
    from skorch.callbacks import Callback

    return isinstance(obj, Callback) or (
        isinstance(obj, type) and issubclass(obj, Callback)
    )


def _schedule_names():
    from .callbacks import SCHEDULE_NAMES

    return frozenset(SCHEDULE_NAMES.values())


@functools.cache
def _default_callback_names():
    """Names of the callbacks every net of the estimators installs itself."""
    # skorch's defaults do not depend on the net's settings: an uninitialised
    # net lists them.
    net = ClusteringNet.__new__(ClusteringNet)
    return frozenset(name for name, _ in net.get_default_callbacks())


def _signature_parameters(factory):
    """The parameters of the callable ``factory``'s signature, ``None`` if unreadable.

    Some builtins have no signature to read.
    """
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None


def _takes_keyword(factory, name, unknown=False):
    """Whether the callable ``factory`` accepts the keyword argument ``name``.

    ``unknown`` is the answer when the signature cannot tell: none to read
    (some builtins), or a ``**kwargs`` that may or may not take it.
    """
    parameters = _signature_parameters(factory)
    if parameters is None:
        return unknown
    if name in parameters:
        return True
    return unknown and any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _keywords(factory):
    """The names of the keyword arguments ``factory``'s signature lists."""
    parameters = _signature_parameters(factory) or {}
    keyword_kinds = (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    return [p.name for p in parameters.values() if p.kind in keyword_kinds]


def _did_you_mean(name, known, prefix=""):
    """`` Did you mean 'x'?`` when a name in ``known`` is close to ``name``.

    A misspelt parameter is reported with the name it most likely meant, as
    Python does for a misspelt attribute.
    """
    close = difflib.get_close_matches(name, known, n=1)
    return f" Did you mean {prefix + close[0]!r}?" if close else ""


def _fresh_callback(callback):
    """A copy of the user's ``callback`` for one net.

    A deep copy, so that no state carries over between nets. A callback that
    cannot be deep-copied (it holds a lock, an open file, a writer) is
    rebuilt from its parameters with :func:`sklearn.base.clone`; when that
    fails too, the instance itself is used, shared by every net of every fit.
    """
    try:
        return copy.deepcopy(callback)
    # Whatever the copy raises (TypeError from pickling a lock, RuntimeError
    # from a non-leaf tensor, ...): the callback is then used another way.
    except Exception:
        pass
    try:
        return clone(callback, safe=False)
    except Exception:
        return callback


def _check_scores_training_data(estimator_name, callback):
    """Reject a scoring callback that would score validation data, which is none.

    skorch's ``EpochScoring`` and ``BatchScoring`` score the validation
    data unless ``on_train=True``; with no validation split they would
    silently record nothing.
    """
    from skorch.callbacks.scoring import ScoringBase

    if isinstance(callback, ScoringBase) and not callback.on_train:
        raise ValueError(
            f"{estimator_name} has no validation data for the callback "
            f"{type(callback).__name__} to score: training uses all the data. "
            "Pass it on_train=True to score the training data."
        )


def _check_not_load_init_state(estimator_name, callback):
    """Reject skorch's ``LoadInitState``, which would restart every stage.

    Each stage of a fit is a net of its own that starts from the weights the
    stage before it left. ``LoadInitState`` loads the last checkpoint
    written when a net begins training: every stage would take the weights,
    optimiser state and history of the stage before it (the pretraining's
    for the clustering stage), and every start of IMSAT or DAC those of the
    start before it.
    """
    from skorch.callbacks import LoadInitState

    if issubclass(callback_class(callback), LoadInitState):
        raise ValueError(
            f"{estimator_name} cannot use skorch's LoadInitState: a fit trains "
            "its nets in stages, and loading the last checkpoint as each one "
            "begins would start every stage from the one before it, history "
            "included. Save and load the fitted estimator with pickle instead; "
            "the autoencoder methods reuse a pretraining across fits through "
            "memory=."
        )


def _check_lr_policy(estimator_name, policy):
    """Reject an ``LRScheduler`` policy name skorch cannot resolve.

    skorch looks a policy given by name up among the schedulers it imports
    (``torch.optim.lr_scheduler``'s and its own) only when training begins,
    and fails there with an ``AttributeError``.
    """
    module = sys.modules[LRScheduler.__module__]
    if isinstance(policy, str) and not isinstance(getattr(module, policy, None), type):
        raise ValueError(
            f"{estimator_name} got the LRScheduler policy {policy!r}, which "
            "names no learning rate scheduler skorch knows. Give the name of "
            "a class in torch.optim.lr_scheduler (such as 'StepLR' or "
            "'CosineAnnealingLR'), or the class itself."
        )


def _check_monitor(estimator_name, callback):
    """Reject a callback that monitors a validation score, which is never recorded.

    Training uses all the data, with no validation split, so skorch's
    ``EarlyStopping()`` or ``Checkpoint()`` with their default
    ``monitor="valid_loss"`` would fail at the end of the first epoch with
    a ``KeyError`` from the history.
    """
    if isinstance(callback, type):
        parameter = inspect.signature(callback).parameters.get("monitor")
        monitor = None if parameter is None else parameter.default
        name = callback.__name__
    else:
        monitor = getattr(callback, "monitor", None)
        name = type(callback).__name__
    if isinstance(monitor, str) and monitor.startswith("valid_"):
        raise ValueError(
            f"{estimator_name} records no {monitor!r}: training uses all the "
            "data, with no validation split. Give the callback "
            f"{name} monitor='train_loss' (or one of the loss terms in "
            "net_.history) instead."
        )


def _without_prefix(keywords, prefix):
    """The entries of ``keywords`` whose names start with ``prefix``, without it."""
    return {
        name.removeprefix(prefix): value
        for name, value in keywords.items()
        if name.startswith(prefix)
    }
