"""Glue between NumPy/scikit-learn and PyTorch: devices, seeding, datasets, inference, k-means."""

import contextlib
import functools
import math
import os
import re
import threading
import warnings
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

_DEVICE_PATTERN = re.compile(r"^(cpu(:\d+)?|auto|cuda(:\d+)?|mps(:0)?)$")

# Smallest batch that inference runs in (predict, transform, ... and the
# passes over all the training data during fit: DEC's target, the smoothing
# targets, ...). One size everywhere, so that a sample's output does not
# depend on which of these paths computed it.
INFERENCE_BATCH_SIZE = 1024


def resolve_device(device):
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``None`` means the CPU, as in skorch. ``"auto"`` picks the first CUDA
    device when one is available, else Apple's MPS when available, else the
    CPU. Asking for a CUDA or MPS device that does not exist is an error
    rather than a silent fall-back, so a user who asked for a GPU knows they
    did not get one.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"`` (or ``"cpu:N"``, the same device), ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, ``"auto"``, the :class:`torch.device` of one
        of these, or ``None``.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster._torch_utils import resolve_device
    >>> resolve_device("cpu"), resolve_device(None), resolve_device(torch.device("cpu"))
    (device(type='cpu'), device(type='cpu'), device(type='cpu'))
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ValueError(
            f"device={device!r} is not understood; use 'cpu', 'cuda', 'cuda:N', "
            "'mps', 'auto' or None."
        )
    if device.startswith("cpu"):
        # torch accepts an index on the CPU ("cpu:0", torch.device("cpu", 0))
        # and ignores it: there is one CPU device.
        return torch.device("cpu")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                f"(torch {torch.__version__}, built with CUDA "
                f"{torch.version.cuda or 'none'}); use device='cpu' or 'auto'."
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible."
            )
    if device.startswith("mps") and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return torch.device(device)


def net_on_cpu(net):
    """The skorch ``net``, or a copy of it with every tensor on the CPU.

    skorch pickles a net's modules, criteria and optimisers with their
    devices; loading them where that device does not exist works only
    through a fall-back that warns, and any other tensor attribute fails to
    load. The copy is made through skorch's own ``__getstate__`` and
    ``__setstate__``, loading the modules with ``map_location="cpu"``, so the
    original net is left where it is.
    """
    if net.device is not None and torch.device(net.device).type == "cpu":
        return net
    state = net.__getstate__()
    state["device"] = "cpu"
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            state[key] = value.cpu()
    copy = type(net).__new__(type(net))
    copy.__setstate__(state)
    return copy


def move_net(net, device):
    """Move the modules and criteria of a skorch ``net`` to ``device``, in place.

    The optimisers' state stays where it is: a fitted estimator only runs
    the modules, and ``fit`` builds new optimisers.
    """
    for name in (*net._modules, *net._criteria):
        getattr(net, name + "_").to(device)
    net.device = device


@contextlib.contextmanager
def torch_seed(seed, device):
    """Seed torch's global generators inside the block and restore them after.

    Only for the modules a user passes (an ``encoder`` and ``decoder``):
    random draws they make themselves, such as dropout, come from torch's
    global generator, which cannot be swapped for a generator of the fit.
    Every draw of the package's own code uses the fit's generators instead
    (see :func:`make_generator`).

    The CPU's generator and that of the fit's device are seeded, nothing
    else (``torch.manual_seed`` would seed every CUDA device, queued until
    CUDA starts on a CPU fit, and leave them seeded). Blocks may overlap, in
    fits running in threads: the first block to seed a generator keeps the
    state it found, and the last one to leave restores it, whichever order
    they end in, so that the caller finds the state it left.
    """
    generators = _global_generators(device)
    # The generators this block has seeded: only those are given back, also
    # when seeding one of them fails.
    entered = []
    try:
        with _GLOBAL_GENERATOR_LOCK:
            found = {
                key: get_state()
                for key, get_state, _, _ in generators
                if key not in _SEEDED_GLOBAL_GENERATORS
            }
            for key, _, _, manual_seed in generators:
                entry = _SEEDED_GLOBAL_GENERATORS.setdefault(key, [0, found.get(key)])
                entry[0] += 1
                entered.append(key)
                manual_seed(seed)
        yield
    finally:
        with _GLOBAL_GENERATOR_LOCK:
            for key, _, set_state, _ in generators:
                if key not in entered:
                    continue
                entry = _SEEDED_GLOBAL_GENERATORS[key]
                entry[0] -= 1
                if entry[0] == 0:
                    set_state(entry[1])
                    del _SEEDED_GLOBAL_GENERATORS[key]


