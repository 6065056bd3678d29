"""Caching of the autoencoder pretraining (the ``memory`` parameter)."""

import functools
import hashlib
import io
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.utils.validation import check_memory
from skorch.callbacks import PrintLog
from skorch.history import History

from ._nets import callback_class
from ._torch_utils import ArrayRows, to_numpy

# Attributes skorch's ``initialize`` sets up: the net rebuilt on a cache hit
# already has them, so they are not part of what training produced.
_SKORCH_ATTRIBUTES = frozenset(
    {
        "history_",
        "initialized_",
        "virtual_params_",
        "init_context_",
        "callbacks_",
        "prefixes_",
        "cuda_dependent_attributes_",
    }
)

# Net parameters left out of the key: they do not change what training
# computes (``verbose``, the names used in messages), or the key holds what
# matters about them in another form (the module's architecture and weights,
# the states of the net's generators, the device type).
_NOT_IN_KEY = frozenset(
    {
        "module",
        "verbose",
        "estimator_name",
        "lr_name",
        "iterator_train__generator",
        "device_generator",
        "init_generator",
        "device",
    }
)


def pretrain_with_memory(memory, net, dataset, global_generator=False):
    """Train the initialized ``net`` on ``dataset``, through the cache ``memory``.

    ``memory`` is the estimator's parameter: a path or a :class:`joblib.Memory`.

    On a miss the net is trained and its trained state stored; on a hit the
    stored state is loaded into ``net`` instead. Either way ``net`` ends as
    training leaves it, its generators included (shuffling and device), so
    that the rest of the fit draws the same numbers whether the cache was hit
    or not. With ``global_generator`` (the fit seeded torch's global
    generators for the user's modules, see ``torch_seed``) the same holds
    for the global generators (CPU, and the net's CUDA device), and their
    state is part of the key.
    """
    memory = check_memory(memory)
    fit = memory.cache(_fit_pretraining, ignore=["net", "dataset"])
    key = _pretraining_key(net, dataset, global_generator)
    if memory.location is not None and not _settings_hashable(net, key["params"]):
        net.partial_fit(dataset)
        return
    if net.progress_sink() is not None and fit.check_call_in_cache(net, dataset, key):
        # The progress table of the stage is not printed on a hit: say why.
        net.say(f"{net.estimator_name}: {net.stage} loaded from the cache (memory)")
    _load_trained_state(net, fit(net, dataset, key))


def _settings_hashable(net, params):
    """Whether joblib can hash the net's settings ``params``, warning when not.

    joblib hashes the key by pickling it, and names a function by its module
    and name: a lambda or a function defined inside another (a callback's
    scoring, an optimiser factory) has no such name. Only the settings are
    tried, not the data, which the cache then hashes once.
    """
    try:
        joblib.hash(params)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        reason = str(exc.args[0] if exc.args else exc).splitlines()[0][:200]
        warnings.warn(
            f"{net.estimator_name}: the {net.stage} is not cached (memory): "
            f"joblib cannot hash its settings ({type(exc).__name__}: {reason})."
            " A lambda or a function defined inside another function cannot "
            "be hashed; define it at the top level of a module to cache this "
            "training.",
            UserWarning,
            stacklevel=3,
        )
        return False
    return True


def count_cached_pretrainings(location):
    """Number of pretrainings stored in the joblib cache directory ``location``.

    Only the entries of :func:`_fit_pretraining`: the same cache also holds
    the UMAP layouts of ``clustering="auto"``, which a fit that loaded its
    pretraining may still add. ``None`` (no cache) holds none.
    """
    if location is None:
        return 0
    return sum(
        1
        for path in Path(location).rglob("output.pkl")
        if _fit_pretraining.__name__ in path.parts
    )


