"""Gradient-leak check: does an update include gradients left over from the other update?

In a GAN loop, G's backward also fills D's `.grad` (the G loss goes through D). If the
loop forgets `D.zero_grad()` before D's backward, D's next update silently adds those
G-step gradients (and the same for G with a non-detached fake in the D step; the bug
class of Lightning issues #591/#5545). The check watches one small parameter per model
through a tensor hook: every incoming gradient adds its *fingerprint* (two fixed random
projections, linear in the gradient) to the phase it belongs to, decided like the D
outputs by the optimizer step that follows. At the model's own step the fingerprint of
`.grad` is compared, on the host at flush time (no sync on the step), with
    clean       this phase's contributions            -> fine
    clean+other plus the other model's phase           -> leak: a zero_grad is missing
    cumulative  everything since the start             -> leak: gradients never zeroed
Comparisons are up to a positive factor, so gradient clipping and AMP unscaling are fine.

    >>> leak_kind(actual=[3, 1], clean=[1, 0], other=[2, 1], cumulative=[3, 1])
    'other'
    >>> leak_kind(actual=[0.5, 0], clean=[1, 0], other=[2, 1], cumulative=[3, 1]) is None
    True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

# Columns per model in the device buffer.
COLUMNS = ("checked", "actual0", "actual1", "clean0", "clean1", "other0", "other1",
           "cumulative0", "cumulative1")


def _parallel(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    """a = c * b for some c > 0, up to `tolerance` (relative)."""
    norm_a, norm_b = float(np.hypot(*a)), float(np.hypot(*b))
    if norm_a == 0.0 or norm_b == 0.0:
        return norm_a == norm_b
    cross = abs(a[0] * b[1] - a[1] * b[0])
    return cross <= tolerance * norm_a * norm_b and float(a @ b) > 0


# How `grad_leak/<role>` records a checked update: 0 clean, 1 'other', 2 'stale'.
LEAK_CODES = {"other": 1.0, "stale": 2.0}


def leak_kind(actual: Sequence[float], clean: Sequence[float], other: Sequence[float],
              cumulative: Sequence[float], *, tolerance: float = 1e-4) -> str | None:
    """None (clean or inconclusive), 'other' (left over from the other model's step) or
    'stale' (never zeroed) for one checked update."""
    a, c, o, s = (np.asarray(v, dtype=np.float64) for v in (actual, clean, other, cumulative))
    if not np.all(np.isfinite(np.concatenate([a, c, o, s]))) or _parallel(a, c, tolerance):
        return None
    if np.hypot(*o) > tolerance * np.hypot(*a) and _parallel(a, c + o, tolerance):
        return "other"
    if not np.allclose(s, c) and _parallel(a, s, tolerance):
        return "stale"
    return None


def probe_parameter(model: nn.Module) -> nn.Parameter | None:
    """The parameter to watch: the smallest weight with at least 16 entries (not a bias,
    whose gradient may vanish exactly, e.g. before BatchNorm); small keeps the probe cheap."""
    weights = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2 and p.numel() >= 16]
    if weights:
        return min(weights, key=lambda p: p.numel())
    return next((p for p in model.parameters() if p.requires_grad), None)


class LeakProbe:
    """Fingerprints of one parameter's gradient contributions, split by phase (device)."""

    def __init__(self, parameter: nn.Parameter, *, seed: int = 0) -> None:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        weights = torch.randn((2, *parameter.shape), generator=generator, dtype=torch.float64)
        self.weights = weights.to(parameter.device)
        self.parameter = parameter
        zeros = torch.zeros(2, dtype=torch.float64, device=parameter.device)
        self.pending = zeros.clone()     # since the last step of either model
        self.other = zeros.clone()       # the other model's phases since our last step
        self.cumulative = zeros.clone()  # everything ever
        self._handle = parameter.register_hook(self._on_gradient)

    def fingerprint(self, gradient: Tensor) -> Tensor:
        return (gradient.detach().double()[None] * self.weights).reshape(2, -1).sum(1)

    def _on_gradient(self, gradient: Tensor) -> None:
        contribution = self.fingerprint(gradient)
        self.pending.add_(contribution)
        self.cumulative.add_(contribution)

    def own_step(self) -> Tensor:
        """At this model's optimizer step: the row of COLUMNS, then reset the phases."""
        grad = self.parameter.grad
        actual = self.fingerprint(grad) if grad is not None else torch.zeros_like(self.pending)
        row = torch.cat([actual.new_ones(1), actual, self.pending, self.other, self.cumulative])
        self.pending.zero_()
        self.other.zero_()
        return row

    def other_step(self) -> None:
        """At the other model's optimizer step: what came in so far belongs to that phase."""
        self.other.add_(self.pending)
        self.pending.zero_()

    def remove(self) -> None:
        self._handle.remove()
