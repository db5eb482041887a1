"""GAN objectives as small pure functions of discriminator logits.

Convention: D outputs logits, higher means "more real" (docs/definitions.md). Every loss is the
quantity its player *minimises*, averaged over the batch, and is computed from logits
with softplus so no log of a sigmoid ever underflows:
    -log sigmoid(t) = softplus(-t)        -log(1 - sigmoid(t)) = softplus(t)

Example:
    >>> import torch
    >>> loss = LOSSES["nonsaturating"]
    >>> real, fake = torch.tensor([3.0]), torch.tensor([-3.0])
    >>> round(loss.d(real, fake).item(), 4)  # D is nearly right: small loss
    0.0972
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor


def _bce_real(real_logits: Tensor, target: float) -> Tensor:
    """Binary cross-entropy of real logits against `target` (1, or 1 - s when smoothed)."""
    # BCE(t, y) = y softplus(-t) + (1 - y) softplus(t); with y = 1 it is -log sigmoid(t).
    return target * F.softplus(-real_logits) + (1.0 - target) * F.softplus(real_logits)


def bce_d_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """D of the original GAN: maximise log D(x) + log(1 - D(G(z))), written as a loss."""
    return (_bce_real(real_logits, real_target) + F.softplus(fake_logits)).mean()


def minimax_g_loss(fake_logits: Tensor) -> Tensor:
    """G of the original, saturating objective: minimise log(1 - D(G(z))).

    log(1 - sigmoid(t)) = -softplus(t). Its gradient vanishes when D rejects the fakes
    confidently (t << 0), which is why practice uses the non-saturating form.
    """
    return (-F.softplus(fake_logits)).mean()


def nonsaturating_g_loss(fake_logits: Tensor) -> Tensor:
    """G of the non-saturating objective: maximise log D(G(z)), i.e. minimise softplus(-t)."""
    return F.softplus(-fake_logits).mean()


def wgan_d_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Wasserstein critic: maximise E[D(x)] - E[D(G(z))] (Arjovsky et al. 2017)."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g_loss(fake_logits: Tensor) -> Tensor:
    """G of WGAN and of the hinge GAN: maximise E[D(G(z))]."""
    return -fake_logits.mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Hinge D (Lim & Ye 2017; SAGAN, BigGAN): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def lsgan_d_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Least-squares D (Mao et al. 2017, a=0, b=1): 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * ((real_logits - real_target) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def lsgan_g_loss(fake_logits: Tensor) -> Tensor:
    """Least-squares G (c=1): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


@dataclass(frozen=True)
class GANLoss:
    """A named pair of objectives: `d(real_logits, fake_logits, real_target)` and `g(fake_logits)`."""

    name: str
    d: Callable[..., Tensor]
    g: Callable[[Tensor], Tensor]
    # True when sigmoid(logit) reads as "probability real", so D(x) can be shown as one.
    probabilistic: bool


LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("minimax", bce_d_loss, minimax_g_loss, probabilistic=True),
        GANLoss("nonsaturating", bce_d_loss, nonsaturating_g_loss, probabilistic=True),
        GANLoss("wgan", wgan_d_loss, wgan_g_loss, probabilistic=False),
        GANLoss("wgan-gp", wgan_d_loss, wgan_g_loss, probabilistic=False),
        GANLoss("hinge", hinge_d_loss, wgan_g_loss, probabilistic=False),
        GANLoss("lsgan", lsgan_d_loss, lsgan_g_loss, probabilistic=False),
    )
}


def get_loss(name: str) -> GANLoss:
    """The loss called `name`, or a ValueError that lists the known ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}"
        ) from None


