"""`runaway_critic`: the critic (or D) runs away and G's samples spread out into noise.

`D/spread_ratio` (every step) is the mean pairwise distance of D's fake inputs over that
of its real inputs at the D update: about 1 when G covers the data, under 0.3 when it
collapses (`mode_collapse`), above 1 when G's samples are more spread out than the data.
A G that learns the data at most matches its spread, and batch noise alone keeps the
ratio within ~0.1 of 1. It fires when, after the warm-up, the rolling median of the
spread ratio over `window` records stays at or above `spread` for `persist` consecutive
records. `spread` 1.5 (fakes half again as spread out as the data) is five times the
batch noise; measured on the 8-mode ring after step 500: healthy runs 0.92 to 1.03,
WGAN-GP and a clipped critic under 1, an unconstrained WGAN critic 1.6 to 2.2.

The evidence adds the critic's output scale over the `window` D updates up to the start
of the episode and up to the alert: |median logit gap| (mean D(real) - mean D(fake))
plus the median std of D(real) when recorded. Both parts ignore a shift of all of D's
outputs (a WGAN critic's outputs may drift as a whole, harmlessly) and grow with the
critic's steepness; a scale that grew `grew` (10) times makes the alert critical:
outputs growing without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import fmt, logit_gap, nan_median, rolling, tail

_WHY = ("G's samples move where the critic's gradient pushes them. A critic that is "
        "unconstrained (a WGAN critic without weight clipping or gradient penalty, a D "
        "without spectral norm or R1) or that learns far faster than G (too high a learning "
        "rate for D, many critic steps per G step) grows its outputs without bound and "
        "becomes steep everywhere; its gradients then push G's samples far past the data in "
        "every direction, and G produces noise more spread out than the data. A G that "
        "learns the data at most matches its spread.")
_FIXES = ["constrain the critic: a gradient penalty (WGAN-GP, lambda 10), weight clipping "
          "(WGAN, +-0.01), or spectral norm on D's layers",
          "lower D's learning rate (e.g. 1e-4); raise the critic steps per G step (n_critic 5) "
          "only with a constrained critic",
          "for WGAN-GP use Adam with betas (0.0, 0.9) or (0.5, 0.9), not (0.9, 0.999)",
          "check the sign of D's loss: it must push D(real) up and D(fake) down (WGAN: "
          "loss_d = D(fake).mean() - D(real).mean()), and G's loss must push D(fake) up"]


@dataclass
class RunawayCritic(Detector):
    """Thresholds as in the module docstring."""

    kind = "runaway_critic"
    window: int = 100
    spread: float = 1.5
    persist: int = 200
    grew: float = 10.0

    def lookback(self) -> int:
        return 2 * self.window + self.persist

    def scan(self, view: View, warmup: int) -> list[Alert]:
        key = "D/spread_ratio"
        if key not in view:
            return []
        steps, values, n = tail(view, key, self.window - 1)
        median = rolling(values, self.window, nan_median)[len(values) - n:]
        steps = steps[len(steps) - n:]
        with np.errstate(invalid="ignore"):
            condition = (steps >= warmup) & (median >= self.spread)
        alerts = []
        for start, index in self.episode("D", persist=self.persist).feed(steps, condition):
            alerts.append(self._alert(view, start, int(steps[index]), float(median[index])))
        return alerts

    def _alert(self, view: View, step: int, at: int, ratio: float) -> Alert:
        held = at - step + 1
        evidence = {"spread_ratio": ratio, "steps_held": held, "window": self.window}
        message = (f"G's samples are {fmt(ratio)}x as spread out as real data at step {at} "
                   f"(median spread ratio of the last {self.window} steps, at or above "
                   f"{fmt(self.spread)} for {held} steps): G produces noise")
        severity = "warning"
        start, now = self._outputs(view, step), self._outputs(view, at)
        if start is not None and now is not None:
            evidence.update(critic_gap=now["gap"], critic_gap_at_start=start["gap"])
            with_std = "std_real" in start and "std_real" in now   # the same scale at both ends
            if with_std:
                evidence.update(critic_std_real=now["std_real"],
                                critic_std_real_at_start=start["std_real"])
            for out in (start, now):
                out["scale"] = abs(out["gap"]) + (out["std_real"] if with_std else 0.0)
            evidence.update(critic_scale=now["scale"], critic_scale_at_start=start["scale"])
            grew = now["scale"] / start["scale"] if start["scale"] > 0 else np.nan
            if np.isfinite(grew):
                evidence["critic_grew"] = grew
            if grew >= 2:
                message += (f"; critic outputs grew {fmt(grew)}x since step {step} "
                            f"(scale {fmt(start['scale'])} -> {fmt(now['scale'])})")
            else:
                message += (f"; critic output scale {fmt(now['scale'])} ({fmt(start['scale'])} "
                            f"at step {step})")
            if grew >= self.grew:
                severity = "critical"
        return Alert(self.kind, step, severity, message, evidence, _WHY, list(_FIXES),
                     detected_at=at)

    def _outputs(self, view: View, step: int) -> dict[str, float] | None:
        """Medians over the `window` D updates up to `step` of the logit gap and, when
        recorded, the std of D(real); None without D's outputs."""
        gap = logit_gap(view, step, self.window)
        if gap is None or not np.isfinite(gap[1]).any():
            return None
        out = {"gap": float(nan_median(gap[1][None, :])[0])}
        if "D/out_real/std" in view:
            std = view.upto("D/out_real/std", step, self.window)[1]
            if np.isfinite(std).any():
                out["std_real"] = float(nan_median(std[None, :])[0])
        return out
