"""Small convolutional encoder and decoder for image input ``(C, H, W)``."""

import math
from collections.abc import Sequence

import torch
from torch import nn


def _halved_sizes(input_shape, channels):
    """``(height, width)`` of the input and after each of the encoder's convolutions.

    Each convolution (kernel 3, stride 2, padding 1) halves the size,
    rounding up: ``(28, 28)`` becomes ``(14, 14)``, ``(7, 7)``, ``(4, 4)``.
    """
    sizes = [tuple(input_shape[1:])]
    for _ in channels:
        height, width = sizes[-1]
        sizes.append((math.ceil(height / 2), math.ceil(width / 2)))
    return sizes


class ConvEncoder(nn.Module):
    """Strided convolutions, then a linear layer to the embedding.

    Each convolution halves the spatial size (kernel 3, stride 2, padding 1),
    in the spirit of the convolutional autoencoders used for deep clustering
    of MNIST-like images (e.g. Guo et al., 2017).

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)`` of one sample.
    embedding_dim : int, default=10
        Size of the output embedding.
    channels : tuple of int, default=(32, 64, 128)
        Output channels of the successive convolutions.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import ConvEncoder
    >>> ConvEncoder((1, 28, 28), 10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        embedding_dim: int = 10,
        channels: Sequence[int] = (32, 64, 128),
    ) -> None:
        super().__init__()
        n_channels = input_shape[0]
        layers: list[nn.Module] = []
        for n_out in channels:
            layers += [nn.Conv2d(n_channels, n_out, 3, stride=2, padding=1), nn.ReLU()]
            n_channels = n_out
        self.conv = nn.Sequential(*layers)
        self.feature_shape = (n_channels, *_halved_sizes(input_shape, channels)[-1])
        self.fc = nn.Linear(math.prod(self.feature_shape), embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(start_dim=1))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder` built from transposed convolutions.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)`` of the images to reconstruct.
    embedding_dim : int, default=10
        Size of the embedding.
    channels : tuple of int, default=(32, 64, 128)
        The encoder's channels (used in reverse order).

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.nn import ConvDecoder
    >>> ConvDecoder((1, 28, 28), 10)(torch.zeros(2, 10)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        embedding_dim: int = 10,
        channels: Sequence[int] = (32, 64, 128),
    ) -> None:
        super().__init__()
        n_channels = input_shape[0]
        # Spatial sizes the encoder went through, so that each transposed
        # convolution can restore odd sizes exactly (28 -> 14 -> 7 -> 4).
        sizes = _halved_sizes(input_shape, channels)
        self.feature_shape = (channels[-1], *sizes[-1])
        self.fc = nn.Linear(embedding_dim, math.prod(self.feature_shape))
        layers: list[nn.Module] = []
        outs = list(reversed(channels[:-1])) + [n_channels]
        n_in = channels[-1]
        for i, n_out in enumerate(outs):
            target_h, target_w = sizes[len(channels) - 1 - i]
            src_h, src_w = sizes[len(channels) - i]
            layers.append(
                nn.ConvTranspose2d(
                    n_in,
                    n_out,
                    3,
                    stride=2,
                    padding=1,
                    output_padding=(
                        target_h - (2 * src_h - 1),
                        target_w - (2 * src_w - 1),
                    ),
                )
            )
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
            n_in = n_out
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(nn.functional.relu(self.fc(z)).view(-1, *self.feature_shape))