# Generator key -> [number of torch_seed blocks inside, state before the
# first of them].
_SEEDED_GLOBAL_GENERATORS = {}


def _global_generators(device):
    """``(key, get_state, set_state, manual_seed)`` of each generator to seed.

    torch's global generator of the CPU, and that of a CUDA or MPS
    ``device`` (the current CUDA device's when it has no index).
    """
    generators = [
        (
            "cpu",
            torch.get_rng_state,
            torch.set_rng_state,
            torch.random.default_generator.manual_seed,
        )
    ]
    if device.type == "cuda":
        # torch fills default_generators when CUDA initialises, which it
        # does lazily: with an index given (device="cuda:0"), no
        # current_device() call has initialised it, and a fit whose first
        # CUDA call this is would find the tuple empty.
        torch.cuda.init()
        index = torch.cuda.current_device() if device.index is None else device.index
        generators.append(
            (
                f"cuda:{index}",
                functools.partial(torch.cuda.get_rng_state, index),
                lambda state: torch.cuda.set_rng_state(state, index),
                torch.cuda.default_generators[index].manual_seed,
            )
        )
    elif device.type == "mps":
        generators.append(
            (
                "mps",
                torch.mps.get_rng_state,
                torch.mps.set_rng_state,
                torch.mps.manual_seed,
            )
        )
    return generators


def make_generator(seed, device="cpu"):
    """A :class:`torch.Generator` on ``device``, seeded with ``seed``.

    Each fit draws its random numbers from generators of its own, seeded
    from ``random_state``, never from torch's global generator: two fits in
    two threads then draw the same numbers as they would one after the other,
    and the caller's global state is left alone.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


# Layers whose default initialisation torch draws from its global generator,
# re-drawn here from a given generator with the same distributions: the
# weight kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
# and the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Linear.reset_parameters,
# _ConvNd.reset_parameters, transposed convolutions included).
_DEFAULT_INIT_LAYERS = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
# Layers whose reset_parameters draws nothing (ones and zeros, running
# statistics reset).
_DETERMINISTIC_RESET_LAYERS = (
    torch.nn.modules.batchnorm._NormBase,
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
)
# Serialises the fall-back below: with it, two fits in two threads do not
# seed torch's global generator under each other's feet.
_GLOBAL_GENERATOR_LOCK = threading.Lock()


def init_parameters(module, generator):
    """Re-initialise the weights of ``module``'s layers from ``generator``.

    Linear and convolution layers (transposed ones too) get torch's default
    initialisation, drawn from the CPU ``generator`` instead of torch's
    global generator, so the same generator gives the same weights on every
    device. Normalisation layers are reset (ones, zeros, fresh running
    statistics). A layer of any other type with parameters of its own (a
    user's module) is reset by its ``reset_parameters`` method, which can
    only draw from torch's global generator: that generator is seeded from
    ``generator`` for the call, under a lock, and restored after.

    Parameters
    ----------
    module : torch.nn.Module
        Changed in place.
    generator : torch.Generator
        A CPU generator.

    Returns
    -------
    list of torch.nn.Module
        The submodules with parameters or buffers of their own that were
        left as they were (no known type and no ``reset_parameters``).
    """
    untouched = []
    for layer in module.modules():
        own = [*layer.parameters(recurse=False), *layer.buffers(recurse=False)]
        if not own:
            continue
        if isinstance(layer, _DEFAULT_INIT_LAYERS):
            _init_default(layer, generator)
        elif isinstance(layer, _DETERMINISTIC_RESET_LAYERS):
            layer.reset_parameters()
        elif hasattr(layer, "reset_parameters"):
            _reset_with_global_generator(layer, generator)
        else:
            untouched.append(layer)
    return untouched


def _init_default(layer, generator):
    # Drawn into a CPU tensor and copied, so that the values are the same
    # whatever device the layer is on.
    weight = torch.empty(layer.weight.shape, dtype=layer.weight.dtype)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(weight)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if layer.bias is not None:
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            bias = torch.empty(layer.bias.shape, dtype=layer.bias.dtype)
            torch.nn.init.uniform_(bias, -bound, bound, generator=generator)
            layer.bias.copy_(bias)


def _reset_with_global_generator(layer, generator):
    seed = int(torch.randint(np.iinfo(np.int64).max, (), generator=generator))
    cuda_devices = sorted(
        {
            tensor.device.index or 0
            for tensor in layer.parameters(recurse=False)
            if tensor.device.type == "cuda"
        }
    )
    with _GLOBAL_GENERATOR_LOCK, torch.random.fork_rng(devices=cuda_devices):
        # Only the generators of the devices the layer is on, all restored
        # on leaving (torch.manual_seed would seed every CUDA device).
        torch.random.default_generator.manual_seed(seed)
        for index in cuda_devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        layer.reset_parameters()


def build_module(factory, generator):
    """``factory()``, a new module of the package, initialised from ``generator``.

    torch's layers initialise their weights from its global generator when
    they are constructed. The module is therefore built on the ``"meta"``
    device (for this thread only), where construction allocates and draws
    nothing, then given storage on the CPU and initialised by
    :func:`init_parameters`; the caller's global generator is not touched.

    Parameters
    ----------
    factory : callable
        Builds the module with torch's layers; must not create tensors with
        values it needs (they would be meta tensors).
    generator : torch.Generator
        A CPU generator.

    Returns
    -------
    torch.nn.Module
        On the CPU.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    untouched = init_parameters(module, generator)
    if untouched:
        # Their storage holds whatever was in memory.
        raise TypeError(
            "build_module cannot initialise the layers "
            f"{sorted({type(layer).__name__ for layer in untouched})}."
        )
    return module


class IndexedDataset(torch.utils.data.Dataset):
    """Samples of a tensor, served with their row index as the target.

    skorch passes the "target" of each batch to ``get_loss``; a clustering net
    has no target, so it receives the sample indices instead and uses them to
    look up per-sample state (DEC's target distribution, DCN's assignments,
    SNNL's labels). Batches are fetched with one tensor indexing operation
    (``__getitems__``) instead of collating samples one at a time, which keeps
    skorch's data loading as cheap as a hand-written loop.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, ...)
        The samples, already on the training device.
    sample_weight : torch.Tensor of shape (n_samples,), default=None
        Weights of the samples' loss terms, scaled to a mean of one (see
        :func:`loss_weights`); ``None`` weighs every sample equally. The nets
        read them when training starts.
    """

    def __init__(self, X, sample_weight=None):
        self.X = X
        self.sample_weight = sample_weight

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], index

    def __getitems__(self, indices):
        indices = torch.as_tensor(indices)
        return self.X[indices.to(self.X.device)], indices


