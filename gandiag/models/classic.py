"""The classic fully connected GAN pair (z 100 -> 256 -> 512 -> 1024 -> 784).

The seed setup most GAN tutorials start from. Sizes are configurable so the same pair
fits MNIST (1, 28, 28), the 8x8 sklearn digits (1, 8, 8), stacked digits (3, 8, 8) and
flat feature vectors (D,).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gandiag.models._checks import _check_noise, _positive_int, _positive_int_tuple

__all__ = ["MLPGenerator", "MLPImageDiscriminator"]


class MLPGenerator(nn.Module):
    """Fully connected generator: z -> hidden widths -> prod(out_shape) -> Tanh, reshaped.

    The first layer has no BatchNorm (as in the classic setup); every further hidden
    layer is Linear -> BatchNorm1d -> LeakyReLU(0.2). Outputs lie in [-1, 1], so real
    data should be scaled to [-1, 1] too.

    Example:
        >>> G = MLPGenerator()                          # 100 -> 256 -> 512 -> 1024 -> 784
        >>> G(torch.randn(4, G.z_dim)).shape
        torch.Size([4, 1, 28, 28])
        >>> MLPGenerator(out_shape=(3, 8, 8))(torch.randn(4, 100)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(
        self,
        z_dim: int = 100,
        out_shape: Sequence[int] = (1, 28, 28),
        hidden: Sequence[int] = (256, 512, 1024),
    ) -> None:
        super().__init__()
        owner = "MLPGenerator"
        self.z_dim = _positive_int(z_dim, name="z_dim", owner=owner)
        self.out_shape = _positive_int_tuple(out_shape, name="out_shape", owner=owner)
        widths = _positive_int_tuple(hidden, name="hidden", owner=owner)
        layers: list[nn.Module] = [nn.Linear(self.z_dim, widths[0]), nn.LeakyReLU(0.2)]
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            # Default BatchNorm eps: several classic copies pass 0.8 positionally, which
            # is eps=0.8 (not momentum) and all but disables the normalisation.
            layers += [nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.LeakyReLU(0.2)]
        layers += [nn.Linear(widths[-1], math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_noise(z, self.z_dim, "MLPGenerator")
        return self.net(z).reshape(z.shape[0], *self.out_shape)


class MLPImageDiscriminator(nn.Module):
    """Fully connected discriminator: Flatten -> hidden widths (LeakyReLU 0.2) -> 1 logit.

    With ``pack=m`` it takes a packed batch of shape (B // m, m * C, *in_shape[1:])
    (for flat samples (B // m, m * D)) and returns one logit per pack, shape (N, 1).

    Example:
        >>> D = MLPImageDiscriminator(in_shape=(1, 8, 8), pack=2)
        >>> x = torch.randn(6, 1, 8, 8)
        >>> D(x.reshape(3, 2, 8, 8)).shape
        torch.Size([3, 1])
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 28, 28),
        hidden: Sequence[int] = (512, 256),
        pack: int = 1,
    ) -> None:
        super().__init__()
        owner = "MLPImageDiscriminator"
        self.in_shape = _positive_int_tuple(in_shape, name="in_shape", owner=owner)
        widths = _positive_int_tuple(hidden, name="hidden", owner=owner)
        self.pack = _positive_int(pack, name="pack", owner=owner)
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = math.prod(self.in_shape) * self.pack
        for width_out in widths:
            layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2)]
            width_in = width_out
        layers.append(nn.Linear(width_in, 1))  # logits, no sigmoid
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Check the packed layout, not just the flattened size: a (B, 2, 8, 8) batch fed
        # to a pack-1 D built for (1, 16, 8) would otherwise pass silently.
        channels, *rest = self.in_shape
        expected = (channels * self.pack, *rest)
        if tuple(x.shape[1:]) != expected:
            hint = (
                f"pack it with x.reshape(B // {self.pack}, {self.pack} * C, *x.shape[2:])"
                if self.pack > 1
                else f"pass samples of shape {self.in_shape}"
            )
            raise ValueError(
                f"MLPImageDiscriminator: expected input of shape (N, {', '.join(map(str, expected))}) "
                f"(sample shape {self.in_shape}, pack {self.pack}), got {tuple(x.shape)}; {hint}"
            )
        return self.net(x)
