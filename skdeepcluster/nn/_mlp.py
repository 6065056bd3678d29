"""Fully connected encoders and decoders."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._docstrings import fill_doc

# The activation modules the package knows, by name: the choices of the
# ``activation`` parameter below, and the modules whose outputs SNNL's loss
# counts as hidden layers.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}


def _dense_stack(dims, activation="relu", batch_norm=False, activate_last=False):
    """Linear layers ``dims[0] -> dims[1] -> ... -> dims[-1]``.

    Every layer but the last is followed by (optional) batch norm and the
    activation; the last one stays linear unless ``activate_last`` is set, so
    an embedding or a reconstruction is not clipped by a ReLU.
    """
    layers = []
    n_layers = len(dims) - 1
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < n_layers - 1 or activate_last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@fill_doc
class MLPEncoder(nn.Module):
    """Map flat inputs to an embedding through fully connected layers.

    The default widths are those of DEC (Xie et al., 2016): ``d-500-500-2000-10``.

    Parameters
    ----------
    input_dim : int
        Number of input features.
    hidden_dims : tuple of int, default=(500, 500, 2000)
        Widths of the hidden layers.
    embedding_dim : int, default=10
        Size of the output embedding (kept linear).
    {activation}
    {batch_norm}

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import MLPEncoder
    >>> MLPEncoder(784, (64,), 10)(torch.zeros(2, 784)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (500, 500, 2000),
        embedding_dim: int = 10,
        activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.layers = _dense_stack(
            [input_dim, *hidden_dims, embedding_dim], activation, batch_norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(start_dim=1))


@fill_doc
class MLPDecoder(nn.Module):
    """Mirror of :class:`MLPEncoder`: map an embedding back to input space.

    Parameters
    ----------
    embedding_dim : int
        Size of the embedding.
    hidden_dims : tuple of int, default=(2000, 500, 500)
        Widths of the hidden layers, from the embedding outwards.
    output_dim : int or tuple of int, default=784
        Number of output features, or the shape of one sample; the output is
        reshaped to it.
    {activation}
    {batch_norm}

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import MLPDecoder
    >>> MLPDecoder(10, (64,), (1, 28, 28))(torch.zeros(2, 10)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        embedding_dim: int,
        hidden_dims: Sequence[int] = (2000, 500, 500),
        output_dim: int | Sequence[int] = 784,
        activation: str = "relu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.output_shape = (
            (output_dim,) if isinstance(output_dim, int) else tuple(output_dim)
        )
        # math.prod, not a tensor: the estimators build their modules on the
        # meta device, where a tensor holds no value.
        n_out = math.prod(self.output_shape)
        self.layers = _dense_stack(
            [embedding_dim, *hidden_dims, n_out], activation, batch_norm
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z).view(-1, *self.output_shape)
