"""Docstring text shared by the estimators and modules, written once.

A docstring names a shared entry with a placeholder line, ``{device}``
alone on a line (in its Parameters, Attributes, Notes or References
section), and the class or function is decorated with :func:`fill_doc`,
which replaces that line with the entry, indented as the placeholder is.
Only whole lines of the form ``{key}`` are placeholders, so braces elsewhere
in a docstring (e.g. ``{array-like, sparse matrix}``) are left alone, and an
unknown key raises when the module is imported.

An entry is shared where the text is the same for every docstring that uses
it; an estimator whose parameter or attribute means something different
(ACAI's critic, IMSAT's and DAC's networks, DEC's two stages, ...) keeps its
own text in its docstring. Variants of one parameter are named after what
they describe, e.g. ``callbacks_pretraining`` (one net) and
``callbacks_two_stages`` (DEC and DCN).
"""

import re
import textwrap

# How "auto" sizes pretrain_epochs, a sentence of every estimator's
# description of it (whose first sentence says what the epochs train).
_PRETRAIN_EPOCHS_AUTO = """\
``"auto"`` trains at least 100 epochs and at least 2,000 optimiser
steps (``ceil(n_samples / batch_size)`` steps an epoch), so small
data sets get enough updates."""

_NORMALIZE_EMBEDDING = """\
normalize_embedding : bool or "auto", default="auto"
    Scale each embedding to unit length (the encoder ends with
    :class:`~skdeepcluster.nn.L2Normalize`). ``"auto"`` does so when every
    value of ``X`` (after ``input_scaling``) lies in [-1, 1]: pixels, or
    features scaled to [0, 1], whose code's norm mostly tracks the overall
    intensity; it does not for data reaching beyond (standardised or raw
    features), whose norm says how far a sample lies from the rest, nor
    when ``embedding_dim=1``."""

_CENTER_INPUT = """\
Subtract the mean of the training samples (weighted by
``sample_weight``) from every sample before the encoder, and add it
back to the decoder's output (the fitted encoder begins, and the
decoder ends, with a :class:`~skdeepcluster.nn.Shift`; ``transform``
and ``inverse_transform`` take and return data on the scale of ``X``).
The network then trains on centred data, on which an image set and
its negative (light on dark, dark on light) differ only in sign; the
papers feed it the pixels as they are, so this is the package's
addition. Off by default: it helped on faces (ORL) but not on other
image sets (Fashion-MNIST), nor under ACAIKMeans' critic
(``benchmarks/NOTES.rst``). Ignored with ``encoder`` and ``decoder`` of
your own, which see ``X`` as given (after ``input_scaling``)."""