def network_rows(rows, offset=0.0, scale=1.0):
    """float32 tensor of the dense rows ``rows`` less ``offset``, divided by ``scale``.

    The two steps are computed in the rows' own precision, then cast, so
    that float64 data far from 0 (timestamps, say) keeps the differences
    between its values, which float32 would round away before the offset
    is taken off. A step that would change nothing (``offset`` 0,
    ``scale`` 1) is skipped, so that data used as given keeps its exact
    values. Always a copy: read-only or memory-mapped rows are safe.
    """
    if offset != 0:
        rows = rows - offset
    if scale != 1:
        rows = rows / scale
    return torch.tensor(np.ascontiguousarray(rows), dtype=torch.float32)


def feature_mean(X, sample_weight=None, chunk_size=1024):
    """Mean of the samples ``X`` (a tensor or :class:`ArrayRows`), feature by feature.

    Weighted by ``sample_weight`` (an array of ``len(X)``) when given, so
    that an integer weight counts as that many copies of a sample. Summed in
    float64, ``chunk_size`` rows at a time, so that a memory-mapped or sparse
    input is never whole in memory and a tensor and an :class:`ArrayRows` of
    the same values give the same mean.

    Returns
    -------
    torch.Tensor of the shape of one sample, float32, on the CPU
    """
    total = torch.zeros(X.shape[1:], dtype=torch.float64)
    weight = None
    if sample_weight is not None:
        weight = torch.as_tensor(np.asarray(sample_weight), dtype=torch.float64)
    for start in range(0, len(X), chunk_size):
        rows = X[start : start + chunk_size].to("cpu", torch.float64)
        if weight is not None:
            chunk_weight = weight[start : start + chunk_size]
            rows = rows * chunk_weight.view(-1, *[1] * (rows.dim() - 1))
        total += rows.sum(dim=0)
    count = len(X) if weight is None else weight.sum()
    return (total / count).to(torch.float32)


