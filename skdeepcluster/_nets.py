"""skorch nets used inside the estimators (internal).

The public estimators are plain scikit-learn estimators that build one of
these nets in ``fit`` and keep it as ``net_``. Each net changes only the
skorch hooks its training scheme needs (``get_loss``, ``train_step``,
``initialize_module``); skorch keeps the epoch loop, callbacks and history.

Every net is fed an :class:`~skdeepcluster._torch_utils.IndexedDataset`, so
``y_true`` in ``get_loss`` holds the indices of the batch's samples.
"""

import math
import re
import sys

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler, PrintLog
from skorch.dataset import unpack_data
from skorch.exceptions import SkorchException
from skorch.utils import to_device
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ._torch_utils import batched_eval, keep_batch, random_affine, weighted_mean
from .exceptions import TrainingDivergedError


class StopTraining(KeyboardInterrupt):
    """Raised by a net's own hooks to end its training early (e.g. on convergence).

    skorch ends training on any :class:`KeyboardInterrupt`, so this is one;
    :class:`ClusteringNet` tells it apart from the user's Ctrl-C, which must
    stop the whole ``fit``.
    """


class ClusteringNet(NeuralNet):
    """Base skorch net: the estimator's training settings, filled in once.

    Compared with skorch's defaults it trains on every sample
    (``train_split=None``: clustering labels every point, no hidden
    validation hold-out), shuffles batches with a seeded generator, and uses a
    collate function that keeps the already-batched tensors of
    :class:`~skdeepcluster._torch_utils.IndexedDataset`.

    Randomness comes from the generators the estimator gives the net, not
    from torch's global generator: ``generator`` (on the CPU) shuffles the
    batches, ``init_generator`` (on the CPU) draws the initial weights of
    the modules the net builds itself (ACAI's critic), and
    ``device_generator`` (on the net's device) makes every random draw of
    the training steps (interpolation coefficients, perturbations,
    augmentations, anchors). A ``None`` generator falls back on torch's
    global one.

    Training fails loudly. A non-finite training loss (checked after every
    batch, on everything the batch recorded in the history) or a non-finite
    weight or buffer (checked after every epoch) raises
    :class:`~skdeepcluster.exceptions.TrainingDivergedError`, whose message
    names ``estimator_name``, ``stage`` and the epoch, and suggests lowering
    the learning rate parameter ``lr_name``. A :class:`KeyboardInterrupt`
    (Ctrl-C) is re-raised by :meth:`partial_fit` once skorch has ended
    training, instead of being swallowed as skorch does; only
    :class:`StopTraining`, and the bare :class:`KeyboardInterrupt` with which
    skorch's :class:`~skorch.callbacks.EarlyStopping` (or a subclass) stops,
    end training quietly.

    A subclass ends training early (on convergence, ...) by calling
    :meth:`stop_before_next_epoch`.

    Given an ``accelerator`` (an :class:`accelerate.Accelerator`), the net
    is built as its data-parallel variant (see
    :func:`skdeepcluster._accelerate.accelerated_net_class`). Training
    steps written by hand take the gradients with :meth:`backward` and call
    :meth:`synchronize_gradients` before the callbacks' ``on_grad_computed``
    and the optimisers' steps, and
    per-batch updates of state shared by every sample (DCN's centres) read
    the batch through :meth:`gather_batch`, so that they also work when
    every process trains on its own share of the batches.

    The per-sample weights of the training data (the ``sample_weight``
    of :class:`~skdeepcluster._torch_utils.IndexedDataset`, scaled to a
    mean of one, or ``None`` for equal weights) are ``sample_weight_``
    while the net trains; :meth:`batch_weight` looks up a batch's, and
    :meth:`weighted_mean` averages per-sample loss terms with them.

    A net that is to learn a given partition (a refinement stage, see
    :meth:`~skdeepcluster.base.BaseDeepClusterer._refine_by_moves`) is
    given ``targets_``, one cluster per training sample (``-1`` for none),
    before it trains; :meth:`target_loss` is the cross-entropy to them.

    With ``augment_shape`` (``(channels, height, width)``) every training
    batch is replaced by randomly rotated, shifted and rescaled copies of its
    samples read as images of that shape (:meth:`augmented_batch`), drawn
    from ``device_generator`` afresh each time; inference sees the samples
    as they are.
    """

    def __new__(cls, *args, accelerator=None, **kwargs):
        # The class is chosen here, from the keywords, so that every net the
        # estimators build becomes data-parallel with an accelerator without
        # each of them naming the variant.
        if accelerator is not None:
            from ._accelerate import accelerated_net_class

            cls = accelerated_net_class(cls)
        return super().__new__(cls)

    def __init__(
        self,
        *args,
        generator=None,
        device_generator=None,
        init_generator=None,
        stage="training",
        lr_name="lr",
        estimator_name="The estimator",
        augment_shape=None,
        **kwargs,
    ):
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("iterator_train__collate_fn", keep_batch)
        kwargs.setdefault("iterator_valid__collate_fn", keep_batch)
        if generator is not None:
            kwargs["iterator_train__generator"] = generator
        super().__init__(*args, **kwargs)
        self.device_generator = device_generator
        self.init_generator = init_generator
        self.stage = stage
        self.lr_name = lr_name
        self.estimator_name = estimator_name
        self.augment_shape = augment_shape

    def get_iterator(self, dataset, training=False):
        """skorch's iterator, without a trailing batch of one sample for batch norm.

        Batch norm in training mode cannot normalise a batch of one sample
        on flat features (torch raises), so when the data would leave one, a
        network with ``BatchNorm1d`` layers (a user's encoder, say) drops
        it, as ``iterator_train__drop_last=True`` would.
        """
        if not (
            training
            and len(dataset) % self.batch_size == 1
            and len(dataset) > 1
            and _has_batch_norm(self.module_)
        ):
            return super().get_iterator(dataset, training=training)
        kwargs = {
            "batch_size": self.batch_size,
            **self.get_params_for("iterator_train"),
        }
        kwargs["drop_last"] = True
        return self.iterator_train(dataset, **kwargs)

    def progress_sink(self):
        """Where the progress table goes, or ``None`` when it is not shown.

        The sink of the ``print_log`` callback (``callbacks__print_log__sink``,
        :func:`print` where there is no such callback), so that a fit's
        messages follow the table to a logger. As for the table
        (:class:`StagePrintLog`), ``verbose=0`` silences :func:`print` only.
        """
        print_log = dict(getattr(self, "callbacks_", [])).get("print_log")
        sink = getattr(print_log, "sink", print)
        return sink if _shown(sink, self.verbose) else None

    def say(self, text):
        """Write the line ``text`` where the progress table goes, if anywhere."""
        sink = self.progress_sink()
        if sink is not None:
            sink(text)

    def stop_before_next_epoch(self):
        """End training at the start of the next epoch.

        :class:`StopTraining` (skorch's way of stopping) is raised then rather
        than now, so that the epoch under way is finished and logged.
        """
        self.stop_requested_ = True

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.stop_requested_ = False
        self.sample_weight_ = getattr(X, "sample_weight", None)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Per-sample training state: not kept, so not pickled with the model.
        self.__dict__.pop("sample_weight_", None)
        self.__dict__.pop("targets_", None)
        super().on_train_end(net, X=X, y=y, **kwargs)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if self.stop_requested_:
            raise StopTraining
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        # A net can train in several stages (IMSAT's and DAC's kept start
        # trains on, then through the refinement): each epoch says which.
        # An "event_" key, as skorch names values that are no metric: its
        # metric loggers (TensorBoard, MLflow) leave it out.
        self.history.record("event_stage", self.stage)

    # -- training steps ----------------------------------------------------

    def train_step(self, batch, **fit_params):
        # Deformed once per step, so that an optimiser which evaluates the
        # loss several times (LBFGS) sees one batch.
        return super().train_step(self.augmented_batch(batch), **fit_params)

    def augmented_batch(self, batch):
        """``batch`` with its samples deformed as images (``augment_shape``).

        Each sample is read as an image of shape ``augment_shape``, randomly
        rotated, shifted and rescaled (``random_affine``), and returned in
        the shape it came in; the batch's row indices are kept, so
        per-sample state (weights, targets) still applies. Without
        ``augment_shape`` the batch is returned as it is.
        """
        if self.augment_shape is None:
            return batch
        X, indices = unpack_data(batch)
        X = to_device(X, self.device)
        images = X.reshape(len(X), *self.augment_shape)
        deformed = random_affine(images, generator=self.device_generator)
        return deformed.reshape(X.shape), indices

    def train_step_single(self, batch, **fit_params):
        # skorch's, with the gradients taken by backward().
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def backward(self, loss, **kwargs):
        """Back-propagate ``loss``; ``kwargs`` go to :meth:`torch.Tensor.backward`."""
        loss.backward(**kwargs)

    def synchronize_gradients(self):
        """Make the gradients those of the whole batch: nothing in one process."""

    def gather_batch(self, X, indices):
        """The batch ``(X, indices)`` of every process; in one process, this one."""
        return X, indices

    # -- progress ----------------------------------------------------------

    def loss_terms(self):
        """Names of the batch-level loss terms to show per epoch (see LossTerms)."""
        return ()

    def get_default_callbacks(self):
        callbacks = []
        for name, callback in super().get_default_callbacks():
            if name == "print_log":
                callbacks.append(("loss_terms", LossTerms()))
                callback = StagePrintLog()
            callbacks.append((name, callback))
        return callbacks

    def notify(self, method_name, **cb_kwargs):
        # skorch's notify, with the one KeyboardInterrupt that is a request
        # to stop (skorch's EarlyStopping raises a bare one) told apart from
        # the user's Ctrl-C.
        resumed = method_name == "on_train_begin" and len(self.history) > 0
        if resumed:
            learning_rates = [group["lr"] for group in self.optimizer_.param_groups]
        getattr(self, method_name)(self, **cb_kwargs)
        for name, callback in self.callbacks_:
            try:
                getattr(callback, method_name)(self, **cb_kwargs)
            except KeyboardInterrupt as exc:
                if isinstance(exc, StopTraining) or not _stops_early(callback):
                    raise
                raise StopTraining from exc
            except (KeyError, ValueError, SkorchException) as exc:
                missing = _missing_history_key(exc)
                if missing is None:
                    raise
                # A user's callback runs in every stage, and the stages
                # record different loss terms: say which, rather than
                # skorch's KeyError (or its hint about validation data).
                recorded = sorted(self.history[-1]) if len(self.history) else []
                raise ValueError(
                    f"The callback {name!r} reads {missing!r} from the history, "
                    f"which the {self.stage} stage of {self.estimator_name} does "
                    f"not record (it records: {', '.join(recorded)}). Callbacks "
                    "run in every stage: monitor a key every stage records, "
                    "such as 'train_loss'."
                ) from exc
        if resumed:
            _resume_lr_schedules(self, learning_rates)

    def batch_state(self, name, indices):
        """Rows ``indices`` of the per-sample tensor attribute ``name``."""
        state = getattr(self, name, None)
        if state is None:
            # Set by a schedule callback (skdeepcluster.callbacks): a
            # replacement must set it too.
            raise RuntimeError(
                f"The {self.stage} net of {self.estimator_name} has no {name!r}, "
                "the per-sample state its loss reads. It is set by the stage's "
                "schedule callback (see skdeepcluster.callbacks); a callback "
                "replacing that one must set it as well."
            )
        return state[to_device(indices, state.device)]

    def has_targets(self):
        """Whether the net trains toward a given partition (``targets_``)."""
        return getattr(self, "targets_", None) is not None

    def target_loss(self, log_probabilities, indices):
        """Cross-entropy of the batch's predictions to their ``targets_``.

        ``log_probabilities`` are the log-probabilities of the clusters for
        the batch's samples (rows ``indices``); samples whose target is
        ``-1`` are left out, and the others weighted by their sample
        weights. A batch without targets gives a zero that keeps the graph.
        """
        targets = self.batch_state("targets_", indices)
        has_target = targets >= 0
        if not has_target.any():
            return log_probabilities.sum() * 0.0
        log_likelihood = log_probabilities[has_target].gather(
            1, targets[has_target, None]
        )
        weight = self.batch_weight(indices)
        return -weighted_mean(
            log_likelihood.squeeze(1), None if weight is None else weight[has_target]
        )

    def batch_weight(self, indices):
        """Sample weights of the rows ``indices``; ``None`` for equal weights."""
        if getattr(self, "sample_weight_", None) is None:
            return None
        return self.batch_state("sample_weight_", indices)

    def weighted_mean(self, values, indices):
        """Mean of the per-sample ``values`` of the rows ``indices``, weighted.

        Exactly ``values.mean()`` when the samples are weighted equally.
        """
        return weighted_mean(values, self.batch_weight(indices))

    # -- failing loudly ----------------------------------------------------

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        self._user_interrupt = None
        # For the heading of the progress table (see StagePrintLog).
        self.planned_epochs_ = fit_params.get("epochs") or self.max_epochs
        super().partial_fit(X, y, classes, **fit_params)
        interrupt, self._user_interrupt = self._user_interrupt, None
        if interrupt is not None:
            raise interrupt
        return self

    def fit_loop(self, X, y=None, *args, **kwargs):
        try:
            return super().fit_loop(X, y, *args, **kwargs)
        except KeyboardInterrupt as exc:
            # skorch's partial_fit swallows every KeyboardInterrupt (its
            # EarlyStopping raises one); keep the user's for partial_fit to
            # re-raise after skorch's end-of-training hooks have run.
            if not isinstance(exc, StopTraining):
                self._user_interrupt = exc
            raise

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if not training:
            return
        # The batch's row of the history holds train_loss and every loss
        # term the net recorded (ACAI's critic_loss, IMSAT's sat_loss, ...).
        batches = self.history[-1, "batches"]
        for key, value in batches[-1].items():
            if isinstance(value, float) and not math.isfinite(value):
                self.diverged(
                    f"the training loss {key!r} became {value} at batch "
                    f"{len(batches)} of epoch {len(self.history)}"
                )

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        # Checked first, so subclasses never refresh their state (DEC's
        # target, ...) from a broken network. A step after the last batch's
        # loss was computed can still have overflowed a weight.
        for name in self._modules:
            module = getattr(self, name + "_")
            for tensor in (*module.parameters(), *module.buffers()):
                if tensor.is_floating_point() and not _all_finite(tensor):
                    self.diverged(
                        "a network weight became infinite or NaN in epoch "
                        f"{len(self.history)}"
                    )
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)

    def diverged(self, what):
        """Raise :class:`~skdeepcluster.exceptions.TrainingDivergedError`.

        ``what`` says what became non-finite, and when.
        """
        # The rate the steps ran at: a schedule may have moved it from lr.
        optimizer = getattr(self, "optimizer_", None)
        rate = optimizer.param_groups[0]["lr"] if optimizer is not None else self.lr
        raise TrainingDivergedError(
            f"{self.estimator_name} diverged during {self.stage}: {what}. "
            "Scale the input to [0, 1] or standardise it (e.g. with "
            f"sklearn.preprocessing.StandardScaler), or lower {self.lr_name} "
            f"(now {rate:g}).{self.divergence_hint()}"
        )

    def divergence_hint(self):
        """A sentence on the net's own settings to add to a divergence error."""
        return ""