# Each entry as it appears in its numpydoc section, unindented: for a
# parameter or an attribute the "name : type" line, then the description
# indented by four spaces; for a note a paragraph; for a reference the
# citation.
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
    "input_scaling": """\
input_scaling : {"auto"} or None, default="auto"
    The defaults (learning rates, network sizes) are set for features of
    order one: used as given, digits shrunk into [0, 0.01] lost much of
    their accuracy with six of the seven methods
    (``benchmarks/NOTES.rst``). With ``"auto"``, the network sees
    ``(X - input_offset_) / input_scale_``. Non-negative data (pixels in
    0..255, scikit-learn's digits in 0..16, counts) is mapped onto [0, 1],
    less its minimum and divided by its range, as the papers divide pixels
    by 255. Data with negative values whose largest magnitude ``m`` is at
    most 1 (images stored in [-1, 1], small centred features) is mapped
    into [0, 1] as ``(X + m) / (2 m)``, so that images spanning [-1, 1]
    are fitted as the same images in [0, 1]. Data mapped so is fitted alike
    whatever its offset and unit, up to rounding, as by k-means. Data
    already of order one is used as given: within [0, 1] and spanning at
    least half of it (pixels / 255), or with negative values and a
    largest magnitude above 1 (standardised features; larger raw features
    too, which need a scaler). ``None`` always uses ``X`` as given,
    e.g. to reuse modules trained on the raw scale.""",
    "center_input": "center_input : bool, default=False\n"
    + textwrap.indent(_CENTER_INPUT, "    "),
    "augment": """\
augment : bool or "auto", default="auto"
    Train on randomly deformed copies of the images, as DEC-DA does (Guo,
    X., Zhu, E., Liu, X. and Yin, J. (2018), "Deep embedded clustering
    with data augmentation", ACML): every training batch, in every stage,
    is rotated (up to 10 degrees), shifted (up to 10 % of the height and
    width) and rescaled (within 5 %) afresh, while the clustering,
    ``transform`` and ``predict`` see the samples as they are. The network
    then learns nearby codes for a digit and its slanted or shifted copies.
    With ``True`` the images are of shape ``input_shape`` when it is given,
    else square one-channel images of ``sqrt(n_features)`` pixels a side
    (other numbers of features raise a ``ValueError``). ``"auto"``, this
    package's default, deforms them only from 5,000 training samples on,
    and only when the rows look like flattened square one-channel images
    (neighbouring features go together as pixels do: the test of
    :class:`~skdeepcluster.DAC`'s ``input_shape="auto"``) and
    ``input_shape`` is not given or is that shape; ``augment_`` says
    whether it did. ``False`` trains on
    the samples as they are, as the method's paper does. From 5,000 images
    on the deformations raised the accuracy on handwritten digits (MNIST,
    and MNIST in USPS's 16x16 format) and moved 10,000 images of clothing
    (Fashion-MNIST) by less than 0.01; on smaller image sets (objects,
    COIL-20; faces, ORL; 2,000 images of clothing) they cost accuracy
    (``benchmarks/NOTES.rst``).""",
    "encoder_decoder": """\
encoder, decoder : torch.nn.Module, default=None
    Your own modules. The encoder maps a batch of samples (flat, or shaped
    by ``input_shape``) to ``(batch, embedding)``; the decoder maps back.
    They are copied before training, so the instances you pass stay
    untouched.""",
    # What normalize_embedding does; each estimator goes on with what it
    # brings to its method, on lines indented under the placeholder.
    "normalize_embedding": _NORMALIZE_EMBEDDING,
    "normalize_embedding_as_autoencoder_kmeans": _NORMALIZE_EMBEDDING
    + """
    Then k-means clusters directions, as in :class:`AutoencoderKMeans`.""",
    "pretrain_epochs_reconstruction": """\
pretrain_epochs : int or "auto", default="auto"
    Epochs of reconstruction training.
"""
    + textwrap.indent(_PRETRAIN_EPOCHS_AUTO, "    "),
    "pretrain_epochs_auto": _PRETRAIN_EPOCHS_AUTO,
    "smoothing_weight_as_autoencoder_kmeans": """\
smoothing_weight : float or "auto", default="auto"
    Weight of the neighbourhood smoothing term of the autoencoder
    training, which pulls each sample's embedding towards the mean
    embedding of its ``n_neighbors`` nearest neighbours (see
    :class:`AutoencoderKMeans`).
    ``0`` trains without it, as in the paper.
    ``"auto"`` is ``1.0`` when the unlabelled samples get pseudo-labels
    (``pseudo_labels``; from 5,000 training samples on), whose first
    k-means it makes compact, and ``0`` otherwise, as in
    :class:`AutoencoderKMeans`.""",
    "smoothing_weight_pretraining": """\
smoothing_weight : float or "auto", default=0.0
    Weight of the neighbourhood smoothing term of the pretraining, which
    pulls each sample's embedding towards the mean embedding of its
    ``n_neighbors`` nearest neighbours (see :class:`AutoencoderKMeans`).
    ``0`` (the default, as in :class:`AutoencoderKMeans`) pretrains a
    plain autoencoder, as the paper does. ``"auto"`` is ``1.0`` from
    5,000 training samples on and ``0`` below. After a pretraining with
    the smoothing, ``initial_partition_epochs="auto"`` is 0.""",
    "n_neighbors": """\
n_neighbors : int, default=10
    Number of nearest neighbours (in the current embedding) that define a
    sample's neighbourhood for the smoothing term. Beyond 10,000 training
    samples they are searched among 10,000 samples drawn at random once
    per fit, so that an epoch's search takes time linear in ``n_samples``
    (see the Notes of :class:`AutoencoderKMeans`).""",
    "smoothing_start": """\
smoothing_start : float in [0, 1], default=0.5
    Fraction of ``pretrain_epochs`` trained without the smoothing term
    before it starts. With ``n_neighbors``, it sets the pretraining's
    default ``"neighbour_refresh"`` callback
    (:class:`~skdeepcluster.callbacks.NeighbourRefresh`), which
    ``callbacks`` can replace.""",
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
    "clustering": """\
clustering : {"auto", "umap", "spectral", "kmeans"}, default="auto"
    How the trained embedding is clustered.
    ``"kmeans"``: :class:`~sklearn.cluster.KMeans`, as in the papers;
    ``predict`` returns the nearest centre.
    The other methods partition the ``n_neighbors``-nearest-neighbour graph
    of the embeddings (of the reference samples: all training samples up to
    10,000, a random 10,000 above, so that costs stay linear in
    ``n_samples``). Every sample, in training as in ``predict``, then takes
    the cluster most common among its ``n_neighbors`` nearest reference
    samples (fewer when a third of the mean cluster size is smaller, so
    that a cluster of a few samples wins its own samples' votes). The views
    of an object or the styles of a digit form curved strands in an
    embedding, which k-means cuts across and the graph follows.
    ``"spectral"``: spectral clustering of the graph (von Luxburg, 2007, "A
    tutorial on spectral clustering").
    ``"umap"``: k-means on a UMAP layout of the graph in
    ``max(2, min(n_clusters, 10))`` dimensions with ``min_dist=0``
    (McInnes et al., 2018), which packs each strand into a compact group:
    the clustering step of N2D (McConville et al., 2020, "N2D: (Not too) deep clustering
    via clustering the local manifold of an autoencoded embedding").
    ``"auto"``: all three, keeping the partition with the highest modularity
    (Newman, 2006) of the neighbour graph, a score that favours no method's
    shape of a cluster; k-means wins ties. It does favour clusters of
    comparable size: where one cluster is many times larger than another,
    a partition that splits the large one can score higher than one that
    keeps it whole. k-means' own choice (``clustering="kmeans"`` with
    ``kmeans_selection="inertia"``) is no remedy in general: on MNIST digits
    in a long tail it clustered far worse than ``"auto"`` (see the user
    guide). The graph methods win where
    classes are strands; spectral clustering loses where the graph falls
    into many small pieces (which neighbourhood smoothing can cause); see
    the benchmarks page. ``clustering_`` says which was kept. The kept
    partition is then refined by split-and-merge moves: while cutting one
    cluster in two and joining two others raises the modularity, the best
    such move is made. One move repairs a partition that cut one class and
    joined two others, the usual error of all three methods. No move is
    made when the median cluster has fewer internal edges than
    ``sqrt(2 m)``, ``m`` being the graph's edges, the size below which
    modularity prefers to join groups (Fortunato and Barthélemy, 2007,
    "Resolution limit in community detection"). A cluster is cut into two
    parts that each have that many internal edges only along a seam: a cut
    whose edges number at most a tenth of the smaller part's degree sum (a
    conductance of at most 0.1), so that no large class is cut through its
    bulk to even out the sizes. ``n_split_merge_moves_`` counts the moves
    made.
    ``"umap"``, ``"spectral"`` and ``"auto"`` are additions of this package.
    ``sample_weight`` weighs the k-means candidate, the centres and
    ``inertia_``, not the neighbour graph or the vote.""",
    "n_init_kmeans": """\
n_init : int or "auto", default=10
    Number of k-means initialisations on the embedding (with
    ``clustering`` ``"kmeans"`` or ``"auto"``; which run is kept is set by
    ``kmeans_selection``), and of k-means runs on its UMAP layout (with
    ``"umap"`` or ``"auto"``; the run of highest modularity is kept).
    ``"auto"`` is 10, accepted for compatibility with
    :class:`~sklearn.cluster.KMeans` (whose ``"auto"`` means one run with
    k-means++ initialisation).""",
    "n_init_pretrained": """\
n_init : int or "auto", default=10
    Number of k-means initialisations on the pretrained embedding (which
    run is kept is set by ``kmeans_selection``) and, with ``init="auto"``,
    of k-means runs on its UMAP layout (the run of highest modularity is
    kept). ``"auto"`` is 10, accepted for compatibility with
    :class:`~sklearn.cluster.KMeans` (whose ``"auto"`` means one run with
    k-means++ initialisation).""",
    "kmeans_selection": """\
kmeans_selection : {"modularity", "inertia"}, default="modularity"
    Which of the ``n_init`` k-means runs on the embedding is kept.
    ``"inertia"``: the lowest inertia, k-means' own criterion, as
    :class:`~sklearn.cluster.KMeans` and the papers do. ``"modularity"``:
    the highest modularity (Newman, 2006) of the ``n_neighbors``-nearest
    neighbour graph of the embeddings (of a random 10,000 of them on larger
    data), the score ``clustering="auto"`` also uses. On an autoencoder's
    embedding the lowest inertia can belong to a partition that splits one
    class and merges two others; cutting a class cuts many edges of the
    neighbour graph, so modularity ranks that partition lower (see the
    benchmarks page). An addition of this package.""",
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
    the same way and share entries (so does SNNLKMeans when no label reaches
    its loss), so a grid search over their clustering parameters trains the
    autoencoder once per training set; on input outside ``[-1, 1]`` that
    takes the same ``normalize_embedding`` for all (DEC's default is True,
    the others' ``"auto"`` is then False). The UMAP
    layout of the pretrained embedding (``clustering="auto"``, and DEC's
    and DCN's initial partition) is cached too; it depends on
    ``n_clusters`` only through its ``max(2, min(n_clusters, 10))``
    dimensions.
    ``None`` caches nothing.""",
    "callbacks_pretraining": """\
callbacks : list of callbacks or (name, callback) tuples, default=None
    :mod:`skorch.callbacks` added to the autoencoder's net (stage
    ``"pretraining"``). Each net gets its own copy, so the list passed here
    is never changed; a callback can read ``net.stage`` to act in one stage
    only. A ``(name, callback)`` pair named like one of the schedule
    callbacks the estimator installs (:mod:`skdeepcluster.callbacks`)
    replaces it (see the user guide's training control page).""",
    "callbacks_two_stages": """\
callbacks : list of callbacks or (name, callback) tuples, default=None
    :mod:`skorch.callbacks` added to both nets of the fit (stages
    ``"pretraining"`` and ``"clustering"``). Each net gets its own copy, so
    the list passed here is never changed; a callback can read
    ``net.stage`` to act in one stage only. A ``(name, callback)`` pair
    named like one of the schedule callbacks the estimator installs
    (:mod:`skdeepcluster.callbacks`) replaces it in its stage (see the
    user guide's training control page).""",
    "optimizer_pretraining": """\
optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
    Optimiser class of the autoencoder's net (stage ``"pretraining"``),
    built with ``lr`` and the ``optimizer__*`` keywords.""",
    "optimizer_two_stages": """\
optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
    Optimiser class of both nets of the fit (stages ``"pretraining"`` and
    ``"clustering"``), built with the stage's learning rate (``lr``, then
    ``clustering_lr``) and the ``optimizer__*`` keywords.""",
    "X_fit": """\
X : {array-like, sparse matrix} of shape (n_samples, n_features)
    Training data. Images are passed flattened; set ``input_shape`` to
    let the network see them as ``(C, H, W)``. A sparse matrix or a
    memory-mapped float32 or float64 array is read a batch of rows at a
    time rather than copied whole.""",
    "y_fit": """\
y : array-like of shape (n_samples,), default=None
    Ignored, as scikit-learn's clusterers ignore it, except by
    :class:`~skdeepcluster.SNNLKMeans` with ``use_labels=True``: class
    labels guiding the embedding, ``-1`` for unlabelled samples.""",
    "X_new": """\
X : {array-like, sparse matrix} of shape (n_samples, n_features)
    New data.""",
    "activation": """\
activation : str, default="relu"
    Non-linearity after each hidden layer: ``"relu"``, ``"elu"``,
    ``"gelu"``, ``"leaky_relu"``, ``"silu"``, ``"sigmoid"``, ``"tanh"`` or
    ``"softplus"``.""",
    "batch_norm": """\
batch_norm : bool, default=False
    Insert batch normalisation before each hidden activation.""",
    "epoch": """\
epoch : int
    Zero-based epoch number.""",
    "kwargs": """\
**kwargs : dict
    Keywords of skorch, passed on with ``callbacks``:
    ``optimizer__*`` (e.g. ``optimizer__weight_decay``),
    ``iterator_train__*`` (e.g. ``iterator_train__num_workers``) and
    ``callbacks__*`` (e.g. ``callbacks__print_log__floatfmt``), and
    ``accelerator``, an :class:`accelerate.Accelerator` for data-parallel
    training on several processes (the accelerator then places the
    networks and ``device`` goes unused; see the user guide's training
    control page). They are parameters like the others (``get_params``,
    ``set_params``, ``clone``, grid searches); ``fit`` raises a ValueError
    for any other keyword.""",
}

_CLUSTER_CENTERS_KMEANS = """\
cluster_centers_ : ndarray of shape (n_clusters_found, embedding_dim)
    k-means centres in the embedding space, without those no training
    sample is nearest to (see Notes)."""
_INERTIA_EMBEDDING = """\
inertia_ : float
    Sum of squared distances of the training embeddings to their
    cluster centre, weighted by ``sample_weight``
    (``-score`` of the training data with its weights)."""

_ATTRIBUTES = {
    "inertia_embedding": _INERTIA_EMBEDDING,
    # The clustering attributes of an autoencoder trained on its own loss,
    # then k-means on its embedding (AutoencoderKMeans, ACAIKMeans).
    "kmeans_on_embedding": f"""\
labels_ : ndarray of shape (n_samples,)
    Cluster of each training sample, as :meth:`predict` computes it: its
    nearest centre when k-means' partition is kept unmoved
    (``clustering_ == "kmeans"`` and ``n_split_merge_moves_ == 0``),
    otherwise the vote of its nearest reference samples.
{_CLUSTER_CENTERS_KMEANS}
    Otherwise the mean embedding of each cluster.
{_INERTIA_EMBEDDING}
clustering_ : {{"umap", "spectral", "kmeans"}}
    The clustering kept (see ``clustering``).
n_split_merge_moves_ : int
    Split-and-merge moves made on the kept partition (with
    ``clustering="auto"``; 0 otherwise). After a move the labels come from
    the neighbour vote, whichever clustering was kept.
reference_embedding_ : ndarray of shape (n_reference, embedding_dim)
    Unless k-means' own partition is kept: the embeddings of the
    reference samples whose labels vote in :meth:`predict`.
n_iter_ : int
    Number of training epochs run.""",
    "pretrain_history": """\
pretrain_history_ : skorch.callbacks.History
    History of the reconstruction pretraining.""",
    "kmeans_all_centres": """\
kmeans_ : sklearn.cluster.KMeans
    The k-means model fitted on the embedding, with all ``n_clusters``
    centres; absent with ``clustering`` ``"umap"`` or ``"spectral"``.""",
    "augment_fitted": """\
augment_ : bool
    Whether training deformed the images (``augment``, with ``"auto"``
    resolved for the training data).""",
    "features_in": """\
input_offset_ : float
    What is subtracted from ``X`` before it reaches the network (see
    ``input_scaling``); 0.0 when it is used as given.
input_scale_ : float
    What ``X`` less ``input_offset_`` is divided by before it reaches the
    network (see ``input_scaling``); 1.0 when it is used as given.
n_features_in_ : int
    Number of features seen during fit.
feature_names_in_ : ndarray of shape (n_features_in_,)
    Names of features seen during fit, when ``X`` has string column names.""",
}

_NOTES = {
    "note_dropped_kmeans_centres": """\
A k-means centre that no training sample is nearest to (fewer distinct
embeddings than clusters) is dropped, so that ``labels_`` stays
``0..n_clusters_found - 1``, as in every estimator of the package, and a
:class:`~sklearn.exceptions.ConvergenceWarning` is raised. ``kmeans_``
keeps all ``n_clusters`` centres.""",
    "note_dropped_centres": """\
A centre can end up with no sample. Such clusters are dropped, with their
centres, so that ``labels_`` stays ``0..n_clusters_found - 1``, and a
:class:`~sklearn.exceptions.ConvergenceWarning` is raised.""",
    "note_sample_weight": """\
Sample weights (``sample_weight`` in :meth:`fit`) count a sample as that
many copies of it wherever k-means is involved: in every k-means run on the
embedding (:class:`~sklearn.cluster.KMeans` fitted with the weights, whose
centres are weighted means), and in ``inertia_`` and :meth:`score`, weighted
sums of squared distances as in KMeans. The neighbour-graph partitions
(spectral clustering, and k-means of a UMAP layout, of ``clustering="auto"``
and the refinements), their modularity and the split-and-merge moves count
each sample of positive weight once. A sample of weight 0 is left out of
training altogether, exactly as if it were removed, and gets its label in
``labels_`` from :meth:`predict`. In the training losses each sample's
terms are multiplied by its weight, the weights being scaled to a mean of
one so that the losses keep their scale; equal weights therefore train
exactly as no weights. The mini-batches are drawn from the samples as
they are, so integer weights equal repeated samples on average over the
batches, not batch for batch.""",
    "note_sample_weight_pretraining": """\
In the autoencoder's training each sample's reconstruction error and
neighbourhood smoothing term carry its weight. The neighbourhoods (the
``n_neighbors`` nearest samples whose mean embedding is a sample's
smoothing target) are found among the samples of positive weight
without regard to their weights.""",
}

# Cited by an estimator and by the building blocks of its method.
_REFERENCES = {
    "reference_acai": """\
.. [1] Berthelot, D., Raffel, C., Roy, A. and Goodfellow, I. (2019).
   "Understanding and improving interpolation in autoencoders via an
   adversarial regularizer". ICLR.""",
    "reference_dac": """\
.. [1] Chang, J., Wang, L., Meng, G., Xiang, S. and Pan, C. (2017).
   "Deep Adaptive Image Clustering". ICCV.""",
    "reference_dec": """\
.. [1] Xie, J., Girshick, R. and Farhadi, A. (2016). "Unsupervised deep
   embedding for clustering analysis". ICML.""",
    "reference_idec": """\
.. [2] Guo, X., Gao, L., Liu, X. and Yin, J. (2017). "Improved deep embedded
   clustering with local structure preservation". IJCAI.""",
    "reference_snnl": """\
.. [1] Agarap, A. F. and Azcarraga, A. P. (2020). "Improving k-means
   clustering performance with disentangled internal representations".
   IJCNN.
.. [2] Frosst, N., Papernot, N. and Hinton, G. (2019). "Analyzing and
   improving representations with the soft nearest neighbor loss". ICML.""",
}

_ENTRIES = {**_PARAMETERS, **_ATTRIBUTES, **_NOTES, **_REFERENCES}
# One namespace for the placeholders: a key in two tables would be ambiguous.
assert len(_ENTRIES) == sum(
    map(len, (_PARAMETERS, _ATTRIBUTES, _NOTES, _REFERENCES))
), "a key of skdeepcluster._docstrings is defined twice"


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
        if key not in _ENTRIES:
            raise KeyError(
                f"The docstring of {obj.__qualname__} has the placeholder {{{key}}}, "
                "which skdeepcluster._docstrings does not define."
            )
        return textwrap.indent(_ENTRIES[key], match["indent"])

    # __doc__ is None under python -OO.
    if obj.__doc__ is not None:
        obj.__doc__ = _PLACEHOLDER.sub(entry, obj.__doc__)
    return obj
