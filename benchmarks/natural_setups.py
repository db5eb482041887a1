"""The runs of the natural-run corpus: models, loop shapes and ground-truth probes.

Every run is a plain PyTorch loop with `gandiag.attach(G, D, opt_g=..., opt_d=...)` and
nothing injected: what happens to it happens on its own. `benchmarks/natural_runs.py`
trains them, labels them from the probes below (never from gandiag's records) and compares
the detectors' alerts with the labels.

Probes, every `check_every` steps, on samples of G from fixed noise:
- toy mixtures (ring, 8 modes; grid, 25): per mode the HQ samples (within 3 std of a mode)
  of 2 500 samples; `hq` = their share;
- digits (1 x 8 x 8): the shipped digits classifier; a sample is HQ when the classifier is
  at least 90 % sure, and its mode is the class (10 modes);
- stacked digits (3 x 8 x 8, 1 000 modes): each channel classified, HQ when all three are
  at least 90 % sure; the mode is the triple; 10 000 samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import gandiag
from gandiag.metrics.classifier import load_digits_classifier


# ---------------------------------------------------------------- models

def mlp(n_in: int, n_out: int, act: Callable[[], nn.Module], width: int = 128,
        sn: bool = False) -> nn.Sequential:
    wrap = nn.utils.parametrizations.spectral_norm if sn else (lambda m: m)
    return nn.Sequential(wrap(nn.Linear(n_in, width)), act(), wrap(nn.Linear(width, width)), act(),
                         wrap(nn.Linear(width, width)), act(), wrap(nn.Linear(width, n_out)))


class ImageG(nn.Module):
    """Notebook 02's DCGAN-style generator for 8 x 8 images."""

    def __init__(self, z_dim: int = 100, channels: int = 1, width: int = 64, classes: int = 0) -> None:
        super().__init__()
        self.classes = classes
        if classes:
            self.embed = nn.Embedding(classes, z_dim)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.classes:
            z = z * self.embed(y)  # a conditional G, as in the cGAN tutorials
        return self.main(z.view(len(z), -1, 1, 1))


class ImageD(nn.Module):
    """Notebook 02's discriminator; `sigmoid` ends it as the PyTorch tutorial does."""

    def __init__(self, channels: int = 1, width: int = 64, sigmoid: bool = False, classes: int = 0) -> None:
        super().__init__()
        self.classes = classes
        self.main = nn.Sequential(
            nn.Conv2d(channels + (1 if classes else 0), width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, 2 * width, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * width, 1, 4, 1, 0, bias=False), *([nn.Sigmoid()] if sigmoid else []))
        if classes:
            self.embed = nn.Embedding(classes, 64)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.classes:  # a conditional D: the label as a fourth plane
            x = torch.cat([x, self.embed(y).view(len(x), 1, 8, 8)], 1)
        return self.main(x).view(-1)


def dcgan_init(module: nn.Module) -> None:
    if "Conv" in type(module).__name__:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in type(module).__name__:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------- loop shapes

