"""Parameter descriptions shared by the estimators' docstrings, written once.

An estimator's class docstring names a shared entry with a placeholder line,
``{device}`` alone on a line in its Parameters section, and the class is
decorated with :func:`fill_doc`, which replaces that line with the entry of
:data:`_PARAMETERS`, indented as the placeholder is. Only whole lines of the
form ``{key}`` are placeholders, so braces elsewhere in a docstring (e.g.
``{array-like, sparse matrix}``) are left alone, and an unknown key raises
when the module is imported.

An entry is shared where the text is the same for every estimator that
uses it; an estimator whose parameter means something different (ACAI's
critic, IMSAT's and DAC's networks, DEC's two stages, ...) keeps its own
text in its docstring. Variants of one parameter are named after what they
describe, e.g. ``callbacks_pretraining`` (one net) and
``callbacks_two_stages`` (DEC and DCN).
"""

import re
import textwrap

# Each entry as it appears in a numpydoc Parameters section, unindented:
# the "name : type" line, then the description indented by four spaces.
_PARAMETERS = {
    "n_clusters": """\
n_clusters : int, default=8
    Number of clusters.""",
    "hidden_dims": """\
hidden_dims : tuple of int or "auto", default="auto"
    Widths of the encoder's hidden layers (the decoder mirrors them).
    Ignored when ``input_shape`` or ``encoder`` is given.
    ``"auto"`` uses ``(500, 500, 2000)``, the network of Xie et al.
    (2016), from 5,000 training samples on and ``(256, 128)`` below:
    the larger network needs more data and more steps than a small
    set offers.""",
    "embedding_dim": """\
embedding_dim : int, default=10
    Size of the embedding that k-means clusters.""",
    "embedding_dim_centres": """\
embedding_dim : int, default=10
    Size of the embedding the centres live in.""",
    "input_shape": """\
input_shape : tuple of int, default=None
    ``(channels, height, width)`` of one sample. When given, ``X`` (still
    passed flat) is reshaped to images and a convolutional autoencoder is
    used.""",
    "encoder_decoder": """\
encoder, decoder : torch.nn.Module, default=None
    Your own modules. The encoder maps a batch of samples (flat, or shaped
    by ``input_shape``) to ``(batch, embedding)``; the decoder maps back.
    They are copied before training, so the instances you pass stay
    untouched.""",
    "normalize_embedding_as_autoencoder_kmeans": """\
normalize_embedding : bool, default=True
    Scale each embedding to unit length (the encoder ends with
    :class:`~skdeepcluster.nn.L2Normalize`), so k-means clusters
    directions, as in :class:`AutoencoderKMeans`.""",
    "pretrain_epochs_reconstruction": """\
pretrain_epochs : int or "auto", default="auto"
    Epochs of reconstruction training.
    ``"auto"`` trains at least 100 epochs and at least 2,000 optimiser
    steps (``ceil(n_samples / batch_size)`` steps an epoch), so small
    data sets get enough updates.""",
    "smoothing_weight_as_autoencoder_kmeans": """\
smoothing_weight : float or "auto", default="auto"
    Weight of the neighbourhood smoothing term of the autoencoder
    training, which pulls each sample's embedding towards the mean
    embedding of its ``n_neighbors`` nearest neighbours (see
    :class:`AutoencoderKMeans`).
    ``0`` trains without it, as in the paper.
    ``"auto"`` is ``1.0`` from 5,000 training samples on and ``0``
    below: with few samples per cluster the neighbourhoods cross
    cluster boundaries and the pull merges clusters.""",
    "smoothing_weight_pretraining": """\
smoothing_weight : float or "auto", default="auto"
    Weight of the neighbourhood smoothing term of the pretraining, which
    pulls each sample's embedding towards the mean embedding of its
    ``n_neighbors`` nearest neighbours (see :class:`AutoencoderKMeans`).
    ``0`` pretrains a plain autoencoder.
    ``"auto"`` is ``1.0`` from 5,000 training samples on and ``0``
    below: with few samples per cluster the neighbourhoods cross
    cluster boundaries and the pull merges clusters.""",
    "n_neighbors": """\
n_neighbors : int, default=10
    Number of nearest neighbours (in the current embedding) that define a
    sample's neighbourhood for the smoothing term.""",
    "smoothing_start": """\
smoothing_start : float in [0, 1], default=0.5
    Fraction of ``pretrain_epochs`` trained without the smoothing term
    before it starts.""",
    "batch_size": """\
batch_size : int, default=256
    Mini-batch size.""",
    "batch_size_two_stages": """\
batch_size : int, default=256
    Mini-batch size of both stages.""",
    "lr": """\
lr : float, default=1e-3
    Learning rate of the Adam optimiser.""",
    "lr_pretraining": """\
lr : float, default=1e-3
    Learning rate of the Adam optimiser during pretraining.""",
    "n_init_kmeans": """\
n_init : int or "auto", default=10
    Number of k-means initialisations on the embedding; the run with the
    lowest inertia is kept. ``"auto"`` is 10, accepted for
    compatibility with :class:`~sklearn.cluster.KMeans` (whose
    ``"auto"`` means one run with k-means++ initialisation).""",
    "n_init_pretrained": """\
n_init : int or "auto", default=10
    Number of k-means initialisations on the pretrained embedding; the
    run with the lowest inertia is kept. ``"auto"`` is 10, accepted for
    compatibility with :class:`~sklearn.cluster.KMeans` (whose
    ``"auto"`` means one run with k-means++ initialisation).""",
    "device": """\
device : str, torch.device or None, default="cpu"
    ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (CUDA when
    available, else MPS when available, else the CPU), a
    :class:`torch.device`, or ``None`` (the CPU). A fitted model is
    pickled with its networks on the CPU; loaded on a machine without
    ``device``, it runs on the CPU, with a warning.""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, batch shuffling and k-means. ``fit``
    draws every random number from generators seeded from
    ``random_state`` and owned by that fit, never from torch's global
    generator, so fits running in concurrent threads (a grid search with
    joblib's threading backend) do not disturb one another. Pass an int
    for reproducible labels: on the CPU, the same ``random_state`` with the
    same number of PyTorch threads gives the same labels (see the user
    guide's differences from KMeans). ``None`` draws the seeds from
    NumPy's global generator, as in scikit-learn. Your own ``encoder``
    and ``decoder`` may draw from torch's global generator themselves
    (dropout): ``fit`` then seeds it from ``random_state`` and restores it
    afterwards, which keeps such a fit reproducible as long as no other
    thread draws from it meanwhile.""",
    "verbose": """\
verbose : int, default=0
    Print skorch's per-epoch progress table when positive.""",
    "memory_shared": """\
memory : str, joblib.Memory or None, default=None
    Cache of the pretrained autoencoder: the path of a cache directory or
    a :class:`joblib.Memory`. A fit whose pretraining repeats an earlier
    one (same data, network, pretraining parameters and seed, so an int
    ``random_state``) loads the trained autoencoder instead of training
    it, and gives the same result. AutoencoderKMeans, DEC and DCN pretrain
    the same way and share entries, so a grid search over their clustering
    parameters trains the autoencoder once per training set. ``None``
    caches nothing.""",
    "callbacks_pretraining": """\
callbacks : list of callbacks or (name, callback) tuples, default=None
    :mod:`skorch.callbacks` added to the autoencoder's net (stage
    ``"pretraining"``). Each net gets its own copy, so the list passed here
    is never changed; a callback can read ``net.stage`` to act in one stage
    only (see the user guide's training control page).""",
    "callbacks_two_stages": """\
callbacks : list of callbacks or (name, callback) tuples, default=None
    :mod:`skorch.callbacks` added to both nets of the fit (stages
    ``"pretraining"`` and ``"clustering"``). Each net gets its own copy, so
    the list passed here is never changed; a callback can read
    ``net.stage`` to act in one stage only (see the user guide's training
    control page).""",
    "optimizer_pretraining": """\
optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
    Optimiser class of the autoencoder's net (stage ``"pretraining"``),
    built with ``lr`` and the ``optimizer__*`` keywords.""",
    "optimizer_two_stages": """\
optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
    Optimiser class of both nets of the fit (stages ``"pretraining"`` and
    ``"clustering"``), built with ``lr`` and the ``optimizer__*`` keywords.""",
    "kwargs": """\
**kwargs : dict
    skorch keywords passed on with ``callbacks``:
    ``optimizer__*`` (e.g. ``optimizer__weight_decay``),
    ``iterator_train__*`` (e.g. ``iterator_train__num_workers``) and
    ``callbacks__*`` (e.g. ``callbacks__print_log__floatfmt``). They are
    parameters like the others (``get_params``, ``set_params``,
    ``clone``, grid searches); ``fit`` raises a ValueError for any
    other keyword.""",
}

_PLACEHOLDER = re.compile(r"^(?P<indent>[ ]*)\{(?P<key>\w+)\}[ ]*$", re.MULTILINE)


def fill_doc(obj):
    """Replace the ``{key}`` placeholder lines of ``obj.__doc__`` by their entries.

    Parameters
    ----------
    obj : class or function
        Object whose docstring holds placeholders.

    Returns
    -------
    obj : class or function
        ``obj``, its ``__doc__`` filled in.
    """

    def entry(match):
        key = match["key"]
        if key not in _PARAMETERS:
            raise KeyError(
                f"The docstring of {obj.__qualname__} has the placeholder {{{key}}}, "
                "which skdeepcluster._docstrings does not define."
            )
        return textwrap.indent(_PARAMETERS[key], match["indent"])

    # __doc__ is None under python -OO.
    if obj.__doc__ is not None:
        obj.__doc__ = _PLACEHOLDER.sub(entry, obj.__doc__)
    return obj
