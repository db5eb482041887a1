"""`d_overpowering`: D wins outright, so G's learning signal degrades.

Over the last `window` records of the D update: r_t = mean sign(D(real)) (StyleGAN2-ADA;
0 balanced, 1 D certain on every real), D's accuracy on real and fake batches, and the
logit gap mean D(real) - mean D(fake). It fires when, after the warm-up, r_t >= `rt`,
accuracy >= `accuracy` and gap >= `gap` for `persist` consecutive records. G's gradient
norm (how far it fell from its peak) and the gap's trend go into the evidence.

A D that is sure is not yet a G that suffers: the DCGAN-style pair on digits holds r_t
0.95 and a gap of 3.5 from step 800 on while G's samples keep improving (all ten
classes, benchmarks/natural_runs.py). So the alert is `info` while G still gets its
learning signal, a `warning` when the gap widened by `widening` logits since the
episode began (D is pulling away) or G's gradient norm fell `weakening` times from its
peak, and `critical` when it fell `starving` times.

The gap is written in logits; for other loss families (the run's config "loss", see
`gandiag.core.family`) it is scaled to the same certainty: 0.64 (b - a) for LSGAN targets
a, b, 2 for hinge. WGAN critics have no threshold and are shift-invariant, so this
detector stays quiet for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.core.family import known_family
from gandiag.detect.rolling import asof, fmt, gap_scale, logit_gap, nan_mean, nan_median, rolling, tail

_KEYS = {"rt": "D/out_real/sign", "acc_real": "D/out_real/acc", "acc_fake": "D/out_fake/acc",
         "real": "D/out_real/mean", "fake": "D/out_fake/mean"}
_WHY = ("D separates real from fake almost perfectly. Then D's gradient at G's samples "
        "carries little information (with the saturating loss it vanishes, with the "
        "non-saturating one it points at whatever D currently rejects), so G stops improving "
        "or jumps between modes. Usually D learns faster than G: a stronger architecture, a "
        "higher learning rate, or more D steps per G step.")
_FIXES = ["lower D's learning rate or raise G's (TTUR, e.g. lr_d 1e-4, lr_g 4e-4)",
          "regularise D: R1 (r1_gamma=1 to 10), spectral norm, or a gradient penalty",
          "add annealed instance noise to D's inputs, or one-sided label smoothing (0.1)",
          "use fewer D steps per G step (n_critic=1) or a smaller D"]


@dataclass
class DOverpowering(Detector):
    """Thresholds as in the module docstring."""

    kind = "d_overpowering"
    window: int = 200
    rt: float = 0.8
    accuracy: float = 0.85
    gap: float = 3.0
    persist: int = 200
    widening: float = 3.0
    weakening: float = 3.0
    starving: float = 10.0

    def lookback(self) -> int:
        return 2 * self.window + self.persist

    def scan(self, view: View, warmup: int) -> list[Alert]:
        family = known_family(view.meta.get("loss"))
        if (family is not None and family.center is None) or not all(k in view for k in _KEYS.values()):
            return []
        sure_gap = self.gap * gap_scale(view)
        steps = view.new(_KEYS["rt"])[0]
        m = {name: self._mean(view, key, steps) for name, key in _KEYS.items()}
        accuracy = (m["acc_real"] + m["acc_fake"]) / 2
        gap = m["real"] - m["fake"]
        with np.errstate(invalid="ignore"):
            condition = ((steps >= warmup) & (m["rt"] >= self.rt) & (accuracy >= self.accuracy)
                         & (gap >= sure_gap))
        alerts = []
        for start, index in self.episode("D", persist=self.persist).feed(steps, condition):
            alerts.append(self._alert(view, start, int(steps[index]), m["rt"][index],
                                      accuracy[index], gap[index]))
        return alerts

    def _mean(self, view: View, key: str, steps: np.ndarray) -> np.ndarray:
        own, values, n = tail(view, key, 2 * self.window)
        mean = rolling(values, self.window, nan_mean)
        return asof(steps, own, mean)

    def _alert(self, view: View, step: int, at: int, rt: float, accuracy: float, gap: float) -> Alert:
        held = at - step + 1
        parts = [f"r_t {rt:.2f} and accuracy {accuracy:.0%} for {held} steps, logit gap {gap:.1f}"]
        evidence = {"r_t": rt, "accuracy": accuracy, "logit_gap": gap, "steps_held": held}
        own, gaps = logit_gap(view, at, self.lookback())  # both sides are present here
        before = own <= step
        severity = "info"
        if before.any():
            earlier = float(np.nanmean(gaps[before][-self.window:]))
            evidence["logit_gap_at_start"] = earlier
            if gap > earlier + gap_scale(view):
                parts[0] += f" (widening from {earlier:.1f})"
            if gap >= earlier + self.widening * gap_scale(view):
                severity = "warning"
        g_norm = view.upto("G/grad_norm/total", at, self.lookback())[1] if "G/grad_norm/total" in view else []
        if len(g_norm):
            median = rolling(g_norm.astype(float), min(self.window // 4, len(g_norm)), nan_median)
            peak, now = np.nanmax(median), median[-1]
            if np.isfinite(peak) and np.isfinite(now) and now > 0:
                fell = peak / now
                evidence.update(g_grad_norm=now, g_grad_norm_peak=peak, g_grad_fell=fell)
                if fell >= 2:
                    parts.append(f"G's gradient norm fell {fmt(fell)}x in the last {len(g_norm)} steps")
                if fell >= self.weakening:
                    severity = "warning"
                if fell >= self.starving:
                    severity = "critical"
        if severity == "info" and len(g_norm):
            parts.append("G still gets a learning signal (its gradient norm held, the gap is not "
                         "widening): worth watching, not yet harm")
        elif severity == "info":
            parts.append("the gap is not widening; G's gradient norm is not recorded (no G update "
                         "seen), so whether G still learns is unknown")
        return Alert(self.kind, step, severity, "D is winning: " + "; ".join(parts), evidence,
                     _WHY, list(_FIXES), detected_at=at)