@dataclass
class Loop:
    """One training step as users write it. `loss`: ns (non-saturating, logits), bce
    (Sigmoid D + nn.BCELoss), log (Sigmoid D and the losses written with torch.log, as
    many papers' code does: no clamping), lsgan, hinge, wgan. `order`: "DG" or "GD"."""

    loss: str = "ns"
    order: str = "DG"
    n_critic: int = 1
    gp: float = 0.0
    r1: float = 0.0
    pack: int = 1

    def step(self, G, D, opt_g, opt_d, sample_real, z_of, cond: bool = False) -> float:
        """Returns D's loss of the last D update (NaN shows up here first)."""
        updates = (["D"] * self.n_critic + ["G"]) if self.order == "DG" else (["G"] + ["D"] * self.n_critic)
        loss_d = float("nan")
        for who in updates:
            if who == "D":
                real, y = sample_real()
                z = z_of(len(real))
                with torch.no_grad():
                    fake = G(z, y) if cond else G(z)
                loss_d = self._d_update(D, opt_d, real, fake, y if cond else None)
            else:
                real, y = sample_real()
                z = z_of(len(real))
                fake = G(z, y) if cond else G(z)
                out = self._d(D, fake, y if cond else None)
                losses = {"ns": lambda: F.softplus(-out).mean(),
                          "bce": lambda: F.binary_cross_entropy(out, torch.ones_like(out)),
                          "log": lambda: -torch.log(out).mean(),
                          "lsgan": lambda: 0.5 * ((out - 1) ** 2).mean()}
                loss_g = losses.get(self.loss, lambda: -out.mean())()  # hinge and WGAN: -D(G(z))
                opt_g.zero_grad()
                loss_g.backward()
                opt_g.step()
        return loss_d

    def _d(self, D, x, y):
        if self.pack > 1:
            x = x.reshape(len(x) // self.pack, -1)
        return D(x, y).view(-1) if y is not None else D(x).view(-1)

    def _d_update(self, D, opt_d, real, fake, y) -> float:
        if self.r1:
            real = real.detach().requires_grad_(True)
        out_r, out_f = self._d(D, real, y), self._d(D, fake, y)
        if self.loss == "ns":
            loss = F.softplus(-out_r).mean() + F.softplus(out_f).mean()
        elif self.loss == "bce":
            loss = (F.binary_cross_entropy(out_r, torch.ones_like(out_r))
                    + F.binary_cross_entropy(out_f, torch.zeros_like(out_f)))
        elif self.loss == "log":
            loss = -(torch.log(out_r) + torch.log(1 - out_f)).mean()
        elif self.loss == "lsgan":
            loss = 0.5 * ((out_r - 1) ** 2).mean() + 0.5 * (out_f ** 2).mean()
        elif self.loss == "hinge":
            loss = F.relu(1 - out_r).mean() + F.relu(1 + out_f).mean()
        else:  # wgan
            loss = out_f.mean() - out_r.mean()
        if self.gp:
            t = torch.rand(len(real), *[1] * (real.dim() - 1))
            mix = (t * real.detach() + (1 - t) * fake).requires_grad_(True)
            grad, = torch.autograd.grad(self._d(D, mix, y).sum(), mix, create_graph=True)
            loss = loss + self.gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        if self.r1:
            grad, = torch.autograd.grad(out_r.sum(), real, create_graph=True)
            loss = loss + self.r1 / 2 * grad.flatten(1).pow(2).sum(1).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return float(loss.detach())


# ---------------------------------------------------------------- data and probes

class ToyProbe:
    def __init__(self, mixture, z_dim: int, seed: int) -> None:
        self.mixture, self.k = mixture, mixture.n_modes
        self.z = torch.randn(2500, z_dim, generator=torch.Generator().manual_seed(10_000 + seed))

    def __call__(self, G) -> dict:
        with torch.no_grad():
            x = G(self.z)
        if not torch.isfinite(x).all():
            return {"finite": False}
        per_mode = self.mixture.mode_histogram(x)
        return {"finite": True, "hq": float(per_mode.sum() / len(x)), "per_mode": per_mode}


class DigitsProbe:
    def __init__(self, z_dim: int, seed: int, stacked: bool, n: int) -> None:
        self.stacked, self.k = stacked, 1000 if stacked else 10
        self.z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(10_000 + seed))
        self.classifier = load_digits_classifier()

    def __call__(self, G) -> dict:
        was = G.training
        G.eval()
        with torch.no_grad():
            x = G(self.z, torch.arange(len(self.z)) % 10) if getattr(G, "classes", 0) else G(self.z)
        G.train(was)
        if not torch.isfinite(x).all():
            return {"finite": False}
        channels = x.reshape(-1, 1, 8, 8)
        with torch.no_grad():
            probs = torch.cat([self.classifier(c).softmax(1) for c in channels.split(4096)])
        sure, label = probs.max(1)
        sure, label = sure.view(len(x), -1), label.view(len(x), -1)
        good = (sure >= 0.9).all(1)
        mode = 100 * label[:, 0] + 10 * label[:, 1] + label[:, 2] if self.stacked else label[:, 0]
        per_mode = np.bincount(mode[good].numpy(), minlength=self.k)
        return {"finite": True, "hq": float(good.float().mean()), "per_mode": per_mode}


@dataclass
class Setup:
    """One kind of run: data, models, loop, optimisers, length."""

    data: str                      # ring | grid | digits | stacked
    loop: Loop = field(default_factory=Loop)
    steps: int = 4000
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    betas: tuple = (0.5, 0.999)
    z_dim: int = 2
    batch: int = 256
    sn: bool = False
    frozen_g: bool = False          # the user's loop never steps G's optimizer
    d_act: str = "leaky"
    check_every: int = 250
    cond: bool = False


