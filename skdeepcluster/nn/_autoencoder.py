"""Pairing of an encoder and a decoder."""

from torch import nn


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

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x):
        z = self.encoder(x)
        return self.decoder(z), z
