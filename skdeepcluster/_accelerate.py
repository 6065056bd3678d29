"""Data-parallel training of the nets with Hugging Face Accelerate (internal).

An estimator given ``accelerator=Accelerator(...)`` builds every net as the
class :func:`accelerated_net_class` makes of it: the net's own class with
skorch's :class:`~skorch.hf.AccelerateMixin` (prepared data loaders,
optimisers and mixed precision) and :class:`DataParallelMixin`, which keeps
the processes in step.

Each process trains on its own share of every epoch's batches (accelerate's
prepared data loader) and the gradients are averaged over the processes
before each optimiser step, as
:class:`~torch.nn.parallel.DistributedDataParallel` averages them. The
modules are not wrapped in ``DistributedDataParallel`` itself: the nets read
their modules' parts while they train (the encoder for DEC's targets and the
neighbour smoothing, ACAI's decoder on interpolants, DCN's encoder after
each step) and run some of them outside the module's ``forward`` (ACAI's
critic, IMSAT's perturbed passes), which a wrapper would hide or break.
"""

import contextlib

import torch
from skorch.callbacks import LRScheduler
from skorch.hf import AccelerateMixin

_CLASSES = {}


class DataParallelMixin:
    """Keep the processes of a data-parallel fit in step.

    Mixed in before :class:`~skorch.hf.AccelerateMixin`. The modules are
    placed on the accelerator's device (and given its mixed precision)
    without a ``DistributedDataParallel`` wrapper; the parameters are
    broadcast from the main process once prepared, and after the gradients
    of each step are taken, they and the floating-point buffers (batch-norm
    statistics) are averaged over the processes. Criteria without parameters
    (the losses) are not prepared: there is nothing of theirs to place or
    synchronise.
    """

    def _validate_params(self):
        # The estimator gives the net the accelerator's device (one per
        # process), which the net's own tensors are created on; the
        # accelerator places the modules there, so the check of
        # AccelerateMixin (device must be None) does not apply.
        super(AccelerateMixin, self)._validate_params()
        if self.device is not None and torch.device(self.device) != (
            self.accelerator.device
        ):
            raise ValueError(
                f"The net's device {self.device} is not the accelerator's "
                f"({self.accelerator.device})."
            )

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        accelerator = self.accelerator
        with self._current_init_context("criterion"):
            for name in self._criteria:
                criterion = getattr(self, name + "_")
                if isinstance(criterion, torch.nn.Module) and any(
                    True for _ in criterion.parameters()
                ):
                    setattr(
                        self,
                        name + "_",
                        accelerator.prepare_model(criterion, evaluation_mode=True),
                    )
        with self._current_init_context("module"):
            for name in self._modules:
                module = getattr(self, name + "_")
                if isinstance(module, torch.nn.Module):
                    module = accelerator.prepare_model(module, evaluation_mode=True)
                    setattr(self, name + "_", module)
                    self._broadcast_module(module)
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if isinstance(optimizer, torch.optim.Optimizer):
                    setattr(self, name + "_", accelerator.prepare(optimizer))
        for _, callback in self.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.policy_ = accelerator.prepare(callback.policy_)
        self._wrapped_with_accelerator = True
        return self

    def _distributed(self):
        return self.accelerator.num_processes > 1

    def _broadcast_module(self, module):
        """Give every process the main process's weights, as DDP does."""
        if not self._distributed():
            return
        for tensor in (*module.parameters(), *module.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)

    def train_step_single(self, batch, **fit_params):
        # The net's own step (DAC's augmentation, ...), whose gradients are
        # taken by backward(), under the accelerator's mixed precision;
        # AccelerateMixin's version would replace the net's step with
        # skorch's plain one.
        with self.accelerator.autocast():
            step = super(AccelerateMixin, self).train_step_single(batch, **fit_params)
        # Where DistributedDataParallel averages them, in the backward pass:
        # the callbacks that act on the gradients (on_grad_computed, called
        # next by skorch's step) see the whole batch's, as the optimisers do.
        self.synchronize_gradients()
        return step

    def backward(self, loss, **kwargs):
        self.accelerator.backward(loss, **kwargs)

    def synchronize_gradients(self):
        """Average the gradients and floating-point buffers over the processes.

        Only at the steps where the optimisers step (every step unless the
        accelerator accumulates gradients). Every process runs the same
        code on batches of the same size, so the same parameters have
        gradients in each.
        """
        if not self._distributed() or not self.accelerator.sync_gradients:
            return
        tensors = {}
        for name in self._modules:
            module = getattr(self, name + "_")
            for parameter in module.parameters():
                if parameter.grad is not None:
                    tensors[id(parameter.grad)] = parameter.grad
            for buffer in module.buffers():
                if buffer.is_floating_point():
                    tensors[id(buffer)] = buffer.data
        tensors = list(tensors.values())
        if not tensors:
            return
        # One collective call for all of them.
        flat = torch._utils._flatten_dense_tensors(tensors)
        torch.distributed.all_reduce(flat)
        flat /= self.accelerator.num_processes
        for tensor, synced in zip(
            tensors, torch._utils._unflatten_dense_tensors(flat, tensors)
        ):
            tensor.copy_(synced)

    def gather_batch(self, X, indices):
        if not self._distributed():
            return X, indices
        return self.accelerator.gather((X, indices))