def build(setup: Setup, seed: int):
    """(G, D, opt_g, opt_d, sample_real, z_of, probe, attach options)."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    if setup.data in ("ring", "grid"):
        mixture = gandiag.data.ring() if setup.data == "ring" else gandiag.data.grid()
        act = (lambda: nn.LeakyReLU(0.2)) if setup.d_act == "leaky" else nn.ReLU
        G = mlp(setup.z_dim, 2, nn.ReLU)
        D = mlp(2 * setup.loop.pack, 1, act, sn=setup.sn)
        if setup.loop.loss in ("bce", "log"):
            D.append(nn.Sigmoid())
        sample_real = lambda: (mixture.sample(setup.batch, generator=rng), None)
        probe = ToyProbe(mixture, setup.z_dim, seed)
        options = {"sample_shape": (2,)} if setup.loop.pack > 1 else {}
    else:
        stacked = setup.data == "stacked"
        channels = 3 if stacked else 1
        dataset = gandiag.data.stacked_digits(20_000, seed=seed) if stacked else gandiag.data.digits()
        images, labels = dataset.tensors
        classes = 10 if setup.cond else 0
        G = ImageG(setup.z_dim, channels, classes=classes)
        D = ImageD(channels, sigmoid=setup.loop.loss in ("bce", "log"), classes=classes)
        G.apply(dcgan_init)
        D.apply(dcgan_init)

        def sample_real():
            pick = torch.randint(len(images), (setup.batch,), generator=rng)
            return images[pick], (labels[pick] % 10)
        probe = DigitsProbe(setup.z_dim, seed, stacked, 10_000 if stacked else 2_000)
        options = {}
    opt_g = torch.optim.Adam(G.parameters(), setup.lr_g, betas=setup.betas)
    opt_d = torch.optim.Adam(D.parameters(), setup.lr_d, betas=setup.betas)
    if setup.frozen_g:
        opt_g.step = lambda *a, **k: None  # the bug: G's optimizer is never stepped
    z_of = lambda n: torch.randn(n, setup.z_dim, generator=rng)
    return G, D, opt_g, opt_d, sample_real, z_of, probe, options


# ---------------------------------------------------------------- the corpus

RING = dict(data="ring")
GRID = dict(data="grid", steps=5000)
DIGITS = dict(data="digits", lr_g=2e-4, lr_d=2e-4, z_dim=100, batch=64, steps=3000)
STACKED = dict(data="stacked", lr_g=2e-4, lr_d=2e-4, z_dim=100, batch=64, steps=3000)

SETUPS: dict[str, Setup] = {
    # toy ring, 3x128 MLPs, 2-D noise
    "ring ns": Setup(**RING),
    "ring ns pack2": Setup(**RING, loop=Loop(pack=2), steps=5000),
    "ring lsgan G-first": Setup(**RING, loop=Loop("lsgan", "GD"), lr_g=2e-4, lr_d=2e-4, steps=5000),
    "ring bce tutorial": Setup(**RING, loop=Loop("bce"), lr_g=2e-4, lr_d=2e-4, steps=5000),
    "ring wgan-gp": Setup(**RING, loop=Loop("wgan", n_critic=5, gp=10.0), lr_g=5e-4, lr_d=5e-4,
                          betas=(0.5, 0.9)),
    "ring wgan no constraint": Setup(**RING, loop=Loop("wgan", n_critic=5), lr_g=1e-4, lr_d=1e-4,
                                     betas=(0.5, 0.9), steps=3000),
    "ring lr 1e-2": Setup(**RING, lr_g=1e-2, lr_d=1e-2),
    "ring fast D": Setup(**RING, loop=Loop(n_critic=5), lr_g=1e-4, lr_d=2e-3),
    "ring fast D log loss": Setup(**RING, loop=Loop("log", n_critic=5), lr_g=1e-4, lr_d=2e-3),
    "ring 1-d noise": Setup(**RING, z_dim=1),
    "ring frozen G": Setup(**RING, frozen_g=True, steps=2000),
    # toy grid, 25 modes
    "grid ns": Setup(**GRID),
    "grid hinge sn": Setup(**GRID, loop=Loop("hinge"), sn=True),
    "grid ns r1": Setup(**GRID, loop=Loop(r1=1.0)),
    # digits, notebook 02's conv pair
    "digits ns": Setup(**DIGITS),
    "digits bce tutorial G-first": Setup(**DIGITS, loop=Loop("bce", "GD")),
    "digits conditional D": Setup(**DIGITS, cond=True),
    "digits lr 5e-3": Setup(**{**DIGITS, "lr_g": 5e-3, "lr_d": 5e-3}),
    # stacked digits, 1000 modes
    "stacked ns": Setup(**STACKED),
}