class AutoencoderNet(ClusteringNet):
    """Train an :class:`~skdeepcluster.nn.Autoencoder` on reconstruction.

    The module returns ``(reconstruction, embedding)``; the loss is the
    criterion (mean squared error by default) between reconstruction and input.
    Subclasses add terms through :meth:`clustering_loss`.

    With ``smoothing_weight > 0`` the loss gains the neighbourhood smoothing
    term ``smoothing_weight * mean_i ||z_i - t_i||^2`` in the epochs that
    have targets ``t_i``: ``smoothing_targets_`` (one row per training
    sample, ``None`` when there are none) is set by the
    :class:`~skdeepcluster.callbacks.NeighbourRefresh` callback the
    estimators install, and reset when training begins and ends.

    ``neighbour_candidates`` (indices of training samples, or ``None`` for
    all of them) are the samples among which that callback searches the
    neighbours: against a fixed number of candidates an epoch's search costs
    time and memory linear in the number of samples rather than quadratic
    (see :func:`~skdeepcluster._torch_utils.nearest_neighbours`).
    """

    def __init__(
        self, *args, smoothing_weight=0.0, neighbour_candidates=None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.smoothing_weight = smoothing_weight
        self.neighbour_candidates = neighbour_candidates

    def get_loss(self, y_pred, y_true, X=None, training=False):
        reconstruction, embedding = y_pred
        X = to_device(X, self.device)
        loss = self.reconstruction_loss(reconstruction, X, y_true)
        reconstruction_loss = loss
        smoothing = self.smoothing_loss(embedding, y_true) if training else None
        if smoothing is not None:
            loss = loss + smoothing
        extra = self.clustering_loss(embedding, y_true, X, training)
        if extra is not None:
            if training:
                self.history.record_batch("clustering_loss", extra.item())
            loss = loss + extra
        if training and self.loss_terms():
            self.history.record_batch("reconstruction_loss", reconstruction_loss.item())
        return loss

    def loss_terms(self):
        # Reconstruction alone is train_loss; with other terms, every term.
        terms = []
        if type(self).clustering_loss is not AutoencoderNet.clustering_loss:
            terms.append("clustering_loss")
        if self.smoothing_weight > 0:
            terms.append("smoothing_loss")
        return ("reconstruction_loss", *terms) if terms else ()

    def reconstruction_loss(self, reconstruction, X, indices):
        """The criterion between ``reconstruction`` and ``X``, weighted per sample.

        With unequal sample weights, the criterion's value for each sample
        (see :func:`per_sample_loss`) enters with the sample's weight.
        """
        weight = self.batch_weight(indices)
        if weight is None:
            return self.criterion_(reconstruction, X)
        return (per_sample_loss(self.criterion_, reconstruction, X) * weight).mean()

    def clustering_loss(self, embedding, indices, X, training):
        """Extra loss term on the embedding; ``None`` for a plain autoencoder."""
        return None

    # -- neighbourhood smoothing -------------------------------------------

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self.smoothing_targets_ = None

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # The targets are training state; do not keep (or pickle) them.
        self.smoothing_targets_ = None
        super().on_train_end(net, X=X, y=y, **kwargs)

    def embed(self, X):
        """The encoder's embedding of all of ``X`` (evaluation mode, no gradient)."""
        return batched_eval(self.module_.encoder, X, self.batch_size)

    def smoothing_loss(self, embedding, indices):
        """Weighted smoothing term of a training batch; ``None`` before it starts.

        Also records it in the batch history as ``smoothing_loss``.
        """
        # Targets exist only in the epochs the neighbour refresh callback
        # set them for (from its start on, with a positive smoothing_weight).
        if getattr(self, "smoothing_targets_", None) is None:
            return None
        targets = self.batch_state("smoothing_targets_", indices)
        squared = (embedding.flatten(start_dim=1) - targets).pow(2).sum(dim=1)
        smoothing = self.smoothing_weight * self.weighted_mean(squared, indices)
        self.history.record_batch("smoothing_loss", smoothing.item())
        return smoothing


def per_sample_loss(criterion, input, target):
    """The value of the torch loss module ``criterion`` for each sample.

    Their mean over the samples is what ``criterion`` returns: each
    sample's mean over its elements for ``reduction="mean"`` (e.g.
    :class:`~torch.nn.MSELoss`), its sum for ``reduction="batchmean"``
    (:class:`~torch.nn.KLDivLoss`).

    Parameters
    ----------
    criterion : torch.nn.modules.loss._Loss
        Its reduction is set to ``"none"`` for the call, then restored.
    input, target : torch.Tensor of shape (n_samples, ...)

    Returns
    -------
    torch.Tensor of shape (n_samples,)
    """
    reduction = criterion.reduction
    if reduction not in ("mean", "batchmean"):
        raise ValueError(
            f"Per-sample losses need a criterion reduced by 'mean' or "
            f"'batchmean', got reduction={reduction!r}."
        )
    criterion.reduction = "none"
    try:
        elements = criterion(input, target).flatten(start_dim=1)
    finally:
        criterion.reduction = reduction
    return elements.sum(dim=1) if reduction == "batchmean" else elements.mean(dim=1)


def _resume_lr_schedules(net, learning_rates):
    """Undo the step skorch's LRScheduler takes when a stage resumes training.

    At every train begin skorch's :class:`~skorch.callbacks.LRScheduler`
    builds a new PyTorch scheduler with ``last_epoch=len(net.history) - 1``,
    and PyTorch's scheduler steps once when it is built. Each stage that
    resumes a net's training (a ``partial_fit`` on a net with a history:
    IMSAT's and DAC's kept start after the short starts, their refinement)
    would thus advance the schedule by an extra epoch; a chained schedule
    such as ``StepLR`` would apply its decay twice. The optimiser's learning
    rates are set back to ``learning_rates`` (those of the epoch about to
    run), where the schedule had left them. A schedule stepped every batch
    (``step_every="batch"``) counts batches, not epochs: its position is set
    to the number of batches trained so far, where it had stopped, rather
    than the number of epochs skorch gives it.
    """
    for _, callback in net.callbacks_:
        scheduler = getattr(callback, "lr_scheduler_", None)
        if not isinstance(callback, LRScheduler) or isinstance(
            scheduler, ReduceLROnPlateau
        ):
            # ReduceLROnPlateau does not step when it is built.
            continue
        for group, lr in zip(net.optimizer_.param_groups, learning_rates):
            group["lr"] = lr
        # What the scheduler reports as its current learning rates.
        scheduler._last_lr = list(learning_rates)
        if callback.step_every == "batch":
            # (skorch counts the batches itself for its own batch_idx_.)
            scheduler.last_epoch = sum(len(epoch["batches"]) for epoch in net.history)


def _has_batch_norm(module):
    # BatchNorm1d: on flat features (the package's networks, a user's dense
    # encoder) one sample leaves one value per channel, which it cannot
    # normalise; a 2-d map or a sequence gives it several.
    return any(isinstance(layer, torch.nn.BatchNorm1d) for layer in module.modules())


def _shown(sink, verbose):
    """Whether text sent to ``sink`` is shown: skorch's rule for progress.

    Any sink but :func:`print` whatever ``verbose`` says; :func:`print`
    (or an accelerator's) only when ``verbose``.
    """
    return bool(verbose) or not _is_print(sink)


def _is_print(sink):
    """Whether ``sink`` is Python's print or an Accelerate accelerator's."""
    if sink is print:
        return True
    owner = getattr(sink, "__self__", None)
    if owner is None or getattr(sink, "__name__", None) != "print":
        return False
    try:
        from accelerate import Accelerator
    except ImportError:
        return False
    return isinstance(owner, Accelerator)


def _missing_history_key(error):
    """The key a callback did not find in skorch's history, from ``error``."""
    # skorch's History says "Key 'x' was not found in history.", its
    # LRScheduler "'x' was not found in history. ...".
    match = re.search(r"'([^']+)' was not found in history", str(error))
    return None if match is None else match.group(1)


def _stops_early(callback):
    """Whether a KeyboardInterrupt from ``callback`` asks training to stop.

    skorch's :class:`~skorch.callbacks.EarlyStopping` stops by raising one
    once its patience has run out (before that, it is the user's Ctrl-C),
    and a subclass may do so on a condition of its own; from any other
    callback it cannot be told apart from Ctrl-C.
    """
    if type(callback) is EarlyStopping:
        return callback.misses_ >= callback.patience
    return isinstance(callback, EarlyStopping)


class LossTerms(Callback):
    """Record each epoch the mean of the net's batch-level loss terms.

    The nets record the terms of a composite loss per batch
    (``reconstruction_loss``, ``clustering_loss``, ...); skorch's
    :class:`~skorch.callbacks.PrintLog` shows epoch-level entries only. Each
    term named by ``net.loss_terms()`` gets its mean over the epoch's batches
    (weighted by batch size, as skorch's ``train_loss``), and ``0.0`` in
    epochs where it is not yet part of the loss (the smoothing term before
    ``smoothing_start``), so that the table has the same columns from the
    first epoch on.
    """

    def on_epoch_end(self, net, **kwargs):
        batches = net.history[-1, "batches"]
        for term in net.loss_terms():
            rows = [row for row in batches if term in row]
            if not rows:
                net.history.record(term, 0.0)
                continue
            values = [row[term] for row in rows]
            weights = [row.get("train_batch_size", 1) for row in rows]
            net.history.record(term, float(np.average(values, weights=weights)))


class StagePrintLog(PrintLog):
    """skorch's progress table, under a heading naming the estimator and stage.

    Every call to ``partial_fit`` (every stage) starts with a heading line
    such as ``"DEC: clustering (up to 150 epochs)"`` and the table's column
    names, which are repeated when an epoch's columns differ from the
    previous epoch's. Values are not coloured (skorch marks the best loss so
    far with ANSI colour codes) unless the output is printed to a terminal.
    """

    def initialize(self):
        super().initialize()
        self.colour_ = self.sink is print and sys.stdout.isatty()
        # The heading names the stage.
        self.keys_ignored_.add("event_stage")
        return self

    def _sink(self, text, verbose):
        # skorch's PrintLog writes to any sink but print whatever verbose
        # says; this one keeps to verbose for the accelerator's print too
        # (AccelerateMixin's sink, print on the main process only).
        if _shown(self.sink, verbose):
            self.sink(text)

    def on_train_begin(self, net, **kwargs):
        self.first_iteration_ = True
        self.columns_ = None
        heading = f"{net.estimator_name}: {net.stage}"
        epochs = getattr(net, "planned_epochs_", None)
        if epochs:
            heading += f" (up to {epochs} epoch{'s' if epochs > 1 else ''})"
        self._sink(heading, net.verbose)

    def on_epoch_end(self, net, **kwargs):
        if not _shown(self.sink, net.verbose):
            # Nothing would be printed: skorch would still tabulate the row.
            return
        # A column that appears later (a value first recorded after a
        # warm-up) starts a new table header instead of shifting the rows.
        columns = self._sorted_keys(net.history[-1].keys())
        if columns != getattr(self, "columns_", None):
            self.first_iteration_ = True
            self.columns_ = columns
        super().on_epoch_end(net, **kwargs)

    def format_row(self, row, key, color):
        if not self.colour_:
            # Without the "<key>_best" entry, PrintLog adds no colour code.
            row = {key: row[key]}
        return super().format_row(row, key, color)


def _all_finite(tensor):
    """Whether every value of the floating-point ``tensor`` is finite.

    Read off its smallest and largest values (a NaN anywhere makes both
    NaN): one pass, without the boolean copy ``torch.isfinite(tensor)``
    makes, which on IMSAT's and DAC's layers took most of the check's time.
    """
    if tensor.numel() == 0:
        return True
    return bool(torch.isfinite(torch.stack(torch.aminmax(tensor))).all())


def callback_class(callback):
    """The class of ``callback``, which skorch takes as an instance or a class."""
    return callback if isinstance(callback, type) else type(callback)
