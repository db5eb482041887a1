"""Toy 2-D generator and discriminators from the PacGAN experiments (Lin et al. 2018).

The paper's pair for the ring and grid mixtures: G maps z ~ N(0, I_2) through four
400-unit layers (BatchNorm + ReLU) to a 2-D point; D is three maxout layers (200 units,
5 pieces) on the packed input of 2·m features, then one linear unit.
"""

from __future__ import annotations

import torch
from torch import nn

from gandiag.models._checks import _check_noise, _check_packed_features, _positive_int

__all__ = [
    "Maxout",
    "ToyGenerator",
    "ToyDiscriminator",
    "MLPDiscriminator",
    "pacgan_toy",
    "small_toy",
]


# --------------------------------------------------------------------------- layers


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013): the max over ``pieces`` linear maps.

    Example:
        >>> layer = Maxout(2, 200, pieces=5)
        >>> layer(torch.randn(8, 2)).shape
        torch.Size([8, 200])
    """

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        owner = "Maxout"
        self.in_features = _positive_int(in_features, name="in_features", owner=owner)
        self.out_features = _positive_int(out_features, name="out_features", owner=owner)
        self.pieces = _positive_int(pieces, name="pieces", owner=owner)
        # One wide Linear instead of `pieces` small ones: a single matmul per layer.
        self.linear = nn.Linear(self.in_features, self.out_features * self.pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Layout (..., out, pieces): each output unit owns `pieces` consecutive columns.
        y = self.linear(x).unflatten(-1, (self.out_features, self.pieces))
        return y.amax(dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"


# --------------------------------------------------------------------------- models


class ToyGenerator(nn.Module):
    """MLP generator for 2-D toy mixtures: depth x (Linear, [BatchNorm1d], ReLU), Linear.

    The output is unbounded (no Tanh): the grid mixture spans [-4, 4]².

    Example:
        >>> G = ToyGenerator()          # the PacGAN paper's G: 2 -> 400x4 -> 2
        >>> G(torch.randn(16, G.z_dim)).shape
        torch.Size([16, 2])
    """

    def __init__(
        self, z_dim: int = 2, hidden: int = 400, depth: int = 4, out_dim: int = 2,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        owner = "ToyGenerator"
        self.z_dim = _positive_int(z_dim, name="z_dim", owner=owner)
        hidden = _positive_int(hidden, name="hidden", owner=owner)
        depth = _positive_int(depth, name="depth", owner=owner)
        self.out_dim = _positive_int(out_dim, name="out_dim", owner=owner)
        layers: list[nn.Module] = []
        width_in = self.z_dim
        for _ in range(depth):
            norm = [nn.BatchNorm1d(hidden)] if batch_norm else []
            layers += [nn.Linear(width_in, hidden), *norm, nn.ReLU()]
            width_in = hidden
        layers.append(nn.Linear(hidden, self.out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_noise(z, self.z_dim, "ToyGenerator")
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """PacGAN toy discriminator: depth maxout layers, then Linear(hidden, 1) -> logits.

    With ``pack=m`` it takes m samples concatenated along dim 1, i.e. input features
    ``in_dim * m``, and returns one logit per pack, shape (B // m, 1).

    Example:
        >>> D = ToyDiscriminator(pack=2)
        >>> x = torch.randn(10, 2)                      # 10 samples
        >>> D(x.reshape(10 // 2, 2 * 2)).shape          # 5 packs of 2
        torch.Size([5, 1])
    """

    def __init__(
        self, in_dim: int = 2, hidden: int = 200, depth: int = 3, pieces: int = 5, pack: int = 1
    ) -> None:
        super().__init__()
        owner = "ToyDiscriminator"
        self.in_dim = _positive_int(in_dim, name="in_dim", owner=owner)
        hidden = _positive_int(hidden, name="hidden", owner=owner)
        depth = _positive_int(depth, name="depth", owner=owner)
        pieces = _positive_int(pieces, name="pieces", owner=owner)
        self.pack = _positive_int(pack, name="pack", owner=owner)
        layers: list[nn.Module] = []
        width_in = self.in_dim * self.pack
        for _ in range(depth):
            layers.append(Maxout(width_in, hidden, pieces))
            width_in = hidden
        # No sigmoid: gandiag's losses and hooks expect logits (higher = more real).
        layers.append(nn.Linear(hidden, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_packed_features(x, self.in_dim, self.pack, "ToyDiscriminator")
        return self.net(x)


class MLPDiscriminator(nn.Module):
    """Plain small discriminator: depth x (Linear, LeakyReLU(0.2)), then Linear(hidden, 1).

    Returns logits of shape (B // pack, 1).

    Example:
        >>> D = MLPDiscriminator(hidden=128, depth=3)
        >>> D(torch.randn(8, 2)).shape
        torch.Size([8, 1])
    """

    def __init__(self, in_dim: int = 2, hidden: int = 128, depth: int = 3, pack: int = 1) -> None:
        super().__init__()
        owner = "MLPDiscriminator"
        self.in_dim = _positive_int(in_dim, name="in_dim", owner=owner)
        hidden = _positive_int(hidden, name="hidden", owner=owner)
        depth = _positive_int(depth, name="depth", owner=owner)
        self.pack = _positive_int(pack, name="pack", owner=owner)
        layers: list[nn.Module] = []
        width_in = self.in_dim * self.pack
        for _ in range(depth):
            layers += [nn.Linear(width_in, hidden), nn.LeakyReLU(0.2)]
            width_in = hidden
        layers.append(nn.Linear(hidden, 1))  # logits, no sigmoid
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_packed_features(x, self.in_dim, self.pack, "MLPDiscriminator")
        return self.net(x)


# --------------------------------------------------------------------------- factories


def pacgan_toy(pack: int = 1, z_dim: int = 2) -> tuple[ToyGenerator, ToyDiscriminator]:
    """The PacGAN paper's toy pair: G 2 -> 400x4 (BN+ReLU) -> 2, D maxout 3x200x5 -> 1.

    Example:
        >>> G, D = pacgan_toy(pack=2)
        >>> D(G(torch.randn(100, 2)).reshape(50, 4)).shape
        torch.Size([50, 1])
    """
    G = ToyGenerator(z_dim=z_dim, hidden=400, depth=4, out_dim=2)
    D = ToyDiscriminator(in_dim=2, hidden=200, depth=3, pieces=5, pack=pack)
    return G, D


def small_toy(pack: int = 1, z_dim: int = 4) -> tuple[ToyGenerator, MLPDiscriminator]:
    """A small, fast toy pair: G and D are 3x128 MLPs, G without BatchNorm.

    Noise of dimension 4. Measured on the ring (Adam 2e-4, betas (0.5, 0.999), batch 64,
    seeds 0-2): trained vanilla it collapses onto one to four modes within 4 000 steps;
    with packing 2 and an EMA of G it covers all eight, HQ 0.82-0.89 after 12 000 steps.
    A BatchNorm-free G with 2-D noise does not collapse there, so it shows less.
    `gandiag demo` trains it with D at half G's rate (lr_d 1e-4), where the vanilla run
    collapses for every seed measured (0-4) and the packed one covers all eight.

    Example:
        >>> G, D = small_toy()
        >>> D(G(torch.randn(8, G.z_dim))).shape
        torch.Size([8, 1])
    """
    G = ToyGenerator(z_dim=z_dim, hidden=128, depth=3, out_dim=2, batch_norm=False)
    D = MLPDiscriminator(in_dim=2, hidden=128, depth=3, pack=pack)
    return G, D
