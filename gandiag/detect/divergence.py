"""`divergence`: a loss or the logit gap runs away instead of settling.

Every `every` steps after the warm-up, the last `window` records (all after the warm-up)
of |D's loss|, |G's loss| and the logit gap (mean D(real) - mean D(fake)) are cut into
`blocks` blocks; the block medians must rise monotonically (Kendall's tau >= `tau`) and
by at least `rise_loss` (losses, nats) or `rise_gap` (logits) from the first block to the
last, on `evaluations` consecutive checks. Medians ignore single spikes, and a healthy run
whose losses level off fails the monotone trend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import fmt, gap_scale, logit_gap

_WHY = ("A quantity that keeps growing over hundreds of steps means training is moving away "
        "from an equilibrium, not towards one: one player is winning more and more (a "
        "rising G loss with a widening logit gap is D running away), or a critic's outputs "
        "grow without bound. Left alone it ends in a collapse or in NaN.")
_FIXES = ["lower the learning rates (and beta1), or use TTUR",
          "constrain D: R1, spectral norm or a gradient penalty keep its outputs bounded",
          "for WGAN critics: use wgan-gp rather than weight clipping, and check n_critic",
          "go back to a checkpoint from before the step named and change one of the above"]


@dataclass
class Divergence(Detector):
    """Thresholds as in the module docstring."""

    kind = "divergence"
    window: int = 1000
    every: int = 50
    blocks: int = 10
    tau: float = 0.8
    rise_loss: float = 2.0
    rise_gap: float = 5.0
    evaluations: int = 3

    def lookback(self) -> int:
        return self.window

    def scan(self, view: View, warmup: int) -> list[Alert]:
        anchor = next((k for k in ("G/loss", "D/out_real/mean") if k in view), None)
        if anchor is None:
            return []
        steps = view.new(anchor)[0]
        checks = steps[(steps % self.every == 0) & (steps >= warmup)]
        found = [self._trend(view, int(step), warmup) for step in checks]
        condition = np.array([f is not None for f in found], bool)
        alerts = []
        for start, index in self.episode("trend", persist=self.evaluations).feed(checks, condition):
            name, first, last, tau = found[index]
            at = int(checks[index])
            alerts.append(Alert(
                self.kind, start, "critical" if last - first >= 3 * self._rise(name, view) else "warning",
                f"{name} keeps rising: from {fmt(first)} to {fmt(last)} over the last "
                f"{self.window} steps (monotone trend, Kendall tau {tau:.2f})",
                {"signal": name, "from": first, "to": last, "tau": tau, "window": self.window},
                _WHY, list(_FIXES), detected_at=at))
        return alerts

    def _rise(self, name: str, view: View) -> float:
        """The rise that counts: the gap's is in logits, scaled to the run's loss family."""
        return self.rise_gap * gap_scale(view) if name == "the logit gap" else self.rise_loss

    def _signals(self, view: View, step: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for key, name in (("D/loss", "|D's loss|"), ("G/loss", "|G's loss|")):
            if key in view:
                own, values = view.upto(key, step, self.window)
                out[name] = (own, np.abs(values))
        gap = logit_gap(view, step, self.window)
        if gap is not None:
            out["the logit gap"] = gap
        return out

    def _trend(self, view: View, step: int, warmup: int) -> tuple[str, float, float, float] | None:
        for name, (own, x) in self._signals(view, step).items():
            if len(x) < self.window or own[0] < warmup:
                continue
            medians = np.array([np.nanmedian(b) if np.isfinite(b).any() else np.nan
                                for b in np.array_split(x, self.blocks)])
            if not np.all(np.isfinite(medians)):
                continue
            tau = _kendall_tau(medians)
            if tau >= self.tau and medians[-1] - medians[0] >= self._rise(name, view):
                return name, float(medians[0]), float(medians[-1]), tau
        return None


def _kendall_tau(values: np.ndarray) -> float:
    """Kendall's tau of `values` against their order (1: strictly increasing)."""
    signs = np.sign(values[None, :] - values[:, None])
    upper = np.triu_indices(len(values), 1)
    return float(signs[upper].mean())
