"""Pairing of an encoder and a decoder."""

import torch
from torch import nn


class L2Normalize(nn.Module):
    """Scale each sample to unit Euclidean norm (along dimension 1).

    Placed after an encoder, it puts the embedding on the unit sphere, so that
    k-means compares directions. With ReLU networks the norm of an embedding
    mostly follows how much ink or signal a sample has, which says little
    about its cluster; dropping it lets k-means group samples by the pattern
    of their features rather than by their overall magnitude.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import L2Normalize
    >>> L2Normalize()(torch.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(z, dim=1)


class Shift(nn.Module):
    """Add a fixed ``offset`` to each sample.

    The offset is a buffer, not a parameter: it is saved and moved with the
    module but not trained. With the negated mean of the training data in
    front of an encoder, and the mean after the decoder, the network works
    on centred data while its input and output stay on the data's scale.

    Parameters
    ----------
    offset : torch.Tensor
        The shape of one sample (or broadcastable to it).

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import Shift
    >>> Shift(torch.tensor([1.0, -1.0]))(torch.zeros(2, 2))
    tensor([[ 1., -1.],
            [ 1., -1.]])
    """

    def __init__(self, offset: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("offset", offset.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset


class Autoencoder(nn.Module):
    """An encoder and a decoder; ``forward`` returns ``(reconstruction, embedding)``.

    Returning the embedding beside the reconstruction lets a loss use both
    without a second pass through the encoder.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch of samples to a batch of embeddings.
    decoder : torch.nn.Module
        Maps a batch of embeddings back to samples of the input's shape.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import Autoencoder, MLPDecoder, MLPEncoder
    >>> ae = Autoencoder(MLPEncoder(8, (4,), 2), MLPDecoder(2, (4,), 8))
    >>> recon, z = ae(torch.zeros(3, 8))
    >>> recon.shape, z.shape
    (torch.Size([3, 8]), torch.Size([3, 2]))
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return self.decoder(z), z
