"""Stabilisers that act on D's inputs, gradients or weights: pure functions.

R1 and the WGAN gradient penalty are differentiable penalties added to D's loss;
packing and instance noise reshape or perturb what D sees; spectral normalisation and
weight clipping constrain D's weights.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.nn.utils.parametrize import is_parametrized


def r1_penalty(real_logits: Tensor, real_inputs: Tensor, gamma: float) -> Tensor:
    """R1 (Mescheder et al. 2018): gamma/2 * E_x ||grad_x D(x)||^2 on real data.

    `real_inputs` must have had `requires_grad_(True)` before D saw them; the result
    keeps the graph (create_graph) so D's update differentiates through it.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return 0.5 * gamma * grad.pow(2).flatten(1).sum(1).mean()


def gradient_penalty(
    D: nn.Module,
    real: Tensor,
    fake: Tensor,
    weight: float,
    *,
    generator: torch.Generator | None = None,
    logits: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)|| - 1)^2].

    x_hat is a random point on the segment between a real and a fake sample, one
    uniform mixing weight per sample. `logits` maps D's raw output to (B,) logits.
    """
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = D(mixed)
    out = logits(out) if logits is not None else out.reshape(out.shape[0], -1).sum(1)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return weight * (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()


def pack(x: Tensor, m: int) -> Tensor:
    """PacGAN: m consecutive samples become one D input, concatenated along dim 1.

    (B, C, ...) -> (B // m, m * C, ...); for 2-D toy data (B, 2) -> (B // m, 2m). A batch
    whose size is not a multiple of m loses its last B % m samples (a DataLoader's short
    final batch).
    """
    if m == 1:
        return x
    usable = x.shape[0] - x.shape[0] % m
    x = x[:usable]
    return x.reshape(usable // m, m * x.shape[1], *x.shape[2:])


def instance_noise_std(initial: float, step: int, horizon: int) -> float:
    """Annealed instance noise (Sonderby et al. 2017): linear from `initial` to 0."""
    return initial * max(0.0, 1.0 - step / horizon)


def add_instance_noise(x: Tensor, std: float, generator: torch.Generator | None) -> Tensor:
    """x + N(0, std^2), drawn from `generator` so runs stay reproducible."""
    if std == 0.0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + std * noise


def apply_spectral_norm(D: nn.Module) -> int:
    """Spectrally normalise every Linear and Conv weight of D in place; returns the count.

    Uses `torch.nn.utils.parametrizations.spectral_norm` (one power iteration per
    forward in training mode); modules already parametrised are left as they are.
    """
    count = 0
    for module in D.modules():
        is_layer = isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                                       nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
        if is_layer and not is_parametrized(module, "weight"):
            spectral_norm(module)
            count += 1
    if count == 0 and not any(is_parametrized(m, "weight") for m in D.modules()):
        raise ValueError(
            "spectral_norm=True: found no Linear or Conv layer in D to normalise; "
            "apply torch.nn.utils.parametrizations.spectral_norm to D's layers yourself "
            "or set spectral_norm=False"
        )
    return count


@torch.no_grad()
def clip_weights_(D: nn.Module, clip: float) -> None:
    """WGAN weight clipping: every D parameter into [-clip, clip], in place."""
    params = list(D.parameters())
    torch._foreach_clamp_min_(params, -clip)
    torch._foreach_clamp_max_(params, clip)
