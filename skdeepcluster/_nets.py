"""skorch nets used inside the estimators (internal).

The public estimators are plain scikit-learn estimators that build one of
these nets in ``fit`` and keep it as ``net_``. Each net changes only the
skorch hooks its training scheme needs (``get_loss``, ``train_step``,
``initialize_module``); skorch keeps the epoch loop, callbacks and history.

Every net is fed an :class:`~skdeepcluster._torch_utils.IndexedDataset`, so
``y_true`` in ``get_loss`` holds the indices of the batch's samples.
"""

import torch
from skorch import NeuralNet
from skorch.utils import to_device


class ClusteringNet(NeuralNet):
    """Base skorch net: the estimator's training settings, filled in once.

    Compared with skorch's defaults it trains on every sample
    (``train_split=None``: clustering labels every point, no hidden
    validation hold-out), shuffles batches with a seeded generator, and uses a
    collate function that keeps the already-batched tensors of
    :class:`~skdeepcluster._torch_utils.IndexedDataset`.
    """

    def __init__(self, *args, generator=None, **kwargs):
        from ._torch_utils import keep_batch

        kwargs.setdefault("train_split", None)
        kwargs.setdefault("iterator_train__shuffle", True)
        kwargs.setdefault("iterator_train__collate_fn", keep_batch)
        kwargs.setdefault("iterator_valid__collate_fn", keep_batch)
        if generator is not None:
            kwargs["iterator_train__generator"] = generator
        super().__init__(*args, **kwargs)

    def batch_state(self, name, indices):
        """Rows ``indices`` of the per-sample tensor attribute ``name``."""
        state = getattr(self, name)
        return state[to_device(indices, state.device)]


class AutoencoderNet(ClusteringNet):
    """Train an :class:`~skdeepcluster.nn.Autoencoder` on reconstruction.

    The module returns ``(reconstruction, embedding)``; the loss is the
    criterion (mean squared error by default) between reconstruction and input.
    Subclasses add terms through :meth:`clustering_loss`.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        reconstruction, embedding = y_pred
        X = to_device(X, self.device)
        loss = self.criterion_(reconstruction, X)
        extra = self.clustering_loss(embedding, y_true, X, training)
        if extra is not None:
            if training:
                self.history.record_batch("reconstruction_loss", loss.item())
                self.history.record_batch("clustering_loss", extra.item())
            loss = loss + extra
        return loss

    def clustering_loss(self, embedding, indices, X, training):
        """Extra loss term on the embedding; ``None`` for a plain autoencoder."""
        return None