class ArrayRows:
    """Training samples read from a NumPy array or CSR matrix a few rows at a time.

    Stands in for the training tensor when the input is not to be copied
    whole into memory (a memory-mapped array, which may be larger than the
    RAM, or a sparse matrix, whose dense copy may not fit). Indexing reads
    only the rows asked for, converts them to a float32 tensor on ``device``
    shaped ``(n_rows, *sample_shape)``, and leaves nothing else in memory;
    ``len``, ``shape`` and ``device`` are those of the tensor it stands for.
    :class:`IndexedDataset` serves its batches and :func:`batched` maps a
    function over it, as they do for a tensor, and with the same values: a
    row is converted to float32 by itself, the same way whether it is read
    here or as part of the whole input.

    Parameters
    ----------
    data : ndarray or CSR matrix of shape (n_samples, n_features)
        Validated float32 or float64 samples.
    sample_shape : tuple of int
        Shape of one sample for the network: ``(n_features,)``, or
        ``input_shape``.
    device : torch.device
    offset, scale : float, default=0.0 and 1.0
        What every row is reduced by, then divided by, once converted (the
        estimator's ``input_offset_`` and ``input_scale_``), as the dense
        training tensor is.
    """

    def __init__(self, data, sample_shape, device, offset=0.0, scale=1.0):
        self.data = data
        self.sample_shape = tuple(sample_shape)
        self.device = device
        self.offset = offset
        self.scale = scale

    def __len__(self):
        return self.data.shape[0]

    @property
    def shape(self):
        return (len(self), *self.sample_shape)

    def __getitem__(self, key):
        """Rows ``key`` (an int, a slice, or an array or tensor of indices)."""
        if isinstance(key, torch.Tensor):
            key = key.item() if key.dim() == 0 else key.cpu().numpy()
        if isinstance(key, Integral):
            return self[np.array([key])][0]
        rows = self.data[key]
        if sp.issparse(rows):
            rows = rows.toarray()
        # A copy: a slice of a memory map is a view of the file.
        tensor = network_rows(rows, self.offset, self.scale)
        return tensor.view(-1, *self.sample_shape).to(self.device)


def loss_weights(sample_weight, device):
    """Per-sample weights of the training losses, or ``None`` for equal weights.

    The weights are divided by their mean, so that a batch's weighted mean
    loss ``mean_i(w_i * loss_i)`` is on the scale of the unweighted one and,
    averaged over the batches of an epoch, estimates the weighted mean over
    the training set. Equal weights give ``None``: the nets then compute
    their losses exactly as without weights.

    Parameters
    ----------
    sample_weight : ndarray of shape (n_samples,) or None
        Positive weights.
    device : torch.device

    Returns
    -------
    torch.Tensor of shape (n_samples,), float32, or None
    """
    if sample_weight is None or np.all(sample_weight == sample_weight[0]):
        return None
    weights = sample_weight / sample_weight.mean()
    return torch.as_tensor(weights, dtype=torch.float32, device=device)


def weighted_mean(values, weight):
    """``values.mean()``, or ``mean(weight * values)`` when ``weight`` is given.

    ``weight`` comes from :func:`loss_weights` (mean one over the training
    set, ``None`` for equal weights), so ``None`` computes exactly the
    unweighted mean.
    """
    return values.mean() if weight is None else (values * weight).mean()


def keep_batch(batch):
    """Collate function for :class:`IndexedDataset`: the batch is already whole."""
    return batch


def batched(function, X, batch_size):
    """Apply ``function`` to ``X`` in batches without gradients; concatenate.

    Each batch's output (or each tensor of a tuple output) is copied into a
    tensor allocated once for all of ``X``. Keeping every batch's small
    output until a final concatenation instead leaves them scattered among
    the batches' large freed temporaries, which the C allocator then cannot
    return: a pass of a large network over tens of thousands of samples
    held hundreds of megabytes more at its peak.
    """
    out = None
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            result = function(X[start : start + batch_size])
            parts = result if isinstance(result, tuple) else (result,)
            if out is None:
                out = tuple(part.new_empty((len(X), *part.shape[1:])) for part in parts)
            for whole, part in zip(out, parts):
                whole[start : start + len(part)] = part
    return out if isinstance(result, tuple) else out[0]


