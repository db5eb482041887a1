"""`oscillation`: persistent periodic behaviour of the losses or the logit gap.

Unregularised GANs can cycle around an equilibrium instead of converging (Mescheder et
al. 2018): losses and D's logit gap then swing with a steady period. Every `every` steps
after the warm-up, the last `window` records of D's loss, G's loss and the logit gap
(mean D(real) - mean D(fake)) get a spectral test: Welch's periodogram (scipy.signal,
segments of window/4, linear detrend) must have a peak, with a period between
`min_period` and window/16, that is `peak` times the local background (the median power
between half and twice its frequency), holds at least `share` of the series' variance and
swings by at least `amplitude` (nats or logits; smaller swings are harmless). Noise, slow
drifts (red noise) and single jumps fail these; a test that passes on `evaluations`
consecutive checks fires.

A cycle is not always harm: on natural runs (benchmarks/natural_runs.py) the Sigmoid/BCE
tutorial loop on the ring cycles with a period of ~47 steps and a logit-gap amplitude of
0.2-0.3 while G ends up covering all modes. Swings of at least `harmful_loss` nats in a
loss or `harmful_gap` logits in the gap (scaled to the run's loss family) are a
`warning`: D's verdicts and the losses swing by that much each cycle; smaller ones are
`info`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import fmt, gap_scale, logit_gap

_WHY = ("The two players chase each other instead of settling: G moves towards what D "
        "currently accepts, D follows, and the cycle repeats. Losses that swing with a fixed "
        "period are not converging, however good single samples look.")
_FIXES = ["regularise D with R1 (r1_gamma) or a gradient penalty: it damps the rotation "
          "around the equilibrium",
          "lower both learning rates, and Adam's beta1 (0.5, or 0)",
          "keep an EMA of G's weights (ema=0.999): it averages over the cycle",
          "use TTUR (a D learning rate different from G's) or spectral norm"]


@dataclass
class Oscillation(Detector):
    """Thresholds as in the module docstring."""

    kind = "oscillation"
    window: int = 2048
    every: int = 100
    min_period: int = 8
    peak: float = 20.0
    share: float = 0.3
    amplitude: float = 0.05
    evaluations: int = 3
    harmful_loss: float = 0.25
    harmful_gap: float = 1.0

    def lookback(self) -> int:
        return self.window

    def scan(self, view: View, warmup: int) -> list[Alert]:
        if "D/loss" not in view and "D/out_real/mean" not in view:
            return []
        anchor = "D/loss" if "D/loss" in view else "D/out_real/mean"
        steps = view.new(anchor)[0]
        checks = steps[(steps % self.every == 0) & (steps >= warmup)]
        found = [self._test(view, int(step)) for step in checks]
        condition = np.array([f is not None for f in found], bool)
        alerts = []
        for start, index in self.episode("losses", persist=self.evaluations).feed(checks, condition):
            name, period, ratio, share, amplitude = found[index]
            at = int(checks[index])
            harmful = self.harmful_gap * gap_scale(view) if name == "the logit gap" else self.harmful_loss
            severity = "warning" if amplitude >= harmful else "info"
            note = "" if severity == "warning" else f"; swings under {fmt(harmful)} are mild"
            alerts.append(Alert(
                self.kind, start, severity,
                f"{name} oscillates with a period of about {fmt(period)} steps (amplitude "
                f"{fmt(amplitude)}, {share:.0%} of its variance, spectral peak {fmt(ratio)}x the "
                f"background), since step {start}{note}",
                {"signal": name, "period": period, "amplitude": amplitude, "share": share,
                 "peak_ratio": ratio, "window": self.window},
                _WHY, list(_FIXES), detected_at=at))
        return alerts

    def _signals(self, view: View, step: int) -> dict[str, np.ndarray]:
        out = {}
        for key, name in (("D/loss", "D's loss"), ("G/loss", "G's loss")):
            if key in view:
                out[name] = view.upto(key, step, self.window)[1]
        gap = logit_gap(view, step, self.window)
        if gap is not None:
            out["the logit gap"] = gap[1]
        return out

    def _test(self, view: View, step: int) -> tuple[str, float, float, float, float] | None:
        """(signal, period, peak ratio, share of variance, amplitude) of the strongest
        periodic signal, or None."""
        best = None
        for name, x in self._signals(view, step).items():
            if len(x) < self.window or not np.all(np.isfinite(x)):
                continue
            found = self._peak(x)
            if found is not None and (best is None or found[1] > best[2]):
                best = (name, *found)
        return best

    def _peak(self, x: np.ndarray) -> tuple[float, float, float, float] | None:
        segment = self.window // 4
        variance = float(np.var(signal.detrend(x)))
        if variance <= (1e-6 * (1 + abs(np.mean(x)))) ** 2:
            return None  # flat up to rounding: no oscillation to speak of
        freqs, power = signal.welch(x, nperseg=segment, detrend="linear")
        total = power.sum()
        band = (freqs >= 4.0 / segment) & (freqs <= 1.0 / self.min_period)
        if total <= 0 or not band.any():
            return None
        k = int(np.flatnonzero(band)[np.argmax(power[band])])
        f0 = freqs[k]
        near = (freqs >= f0 / 2) & (freqs <= 2 * f0) & (np.abs(np.arange(len(freqs)) - k) > 1)
        background = np.median(power[near]) if near.sum() >= 3 else np.median(power[band])
        around = slice(max(k - 1, 0), k + 2)
        ratio = power[k] / background if background > 0 else np.inf
        share = float(power[around].sum() / total)
        amplitude = float(np.sqrt(2 * share * variance))
        if ratio >= self.peak and share >= self.share and amplitude >= self.amplitude:
            center = float((freqs[around] * power[around]).sum() / power[around].sum())  # finer than a bin
            return 1.0 / center, float(ratio), share, amplitude
        return None
