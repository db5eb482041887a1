"""DCGAN (Radford et al. 2016) as in the PyTorch DCGAN tutorial, for 32x32 and 64x64, and the
same stack cut short for small images (8x8 digits, 16x16).

Tutorial defaults: nz = 100, ngf = ndf = 64, 4x4 kernels, bias-free convolutions,
BatchNorm everywhere except G's output and D's input and output layers, and the
``weights_init`` below. One change: D ends in a logit, not a Sigmoid, because gandiag's
losses and hooks read logits (higher = more real).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from gandiag.models._checks import _positive_int

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "dcgan_weights_init", "DCGAN_SIZES"]

#: Image sizes the DCGAN stacks support: 4 -> 8 (-> 16 -> 32 -> 64).
DCGAN_SIZES: tuple[int, ...] = (8, 16, 32, 64)

# Width multipliers per stage, widest first for G (4x4) and narrowest first for D.
# Size 32 drops the widest stage, so G starts at ngf*4 and D ends at ndf*4; sizes 16 and 8
# drop the narrow stages instead and keep that 4x4 width of 32: an 8x8 pair is one 4x4 map
# of ngf*4 channels between the noise (or the logit) and the image, not a 64-channel one.
_MULTIPLIERS: dict[int, tuple[int, ...]] = {64: (8, 4, 2, 1), 32: (4, 2, 1), 16: (4, 2), 8: (4,)}


def _check_size(size: object, owner: str) -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size not in DCGAN_SIZES:
        raise ValueError(
            f"{owner}: expected size 8, 16, 32 or 64 (the supported DCGAN image sizes), "
            f"got {size!r}; resize images to one of those sizes, or use MLPGenerator/"
            f"MLPImageDiscriminator (model 'mlp') for other sizes"
        )
    return int(size)


def dcgan_weights_init(module: nn.Module) -> None:
    """The DCGAN tutorial's init: conv weights N(0, 0.02), BN weights N(1, 0.02), biases 0.

    Apply with ``model.apply(dcgan_weights_init)``; both DCGAN models already do this.

    Example:
        >>> conv = nn.Conv2d(3, 8, 4).apply(dcgan_weights_init)
        >>> abs(conv.weight.std().item() - 0.02) < 0.005
        True
    """
    # isinstance instead of the tutorial's class-name match: that one also catches any
    # user class whose name happens to contain "Conv".
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """DCGAN generator: z -> 4x4 -> ... -> size x size image in [-1, 1] (Tanh).

    Accepts noise of shape (B, z_dim) or (B, z_dim, 1, 1).

    Example:
        >>> G = DCGANGenerator(channels=3, size=32)
        >>> G(torch.randn(4, G.z_dim)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(self, z_dim: int = 100, channels: int = 3, size: int = 64, ngf: int = 64) -> None:
        super().__init__()
        owner = "DCGANGenerator"
        self.z_dim = _positive_int(z_dim, name="z_dim", owner=owner)
        self.channels = _positive_int(channels, name="channels", owner=owner)
        self.size = _check_size(size, owner)
        ngf = _positive_int(ngf, name="ngf", owner=owner)
        mult = _MULTIPLIERS[self.size]
        # Project z (as a 1x1 map) to a 4x4 map, then double the side per stage.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.z_dim, ngf * mult[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult[0]),
            nn.ReLU(True),
        ]
        for m_in, m_out in zip(mult[:-1], mult[1:]):
            layers += [
                nn.ConvTranspose2d(ngf * m_in, ngf * m_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * m_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(ngf * mult[-1], self.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_weights_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # Both the flat layout and the tutorial's (B, nz, 1, 1) layout are accepted.
        flat_ok = z.dim() == 2 and z.shape[1] == self.z_dim
        map_ok = z.dim() == 4 and tuple(z.shape[1:]) == (self.z_dim, 1, 1)
        if not (flat_ok or map_ok):
            raise ValueError(
                f"DCGANGenerator: expected noise of shape (B, {self.z_dim}) or "
                f"(B, {self.z_dim}, 1, 1), got {tuple(z.shape)}; draw it with "
                f"torch.randn(B, {self.z_dim})"
            )
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: size x size image -> ... -> 4x4 -> one logit per sample, shape (N,).

    With ``pack=m`` it takes (B // m, m * channels, size, size), m consecutive samples
    concatenated along the channel dim, and returns B // m logits.

    Example:
        >>> D = DCGANDiscriminator(channels=1, size=32, pack=2)
        >>> x = torch.randn(8, 1, 32, 32)
        >>> D(x.reshape(4, 2, 32, 32)).shape
        torch.Size([4])
    """

    def __init__(self, channels: int = 3, size: int = 64, ndf: int = 64, pack: int = 1) -> None:
        super().__init__()
        owner = "DCGANDiscriminator"
        self.channels = _positive_int(channels, name="channels", owner=owner)
        self.size = _check_size(size, owner)
        ndf = _positive_int(ndf, name="ndf", owner=owner)
        self.pack = _positive_int(pack, name="pack", owner=owner)
        mult = _MULTIPLIERS[self.size][::-1]
        # No BatchNorm on the input layer (tutorial, after Radford et al.).
        layers: list[nn.Module] = [
            nn.Conv2d(self.channels * self.pack, ndf * mult[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for m_in, m_out in zip(mult[:-1], mult[1:]):
            layers += [
                nn.Conv2d(ndf * m_in, ndf * m_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * m_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        # 4x4 -> 1x1 logit; the tutorial's Sigmoid is dropped on purpose (logits).
        layers.append(nn.Conv2d(ndf * mult[-1], 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_weights_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A wrong size would not fail in the convs: it would return a spatial map that
        # flattens into the wrong number of logits. Shape reads do not sync the device.
        expected = (self.channels * self.pack, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            hint = (
                f"pack it with x.reshape(B // {self.pack}, {self.pack} * C, H, W)"
                if self.pack > 1
                else f"pass images of shape ({self.channels}, {self.size}, {self.size})"
            )
            raise ValueError(
                f"DCGANDiscriminator: expected input of shape (N, {expected[0]}, {self.size}, "
                f"{self.size}) ({self.channels} channels x pack {self.pack}), "
                f"got {tuple(x.shape)}; {hint}"
            )
        return self.net(x).flatten()