def inference_batch_size(batch_size):
    """Batch size of inference for a training ``batch_size``.

    The training batch size, but at least :data:`INFERENCE_BATCH_SIZE`.
    """
    return max(batch_size, INFERENCE_BATCH_SIZE)


@contextlib.contextmanager
def module_mode(module, training):
    """Put ``module`` in training or evaluation mode inside the block.

    Its previous mode is restored on leaving, even on an error.
    """
    was_training = module.training
    module.train(training)
    try:
        yield module
    finally:
        module.train(was_training)


def eval_mode(module):
    """Context manager: ``module`` in evaluation mode inside the block.

    Batch norm uses its running statistics and dropout is off, so the
    output for a sample does not depend on the others of its batch.
    """
    return module_mode(module, training=False)


def batched_eval(module, X, batch_size, function=None):
    """Run ``module`` on ``X`` in evaluation mode, in batches, without gradients.

    Parameters
    ----------
    module : torch.nn.Module
        Put in evaluation mode for the call (see :func:`eval_mode`).
    X : torch.Tensor of shape (n_samples, ...)
    batch_size : int
        The training batch size; inference runs in batches of
        :func:`inference_batch_size` of it.
    function : callable, default=None
        What to apply to each batch, when not ``module`` itself (e.g. one of
        its methods).

    Returns
    -------
    torch.Tensor, or tuple of torch.Tensor
        The outputs of all batches, concatenated.
    """
    with eval_mode(module):
        return batched(function or module, X, inference_batch_size(batch_size))


def nearest_neighbours(Z, n_neighbors, chunk_size=1024, candidates=None):
    """Indices of the ``n_neighbors`` nearest other rows of ``Z`` (Euclidean).

    Computed in row chunks with :func:`torch.cdist`, on ``Z``'s device, so the
    memory used is ``chunk_size`` times the number of rows searched rather
    than all pairs.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
    n_neighbors : int
        Fewer than the number of rows searched.
    chunk_size : int, default=1024
    candidates : array-like of int of shape (n_candidates,), default=None
        Distinct rows of ``Z`` among which the neighbours are searched;
        ``None`` searches all rows. With a fixed number of candidates the
        time and memory are linear in ``n_samples`` instead of quadratic.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_neighbors)
        Row indices into ``Z``.
    """
    rows = torch.arange(len(Z), device=Z.device)
    if candidates is None:
        pool, pool_position = Z, rows
    else:
        candidates = torch.as_tensor(candidates, dtype=torch.long, device=Z.device)
        pool = Z[candidates]
        # Each row's column among the candidates, -1 for the other rows.
        pool_position = torch.full_like(rows, -1)
        pool_position[candidates] = torch.arange(len(candidates), device=Z.device)
    neighbours = []
    for start in range(0, len(Z), chunk_size):
        distances = torch.cdist(Z[start : start + chunk_size], pool)
        # A sample is not its own neighbour.
        own = pool_position[start : start + chunk_size]
        is_candidate = own >= 0
        distances[
            torch.arange(len(own), device=Z.device)[is_candidate], own[is_candidate]
        ] = torch.inf
        neighbours.append(distances.topk(n_neighbors, dim=1, largest=False).indices)
    neighbours = torch.cat(neighbours)
    return neighbours if candidates is None else candidates[neighbours]


def cluster_means(Z, labels, centers, sample_weight=None):
    """Set each row of ``centers`` to the mean row of ``Z`` in its cluster.

    Weighted by ``sample_weight`` when given, as k-means weighs its centres.
    A cluster without samples keeps its row of ``centers``.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
    labels : torch.Tensor of int of shape (n_samples,)
    centers : torch.Tensor of shape (n_clusters, n_features)
        Updated in place.
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    torch.Tensor
        ``centers``.
    """
    for k in range(len(centers)):
        in_cluster = labels == k
        members = Z[in_cluster]
        if not len(members):
            continue
        if sample_weight is None:
            centers[k] = members.mean(dim=0)
        else:
            weight = torch.as_tensor(
                sample_weight[to_numpy(in_cluster)],
                dtype=members.dtype,
                device=members.device,
            )
            centers[k] = (weight @ members) / weight.sum()
    return centers