def accelerated_net_class(cls):
    """``cls`` with :class:`~skorch.hf.AccelerateMixin` and :class:`DataParallelMixin`.

    One class per net class, made once: skorch and scikit-learn compare
    classes when they clone or check nets.
    """
    if issubclass(cls, AccelerateMixin):
        return cls
    if cls not in _CLASSES:
        _CLASSES[cls] = type(
            "Accelerated" + cls.__name__,
            (DataParallelMixin, AccelerateMixin, cls),
            {
                "__module__": __name__,
                "__doc__": f"{cls.__name__} trained with an accelerate.Accelerator.",
                "plain_class": cls,
            },
        )
    return _CLASSES[cls]


@contextlib.contextmanager
def released_when_done(accelerator):
    """Leave ``accelerator`` holding only what it held before the block.

    Accelerate keeps a reference to every model, optimiser, scheduler and
    data loader it prepares until ``free_memory`` is called; skorch prepares
    a data loader for each training stage, each holding the training data.
    A fit prepares only its own nets' objects, and drops them from the
    accelerator when it ends (also when it fails), so that fits sharing one
    accelerator (a grid search) do not keep one another's networks and data
    alive, nor pickle them with the accelerator, which is one of the
    estimator's parameters.
    """
    before = {}
    for name in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
        registry = getattr(accelerator, name, None)
        if isinstance(registry, list):
            before[name] = (registry, len(registry))
    try:
        yield
    finally:
        for name, (registry, length) in before.items():
            current = getattr(accelerator, name, None)
            if current is registry:
                del current[length:]
            elif isinstance(current, list):
                # free_memory during the fit replaced the lists: what the
                # new ones hold was prepared by the fit since.
                current.clear()


def plain_net(net):
    """Turn the fitted accelerated ``net`` back into its plain class, in place.

    The modules were unwrapped when training ended; the optimisers are
    unwrapped here and the accelerator dropped, so that the fitted model
    predicts, pickles and loads without accelerate.
    """
    cls = getattr(type(net), "plain_class", None)
    if cls is None:
        return net
    net._unwrap_accelerator()
    for name in net._optimizers:
        optimizer = getattr(net, name + "_", None)
        inner = getattr(optimizer, "optimizer", None)
        if isinstance(inner, torch.optim.Optimizer):
            setattr(net, name + "_", inner)
    accelerator = net.accelerator

    def plain_print(sink):
        # The accelerator's print, which AccelerateMixin sets as the
        # progress table's, becomes Python's; a sink of the user's stays.
        return print if getattr(sink, "__self__", None) is accelerator else sink

    net.callbacks__print_log__sink = plain_print(
        getattr(net, "callbacks__print_log__sink", print)
    )
    for _, callback in getattr(net, "callbacks_", []):
        if hasattr(callback, "sink"):
            callback.sink = plain_print(callback.sink)
    for name in ("accelerator", "unwrap_after_train", "_wrapped_with_accelerator"):
        net.__dict__.pop(name, None)
    net.__class__ = cls
    return net