def _fit_pretraining(net, dataset, key):
    """Train ``net``; return its trained state as bytes.

    ``key`` is not used here: joblib hashes it (and not the ignored ``net``
    and ``dataset``) to find the cache entry; its ``"global_generator"``
    says whether to store the state of torch's global generators.
    """
    net.partial_fit(dataset)
    device = torch.device(net.device)
    global_generator = key["global_generator"]
    fitted = {
        name: value
        for name, value in vars(net).items()
        if name.endswith("_")
        and not name.startswith("_")
        and name not in _SKORCH_ATTRIBUTES
        and name[:-1] not in _learned_components(net)
    }
    state = dict(
        state_dicts={
            name: getattr(net, name + "_").state_dict()
            for name in _learned_components(net)
        },
        attributes=fitted,
        history=net.history.to_list(),
        # As arrays, so that loading with map_location leaves them on the CPU,
        # where the generators' set_state expects them.
        generator_states=_generator_states(net),
        rng_state=torch.get_rng_state().numpy() if global_generator else None,
        cuda_rng_state=(
            torch.cuda.get_rng_state(device).numpy()
            if global_generator and device.type == "cuda"
            else None
        ),
    )
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _load_trained_state(net, trained):
    # The cache is written by this package through joblib, which unpickles
    # its entries anyway: loading the pickled attributes adds no new trust.
    state = torch.load(io.BytesIO(trained), map_location=net.device, weights_only=False)
    for name, state_dict in state["state_dicts"].items():
        getattr(net, name + "_").load_state_dict(state_dict)
    for name, value in state["attributes"].items():
        setattr(net, name, value)
    net.history_ = History(state["history"])
    for generator, generator_state in zip(
        _generators(net), state["generator_states"], strict=True
    ):
        if generator is not None:
            generator.set_state(torch.from_numpy(generator_state))
    if state["rng_state"] is not None:
        torch.set_rng_state(torch.from_numpy(state["rng_state"]))
    if state["cuda_rng_state"] is not None:
        torch.cuda.set_rng_state(
            torch.from_numpy(state["cuda_rng_state"]), torch.device(net.device)
        )


def _learned_components(net):
    """Names of the net's modules, criteria and optimisers (skorch's ``name_``)."""
    return (*net._modules, *net._criteria, *net._optimizers)


def _generators(net):
    """The net's shuffling and device generators (either may be ``None``)."""
    return (
        getattr(net, "iterator_train__generator", None),
        getattr(net, "device_generator", None),
    )


def _generator_states(net):
    return [
        None if generator is None else generator.get_state().numpy()
        for generator in _generators(net)
    ]