@contextlib.contextmanager
def torch_threads_kept():
    """Restore torch's intra-op thread count on leaving the block.

    Starting numba's threading layer (UMAP runs on numba) raises the thread
    count torch took from ``OMP_NUM_THREADS``; a training run after it would
    then follow another trajectory.
    """
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def nearest_center(Z, centers):
    """Index of the nearest centre of each row of ``Z``; ties go to the lowest index.

    Each distance is computed from the differences of one row and one
    centre, not through the ``|z|^2 - 2 z.c + |c|^2`` matrix-product expansion
    :func:`torch.cdist` switches to above 25 rows: that expansion loses
    precision, so the label of a sample would depend on how many samples it
    is labelled with. Computed this way, ``fit`` and ``predict`` agree.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
    centers : torch.Tensor of shape (n_clusters, n_features)

    Returns
    -------
    torch.Tensor of shape (n_samples,)

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster._torch_utils import nearest_center
    >>> # 1.0 is as far from 2.0 as from 0.0: the tie goes to centre 0.
    >>> Z, centers = torch.tensor([[0.0], [1.0], [3.0]]), torch.tensor([[2.0], [0.0]])
    >>> nearest_center(Z, centers)
    tensor([1, 0, 0])
    """
    distances = torch.cdist(
        Z, centers.to(Z.dtype), compute_mode="donot_use_mm_for_euclid_dist"
    )
    # argmin returns the first of equal minima: the lowest index.
    return distances.argmin(dim=1)


def to_numpy(tensor):
    """Detach, move to the CPU and convert to a NumPy array."""
    return tensor.detach().cpu().numpy()


def fit_kmeans(
    Z, n_clusters, n_init, random_state=None, init="k-means++", sample_weight=None
):
    """:class:`~sklearn.cluster.KMeans` fitted on the rows of ``Z``.

    Every k-means of the estimators (on an embedding, for initial centres or
    pseudo-labels) is fitted here.

    Parameters
    ----------
    Z : torch.Tensor or ndarray of shape (n_samples, n_features)
        Points to cluster; a tensor is copied to a NumPy array on the CPU.
    n_clusters : int
    n_init : int
        Number of k-means runs with different seeds; the best is kept.
    random_state : int, RandomState instance or None, default=None
    init : "k-means++", "random" or ndarray of shape (n_clusters, n_features)
        How the centres start; an array gives them (then use ``n_init=1``).
    sample_weight : ndarray or torch.Tensor of shape (n_samples,), default=None
        Weights of the rows, used as :class:`~sklearn.cluster.KMeans` uses
        them (in the k-means++ draws, the centres' means and the inertia).

    Returns
    -------
    sklearn.cluster.KMeans
        Fitted.
    """
    if isinstance(Z, torch.Tensor):
        Z = to_numpy(Z)
    if isinstance(sample_weight, torch.Tensor):
        sample_weight = to_numpy(sample_weight)
    kmeans = KMeans(n_clusters, init=init, n_init=n_init, random_state=random_state)
    with warning_filters_kept():
        # Its warning of fewer distinct points than clusters is about Z, not
        # the user's X; the estimators warn when the clusters they end with
        # are fewer than asked for, in a message that begins alike. This
        # filter must not match that one: a fit in another thread may issue
        # it meanwhile.
        warnings.filterwarnings(
            "ignore",
            r"Number of distinct clusters \(\d+\) found smaller than "
            r"n_clusters \(\d+\)\. Possibly due to duplicate points in X",
            ConvergenceWarning,
        )
        return kmeans.fit(Z, sample_weight=sample_weight)


#: Held by every block of the package that changes the warning filters.
#: ``warnings.catch_warnings`` saves the process-wide filter list when its
#: block begins and puts it back when it ends (before Python 3.14): two such
#: blocks of fits running in threads, interleaved, would each put back the
#: other's temporary filters, which would then stay in force after both
#: fits. The lock orders the package's own blocks only; those of other
#: libraries (scikit-learn's input validation has one) can still
#: interleave with them. Reentrant, as such blocks nest.
_WARNING_FILTERS_LOCK = threading.RLock()


