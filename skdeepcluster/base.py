"""Base class shared by every deep clustering estimator.

:class:`BaseDeepClusterer` holds what all seven estimators share: parameter
and input validation, the staged training of skorch nets, the refinement
of a partition on a neighbour graph, and inference. The autoencoder
estimators build on it in :mod:`skdeepcluster._autoencoder_base`; the
checks of the data and of the training settings live in
:mod:`skdeepcluster._input` and :mod:`skdeepcluster._settings`.
"""

import collections
import contextlib
import fnmatch
import functools
import math
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
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
)
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import LRScheduler

from ._docstrings import fill_doc
from ._graph import (
    SCORING_NEIGHBOURS,
    match_labels,
    modularity,
    neighbour_graph,
    reference_indices,
    split_merge,
    umap_partition,
)
from ._input import (
    _check_fit_sample_weight,
    _check_float32_range,
    _densify,
    _intensity_scaling,
    _is_memory_mapped,
    _kept_rows,
    _magnitude,
    _MappedRows,
    _reject_unflattened_images,
    _row_blocks,
    _select_rows,
    _squares_overflow,
    _tensor_as_array,
    _validated_sample_weight,
    _value_range,
    square_image_shape,
)
from ._nets import callback_class
from ._settings import (
    _callback_name,
    _check_lr_policy,
    _check_monitor,
    _check_not_load_init_state,
    _check_scores_training_data,
    _default_callback_names,
    _did_you_mean,
    _fresh_callback,
    _is_callback,
    _keywords,
    _schedule_names,
    _takes_keyword,
    _without_prefix,
)
from ._torch_utils import (
    ArrayRows,
    IndexedDataset,
    batched_eval,
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
)
from ._typing import (
    Callbacks,
    Device,
    InputShape,
    MatrixLike,
    OptimizerFactory,
    RandomStateLike,
)
from .exceptions import TrainingDivergedError

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

    # From this many training samples on, data count as large for the
    # "auto" defaults that depend on the size: the deformations of
    # augment="auto" (see _deformed_image_shape), and the autoencoders'
    # network size and neighbourhood smoothing.
    _LARGE_DATA = 5000

    # Parameters that an earlier version of the package lacked, each with the
    # value that reproduces how a model it pickled was trained. Unpickling
    # such a model sets them (see __setstate__), so that its get_params,
    # clone and refit work and fit as it did.
    _ADDED_PARAMETERS: dict[str, Any] = {}

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
        if self.input_shape is not None and not _is_auto(self.input_shape):
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
        self._resolve_input_shape(X)
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

    def _resolve_input_shape(self, X=None):
        """Set ``_input_shape``, the sample shape inference uses, from ``input_shape``.

        ``X`` is the training data, for an estimator whose ``input_shape``
        may be ``"auto"`` (:class:`~skdeepcluster.DAC`).
        """
        self._input_shape = (
            None if self.input_shape is None else tuple(self.input_shape)
        )

    def _resolve_augment(self, X):
        """Set ``_augment_shape`` and ``augment_`` from ``augment`` for ``X``.

        ``_augment_shape`` is the shape of the images training deforms, or
        ``None`` for none; ``augment_`` says whether there are any.
        """
        self._augment_shape = self._deformed_image_shape(X)
        self.augment_ = self._augment_shape is not None

    def _deformed_image_shape(self, X):
        """The shape of the images training deforms (``augment``), or ``None``.

        For the estimators with an ``augment`` parameter of ``True``,
        ``False`` or ``"auto"``. ``"auto"`` deforms only large data (at
        least ``_LARGE_DATA`` samples) whose rows look like flattened square
        one-channel images (:func:`square_image_shape`), and only when
        ``input_shape`` is not given or is that same shape. On handwritten
        digits the deformations gained from 5,000 images on; on smaller image
        sets (faces, objects, 2,000 images of clothing) they cost the
        autoencoders accuracy, and on data that are not images they would
        mean nothing.
        """
        if not _is_auto(self.augment):
            return self._image_shape(X.shape[1]) if self.augment else None
        # shape[0], not len(): a sparse matrix has no length.
        if X.shape[0] < self._LARGE_DATA:
            return None
        shape = square_image_shape(X)
        if shape is None or self._input_shape in (None, shape):
            return shape
        return None

    def _image_shape(self, n_features):
        """The shape of the images ``augment=True`` deforms.

        The fit's ``input_shape`` (``_input_shape``, resolved before this
        is called) when given; otherwise the samples must be square
        one-channel images, flattened.
        """
        if self._input_shape is not None:
            return self._input_shape
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"augment=True deforms the samples as images, but X has "
                f"{n_features} features, which are not a square image of one "
                "channel. Pass input_shape=(channels, height, width), or "
                "augment=False for data that are not images."
            )
        return (1, side, side)

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
        for name, value in self._ADDED_PARAMETERS.items():
            if name not in state:
                setattr(self, name, value)
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


class ReferenceGraph(NamedTuple):
    """Neighbour graph of the reference rows of an embedding."""

    reference: NDArray
    """Indices of the reference rows."""
    embedding: NDArray
    """Their embeddings."""
    adjacency: sp.sparray
    """Symmetric 0/1 adjacency of their nearest-neighbour graph."""


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