def _pretraining_key(net, dataset, global_generator=False):
    """Everything that decides what training the initialized ``net`` on ``dataset`` gives.

    The class and parameters of the net; the architecture and initial weights
    of its modules (which follow from the sizes, the user's encoder and
    decoder, and the seed); the states of its generators, which shuffle the
    batches and make the draws of training (ACAI's interpolation, SNNL's
    pseudo-labelling); with ``global_generator``, the state of torch's
    global generators, which the user's modules may draw from (dropout); the
    device type, and on the CPU the thread count and the vector instructions
    PyTorch uses; the versions of skdeepcluster (and a digest of its
    source), skorch and torch, whose code does the training (an entry
    written by other code is not reused: joblib's cache sees only the code
    of the function it wraps, not the training loop behind it); and the
    data, with the samples' weights when they are unequal. Arrays are
    passed as NumPy arrays, which joblib hashes by content.
    Training rows read on demand (:class:`~skdeepcluster._torch_utils.ArrayRows`)
    are represented by the input they are read from: joblib hashes a memory
    map through its buffer, without copying it into memory.
    """
    all_params = net.get_params(deep=False)
    # The progress table's settings (its sink, its format), like verbose,
    # change what is shown, not what is trained; those of a callback put in
    # its place may change the training.
    print_log = all_params.get("callbacks__print_log", PrintLog)
    shown_only = "callbacks__print_log__" if _is_print_log(print_log) else None
    params = {
        name: _key_value(value)
        for name, value in all_params.items()
        if not name.startswith("_")
        and name not in _NOT_IN_KEY
        and not (shown_only and name.startswith(shown_only))
    }
    modules = {
        name: (
            repr(getattr(net, name + "_")),
            [
                type(m).__module__ + "." + type(m).__qualname__
                for m in getattr(net, name + "_").modules()
            ],
            {k: to_numpy(v) for k, v in getattr(net, name + "_").state_dict().items()},
        )
        for name in net._modules
    }
    device = torch.device(net.device)
    key = dict(
        net_class=type(net).__module__ + "." + type(net).__qualname__,
        params=params,
        modules=modules,
        generator_states=_generator_states(net),
        global_generator=global_generator,
        rng_state=torch.get_rng_state().numpy() if global_generator else None,
        cuda_rng_state=(
            torch.cuda.get_rng_state(device).numpy()
            if global_generator and device.type == "cuda"
            else None
        ),
        device=device.type,
        # On the CPU the thread count and the vector instructions PyTorch
        # uses set the order of floating-point sums, which can change what
        # training gives: an entry written under others is not reused.
        cpu=(
            (torch.get_num_threads(), torch.backends.cpu.get_cpu_capability())
            if device.type == "cpu"
            else None
        ),
        versions=_versions(),
        # The rows as the net sees them: a dense tensor is already shifted
        # and divided (input_offset_, input_scale_), rows read from an array
        # are when read.
        X=(
            (_hashable_rows(dataset.X.data), dataset.X.offset, dataset.X.scale)
            if isinstance(dataset.X, ArrayRows)
            else to_numpy(dataset.X)
        ),
    )
    # Only when present, so that unweighted fits keep their keys.
    if dataset.sample_weight is not None:
        key["sample_weight"] = to_numpy(dataset.sample_weight)
    return key


def _is_print_log(callback):
    """Whether ``callback`` (an instance or a class) is skorch's PrintLog."""
    return issubclass(callback_class(callback), PrintLog)


def _hashable_rows(data):
    """The rows an ``ArrayRows`` reads (its ``data``), as the key holds them.

    joblib hashes a contiguous array through its buffer, but copies one
    that is not (a column slice of a memory map, say) whole into memory
    first: such an array is stood in for by a digest of its rows, read a
    few at a time. The rows of weight 0 left out of a memory map (an
    object that keeps the map and the kept rows' indices) are handled the
    same way.
    """
    rows = getattr(data, "rows", None)
    if rows is not None and hasattr(data, "data"):
        return (_hashable_rows(data.data), rows)
    if not isinstance(data, np.ndarray) or (
        data.flags.c_contiguous or data.flags.f_contiguous
    ):
        return data
    digest = hashlib.sha256(f"{data.shape} {data.dtype.str}".encode())
    step = max(1, (1 << 20) // max(1, data[:1].nbytes))
    for start in range(0, len(data), step):
        digest.update(np.ascontiguousarray(data[start : start + step]).data)
    return digest.hexdigest()


def _versions():
    """Versions of the packages whose code trains the net.

    skdeepcluster's own code enters by a digest of its source as well: a
    version number does not change with every edit of a development
    install, and an entry its earlier code wrote must not be reused.
    """
    import skorch

    from . import __version__

    return dict(
        skdeepcluster=__version__,
        skdeepcluster_source=_source_digest(Path(__file__).parent),
        skorch=skorch.__version__,
        torch=torch.__version__,
    )


@functools.cache
def _source_digest(package):
    """SHA-256 of the Python files under ``package``, their paths and contents.

    Read once per process: the code a process trains with is the code it
    imported.
    """
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _key_value(value):
    """A parameter's value as the key holds it: tensors as arrays, numbers as floats.

    joblib hashes ``0`` and ``0.0`` differently, but a weight of either
    trains the same net; as floats, equal numbers give one entry.
    """
    if isinstance(value, torch.Tensor):
        return to_numpy(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value
