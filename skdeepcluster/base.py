"""Base class shared by every deep clustering estimator."""

import collections
import contextlib
import copy
import difflib
import fnmatch
import functools
import inspect
import mmap
import os
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, Literal, NamedTuple, Self, TypeVar, cast

import joblib
import numpy as np
import scipy.sparse as sp
import sklearn
import skorch
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_array,
    check_is_fitted,
    validate_data,
)
from skorch.callbacks import LRScheduler

from ._docstrings import fill_doc
from ._graph import (
    SCORING_NEIGHBOURS,
    kmeans_by_modularity,
    match_labels,
    modularity,
    neighbour_graph,
    neighbour_votes,
    reference_indices,
    spectral_partition,
    split_merge,
    umap_partition,
)
from ._memory import pretrain_with_memory
from ._nets import ClusteringNet, callback_class
from ._torch_utils import (
    ArrayRows,
    IndexedDataset,
    batched_eval,
    build_module,
    cluster_means,
    feature_mean,
    fit_kmeans,
    inference_batch_size,
    loss_weights,
    make_generator,
    move_net,
    nearest_center,
    net_on_cpu,
    network_rows,
    resolve_device,
    student_t_assignment,
    to_numpy,
    torch_seed,
)
from ._typing import (
    Callbacks,
    Device,
    FloatOrAuto,
    HiddenDims,
    InputShape,
    IntOrAuto,
    MatrixLike,
    MemoryLike,
    OptimizerFactory,
    RandomStateLike,
)
from .exceptions import TrainingDivergedError

# Largest magnitude whose square is still a finite float32: the networks
# square their inputs (reconstruction errors, batch-norm variances), so
# larger values overflow inside training even though they fit in float32.
_FLOAT32_SQUARE_MAX = float(np.sqrt(np.finfo(np.float32).max))


_Fit = TypeVar("_Fit", bound=Callable[..., Any])


def _guarded_fit(fit: _Fit) -> _Fit:
    """Make ``fit`` all-or-nothing and loud about a degenerate result.

    Fitted attributes are set one after another while training proceeds, so
    an error in a later stage (or a Ctrl-C) would otherwise leave a mix of
    new and old (or missing) ones: if ``fit`` raises, the estimator is put
    back as it was before. The attributes are only rebound, never changed in
    place, so a shallow copy of ``__dict__`` is enough. A fit that ends with
    non-finite cluster centres raises
    :class:`~skdeepcluster.exceptions.TrainingDivergedError`, and one whose
    ``labels_`` use at most half of ``n_clusters`` warns with the likely
    cause.
    """

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        state = dict(self.__dict__)
        try:
            fitted = fit(self, *args, **kwargs)
            if not np.isfinite(self.cluster_centers_).all():
                raise TrainingDivergedError(
                    f"{type(self).__name__} ended with non-finite cluster centres. "
                    "Scale the input to [0, 1] or standardise it (e.g. with "
                    "sklearn.preprocessing.StandardScaler), or lower the "
                    "learning rates."
                )
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise
        _warn_if_collapsed(self)
        return fitted

    return cast(_Fit, wrapper)