def _new_locks_after_fork():
    """Fresh module locks in a forked child, where no thread holds them."""
    # A fork copies a lock held by another thread as held, and that thread
    # does not exist in the child to release it.
    global _GLOBAL_GENERATOR_LOCK, _WARNING_FILTERS_LOCK
    _GLOBAL_GENERATOR_LOCK = threading.Lock()
    _WARNING_FILTERS_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


@contextlib.contextmanager
def warning_filters_kept(record=False):
    """``warnings.catch_warnings(record=record)``, one such block at a time."""
    with _WARNING_FILTERS_LOCK, warnings.catch_warnings(record=record) as caught:
        yield caught


def log_student_t_assignment(Z, centers, alpha=1.0):
    """Logarithm of the Student's t soft assignment of embeddings to centres.

    ``q_ij ∝ (1 + ||z_i - mu_j||^2 / alpha) ** (-(alpha + 1) / 2)``, normalised
    so that each row sums to one; DEC's ``q``. Computed in log space: for
    far-away points the kernel underflows to zero for every centre, and
    normalising zeros (or taking their log for a KL loss) would give NaN.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
    centers : torch.Tensor of shape (n_clusters, n_features)
    alpha : float, default=1.0
        Degrees of freedom of the Student's t kernel.

    Returns
    -------
    torch.Tensor of shape (n_samples, n_clusters)
    """
    squared = torch.cdist(Z, centers).pow(2)
    log_kernel = -(alpha + 1.0) / 2.0 * torch.log1p(squared / alpha)
    return torch.log_softmax(log_kernel, dim=1)


def student_t_assignment(Z, centers, alpha=1.0):
    """Student's t soft assignment ``q`` (rows sum to one).

    See :func:`log_student_t_assignment`.
    """
    return log_student_t_assignment(Z, centers, alpha).exp()


def carry_optimizer_state(source, target):
    """Give ``target`` the state ``source`` holds for the parameters both optimise.

    DCN's joint training continues the pretrained autoencoder's training,
    on a loss that keeps the reconstruction term, with a new optimiser. A
    fresh Adam's first steps move every weight by about the learning rate,
    whatever the noise of its gradient (the second-moment estimate is then
    one squared gradient); on small data sets, where an epoch is one or two
    steps, that scatters the pretrained embedding before the moments
    settle. Continuing from the pretraining's moments avoids that shock.
    Optimisers of different classes keep their own state: their entries
    would not mean the same.
    """
    if type(source) is not type(target):
        return
    for group in target.param_groups:
        for param in group["params"]:
            state = source.state.get(param)
            if state:
                target.state[param] = {
                    key: value.clone() if torch.is_tensor(value) else value
                    for key, value in state.items()
                }


def random_affine(
    X, max_rotation=10.0, max_shift=0.1, scale_range=(0.95, 1.05), generator=None
):
    """Randomly rotate, shift and rescale each image of a batch.

    The perturbations of the DAC authors' implementation for MNIST
    (rotations up to 10 degrees, shifts up to 10 % of the size, zoom within
    5 %). DAC trains on them (``augment``), and so do the autoencoder
    estimators with ``augment=True``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, channels, height, width)
    max_rotation : float, default=10.0
        Largest rotation, in degrees.
    max_shift : float, default=0.1
        Largest shift, as a fraction of the height and width.
    scale_range : tuple of float, default=(0.95, 1.05)
        Range of the zoom factor.
    generator : torch.Generator, default=None
        Generator on ``X``'s device the perturbations are drawn from; ``None``
        draws from torch's global generator.

    Returns
    -------
    torch.Tensor of the same shape as ``X``
    """
    n = len(X)

    def draw(low, high):
        return torch.empty(n, device=X.device).uniform_(low, high, generator=generator)

    angle = torch.deg2rad(draw(-max_rotation, max_rotation))
    scale = draw(*scale_range)
    # affine_grid maps output to input coordinates in [-1, 1]: a shift of a
    # fraction f of the size is 2f there, and zooming in by s divides by s.
    shift_x, shift_y = draw(-max_shift, max_shift), draw(-max_shift, max_shift)
    shift = 2 * torch.stack([shift_x, shift_y], 1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[:, 0]], 1),
            torch.stack([sin, cos, shift[:, 1]], 1),
        ],
        1,
    )
    grid = torch.nn.functional.affine_grid(theta, list(X.shape), align_corners=False)
    return torch.nn.functional.grid_sample(
        X, grid, padding_mode="border", align_corners=False
    )