class BaseDeepClusterer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator, ABC
):
    """Shared machinery of the deep clustering estimators.

    ``fit`` validates the input, resolves the device and hands the training
    samples (see :meth:`_training_data`), the samples' weights and a
    :class:`~numpy.random.RandomState` made from ``random_state`` to the
    subclass's :meth:`_fit`. Samples of weight 0 are left out of them and
    labelled with :meth:`_predict` once ``_fit`` is done. Every random draw of a
    fit derives from that ``RandomState``: NumPy and scikit-learn draws use
    it directly, and torch draws use generators seeded from it and owned by
    the fit (:meth:`_module_generator` for weights, the generators
    :meth:`_net_kwargs` gives each net for shuffling and training), never
    torch's global generator, so that fits in concurrent threads do not
    disturb each other. The public inference methods (``predict``,
    ``predict_proba``, ``transform``, ``score``) check that the estimator is
    fitted, validate the input against the training data and call the
    private hooks, which do no validation, on one batch at a time (see
    :meth:`_map_batches`).

    Subclasses implement :meth:`_fit` and :meth:`_embed`, set ``n_iter_``
    and end ``_fit`` with :meth:`_set_clusters`, which sets ``labels_``,
    ``cluster_centers_`` (in embedding space) and ``inertia_``.

    Sparse input (any SciPy sparse format) is accepted everywhere ``X`` is.
    Neither it nor a memory-mapped array (:class:`numpy.memmap`, or
    ``numpy.load(..., mmap_mode="r")``) is ever copied whole: ``fit`` and
    inference read, densify and convert one batch of rows at a time, so a
    memory map larger than the RAM can be clustered; each pass over its
    training data (an epoch, or a pass that embeds every sample) reads it
    from the file again. A dense array in memory is converted once to a
    float32 tensor on the device, as batches taken from it there need no
    transfer.

    Every estimator handles empty clusters the same way. A cluster that no
    training sample ends up in (a k-means centre nobody is nearest to, a
    centroid that lost all its members, an output that is nobody's argmax) is
    dropped: ``labels_`` are relabelled to ``0..n_clusters_found - 1`` with
    every label used, ``cluster_centers_`` has ``n_clusters_found`` rows,
    ``predict_proba`` has ``n_clusters_found`` columns, ``predict`` never
    returns a dropped cluster, and ``fit`` raises a
    :class:`~sklearn.exceptions.ConvergenceWarning`. scikit-learn's
    clustering convention (checked by its ``check_clustering``) is that the
    labels are consecutive from 0; :class:`~sklearn.cluster.KMeans` instead
    keeps ``n_clusters`` centres, some of them unused or duplicated.
    The default :meth:`_predict_proba` is a Student's t kernel around
    ``cluster_centers_`` and the default :meth:`_predict` the nearest centre;
    methods with a classification head override both. ``labels_`` must be
    computed by the same function as :meth:`_predict` (as ``np.intp``), so
    that ``predict`` on the training data returns ``labels_``.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "input_shape": [tuple, list, None],
        "input_scaling": [StrOptions({"auto"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "device": [str, torch.device, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "optimizer": [callable],
    }

    # What n_init="auto" resolves to in the estimators that have an n_init
    # parameter: their numeric default, the number of runs their method
    # was tuned with (DAC resolves it by the kind of input instead).
    _AUTO_N_INIT = 10

    # Names of the schedule callbacks (skdeepcluster.callbacks) the
    # estimator installs in one of its stages; a callback the user passes
    # under one of these names replaces the default one.
    _schedule_callbacks: tuple[str, ...] = ()

    # Keyword arguments with these prefixes are passed on to every skorch net
    # of a fit, as skorch's own NeuralNet accepts them.
    _ROUTED_PREFIXES = ("optimizer__", "iterator_train__", "callbacks__")
    # Keywords passed on to every net under their own name: skorch's
    # AccelerateMixin takes ``accelerator`` (see skdeepcluster._accelerate).
    _ROUTED_NAMES = ("accelerator",)
    # Routes that would bypass an estimator parameter or the package's own
    # batching and seeding, with what to use instead.
    _RESERVED_ROUTES = {
        "optimizer__lr": "set lr instead",
        "iterator_train__batch_size": "set batch_size instead",
        "iterator_train__generator": "set random_state instead",
        "iterator_train__collate_fn": "the package batches its data itself",
    }

    def __init__(
        self,
        *,
        n_clusters: int,
        input_shape: InputShape,
        input_scaling: Literal["auto"] | None,
        batch_size: int,
        lr: float,
        device: Device,
        random_state: RandomStateLike,
        verbose: int,
        callbacks: Callbacks,
        optimizer: OptimizerFactory,
        **kwargs: Any,
    ) -> None:
        # The parameters every estimator shares; each estimator keeps its own
        # explicit signature (scikit-learn's get_params reads it) and passes
        # them on, as KMeans does with _BaseKMeans. ``kwargs`` are the routed
        # skorch keywords (see _set_routed_params).
        self.n_clusters = n_clusters
        self.input_shape = input_shape
        self.input_scaling = input_scaling
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.optimizer = optimizer
        self._set_routed_params(kwargs)

    # -- skorch routing ----------------------------------------------------

    def _set_routed_params(self, params):
        """Store ``params``, keywords beyond the signature, meant for the nets.

        Stored as attributes, as skorch does, and listed in
        ``_extra_params`` so that :meth:`get_params`, :meth:`set_params` and
        :func:`sklearn.base.clone` carry them. Their names are checked in
        ``fit`` (:meth:`_check_routed_params`), as scikit-learn estimators
        validate nothing when constructed or when parameters are set.
        """
        known = getattr(self, "_extra_params", ())
        for name, value in params.items():
            setattr(self, name, value)
        # A new tuple: a clone or copy must not share the list with self.
        self._extra_params = (*known, *(name for name in params if name not in known))

    def _routed_params(self):
        return {
            name: getattr(self, name) for name in getattr(self, "_extra_params", ())
        }

    def _validate_params(self):
        """Validate the parameters, and reject booleans given as integers.

        ``bool`` is a subclass of ``int``, so scikit-learn's ``Interval``
        accepts ``True`` as a count; ``batch_size=True`` would then fail
        inside torch. A parameter whose constraints name booleans (such as
        ``verbose``) still takes them.
        """
        super()._validate_params()
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name, None)
            if not isinstance(value, (bool, np.bool_)):
                continue
            counts = any(
                isinstance(c, Interval) and c.type is Integral for c in constraints
            )
            if counts and not any(c is bool or c == "boolean" for c in constraints):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be an "
                    f"integer, got the boolean {value!r}."
                )

    # DataLoader options that act on worker processes only, with the value
    # that leaves them unused: torch rejects the others without workers,
    # ``timeout`` only when the first batch is read, with an AssertionError.
    _WORKER_OPTIONS = {
        "timeout": 0,
        "prefetch_factor": None,
        "persistent_workers": False,
        "multiprocessing_context": None,
    }

    def _check_routed_params(self):
        # What the keywords of each prefix are passed to (ACAIKMeans' critic's
        # optimiser is of the same class as the autoencoder's). Checked here,
        # with the keyword's name, rather than as a TypeError from the
        # optimiser or DataLoader when a net starts.
        receivers = {
            "optimizer": self.optimizer,
            "critic_optimizer": self.optimizer,
            "iterator_train": torch.utils.data.DataLoader,
        }
        for name in self._routed_params():
            if name in self._ROUTED_NAMES:
                continue
            if not name.startswith(self._ROUTED_PREFIXES) or name.endswith("__"):
                raise ValueError(
                    f"{type(self).__name__} got an unexpected parameter {name!r}."
                    f"{_did_you_mean(name, self._get_param_names())} Besides "
                    "its own parameters it accepts keywords starting with "
                    f"{', '.join(map(repr, self._ROUTED_PREFIXES))}, which are "
                    "passed on to its skorch nets, and 'accelerator'."
                )
            if name in self._RESERVED_ROUTES:
                raise ValueError(
                    f"{type(self).__name__} does not accept {name!r}: "
                    f"{self._RESERVED_ROUTES[name]}."
                )
            prefix, _, keyword = name.partition("__")
            target = receivers.get(prefix)
            if (
                target is not None
                and keyword != "param_groups"  # skorch's, for the optimizer
                and not _takes_keyword(target, keyword, unknown=True)
            ):
                raise TypeError(
                    f"{type(self).__name__} got {name!r}, but "
                    f"{getattr(target, '__name__', target)!s} takes no keyword "
                    f"argument {keyword!r}."
                    + _did_you_mean(keyword, _keywords(target), prefix=f"{prefix}__")
                )
        routed = self._routed_params()
        shuffled = routed.get("iterator_train__shuffle", True)
        if routed.get("iterator_train__sampler") is not None and shuffled:
            # torch's DataLoader takes no sampler beside shuffle=True.
            raise ValueError(
                f"{type(self).__name__} got iterator_train__sampler, which takes "
                "the place of the shuffling the nets do (seeded by "
                "random_state): pass iterator_train__shuffle=False with it."
            )
        if routed.get("iterator_train__batch_sampler") is not None and (
            shuffled or self.batch_size != 1
        ):
            # Nor a batch sampler beside shuffle=True or a batch size.
            raise ValueError(
                f"{type(self).__name__} got iterator_train__batch_sampler, which "
                "makes the batches the shuffling and batch_size would: pass "
                "iterator_train__shuffle=False and batch_size=1 with it."
            )
        if not routed.get("iterator_train__num_workers"):
            for option, unused in self._WORKER_OPTIONS.items():
                value = routed.get(f"iterator_train__{option}", unused)
                if value != unused:
                    raise ValueError(
                        f"{type(self).__name__} got "
                        f"iterator_train__{option}={value!r}, which acts on the "
                        "DataLoader's worker processes, but no workers: set "
                        "iterator_train__num_workers to a positive number."
                    )

    def _check_optimizer(self):
        """Build ``optimizer`` once on a stand-in parameter, as the nets will.

        With the nets' keywords, on the fit's device. ``optimizer`` may be
        any callable; one that is no optimiser class (or factory of one)
        would fail inside skorch as the first net starts, with a message
        about skorch's code.
        """
        keywords = _without_prefix(self._optimizer_keywords(), "optimizer__")
        # The groups' patterns name the nets' parameters, not the stand-in.
        keywords.pop("param_groups", None)
        self._check_optimizer_steps(keywords, "optimizer")

    def _warn_unmatched_param_groups(self):
        """Warn of ``optimizer__param_groups`` patterns that set nothing.

        skorch gives a pattern the parameters it matches that no earlier
        pattern took, and silently drops one left with none: a pattern
        written for another estimator's network (IMSAT's parameters are
        ``body.*`` and ``head.*``, not ``encoder.*``) would leave the
        optimiser's defaults in place without a word. Checked after
        training, on the last net's module, which holds the parameters of
        every stage (a pattern for DEC's ``centers`` matches no parameter of
        the pretraining).
        """
        groups = self._routed_params().get("optimizer__param_groups") or []
        all_names = [name for name, _ in self.net_.module_.named_parameters()]
        names, unmatched = all_names, []
        for pattern, _ in groups:
            # skorch's matching: fnmatch, each parameter to the first pattern.
            taken = {name for name in names if fnmatch.fnmatch(name, pattern)}
            if not taken:
                unmatched.append(pattern)
            names = [name for name in names if name not in taken]
        if unmatched:
            modules = sorted({name.split(".")[0] for name in all_names})
            _warn_at_caller(
                f"{type(self).__name__}'s optimizer__param_groups pattern(s) "
                f"{', '.join(map(repr, unmatched))} matched no parameter that "
                "an earlier pattern had not taken, and set nothing. Its "
                f"network's parameters are named {all_names[0]!r} and so on, "
                f"under {', '.join(map(repr, modules))}.",
                UserWarning,
            )

    def _check_optimizer_steps(self, keywords, name):
        """Build ``optimizer`` with ``keywords`` on a stand-in and take a step.

        ``name`` is the optimiser's name among the parameters
        (``"optimizer"``, ACAIKMeans' ``"critic_optimizer"``), whose
        keywords start with ``name + "__"``.
        """
        keywords = dict(keywords)
        lr = keywords.pop("lr", self.lr)
        estimator = type(self).__name__
        factory = getattr(self.optimizer, "__name__", repr(self.optimizer))
        stand_in = torch.nn.Parameter(torch.zeros(1, device=self._device))
        try:
            optimizer = self.optimizer([stand_in], lr=lr, **keywords)
        except (TypeError, ValueError, RuntimeError) as exc:
            if type(exc) not in (TypeError, ValueError, RuntimeError):
                # A subclass (torch's OutOfMemoryError, say) may take other
                # constructor arguments than a message: it goes up as it is.
                raise
            raise type(exc)(
                f"{estimator}'s {name} {factory}(params, lr=..., "
                f"**{name}__ keywords) failed: {exc}"
            ) from exc
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{estimator}'s {name} must build a torch.optim.Optimizer from "
                "(params, lr=...), such as torch.optim.Adam; "
                f"{factory} returned {type(optimizer).__name__}."
            )
        # One step on a dense zero gradient, as the nets take them: an
        # optimiser that builds but cannot take such a step (SparseAdam,
        # capturable=True on the CPU; an optimiser that needs a closure where
        # the nets step without one) would otherwise fail at the first batch
        # with torch's message.
        stand_in.grad = torch.zeros_like(stand_in)
        with_closure = self._steps_with_closure()
        try:
            if with_closure:
                optimizer.step(lambda: stand_in.detach().sum())
            else:
                optimizer.step()
        except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
            if type(exc) not in (TypeError, ValueError, RuntimeError, AssertionError):
                raise
            note = "" if with_closure else f" ({estimator} steps it without a closure)"
            # torch's other errors here are about the optimiser chosen or its
            # settings, a parameter's value: a ValueError.
            error = TypeError if type(exc) is TypeError else ValueError
            raise error(
                f"{estimator}'s {name} {factory} cannot take a training step"
                f"{note}: {exc}"
            ) from exc

    def _steps_with_closure(self):
        """Whether the nets step their optimisers with a closure.

        skorch's training step passes one (which L-BFGS needs); the
        accelerator's step does not.
        """
        return self._accelerator() is None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            If True, will return the parameters for this estimator and
            contained subobjects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values, including the
            ``optimizer__*``, ``iterator_train__*``, ``callbacks__*`` and
            ``accelerator`` keywords passed on to the skorch nets.
        """
        return {**super().get_params(deep=deep), **self._routed_params()}

    def set_params(self, **params: Any) -> Self:
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Estimator parameters, and keywords starting with
            ``optimizer__``, ``iterator_train__`` or ``callbacks__``, and
            ``accelerator``, which are passed on to the skorch nets (other
            names raise a ValueError in ``fit``).

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        own_names = set(super().get_params(deep=False))
        own = {name: value for name, value in params.items() if name in own_names}
        self._set_routed_params(
            {name: value for name, value in params.items() if name not in own_names}
        )
        return super().set_params(**own)

    # -- fitting -----------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    @_guarded_fit
    @fill_doc
    def fit(
        self,
        X: MatrixLike,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """Train the network and cluster ``X``.

        Parameters
        ----------
        {X_fit}
        {y_fit}
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in ``X``; ``None`` gives every
            sample weight 1. A sample of weight 0 is left out of training, as
            if removed, and still gets a label in ``labels_``. The weights
            enter the k-means steps as in :class:`~sklearn.cluster.KMeans`
            and each sample's terms of the training losses; the Notes of
            the class say exactly how.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._check_routed_params()
        self._check_callbacks()
        X = _tensor_as_array(X)
        _reject_unflattened_images(X, type(self).__name__)
        # CSR, whose row subsets (the batches) are cheap; CSC is converted.
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
        # One pass over the values serves every check and rule that reads
        # them (a memory-mapped X may be larger than the memory); the
        # "auto" resolution reads it too, hence an attribute, dropped after
        # training.
        self._input_range = _value_range(X)
        # Before the other checks, which would warn about such values first;
        # on every row, as the left-out ones are embedded too.
        _check_float32_range(X, _magnitude(self._input_range))
        sample_weight = _check_fit_sample_weight(sample_weight, X, self.n_clusters)
        # Samples of weight 0 are left out of training, so that they change
        # nothing, and labelled at the end (see _label_left_out).
        left_out = None
        if sample_weight is not None and not np.all(sample_weight > 0):
            left_out = sample_weight == 0
            y = _select_rows(y, ~left_out, X.shape[0])
            X_all, X = X, _kept_rows(X, ~left_out)
            sample_weight = sample_weight[~left_out]
            # The scale and the "auto" rules read the training samples' range.
            self._input_range = _value_range(X)
        self.input_offset_, self.input_scale_ = (
            _intensity_scaling(self._input_range)
            if self.input_scaling == "auto"
            else (0.0, 1.0)
        )
        self._check_fit_input(X)
        self._device = self._training_device()
        self._check_optimizer()
        random_state = check_random_state(self.random_state)
        # Drawn in every fit but used only with the user's modules, so that
        # the rest of the fit draws the same seeds either way (a fitted
        # autoencoder passed back as encoder and decoder gives the same
        # k-means).
        global_seed = _draw_seed(random_state)
        X_train = self._training_data(X)
        with self._user_modules_seed(global_seed), self._accelerator_released():
            self._fit(X_train, y, random_state, sample_weight)
        self._warn_unmatched_param_groups()
        # Taken before the nets drop their training state: with an
        # accelerator, its print (the main process's) rather than print.
        sink = self.net_.progress_sink()
        self._drop_training_state()
        del self._input_range
        self._n_features_out = self.cluster_centers_.shape[1]
        if left_out is not None:
            self._label_left_out(X_all, left_out)
        if sink is not None:
            # After the last stage's table, where it went.
            sink(self._fit_summary())
        return self

    def _fit_summary(self):
        """The last line of verbose output: what the fit ended with."""
        n_found = len(np.unique(self.labels_))
        parts = [f"{type(self).__name__}: {n_found} clusters"]
        if getattr(self, "clustering_", None) is not None:
            parts.append(f"the {self.clustering_!r} partition kept")
        if getattr(self, "initial_clustering_", None) is not None:
            parts.append(f"started from the {self.initial_clustering_!r} partition")
        moves = getattr(self, "n_split_merge_moves_", 0)
        if moves:
            parts.append(f"{moves} split-and-merge move{'s' if moves > 1 else ''}")
        return ", ".join(parts)

    @fill_doc
    def fit_predict(
        self,
        X: MatrixLike,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> NDArray[np.intp]:
        """Train the network, cluster ``X`` and return the cluster labels.

        The same as ``fit(X, y, sample_weight).labels_``: unlike
        scikit-learn's :meth:`~sklearn.base.ClusterMixin.fit_predict`, ``y``
        is passed on to :meth:`fit`.

        Parameters
        ----------
        {X_fit}
        {y_fit}
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in ``X`` (see :meth:`fit`).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each sample belongs to.
        """
        return self.fit(X, y, sample_weight=sample_weight).labels_

    @fill_doc
    def fit_transform(
        self,
        X: MatrixLike,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> NDArray[np.float32]:
        """Train the network, cluster ``X`` and return its embedding.

        The same as ``fit(X, y, sample_weight).transform(X)``, with the
        arguments of :meth:`sklearn.cluster.KMeans.fit_transform`.

        Parameters
        ----------
        {X_fit}
        {y_fit}
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in ``X`` (see :meth:`fit`).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The embedding, in the space where ``cluster_centers_`` live.
        """
        return self.fit(X, y, sample_weight=sample_weight).transform(X)

    def _label_left_out(self, X, left_out):
        """Give the samples ``left_out`` of training (weight 0) their labels.

        ``labels_`` of the trained samples stay as ``_fit`` set them; the
        others get what :meth:`predict` gives them.
        """
        # shape[0], not len(): a sparse matrix has no length.
        labels = np.empty(X.shape[0], dtype=np.intp)
        labels[~left_out] = self.labels_
        # _kept_rows: a memory-mapped X's left-out rows are read a batch at
        # a time, not copied out together.
        labels[left_out] = self._map_batches(self._predict, _kept_rows(X, left_out))
        self.labels_ = labels

    def _user_modules_seed(self, seed):
        """Context ``_fit`` runs in: nothing, unless the user passed modules.

        The package's own draws never use torch's global generator (see
        :class:`BaseAutoencoderClusterer` for the user's modules).
        """
        return contextlib.nullcontext()

    def _accelerator_released(self):
        """Context of ``_fit``: the accelerator drops the fit's objects after it."""
        accelerator = self._accelerator()
        if accelerator is None:
            return contextlib.nullcontext()
        from ._accelerate import released_when_done

        return released_when_done(accelerator)

    def _drop_training_state(self):
        """Empty the optimisers' state and drop the device generators of the fitted nets.

        Adam keeps two running moments per weight, twice the size of the
        network, which only further training would use; a fitted estimator
        predicts without them, so they are not kept (or pickled). The
        optimisers themselves stay, with their settings (``param_groups``).
        A net's ``device_generator`` is training state too, and one on a GPU
        could not be unpickled on a machine without it.
        """
        for name in self._nets(self.__dict__):
            net = getattr(self, name)
            if self._accelerator() is not None:
                from ._accelerate import plain_net

                # A net trained with an accelerator becomes a plain one,
                # which predicts and pickles without accelerate.
                net = plain_net(net)
            net.device_generator = None
            for optimizer_name in net._optimizers:
                optimizer = getattr(net, optimizer_name + "_", None)
                if optimizer is not None:
                    optimizer.state.clear()

    def _check_fit_input(self, X):
        n_samples, n_features = X.shape
        # One sample has no neighbour, no pair and no batch statistics, and
        # clustering it says nothing.
        if n_samples < 2:
            raise ValueError(
                f"{type(self).__name__} needs n_samples >= 2 to train, got "
                f"n_samples={n_samples}."
            )
        if n_samples < self.n_clusters:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={self.n_clusters}."
            )
        if self.input_shape is not None:
            if len(self.input_shape) != 3 or not all(
                isinstance(s, Integral) and not isinstance(s, bool) and s > 0
                for s in self.input_shape
            ):
                raise ValueError(
                    "input_shape must hold three positive integers "
                    f"(channels, height, width), got {self.input_shape!r}."
                )
            if int(np.prod(self.input_shape)) != n_features:
                raise ValueError(
                    f"input_shape={self.input_shape} describes "
                    f"{int(np.prod(self.input_shape))} features but X has "
                    f"{n_features}."
                )
        # Resolved now: inference must shape samples as this fit did, even
        # after set_params changes input_shape.
        self._resolve_input_shape()
        _check_hidden_dims(self)
        overflow = _squares_overflow(
            self._input_range, self.input_offset_, self.input_scale_
        )
        if overflow:
            _warn_at_caller(
                f"{overflow}: training is likely to diverge or collapse to a "
                "single cluster. Scale the input to [0, 1] or standardise it "
                "(e.g. with sklearn.preprocessing.StandardScaler).",
                UserWarning,
            )
        self._check_params_vs_input(X)

    def _resolve_input_shape(self):
        """Set ``_input_shape``, the sample shape inference uses, from ``input_shape``."""
        self._input_shape = (
            None if self.input_shape is None else tuple(self.input_shape)
        )

    def _check_params_vs_input(self, X):
        """Resolve ``"auto"`` parameters for ``X`` into private attributes.

        As :class:`~sklearn.cluster.KMeans` sets ``_n_init``; subclasses with
        more ``"auto"`` parameters extend it.
        """
        if hasattr(self, "n_init"):
            self._n_init = self._AUTO_N_INIT if _is_auto(self.n_init) else self.n_init

    def _training_data(self, X):
        """The validated ``X`` as :meth:`_fit` receives it.

        A float32 tensor on the training device, shaped for the network,
        when ``X`` is a dense array in memory. A sparse matrix or a
        memory-mapped array becomes an
        :class:`~skdeepcluster._torch_utils.ArrayRows`, which reads and
        converts rows only when they are indexed and supports what ``_fit``
        does with the tensor (``len``, indexing, :meth:`_batched_eval`,
        :meth:`_dataset`), with the same values.
        """
        if sp.issparse(X) or isinstance(X, _MappedRows) or _is_memory_mapped(X):
            sample_shape = self._input_shape or (X.shape[1],)
            return ArrayRows(
                X,
                sample_shape,
                self._device,
                offset=self.input_offset_,
                scale=self.input_scale_,
            )
        X_tensor = torch.empty(X.shape, dtype=torch.float32)
        # A few rows at a time: the arithmetic of network_rows is done in
        # X's precision, and a float64 copy of the whole X is not needed.
        for start, block in _row_blocks(X):
            X_tensor[start : start + len(block)] = network_rows(
                block, self.input_offset_, self.input_scale_
            )
        if self._input_shape is not None:
            X_tensor = X_tensor.view(-1, *self._input_shape)
        return X_tensor.to(self._device)

    def _accelerator(self):
        """The ``accelerator`` keyword, or ``None``."""
        return getattr(self, "accelerator", None)

    def _training_device(self):
        """The device of the fit: the accelerator's when there is one.

        In a data-parallel fit every process has its own device (its GPU),
        which the accelerator knows; ``device`` then goes unused.
        """
        accelerator = self._accelerator()
        if accelerator is None:
            return resolve_device(self.device)
        if not hasattr(accelerator, "prepare") or not hasattr(accelerator, "device"):
            raise TypeError(
                f"accelerator must be an accelerate.Accelerator, got "
                f"{type(accelerator).__name__}."
            )
        if getattr(self, "memory", None) is not None:
            raise ValueError(
                "memory cannot be used with an accelerator: the cached "
                "pretraining would be read and written by every process."
            )
        return torch.device(accelerator.device)

    def _module_generator(self, random_state):
        """A CPU generator, seeded from ``random_state``, for a new module's weights."""
        return make_generator(_draw_seed(random_state))

    def _net_kwargs(self, random_state, schedule=(), **overrides):
        """Keyword arguments every skorch net of this estimator shares.

        Each net gets generators of its own, seeded from ``random_state``: a
        CPU one for shuffling and one on the device for the draws of its
        training steps (see :class:`~skdeepcluster._nets.ClusteringNet`).
        ``schedule`` lists the ``(name, callback)`` schedule callbacks of the
        net's stage (see :mod:`skdeepcluster.callbacks`); a callback the user
        passes under one of these names replaces the default one.
        ``overrides`` take precedence over the user's routed keywords.
        """
        routed = self._routed_params()
        for name, value in routed.items():
            # A callback set by name (callbacks__<name>=...) is copied like
            # those in ``callbacks``; its parameters (callbacks__<name>__<p>)
            # are plain values.
            if name.startswith("callbacks__") and "__" not in name[11:]:
                routed[name] = _fresh_callback(value)
        if "accelerator" in routed and routed["accelerator"] is None:
            # No accelerator: the plain nets, which take no such keyword.
            del routed["accelerator"]
        kwargs = dict(
            estimator_name=type(self).__name__,
            # torch's samplers take a Python int only, not a NumPy integer
            # (a grid built from np.arange, for instance).
            batch_size=int(self.batch_size),
            lr=self.lr,
            optimizer=self.optimizer,
            device=self._device,
            verbose=self.verbose,
            generator=make_generator(_draw_seed(random_state)),
            device_generator=make_generator(_draw_seed(random_state), self._device),
            callbacks=self._stage_callbacks(schedule),
            **routed,
        )
        kwargs.update(self._optimizer_keywords())
        kwargs.update(overrides)
        return kwargs

    def _optimizer_keywords(self):
        """The ``optimizer__`` keywords of every net: the user's, and ``foreach``."""
        keywords = {
            name: value
            for name, value in self._routed_params().items()
            if name.startswith("optimizer__")
        }
        if (
            "optimizer__foreach" not in keywords
            # torch takes no foreach beside fused=True.
            and not keywords.get("optimizer__fused")
            and _takes_keyword(self.optimizer, "foreach")
        ):
            # PyTorch's multi-tensor update: the per-tensor arithmetic of
            # the default loop, applied to all parameters in a few calls
            # instead of a Python loop over them. PyTorch picks it by default
            # on CUDA only; on the CPU it halves the time of Adam's steps on
            # IMSAT's network, with the same weights (benchmarks/NOTES.rst).
            keywords["optimizer__foreach"] = True
        return keywords

    def _stage_callbacks(self, schedule):
        """The callbacks of a net: its stage's ``schedule``, then the user's.

        A copy for every net: callbacks keep state (EarlyStopping's count, a
        checkpoint's best score), which must not leak from one stage or fit
        into the next, nor change the parameter itself. A user's callback
        named like a schedule callback takes its place (in the stages that
        have it; the others go without it), as skorch replaces a default
        callback set by name.
        """
        user = [
            (item[0], _fresh_callback(item[1]))
            if _callback_name(item) is not None
            else _fresh_callback(item)
            for item in self.callbacks or []
        ]
        replaced = {
            item[0]: item[1]
            for item in user
            if _callback_name(item) in _schedule_names()
        }
        return [
            *((name, replaced.get(name, callback)) for name, callback in schedule),
            *(item for item in user if _callback_name(item) not in replaced),
        ]

    def _named_callbacks(self):
        """Names the user gave callbacks: in ``callbacks`` or ``callbacks__<name>__*``."""
        names = [_callback_name(item) for item in self.callbacks or []]
        names += [
            name.split("__")[1]
            for name in self._routed_params()
            if name.startswith("callbacks__")
        ]
        return [name for name in names if name is not None]

    def _check_callbacks(self):
        """Reject callbacks skorch cannot run, and unused schedule names.

        An entry of ``callbacks`` must be what skorch takes (a callback, a
        callback class, or a ``(name, callback)`` pair), or skorch fails
        mid-fit with an ``AttributeError``. A schedule callback's name this
        estimator has no use for, whether in ``callbacks`` or in a
        ``callbacks__<name>`` keyword, is rejected too: the callback would
        otherwise be silently left out of every net. So are a
        ``callbacks__<name>`` keyword that holds no callback, and one, or a
        ``callbacks__<name>__<parameter>`` keyword, naming a callback no net
        has: skorch only replaces, removes or sets parameters of the nets'
        callbacks, and ignores any other name. An entry of ``callbacks``
        named like one of those (``print_log``) is rejected with the keyword
        that replaces it, rather than skorch's complaint of a duplicate name.
        """
        routed = self._routed_params()
        # Every callback given, under the name skorch will know it by.
        given = []
        for item in self.callbacks or []:
            name = _callback_name(item)
            if name is None:
                valid = _is_callback(item)
            else:
                # skorch removes the callback of that name when given None.
                valid = isinstance(name, str) and (
                    item[1] is None or _is_callback(item[1])
                )
            if not valid:
                raise TypeError(
                    f"{type(self).__name__}'s callbacks must be skorch "
                    "callbacks (instances or classes) or (name, callback) "
                    f"pairs with a str name; got {item!r}."
                )
            if name is None:
                # skorch names an unnamed callback after its class.
                given.append((callback_class(item).__name__, item))
            elif name in _default_callback_names():
                # skorch rejects the name as a duplicate of the net's own.
                raise ValueError(
                    f"{type(self).__name__}'s callbacks name {name!r}, a "
                    "callback every net has: to replace or remove it, pass "
                    f"callbacks__{name}=callback (or None) instead."
                )
            else:
                given.append(item)
        # The callbacks of the nets, by the names skorch knows them by: a
        # callbacks__<name> keyword can only replace, remove or set
        # parameters of one of these (skorch ignores any other name).
        names = collections.Counter(name for name, _ in given)
        net_callbacks = (
            set(names) | set(self._schedule_callbacks) | _default_callback_names()
        )
        # skorch numbers callbacks that share a name: EpochScoring_1, ...
        net_callbacks |= {
            f"{n}_{i + 1}" for n, count in names.items() for i in range(count)
        }
        parameter_keys = []
        for key, value in routed.items():
            if not key.startswith("callbacks__"):
                continue
            name, _, parameter = key.removeprefix("callbacks__").partition("__")
            if parameter:
                # Checked below, after the schedule names.
                parameter_keys.append((key, name))
                continue
            # skorch removes the callback of that name when given None.
            if value is not None and not _is_callback(value):
                raise TypeError(
                    f"{type(self).__name__} got {key}={value!r}: a callback set "
                    "by name must be a skorch callback (instance or class), or "
                    "None to remove the callback of that name."
                )
            # (A schedule name this estimator lacks gets its own message below.)
            if name not in net_callbacks and name not in _schedule_names():
                raise ValueError(
                    f"{type(self).__name__} got {key!r}, but its nets have no "
                    f"callback named {name!r} to replace or remove (they "
                    f"have: {', '.join(sorted(net_callbacks))}). To add a "
                    f"callback, pass callbacks=[({name!r}, callback)]."
                )
            given.append((name, value))
        for name, callback in given:
            _check_not_load_init_state(type(self).__name__, callback)
            if f"callbacks__{name}__monitor" not in routed:
                _check_monitor(type(self).__name__, callback)
            if f"callbacks__{name}__on_train" not in routed:
                _check_scores_training_data(type(self).__name__, callback)
            if issubclass(callback_class(callback), LRScheduler):
                policy = getattr(callback, "policy", None)  # None for a class
                policy = routed.get(f"callbacks__{name}__policy", policy)
                _check_lr_policy(type(self).__name__, policy)
        own = self._schedule_callbacks
        for name in self._named_callbacks():
            if name in _schedule_names() and name not in own:
                known = ", ".join(map(repr, own)) or "none"
                raise ValueError(
                    f"{type(self).__name__} has no schedule callback named "
                    f"{name!r} to replace (its schedule callbacks: {known}). "
                    "Pass your callback in callbacks under another name to "
                    "add it to every net."
                )
        # A parameter of a callback no net has would be silently ignored.
        for key, name in parameter_keys:
            if name not in net_callbacks:
                raise ValueError(
                    f"{type(self).__name__} got {key!r}, but its nets have no "
                    f"callback named {name!r} (they have: "
                    f"{', '.join(sorted(net_callbacks))})."
                )

    def _check_batches_of_two(self, computed_per_batch):
        """Reject ``batch_size=1`` for a net whose batches need two samples.

        ``computed_per_batch`` names what is computed over the samples of a
        mini-batch (batch normalisation's statistics, and the like).
        """
        if self.batch_size < 2:
            raise ValueError(
                f"{type(self).__name__} needs batch_size >= 2, got "
                f"{self.batch_size}: {computed_per_batch} are computed over "
                "the samples of a mini-batch."
            )

    @staticmethod
    def _dataset(X_tensor, sample_weight=None):
        """The training data as the nets take it, with the samples' loss weights."""
        return IndexedDataset(X_tensor, loss_weights(sample_weight, X_tensor.device))

    def _check_n_clusters_found(self, labels):
        """Relabel to consecutive integers, dropping clusters nobody joined.

        A clustering head, a centroid or a k-means centre can end up with no
        sample. scikit-learn expects ``labels_`` to be ``0..k-1`` with every
        label used, so empty clusters are removed (their centres too, so
        ``predict`` never returns them) and a
        :class:`~sklearn.exceptions.ConvergenceWarning` says so, as
        :class:`~sklearn.cluster.KMeans` does when it finds fewer clusters;
        where at most half are left, the fit's collapse warning says it
        instead (see :func:`_guarded_fit`).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Consecutive labels.
        kept : ndarray of shape (n_found,)
            Indices of the clusters that were kept, in order.
        """
        kept = np.unique(labels)
        # A collapse: _warn_if_collapsed says so once fit ends, in a warning
        # that begins alike and gives the likely cause.
        if len(kept) < self.n_clusters and not _is_collapse(len(kept), self.n_clusters):
            _warn_at_caller(
                f"Number of distinct clusters ({len(kept)}) found smaller than "
                f"n_clusters ({self.n_clusters}); the empty clusters were removed.",
                ConvergenceWarning,
            )
        return np.searchsorted(kept, labels), kept

    def _set_clusters(
        self,
        X: torch.Tensor,
        labels: np.ndarray,
        centers: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Set ``labels_``, ``cluster_centers_`` and ``inertia_`` at the end of ``_fit``.

        Parameters
        ----------
        X : torch.Tensor
            The training tensor.
        labels : ndarray of shape (n_samples,)
            Cluster of each training sample, computed as :meth:`_predict`
            computes it. Empty clusters are dropped (see
            :meth:`_check_n_clusters_found`).
        centers : ndarray of shape (n_clusters, n_components), default=None
            The centre of every cluster, empty ones included. ``None``: each
            cluster's centre is the mean embedding of its samples (weighted
            by ``sample_weight``, as k-means weighs its centres).
        sample_weight : ndarray of shape (n_samples,), default=None
            The training samples' weights, for the centres' means and
            ``inertia_``; ``None`` weighs them equally.

        Returns
        -------
        kept : ndarray of shape (n_found,)
            Indices of the clusters that were kept, in order.
        """
        self.labels_, kept = self._check_n_clusters_found(labels)
        if centers is None:
            self.cluster_centers_ = self._mean_embeddings(X, len(kept), sample_weight)
        else:
            self.cluster_centers_ = centers[kept]
        self._set_inertia(X, sample_weight)
        return kept

    def _training_batches(self, X):
        """``(start, rows)`` of the training data ``X``, an inference batch at a time.

        For the passes over all training samples that reduce their results
        (the centres' means, ``inertia_``): the embedding of all of ``X`` is
        then never held whole, which for a wide embedding (IMSAT's last
        hidden layer) would be several times the size of ``X`` itself.
        """
        batch_size = inference_batch_size(self.batch_size)
        for start in range(0, len(X), batch_size):
            yield start, X[start : start + batch_size]

    def _mean_embeddings(self, X, n_clusters, sample_weight=None):
        """Mean embedding of the training samples ``X`` of each cluster of ``labels_``.

        Weighted by ``sample_weight`` when given, as k-means weighs its
        centres; summed in float64 batch by batch (see
        :meth:`_training_batches`), returned in the embedding's dtype.
        Every cluster has a sample (see :meth:`_check_n_clusters_found`).
        """
        sums = counts = dtype = None
        for start, X_batch in self._training_batches(X):
            Z = to_numpy(self._embed(X_batch))
            labels = self.labels_[start : start + len(Z)]
            weight = (
                np.ones(len(Z))
                if sample_weight is None
                else sample_weight[start : start + len(Z)]
            )
            if sums is None:
                sums = np.zeros((n_clusters, Z.shape[1]))
                counts = np.zeros(n_clusters)
                dtype = Z.dtype
            # add.at adds the rows one after another: the same sums whatever
            # the device or the number of threads.
            np.add.at(sums, labels, Z * weight[:, None])
            counts += np.bincount(labels, weights=weight, minlength=n_clusters)
        return (sums / counts[:, None]).astype(dtype)

    def _reference_rows(self, X, random_state):
        """The reference rows of the training data ``X`` and their indices.

        Every row up to 10,000, a random 10,000 above
        (:func:`~skdeepcluster._graph.reference_indices`), read an inference
        batch at a time, so that graphs built on them stay linear in
        ``n_samples``.
        """
        reference = reference_indices(len(X), random_state)
        step = inference_batch_size(self.batch_size)
        rows = torch.cat(
            [
                X[torch.as_tensor(reference[i : i + step], device=X.device)]
                for i in range(0, len(reference), step)
            ]
        )
        return reference, rows

    def _input_graph(self, X, random_state):
        """Neighbour graph of the input features of the reference rows.

        The 10-nearest-neighbour graph of the reference rows of ``X``
        (:meth:`_reference_rows`). Its ``embedding`` holds the reference
        rows themselves, on which a network's partition is then taken (DAC
        scores and refines its partitions on it).
        """
        reference, rows = self._reference_rows(X, random_state)
        features = to_numpy(rows).reshape(len(reference), -1)
        return ReferenceGraph(
            reference, rows, neighbour_graph(features, SCORING_NEIGHBOURS)
        )

    def _moved_partition(self, graph, reference_labels):
        """``reference_labels`` after split-and-merge moves on ``graph``, and their number.

        :func:`~skdeepcluster._graph.split_merge`, first cutting clusters up
        to ``n_clusters``.
        """
        return split_merge(
            graph.adjacency, reference_labels, min_clusters=self.n_clusters
        )

    # k-means restarts on the UMAP layout that competes with a network's own
    # partition (_kept_partition); the layout, not the restarts, is what costs.
    _LAYOUT_KMEANS_RESTARTS = 10

    def _kept_partition(self, graph, net_labels, clustering, random_state):
        """The partition a refinement trains toward, its moves, and its source.

        The net's partition of the reference samples, ``net_labels``, after
        its split-and-merge moves on ``graph`` (:meth:`_moved_partition`);
        with ``clustering="umap"`` instead k-means of a UMAP layout of
        ``graph.embedding`` (:func:`~skdeepcluster._graph.umap_partition`,
        its restarts chosen by modularity of ``graph``) after its moves; with
        ``"auto"`` whichever of the two has the higher modularity of
        ``graph``, the criterion of :class:`AutoencoderKMeans`'
        ``clustering="auto"``. The net's partition wins ties.

        Returns
        -------
        labels : ndarray of shape (n_reference,)
        n_moves : int
            The moves made on the kept partition.
        source : {"net", "umap"}
            Whose partition was kept.
        """
        moved, n_moves = self._moved_partition(graph, net_labels)
        if clustering == "net":
            return moved, n_moves, "net"
        layout_moved, layout_moves = self._moved_partition(
            graph, self._layout_partition(graph, random_state)
        )
        if clustering == "umap" or modularity(
            graph.adjacency, layout_moved
        ) > modularity(graph.adjacency, moved):
            return layout_moved, layout_moves, "umap"
        return moved, n_moves, "net"

    def _refine_by_moves(
        self, net, dataset, graph, net_labels, clustering, random_state, epochs, **state
    ):
        """Train ``net`` toward the kept partition after its split-and-merge moves.

        :meth:`_kept_partition` chooses, by ``clustering``, between the net's
        partition ``net_labels`` of the reference samples of ``graph`` and
        the UMAP layout's, each after its moves. When a move was made, or
        the layout's partition was kept, ``net`` trains ``epochs`` epochs
        toward it (:meth:`_train_toward`), its clusters numbered after the
        net's outputs they share most samples with
        (:func:`~skdeepcluster._graph.match_labels`); ``state`` is any other
        training state to set on ``net`` first (DAC's ``neighbours_``).

        Returns
        -------
        n_moves : int
            The moves made on the kept partition.
        source : {"net", "umap"}
            Whose partition was kept; ``net`` trained unless ``n_moves`` is
            0 and ``source`` is ``"net"``.
        """
        moved, n_moves, source = self._kept_partition(
            graph, net_labels, clustering, random_state
        )
        if n_moves or source != "net":
            # The kept partition numbers its clusters in no particular order
            # (the layout's k-means, or a merge renumbering the clusters after
            # it); matched to the net's outputs, its targets move only the
            # samples whose cluster changed, not every sample of a cluster
            # that only changed its number.
            moved = match_labels(moved, net_labels, self.n_clusters)
            self._train_toward(net, dataset, graph, moved, epochs, **state)
        return n_moves, source

    def _layout_partition(self, graph, random_state):
        """k-means of a UMAP layout of the rows of ``graph.embedding``.

        :func:`~skdeepcluster._graph.umap_partition` with 10 neighbours, its
        k-means restarts chosen by modularity of ``graph``.
        """
        embedding = graph.embedding
        if isinstance(embedding, torch.Tensor):
            embedding = to_numpy(embedding)
        return umap_partition(
            embedding.reshape(len(graph.reference), -1),
            self.n_clusters,
            SCORING_NEIGHBOURS,
            self._LAYOUT_KMEANS_RESTARTS,
            random_state,
            graph.adjacency,
        )

    @staticmethod
    def _train_toward(net, dataset, graph, reference_labels, epochs, **state):
        """Train ``net`` ``epochs`` epochs toward a partition of the reference samples.

        ``net`` trains (stage ``"refinement"``) with ``reference_labels``, a
        partition of the reference samples of ``graph``, as ``targets_``
        (``-1`` for the other samples), which its loss reads through
        :meth:`~skdeepcluster._nets.ClusteringNet.target_loss`; ``state`` is
        any other training state to set on ``net`` first.
        """
        targets = torch.full((len(dataset),), -1, dtype=torch.long)
        targets[torch.as_tensor(graph.reference)] = torch.as_tensor(
            reference_labels, dtype=torch.long
        )
        net.targets_ = targets.to(net.device)
        for name, value in state.items():
            setattr(net, name, value)
        net.set_params(stage="refinement")
        net.partial_fit(dataset, epochs=epochs)

    @abstractmethod
    def _fit(
        self,
        X: torch.Tensor | ArrayRows,
        y: ArrayLike | None,
        random_state: np.random.RandomState,
        sample_weight: np.ndarray | None,
    ) -> None:
        """Train and set ``labels_``, ``cluster_centers_``, ``n_iter_``, nets.

        ``X`` holds the samples of positive weight, as a tensor or as rows
        read on demand (see :meth:`_training_data`); ``sample_weight`` their
        weights (float64), or ``None`` when every sample weighs 1.
        """

    # -- inference ---------------------------------------------------------

    def _validate_for_inference(self, X):
        """Check that ``self`` is fitted and ``X`` matches the training data.

        ``X`` is returned as a NumPy array or a CSR matrix, not converted to a
        tensor: a memory-mapped array stays one, a sparse matrix stays sparse,
        and :meth:`_map_batches` reads it one batch at a time.
        """
        check_is_fitted(self)
        X = _tensor_as_array(X)
        _reject_unflattened_images(X, type(self).__name__)
        # CSR, whose row slices (the batches) are cheap; CSC is converted.
        return validate_data(
            self, X, accept_sparse="csr", dtype=[np.float32, np.float64], reset=False
        )

    def _input_scaling(self):
        """``(offset, scale)``: the network sees ``(X - offset) / scale``.

        See ``input_scaling``.
        """
        # fit sets both; without them (an estimator whose fit has not got
        # that far) the input is used as given.
        return getattr(self, "input_offset_", 0.0), getattr(self, "input_scale_", 1.0)

    def _batch_to_tensor(self, X_batch):
        """float32 tensor of the rows ``X_batch`` on the device, shaped for the net."""
        # A sparse batch is densified here, so that only one batch is ever
        # dense in memory.
        X_batch = _densify(X_batch)
        value_range = _value_range(X_batch)
        _check_float32_range(X_batch, _magnitude(value_range))
        offset, scale = self._input_scaling()
        overflow = _squares_overflow(value_range, offset, scale)
        if overflow:
            # Where training only diverges on such values (and says so), the
            # distances and probabilities of inference would silently be NaN.
            raise ValueError(
                f"{overflow} in the network: its outputs would be NaN. Scale X "
                "as the training data was scaled."
            )
        X_tensor = network_rows(X_batch, offset, scale)
        if self._input_shape is not None:
            X_tensor = X_tensor.view(-1, *self._input_shape)
        return X_tensor.to(self._device)

    def _map_batches(
        self,
        function: Callable[[torch.Tensor], torch.Tensor],
        X: np.ndarray | sp.spmatrix | sp.sparray,
    ) -> np.ndarray:
        """Apply the hook ``function`` to ``X`` batch by batch, without grad.

        Each batch of ``inference_batch_size(batch_size)`` rows (the batches
        of :meth:`_batched_eval`, so that results equal those computed on the
        whole training tensor during ``fit``) is converted to float32 and
        moved to the device on its own, and its output written into one
        preallocated array: the memory used beyond the input and the output
        is that of a batch, whatever ``n_samples`` is.

        Parameters
        ----------
        function : callable
            Maps a tensor batch to a tensor with one row per sample.
        X : ndarray or CSR matrix of shape (n_samples, n_features)
            Validated input; may be a memory map.

        Returns
        -------
        ndarray of shape (n_samples, ...)
            The outputs, with ``function``'s dtype.
        """
        batch_size = inference_batch_size(self.batch_size)
        out = None
        # shape[0], not len(): a sparse matrix has no length.
        n_samples = X.shape[0]
        with torch.no_grad():
            for start in range(0, n_samples, batch_size):
                batch = self._batch_to_tensor(X[start : start + batch_size])
                result = to_numpy(self._finite(function(batch)))
                if out is None:
                    out = np.empty((n_samples, *result.shape[1:]), dtype=result.dtype)
                out[start : start + len(result)] = result
        return out

    def _finite(self, values: torch.Tensor) -> torch.Tensor:
        """``values``, a tensor computed at inference, once checked to be finite.

        Overflow inside the network, on input within the bounds that
        :meth:`_batch_to_tensor` checks but far from the training data's,
        gives infinities and NaN. The labels of :meth:`predict` are read
        from such values (an argmax, a nearest centre), so they are checked
        before the labels are taken, as the outputs of the other methods are.
        """
        if values.is_floating_point() and not torch.isfinite(values).all():
            raise ValueError(
                f"{type(self).__name__} computed non-finite values for X: the "
                "network overflows float32 on values this far from the "
                "training data. Scale X as the training data was scaled."
            )
        return values

    @abstractmethod
    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        """Embedding of the tensor ``X`` as a tensor (no validation, no grad)."""

    def _cluster_centers_tensor(self):
        return torch.as_tensor(self.cluster_centers_, device=self._device)

    def _predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        return student_t_assignment(self._embed(X), self._cluster_centers_tensor())

    def _predict(self, X: torch.Tensor) -> torch.Tensor:
        return self._embed_and_predict(X)[1]

    def _embed_and_predict(self, X):
        """The embedding of the tensor ``X`` and its labels, from one pass.

        As :meth:`_embed` and :meth:`_predict` give them; :meth:`score` needs
        both, and a subclass predicting otherwise than by the nearest centre
        overrides this too.
        """
        Z = self._finite(self._embed(X))
        return Z, nearest_center(Z, self._cluster_centers_tensor())

    def transform(self, X: MatrixLike) -> NDArray[np.float32]:
        """Map ``X`` to the learned embedding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to embed.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The embedding, in the space where ``cluster_centers_`` live.
        """
        return self._map_batches(self._embed, self._validate_for_inference(X))

    @fill_doc
    def predict(self, X: MatrixLike) -> NDArray[np.intp]:
        """Predict the cluster each sample in ``X`` belongs to.

        Parameters
        ----------
        {X_new}

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each sample belongs to.
        """
        labels = self._map_batches(self._predict, self._validate_for_inference(X))
        return labels.astype(np.intp, copy=False)

    @fill_doc
    def predict_proba(self, X: MatrixLike) -> NDArray[np.float64]:
        """Soft cluster assignments of ``X``.

        Parameters
        ----------
        {X_new}

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters_found)
            Probability of each sample belonging to each cluster; rows sum to 1.
        """
        proba = self._map_batches(self._predict_proba, self._validate_for_inference(X))
        # Renormalise in float64 so rows sum to 1 to double precision; in
        # place, to hold one float64 copy of the output rather than two.
        proba = proba.astype(np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    @fill_doc
    def score(
        self,
        X: MatrixLike,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> float:
        """Opposite of the within-cluster sum of squares in embedding space.

        Each sample is compared with the centre of the cluster :meth:`predict`
        gives it, as :meth:`sklearn.cluster.KMeans.score` does in input space.
        Higher is better. Scores are only comparable between models that share
        an embedding, so use a clustering metric
        (:mod:`skdeepcluster.metrics`) to compare different networks.

        Parameters
        ----------
        {X_new}
        y : Ignored
            Not used, present here for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's squared distance; ``None``
            weighs every sample 1.

        Returns
        -------
        score : float
            Opposite of the (weighted) sum of squared distances to the
            assigned centres.
        """
        X = self._validate_for_inference(X)
        if sample_weight is not None:
            sample_weight = _validated_sample_weight(sample_weight, X)

        def squared_distances(X_batch):
            return self._distances_to_centres(*self._embed_and_predict(X_batch))

        squared = self._map_batches(squared_distances, X)
        return -_weighted_sum(squared, sample_weight)

    def _squared_distances(self, X, labels):
        """Squared distance of the embedding of each row of ``X`` to its centre."""
        return self._distances_to_centres(self._embed(X), labels)

    def _distances_to_centres(self, Z, labels):
        """Squared distance of each embedding in ``Z`` to the centre of its label."""
        labels = torch.as_tensor(labels, device=Z.device)
        return (Z - self._cluster_centers_tensor()[labels]).pow(2).sum(dim=1)

    def _sum_of_squares(self, X, labels, sample_weight=None):
        """(Weighted) sum of squared distances of the embeddings of ``X`` to their centres."""
        # Summed per sample, then over samples in float64, as score() sums
        # the batches it computes: the two agree exactly on the training data.
        # Written into one array allocated once, as batched() does: small
        # per-batch arrays kept until a concatenation would be scattered
        # among the batches' freed temporaries, which the allocator could
        # then not reuse.
        squared = None
        for start, X_batch in self._training_batches(X):
            part = to_numpy(
                self._squared_distances(X_batch, labels[start : start + len(X_batch)])
            )
            if squared is None:
                squared = np.empty(len(X), dtype=part.dtype)
            squared[start : start + len(part)] = part
        return _weighted_sum(squared, sample_weight)

    def _set_inertia(self, X, sample_weight=None):
        """Set ``inertia_`` from ``labels_``: ``-score`` of the training data."""
        self.inertia_ = self._sum_of_squares(X, self.labels_, sample_weight)

    def _batched_eval(self, module, X, function=None):
        """Run ``module`` (or ``function``) on ``X``: see :func:`batched_eval`."""
        return batched_eval(module, X, self.batch_size, function)

    # -- pickling ----------------------------------------------------------

    def _nets(self, state):
        """Names of the skorch nets among the attributes ``state``."""
        from skorch import NeuralNet

        return [name for name, value in state.items() if isinstance(value, NeuralNet)]

    def __getstate__(self):
        # Pickle the nets on the CPU, so that a model trained on a GPU loads
        # on any machine; __setstate__ moves them to ``device`` when it is
        # there.
        # A copy: object.__getstate__ may return the instance's own __dict__.
        state = dict(super().__getstate__())
        for name in self._nets(state):
            state[name] = net_on_cpu(state[name])
        if "_device" in state:
            state["_device"] = torch.device("cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_device" not in state:
            return
        if "_input_shape" not in state:
            # A pickle of a version that did not store the shape: it is the
            # parameter's, which set_params could not change since.
            self._resolve_input_shape()
        try:
            device = resolve_device(self.device)
        except ValueError as exc:
            warnings.warn(
                f"{exc} The model runs on the CPU instead.", UserWarning, stacklevel=2
            )
            device = torch.device("cpu")
        if device.type != "cpu":
            for name in self._nets(state):
                move_net(getattr(self, name), device)
        self._device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The network computes in float32 whatever the input dtype.
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.sparse = True
        return tags


class DecoderMixin:
    """``inverse_transform`` for the estimators that keep their decoder.

    Mixed into the autoencoder estimators whose fitted ``net_.module_`` has a
    decoder that matches the final encoder (AutoencoderKMeans, ACAIKMeans,
    SNNLKMeans, DCN, and DEC with its reconstruction term,
    ``reconstruction_weight > 0``, which makes the method available only
    then).
    """

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Decode embeddings back to input space.

        ``inverse_transform(cluster_centers_)`` shows the prototype of each
        cluster.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Points in the embedding space.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Their reconstructions, flattened.
        """
        check_is_fitted(self)
        Z = check_array(_tensor_as_array(X), dtype=np.float32)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has shape {Z.shape}; inverse_transform expects embeddings of "
                f"shape (n_samples, {self._n_features_out})."
            )
        Z = torch.as_tensor(Z, device=self._device)
        decoded = self._batched_eval(self.net_.module_.decoder, Z)
        # Back to the scale of the input (see input_scaling).
        offset, scale = self._input_scaling()
        decoded = to_numpy(decoded).reshape(len(Z), -1) * np.float32(scale)
        return decoded + np.float32(offset) if offset != 0 else decoded


class ReferenceGraph(NamedTuple):
    """Neighbour graph of the reference rows of an embedding."""

    reference: NDArray
    """Indices of the reference rows."""
    embedding: NDArray
    """Their embeddings."""
    adjacency: sp.sparray
    """Symmetric 0/1 adjacency of their nearest-neighbour graph."""


class BaseAutoencoderClusterer(BaseDeepClusterer):
    """Base for the methods built on an autoencoder.

    Builds the encoder and decoder (fully connected by default, convolutional
    when ``input_shape`` is given, or copies of the user's modules), pretrains
    them on reconstruction (through the cache ``memory`` when set) and embeds
    with the encoder. The estimators that keep the decoder after training
    decode with :class:`DecoderMixin`'s ``inverse_transform``.
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "hidden_dims": [tuple, list, StrOptions({"auto"})],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "encoder": [torch.nn.Module, None],
        "decoder": [torch.nn.Module, None],
        "pretrain_epochs": [
            Interval(Integral, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "center_input": ["boolean"],
        "normalize_embedding": ["boolean", StrOptions({"auto"})],
        "smoothing_weight": [
            Interval(Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "smoothing_start": [Interval(Real, 0, 1, closed="both")],
        "memory": [None, str, HasMethods(["cache"])],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "kmeans_selection": [StrOptions({"modularity", "inertia"})],
    }

    _schedule_callbacks = ("neighbour_refresh",)

    # The "auto" sizes (see _check_params_vs_input). DEC's d-500-500-2000
    # network (Xie et al. 2016) has about three million weights: on a few
    # thousand samples it neither trains in a few thousand steps nor gives an
    # embedding that clusters better than a smaller one, while from about ten
    # thousand samples on (MNIST) the larger network clusters better.
    _LARGE_DATA = 5000
    _LARGE_HIDDEN_DIMS = (500, 500, 2000)
    _SMALL_HIDDEN_DIMS = (256, 128)
    # At least this many epochs and this many optimiser steps: an epoch of a
    # few hundred samples is one or two steps, far too few to train on.
    _MIN_PRETRAIN_EPOCHS = 100
    _MIN_PRETRAIN_STEPS = 2000
    # The smoothing term's neighbours are searched among at most this many
    # training samples, a random subset drawn once per fit (see _pretrain).
    # An exact search compares every pair of samples every epoch; against a
    # fixed subset an epoch's search is linear in n_samples, in time and in
    # memory. Up to this size (MNIST-test, on which the smoothing was tuned)
    # the search stays exact. Beyond it a sample's n_neighbors nearest
    # candidates cover the same fraction of the data (n_neighbors / 10,000)
    # as on data of this size, rather than a fraction that shrinks as
    # n_samples grows. A class attribute so tests can lower it.
    _SMOOTHING_CANDIDATES = 10_000

    def __init__(
        self,
        *,
        n_clusters: int,
        hidden_dims: HiddenDims | Literal["auto"],
        embedding_dim: int,
        input_shape: InputShape,
        input_scaling: Literal["auto"] | None,
        encoder: torch.nn.Module | None,
        decoder: torch.nn.Module | None,
        center_input: bool,
        normalize_embedding: bool | Literal["auto"],
        pretrain_epochs: IntOrAuto,
        smoothing_weight: FloatOrAuto,
        n_neighbors: int,
        smoothing_start: float,
        batch_size: int,
        lr: float,
        n_init: IntOrAuto,
        kmeans_selection: str,
        device: Device,
        random_state: RandomStateLike,
        verbose: int,
        memory: MemoryLike,
        callbacks: Callbacks,
        optimizer: OptimizerFactory,
        **kwargs: Any,
    ) -> None:
        # The autoencoder parameters the five estimators built on it share.
        self.hidden_dims = hidden_dims
        self.embedding_dim = embedding_dim
        self.encoder = encoder
        self.decoder = decoder
        self.center_input = center_input
        self.normalize_embedding = normalize_embedding
        self.pretrain_epochs = pretrain_epochs
        self.smoothing_weight = smoothing_weight
        self.n_neighbors = n_neighbors
        self.smoothing_start = smoothing_start
        self.n_init = n_init
        self.kmeans_selection = kmeans_selection
        self.memory = memory
        super().__init__(
            n_clusters=n_clusters,
            input_shape=input_shape,
            input_scaling=input_scaling,
            batch_size=batch_size,
            lr=lr,
            device=device,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            optimizer=optimizer,
            **kwargs,
        )

    def _check_params_vs_input(self, X):
        """Resolve the ``"auto"`` sizes for ``X`` into private attributes.

        Sets ``_hidden_dims``, ``_pretrain_epochs``, ``_smoothing_weight``
        and ``_normalize_embedding``, the values training uses (and
        ``_n_init``, see the base class).
        """
        super()._check_params_vs_input(X)
        # shape[0], not len(): a sparse matrix has no length.
        n_samples = X.shape[0]
        large = n_samples >= self._LARGE_DATA
        self._hidden_dims = (
            (self._LARGE_HIDDEN_DIMS if large else self._SMALL_HIDDEN_DIMS)
            if _is_auto(self.hidden_dims)
            else tuple(self.hidden_dims)
        )
        if _is_auto(self.pretrain_epochs):
            self._pretrain_epochs = epochs_with_min_steps(
                n_samples,
                self.batch_size,
                self._MIN_PRETRAIN_EPOCHS,
                self._MIN_PRETRAIN_STEPS,
            )
        else:
            self._pretrain_epochs = self.pretrain_epochs
        # The smoothing pulls each sample towards its neighbours' mean; with
        # few samples per cluster those neighbourhoods cross clusters and the
        # pull merges them, so it is on by default only for large data.
        if _is_auto(self.smoothing_weight):
            self._smoothing_weight = 1.0 if large else 0.0
        else:
            self._smoothing_weight = self.smoothing_weight
        if _is_auto(self.normalize_embedding):
            # Unit length removes what the code's norm carries. For bounded
            # intensities (pixels in [0, 1] or [-1, 1], min-max scaled
            # features) that is mostly the overall intensity (how much ink a
            # digit has), which k-means would otherwise split along. For
            # standardised or raw features, which reach beyond [-1, 1],
            # the norm says how far a sample lies from the centre of the
            # data, and dropping it cost accuracy on every such data set
            # measured. In one dimension unit length keeps only the sign.
            # The values read once by fit; a direct call reads them here.
            value_range = getattr(self, "_input_range", None) or _value_range(X)
            offset, scale = self._input_scaling()
            self._normalize_embedding = (
                self.embedding_dim > 1 and _magnitude(value_range, offset) <= scale
            )
        else:
            self._normalize_embedding = self.normalize_embedding

    def _check_fit_input(self, X):
        super()._check_fit_input(X)
        if (
            self._normalize_embedding
            and self.embedding_dim == 1
            and self.encoder is None
            and self.n_clusters > 2
        ):
            # Only an explicit True gets here: "auto" is False in one dimension.
            raise ValueError(
                "embedding_dim=1 with normalize_embedding=True maps every sample "
                "to -1 or +1 (unit length in one dimension), so at most 2 of "
                f"n_clusters={self.n_clusters} clusters can be found. Set "
                "embedding_dim >= 2 or normalize_embedding=False."
            )
        location = (
            self.memory
            if isinstance(self.memory, str)
            else getattr(self.memory, "location", None)
        )
        blocking = _file_in_the_way(location)
        if blocking is not None:
            # joblib would fail at the first write, after the pretraining.
            raise ValueError(
                f"memory={self.memory!r} cannot hold a cache: {blocking!r} is a "
                "file. Pass the path of a directory (created if missing), a "
                "joblib.Memory, or None."
            )

    def _user_modules_seed(self, seed):
        """Seed torch's global generator with ``seed`` when the user passed modules.

        A user's ``encoder`` and ``decoder`` may draw random numbers
        themselves (dropout), from torch's global generator: they cannot be
        handed the fit's generators. While they are part of a fit, the global
        generator is seeded from ``random_state`` and restored afterwards, so
        that such a fit is reproducible too, provided no other thread draws
        from that generator meanwhile.
        """
        if not self._has_user_modules():
            return super()._user_modules_seed(seed)
        return torch_seed(seed, self._device)

    def _has_user_modules(self):
        return self.encoder is not None or self.decoder is not None

    def _build_autoencoder(self, n_features, generator, mean=None):
        """The autoencoder to pretrain; ``mean`` of the training samples or ``None``.

        With ``mean`` the encoder first subtracts it and the decoder adds it
        back (``center_input``), so the layers work on centred data.
        """
        from .nn import L2Normalize, Shift

        autoencoder = self._build_encoder_decoder(n_features, generator)
        encoder = [autoencoder.encoder]
        if mean is not None:
            encoder.insert(0, Shift(-mean))
            autoencoder.decoder = torch.nn.Sequential(autoencoder.decoder, Shift(mean))
        if self._normalize_embedding:
            encoder.append(L2Normalize())
        if len(encoder) > 1:
            autoencoder.encoder = torch.nn.Sequential(*encoder)
        return autoencoder

    def _centres_input(self):
        """Whether the autoencoder centres its input (``center_input``).

        Not with the user's modules, which see the input as they were given
        it: they may have been trained on uncentred input, and those of a
        fitted estimator already centre.
        """
        return self.center_input and not self._has_user_modules()

    def _build_encoder_decoder(self, n_features, generator):
        """The autoencoder, its weights drawn from ``generator`` (or the user's)."""
        from .nn import Autoencoder, ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

        if (self.encoder is None) != (self.decoder is None):
            raise ValueError("Pass both encoder and decoder, or neither.")
        if self.encoder is not None:
            # Copies: the modules given as parameters must stay untouched so
            # that clone() and refitting start from the same weights.
            autoencoder = Autoencoder(
                copy.deepcopy(self.encoder), copy.deepcopy(self.decoder)
            )
            _check_user_autoencoder(autoencoder, self.input_shape or (n_features,))
            return autoencoder
        if self.input_shape is not None:
            return build_module(
                lambda: Autoencoder(
                    ConvEncoder(self.input_shape, self.embedding_dim),
                    ConvDecoder(self.input_shape, self.embedding_dim),
                ),
                generator,
            )
        hidden_dims = self._hidden_dims
        return build_module(
            lambda: Autoencoder(
                MLPEncoder(n_features, hidden_dims, self.embedding_dim),
                MLPDecoder(self.embedding_dim, hidden_dims[::-1], n_features),
            ),
            generator,
        )

    def _reference_graph(self, Z, random_state):
        """Neighbour graph of the reference rows of the embedding ``Z``.

        The reference is every row up to 10,000 and a random 10,000 above
        (:func:`~skdeepcluster._graph.reference_indices`), so that building
        the graph and scoring partitions on it stay linear in
        ``n_samples``.
        """
        reference = reference_indices(len(Z), random_state)
        embedding = to_numpy(Z[torch.as_tensor(reference, device=Z.device)])
        return ReferenceGraph(
            reference, embedding, neighbour_graph(embedding, self.n_neighbors)
        )

    def _graph_partitions(self, graph, methods, random_state):
        """Partitions of the reference samples by the neighbour graph's ``methods``.

        ``methods``: any of ``"spectral"`` and ``"umap"``; the result keeps
        that order, the order in which ties of modularity are broken.
        """
        partitions = {}
        if "spectral" in methods:
            partitions["spectral"] = spectral_partition(
                graph.embedding, self.n_clusters, self.n_neighbors, random_state
            )
        if "umap" in methods:
            partitions["umap"] = umap_partition(
                graph.embedding,
                self.n_clusters,
                self.n_neighbors,
                self._n_init,
                random_state,
                graph.adjacency,
                # The layout of the pretrained embedding depends on
                # n_clusters only through its dimensions: with memory, the
                # candidates of a search over n_clusters from 10 up lay it
                # out once.
                memory=self.memory,
            )
        return partitions

    @staticmethod
    def _most_modular(graph, kmeans, partitions):
        """Name of the partition of highest modularity: ``"kmeans"`` or a key of ``partitions``.

        Modularity of the reference samples' neighbour graph does not favour
        any method's shape of a cluster (round groups, connected strands or
        compact groups of a layout), though it does favour clusters of
        comparable size; k-means wins ties.
        """
        scores = {
            "kmeans": modularity(graph.adjacency, kmeans.labels_[graph.reference])
        }
        for name, labels in partitions.items():
            scores[name] = modularity(graph.adjacency, labels)
        return max(scores, key=scores.get)

    def _auto_partition(self, graph, kmeans, partitions):
        """The partition of the reference samples that ``"auto"`` keeps.

        The candidate of highest modularity (:meth:`_most_modular`), refined
        by :func:`~skdeepcluster._graph.split_merge`. Returns the candidate's
        name, the refined labels of the reference samples and the number of
        split-and-merge moves made. The labels are ``None`` when k-means'
        partition is kept unmoved: its centres then label and predict.
        """
        name = self._most_modular(graph, kmeans, partitions)
        labels = (
            kmeans.labels_[graph.reference] if name == "kmeans" else partitions[name]
        )
        labels, n_moves = split_merge(graph.adjacency, labels)
        if name == "kmeans" and not n_moves:
            labels = None
        return name, labels, n_moves

    # DEC's and DCN's "auto" initial_partition_epochs on an embedding
    # pretrained without the neighbourhood smoothing: 30 epochs, and no more
    # than make _HELD_INITIAL_PARTITION_STEPS optimiser steps when a class
    # sets it (None: no cap). After the smoothing, which contracts the
    # classes into round groups, the start from the nearest-centre
    # relabelling ended higher on MNIST, and no epoch is held.
    _HELD_INITIAL_PARTITION_EPOCHS = 30
    _HELD_INITIAL_PARTITION_STEPS = None

    def _resolve_clustering_epochs(self, n_samples):
        """Resolve the clustering stage's lengths (DEC and DCN).

        Sets ``_initial_partition_epochs`` and ``_clustering_epochs``, the
        stage's whole budget; ``clustering_epochs="auto"`` (DCN) is
        ``_AUTO_CLUSTERING_EPOCHS`` after the initial-partition epochs.
        """
        if _is_auto(self.initial_partition_epochs):
            held = (
                0 if self._smoothing_weight > 0 else self._HELD_INITIAL_PARTITION_EPOCHS
            )
            if held and self._HELD_INITIAL_PARTITION_STEPS is not None:
                held = min(
                    held,
                    epochs_with_min_steps(
                        n_samples,
                        self.batch_size,
                        1,
                        self._HELD_INITIAL_PARTITION_STEPS,
                    ),
                )
        else:
            held = self.initial_partition_epochs
        self._initial_partition_epochs = held
        self._clustering_epochs = (
            self._AUTO_CLUSTERING_EPOCHS + held
            if _is_auto(self.clustering_epochs)
            else self.clustering_epochs
        )

    def _voters(self, n_reference):
        """How many nearest reference samples vote for a sample's cluster.

        ``n_neighbors``, or a third of the mean cluster size when that is
        smaller (:func:`neighbours_within_clusters`): with ten samples per
        cluster (ORL), ten voters reach mostly into other clusters, and a
        small cluster could win no vote, not even its own samples'.
        """
        return neighbours_within_clusters(
            n_reference, self.n_clusters, most=self.n_neighbors
        )

    def _extend_partition(self, Z, graph, reference_labels):
        """Labels of every row of the embedding ``Z`` from those of the reference rows.

        The reference rows keep their labels; every other row takes the
        cluster most common among its :meth:`_voters` nearest reference rows.
        """
        reference = torch.as_tensor(graph.reference, device=Z.device)
        votes = neighbour_votes(
            Z,
            Z[reference],
            torch.as_tensor(reference_labels, device=Z.device),
            self._voters(len(reference)),
            self.n_clusters,
        )
        labels = votes.argmax(dim=1)
        labels[reference] = torch.as_tensor(
            reference_labels, dtype=labels.dtype, device=Z.device
        )
        return to_numpy(labels)

    def _initial_partition(self, Z, random_state, sample_weight, from_graph):
        """Initial centres and assignments on the pretrained embedding ``Z``.

        Sets ``kmeans_`` (k-means on ``Z``, its run kept by
        ``kmeans_selection``) and ``initial_clustering_``. With
        ``from_graph=False``: k-means' centres and labels. With
        ``from_graph=True``: the partition :class:`AutoencoderKMeans` keeps
        with ``clustering="auto"``, i.e. the k-means run or a partition of
        the neighbour graph (spectral, or k-means on a UMAP layout),
        whichever has the highest modularity, refined by split-and-merge
        moves (which also set ``n_split_merge_moves_``); the centres are
        then the (weighted) mean embeddings of its clusters.

        Returns
        -------
        centers : ndarray of shape (n_clusters, n_features)
        assignments : ndarray of int of shape (n_samples,)
        """
        graph = (
            self._reference_graph(Z, random_state)
            if from_graph or self.kmeans_selection == "modularity"
            else None
        )
        self.kmeans_ = self._embedding_kmeans(Z, random_state, sample_weight, graph)
        self.initial_clustering_ = "kmeans"
        self.n_split_merge_moves_ = 0
        centers, assignments = self.kmeans_.cluster_centers_, self.kmeans_.labels_
        if not from_graph:
            return centers, assignments
        partitions = self._graph_partitions(graph, ("spectral", "umap"), random_state)
        self.initial_clustering_, reference_labels, self.n_split_merge_moves_ = (
            self._auto_partition(graph, self.kmeans_, partitions)
        )
        if reference_labels is None:
            return centers, assignments
        assignments = self._extend_partition(Z, graph, reference_labels)
        # A cluster the extension left empty keeps its k-means centre.
        centers = cluster_means(
            Z,
            torch.as_tensor(assignments, device=Z.device),
            torch.tensor(centers, dtype=Z.dtype, device=Z.device),
            sample_weight,
        )
        return to_numpy(centers), assignments

    def _embedding_kmeans(self, Z, random_state, sample_weight, graph=None):
        """k-means of the embedding rows ``Z``, the run kept by ``kmeans_selection``.

        ``graph``: the :meth:`_reference_graph` of ``Z``, when already built.
        """
        if self.kmeans_selection == "inertia":
            return fit_kmeans(
                Z,
                self.n_clusters,
                self._n_init,
                random_state,
                sample_weight=sample_weight,
            )
        if graph is None:
            graph = self._reference_graph(Z, random_state)
        return kmeans_by_modularity(
            Z,
            self.n_clusters,
            self._n_init,
            random_state,
            graph.adjacency,
            graph.reference,
            sample_weight=sample_weight,
        )

    def _pretrain(
        self,
        X,
        random_state,
        sample_weight=None,
        net_cls=None,
        schedule=(),
        **net_params,
    ):
        """Build and train an autoencoder net on ``X``; return the fitted net.

        ``sample_weight`` (or ``None``) weighs the samples' loss terms. The
        net's schedule callbacks are the neighbourhood smoothing's
        ``"neighbour_refresh"`` and then ``schedule``.
        """
        from ._nets import AutoencoderNet
        from .callbacks import NeighbourRefresh

        max_epochs = self._pretrain_epochs
        n_samples = len(X)
        candidates = None
        if self._smoothing_weight > 0 and n_samples > self._SMOOTHING_CANDIDATES:
            candidates = np.sort(
                random_state.choice(
                    n_samples, self._SMOOTHING_CANDIDATES, replace=False
                )
            )
        neighbour_refresh = NeighbourRefresh(
            n_neighbors=self.n_neighbors,
            start=round(self.smoothing_start * max_epochs),
            normalize=self._normalize_embedding,
        )
        weights = self._module_generator(random_state)
        net = (net_cls or AutoencoderNet)(
            self._build_autoencoder(
                self.n_features_in_,
                weights,
                mean=feature_mean(X, sample_weight) if self._centres_input() else None,
            ),
            criterion=torch.nn.MSELoss,
            max_epochs=max_epochs,
            smoothing_weight=self._smoothing_weight,
            neighbour_candidates=candidates,
            # Modules the net builds (ACAI's critic) draw their weights on
            # from the autoencoder's generator: the shuffling and the seeds
            # drawn from random_state stay those of a plain autoencoder.
            init_generator=weights,
            **self._net_kwargs(
                random_state,
                schedule=[("neighbour_refresh", neighbour_refresh), *schedule],
                stage="pretraining",
                **net_params,
            ),
        )
        net.initialize()
        if net.max_epochs == 0:
            return net
        dataset = self._dataset(X, sample_weight)
        if self.memory is None:
            net.partial_fit(dataset)
        else:
            pretrain_with_memory(
                self.memory,
                net,
                dataset,
                # The user's modules draw from torch's global generator,
                # which the fit then seeds (see _user_modules_seed).
                global_generator=self._has_user_modules(),
            )
        return net

    def _clustering_stage_kwargs(self, random_state, schedule=()):
        """Keyword arguments of the clustering-stage net (DEC and DCN).

        That net trains for ``clustering_epochs`` epochs (resolved by
        :meth:`_resolve_clustering_epochs`) with ``clustering_lr``, which
        divergence messages name, and the stage's ``schedule`` callbacks (see
        :meth:`_net_kwargs`).
        """
        return dict(
            max_epochs=self._clustering_epochs,
            **self._net_kwargs(
                random_state,
                schedule=schedule,
                lr=self.clustering_lr,
                stage="clustering",
                lr_name="clustering_lr",
            ),
        )

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        return self._batched_eval(self.net_.module_.encoder, X)


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


def _file_in_the_way(location):
    """The file at ``location``, or at a folder above it, that stops a cache there."""
    if not isinstance(location, (str, os.PathLike)):
        return None
    path = os.path.abspath(location)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return None if os.path.isdir(path) else path


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


def _check_user_autoencoder(autoencoder, sample_shape):
    """Raise a ValueError naming what is wrong with the user's encoder or decoder.

    The modules are tried on a batch of two zero samples of ``sample_shape``
    (in evaluation mode, without gradients, so that no running statistic
    changes), so that a wrong shape or dtype is reported before training,
    naming the module at fault, rather than as an error deep inside it.
    """
    parameters = [p for p in autoencoder.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(
            "The encoder and decoder have no trainable parameters: there is "
            "nothing to train."
        )
    for name in ("encoder", "decoder"):
        wrong = {
            p.dtype
            for p in getattr(autoencoder, name).parameters()
            if p.is_floating_point() and p.dtype != torch.float32
        }
        if wrong:
            raise ValueError(
                f"The {name} has parameters of dtype {sorted(map(str, wrong))}; "
                "training runs in float32: convert it with .float()."
            )
    device = parameters[0].device
    probe = torch.zeros((2, *sample_shape), device=device)
    was_training = autoencoder.training
    autoencoder.eval()
    try:
        with torch.no_grad():
            try:
                embedding = autoencoder.encoder(probe)
            except Exception as error:
                raise ValueError(
                    f"The encoder failed on a batch of shape {tuple(probe.shape)} "
                    f"(samples of shape {tuple(sample_shape)}, see input_shape): "
                    f"{error}"
                ) from error
            if not isinstance(embedding, torch.Tensor) or embedding.dim() != 2:
                raise ValueError(
                    "The encoder must return a tensor of shape (batch, "
                    f"embedding); on a batch of shape {tuple(probe.shape)} it "
                    f"returned {_describe_output(embedding)}."
                )
            try:
                reconstruction = autoencoder.decoder(embedding)
            except Exception as error:
                raise ValueError(
                    "The decoder failed on the encoder's output of shape "
                    f"{tuple(embedding.shape)}: {error}"
                ) from error
            if (
                not isinstance(reconstruction, torch.Tensor)
                or reconstruction.shape != probe.shape
            ):
                raise ValueError(
                    "The decoder must return a batch of the input's shape "
                    f"{tuple(probe.shape)}; it returned "
                    f"{_describe_output(reconstruction)}."
                )
    finally:
        autoencoder.train(was_training)


def _describe_output(value):
    """A module's output for an error message: a tensor's shape, else its type."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _densify(X):
    """``X`` as a dense array of its dtype (see :func:`network_rows`)."""
    return X.toarray() if sp.issparse(X) else X


def _validated_sample_weight(sample_weight, X):
    """``sample_weight`` checked as KMeans checks it, non-negative, as float64.

    A torch tensor is taken as its values (see :func:`_tensor_as_array`).
    """
    return _check_sample_weight(
        _tensor_as_array(sample_weight), X, dtype=np.float64, ensure_non_negative=True
    )


def _check_fit_sample_weight(sample_weight, X, n_clusters):
    """Validate ``fit``'s ``sample_weight``; ``None`` when every weight is 1.

    As :class:`~sklearn.cluster.KMeans` validates it, and non-negative. All
    ones mean the same as ``None``; ``None`` is returned then, so that such a
    fit computes exactly what an unweighted one does.
    """
    if sample_weight is None:
        return None
    sample_weight = _validated_sample_weight(sample_weight, X)
    n_positive = int(np.count_nonzero(sample_weight))
    # Training needs two samples and n_clusters of them (too few samples at
    # all is reported by _check_fit_input, in terms of n_samples).
    needed = max(2, n_clusters)
    if n_positive < min(needed, len(sample_weight)):
        raise ValueError(
            f"sample_weight has {n_positive} positive weight"
            f"{'s' if n_positive != 1 else ''} but n_clusters={n_clusters}: "
            "samples of weight zero are left out of training, and at least "
            f"{needed} samples (2, and n_clusters) must remain."
        )
    largest = float(sample_weight.max())
    # Python floats: compared with a float32 scalar, largest would be cast
    # to float32 first (with an overflow warning).
    float32 = np.finfo(np.float32)
    if not float(float32.tiny) <= largest <= float(float32.max):
        # The networks and the k-means of their embeddings compute in
        # float32, where every weight would be 0 or infinite.
        raise ValueError(
            f"sample_weight's largest weight is {largest:.3g}, beyond the float32 "
            "range the estimators compute in (about 1.2e-38 to 3.4e38); only "
            "the weights' ratios matter, so divide them by their largest."
        )
    if np.all(sample_weight == 1):
        return None
    return sample_weight


def _select_rows(y, rows, n_samples):
    """The entries ``rows`` of ``y`` when it has one per sample, else ``y`` as is.

    ``y`` is ignored by most estimators and may be anything; only a ``y`` of
    ``n_samples`` entries is indexed like ``X``.
    """
    if y is None:
        return None
    try:
        if _num_samples(y) != n_samples:
            return y
    except TypeError:
        return y
    return _safe_indexing(y, np.flatnonzero(rows))


def _weighted_sum(values, sample_weight=None):
    """Sum of the float32 ``values`` in float64, weighted when weights are given."""
    if sample_weight is None:
        return float(values.sum(dtype=np.float64))
    return float(np.dot(values.astype(np.float64), sample_weight))


def _draw_seed(random_state):
    """A seed for a torch generator, drawn from the RandomState ``random_state``."""
    return int(random_state.randint(np.iinfo(np.int32).max))


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


def epochs_with_min_steps(n_samples, batch_size, epochs, min_steps):
    """``epochs``, or as many more as make ``min_steps`` optimiser steps.

    An epoch of a few hundred samples is one or two mini-batches: a number
    of epochs chosen on large data would train a network on small data for
    too few steps.
    """
    steps_per_epoch = int(np.ceil(n_samples / batch_size))
    return max(epochs, int(np.ceil(min_steps / steps_per_epoch)))


def neighbours_within_clusters(n_samples, n_clusters, most=10):
    """A number of nearest neighbours that can mostly share a sample's cluster.

    A third of the mean cluster size, ``n_samples // (3 * n_clusters)``,
    between 1 and ``most``: with clusters of similar sizes, most of a
    sample's neighbours can then belong to its own cluster, even with few
    samples per cluster (10 faces per person in ORL), while large data keep
    the papers' ``most`` neighbours.
    """
    return min(most, max(1, n_samples // (3 * n_clusters)))


class _MappedRows:
    """Some rows of a memory-mapped array, read only when indexed.

    The training samples of a memory-mapped ``X`` when samples of weight 0
    are left out: indexing ``X`` with the kept rows would copy them all into
    memory. Has what the fit's checks (``shape``, ``dtype``, ``size``,
    ``ndim``, row slices, see :func:`_value_range`) and
    :class:`~skdeepcluster._torch_utils.ArrayRows` use of an array.

    Parameters
    ----------
    data : numpy.memmap of shape (n_samples, n_features)
    rows : ndarray of int of shape (n_rows,)
        Increasing indices of the rows of ``data``.
    """

    def __init__(self, data, rows):
        self.data = data
        self.rows = rows

    @property
    def shape(self):
        return (len(self.rows), *self.data.shape[1:])

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(np.prod(self.shape))

    def __getitem__(self, key):
        # Reads only the rows asked for (NumPy copies them out of the map).
        return self.data[self.rows[key]]


def _kept_rows(X, kept):
    """The rows ``kept`` (a boolean mask) of the validated ``X``.

    A memory-mapped ``X`` is not copied: its kept rows are read when
    training indexes them (see :class:`_MappedRows`).
    """
    if _is_memory_mapped(X):
        return _MappedRows(X, np.flatnonzero(kept))
    return X[kept]


def _is_memory_mapped(X):
    """Whether the array ``X`` is, or is a view of, a memory-mapped file."""
    while X is not None:
        if isinstance(X, (np.memmap, mmap.mmap)):
            return True
        X = getattr(X, "base", None)
    return False


def _value_blocks(X):
    """The values of the dense array or sparse matrix ``X``, a few rows at a time.

    So that a memory-mapped ``X`` is not copied whole into memory by the
    reductions over it; a sparse matrix gives its stored values.
    """
    if sp.issparse(X):
        X = X.data
    if X.size == 0:
        return
    if X.ndim < 2:
        yield X
        return
    for _, block in _row_blocks(X):
        yield block


def _row_blocks(X):
    """``(start, block)``: the rows of ``X`` in blocks of about a million values."""
    rows = max(1, 2**20 // max(1, X.shape[1]))
    for start in range(0, X.shape[0], rows):
        yield start, X[start : start + rows]


def _without_prefix(keywords, prefix):
    """The entries of ``keywords`` whose names start with ``prefix``, without it."""
    return {
        name.removeprefix(prefix): value
        for name, value in keywords.items()
        if name.startswith(prefix)
    }


def _tensor_as_array(X):
    """A torch tensor ``X`` as a NumPy array, on the CPU; any other ``X`` as is.

    NumPy takes no tensor that requires grad or lives on a GPU, nor
    bfloat16; the estimators never back-propagate into their input, so a
    detached copy of its values is all they need.
    """
    if not isinstance(X, torch.Tensor):
        return X
    X = X.detach().cpu()
    if X.dtype == torch.bfloat16:
        X = X.float()
    return X.numpy()


def _reject_unflattened_images(X, name):
    """Raise for an array of images, with how to pass them, before validation.

    scikit-learn's own message ("Found array with dim 3") does not say that
    the estimators take images flattened, with ``input_shape``.
    """
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) < 3:
        return
    sample_shape = tuple(int(n) for n in shape[1:])
    flatten, image = "X.reshape(len(X), -1)", sample_shape
    if len(sample_shape) == 2:
        image = (1, *sample_shape)
    elif len(sample_shape) == 3 and sample_shape[2] <= 4 < sample_shape[0]:
        # Channels last (height, width, channels): the networks take them first.
        flatten = "X.transpose(0, 3, 1, 2).reshape(len(X), -1)"
        image = (sample_shape[2], *sample_shape[:2])
    hint = ""
    if len(sample_shape) in (2, 3):
        hint = (
            f" For images of shape {sample_shape}, pass {flatten} and "
            f"input_shape={image} (channels, height, width)."
        )
    raise ValueError(
        f"{name} expects X of shape (n_samples, n_features), got an array of "
        f"shape {tuple(shape)}.{hint}"
    )


def _value_range(X):
    """``(smallest, largest)`` of ``X``'s values, in one pass.

    A sparse matrix's implicit zeros are values too (see
    :func:`_value_blocks`, which gives only the stored ones); an empty ``X``
    gives ``(0.0, 0.0)``.
    """
    if sp.issparse(X) and not getattr(X, "has_canonical_format", True):
        # Entries stored twice for one position add up to its value.
        X = X.copy()
        X.sum_duplicates()
    smallest, largest = np.inf, -np.inf
    for block in _value_blocks(X):
        smallest = min(smallest, float(block.min()))
        largest = max(largest, float(block.max()))
    if sp.issparse(X) and X.nnz < X.shape[0] * X.shape[1]:
        smallest, largest = min(smallest, 0.0), max(largest, 0.0)
    if smallest > largest:
        return 0.0, 0.0
    return smallest, largest


def _magnitude(value_range, offset=0.0):
    """Largest magnitude of ``value - offset`` over a :func:`_value_range`."""
    smallest, largest = value_range
    return max(abs(smallest - offset), abs(largest - offset))


def _intensity_scaling(value_range):
    """``input_scaling="auto"``'s ``(offset, scale)`` for data of ``value_range``.

    The network sees ``(X - offset) / scale``. Non-negative data (pixels in
    0..255, the 0..16 of scikit-learn's digits, counts) is mapped onto
    [0, 1], with its minimum as the offset and its range as the scale, as
    the papers divide pixels by 255. Data with negative values whose
    largest magnitude is below 1/2 (small centred features) is divided by
    that magnitude, into [-1, 1]. Data mapped so is fitted alike whatever
    its offset and unit, up to rounding: as for k-means, which a shifted
    or rescaled copy does not change either, a dim image set, or one whose
    values all lie far from 0, is not a harder problem.

    Data of the scale the defaults are set for is left as it is, ``(0.0,
    1.0)``: data within [0, 1] spanning at least half of it (mapping ORL's
    pixels / 255, from 0.008 to 0.92, onto [0, 1] cost every method some
    accuracy, see ``benchmarks/NOTES.rst``), and data with negative values
    and a largest magnitude of 1/2 or more (standardised features, images
    in [-1, 1]; also larger raw features, which need a scaler). So is
    constant data. ``value_range`` is the data's :func:`_value_range`.
    """
    smallest, largest = value_range
    # Narrower data would be divided by zero in the network's float32.
    tiny = np.finfo(np.float32).tiny
    if smallest < 0:
        magnitude = _magnitude(value_range)
        return (0.0, magnitude) if tiny <= magnitude < 0.5 else (0.0, 1.0)
    if largest - smallest < tiny or (largest <= 1 and largest - smallest >= 0.5):
        return 0.0, 1.0
    return smallest, largest - smallest


def _check_float32_range(X, largest=None):
    """Reject values that become infinite when cast to the networks' float32.

    ``largest``: the largest magnitude in ``X`` when already known; read
    from ``X`` otherwise.
    """
    if X.dtype == np.float32 or X.size == 0:
        return
    if largest is None:
        largest = _magnitude(_value_range(X))
    # As a Python float: compared with the float32 scalar, largest would be
    # cast to float32 and overflow (with a RuntimeWarning) first.
    if largest > float(np.finfo(np.float32).max):
        raise ValueError(
            f"X contains a value of magnitude {largest:.3g}, beyond the float32 "
            f"range (about {np.finfo(np.float32).max:.3g}) the network computes "
            "in; it would become infinite. Scale the input to [0, 1] or "
            "standardise it (e.g. with sklearn.preprocessing.StandardScaler)."
        )


def _check_hidden_dims(estimator):
    """Reject layer widths that cannot build a network (zero or negative)."""
    # The parameter constraints only check the container type; the widths
    # themselves would otherwise fail inside torch (negative) or build a
    # network whose zero-width layer carries no information.
    hidden_dims = getattr(estimator, "hidden_dims", None)
    if hidden_dims is None or _is_auto(hidden_dims):
        return
    if not all(
        isinstance(width, Integral) and not isinstance(width, bool) and width > 0
        for width in hidden_dims
    ):
        raise ValueError(
            f"hidden_dims of {type(estimator).__name__} must contain positive "
            f"integers (the widths of the hidden layers), got {hidden_dims!r}."
        )


# Frames of these packages lie between a user's call and a warning raised
# for it: fit's wrappers, skorch's training loop, scikit-learn's
# meta-estimators and the joblib workers of their searches.
_LIBRARY_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep for module in (sklearn, skorch, joblib)
) + (os.path.dirname(os.path.abspath(__file__)) + os.sep,)


def _warn_at_caller(message, category):
    """``warnings.warn``, located at the first frame outside the libraries.

    A fixed ``stacklevel`` points into skdeepcluster, skorch or
    scikit-learn whenever the warning is raised deeper or shallower than
    assumed (from ``fit``, ``fit_predict``, a Pipeline...); the warning is
    about the caller's data or parameters, so it names the caller's line.
    """
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)


def _squares_overflow(value_range, offset=0.0, scale=1.0):
    """How the squares of the network's input overflow float32, or None if not.

    The input of ``value_range`` (a :func:`_value_range`) reaches the
    network as ``(X - offset) / scale`` (see ``_FLOAT32_SQUARE_MAX``). The
    start of the message ``fit`` warns with and inference raises.
    """
    largest = _magnitude(value_range, offset)
    if largest / scale <= _FLOAT32_SQUARE_MAX:
        return None
    where = (
        f"of magnitude {largest:.3g}"
        if offset == 0
        else f"{largest:.3g} away from input_offset_={offset:.3g}"
    )
    return (
        f"X contains a value {where}, whose square "
        f"overflows float32 (above about {_FLOAT32_SQUARE_MAX:.3g})"
    )


def _is_collapse(n_found, n_clusters):
    """Whether ``n_found`` of ``n_clusters`` clusters, at most half, are a collapse.

    See :func:`_warn_if_collapsed`.
    """
    return n_found <= n_clusters // 2


def _warn_if_collapsed(estimator):
    """Warn when ``labels_`` use at most half of the ``n_clusters`` clusters.

    Fewer clusters than asked for is normal when the data has fewer groups;
    one cluster, or far fewer than asked for, usually means the network
    mapped (almost) every sample to the same point.
    """
    n_found = len(np.unique(estimator.labels_))
    if not _is_collapse(n_found, estimator.n_clusters):
        return
    params = estimator.get_params(deep=False)
    remedies = [
        f"lowering {' or '.join(p for p in ('lr', 'clustering_lr') if p in params)}"
    ]
    if "pretrain_epochs" in params:
        remedies.append("raising pretrain_epochs")
    remedies.append("scaling the input to [0, 1] or standardising it")
    # Begins as the warning of empty clusters removed (and KMeans') does, which
    # it stands in for: a filter on that message still matches.
    _warn_at_caller(
        f"Number of distinct clusters ({n_found}) found smaller than n_clusters "
        f"({estimator.n_clusters}); the empty clusters were removed. With only "
        f"{n_found} of {estimator.n_clusters} clusters used, the network of "
        f"{type(estimator).__name__} has probably collapsed, mapping most samples "
        "to the same point (or X has few distinct samples). Try "
        f"{', '.join(remedies[:-1])} or {remedies[-1]}.",
        ConvergenceWarning,
    )
