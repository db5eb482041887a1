"""`vanishing_gradients`: a model (or some of its layers) stopped receiving gradient.

Per layer (`<D|G>/grad_norm/<layer>`, and the total), the rolling median of the gradient
norm over `window` records is compared with its peak so far: it fires when, after the
warm-up, some layer's median sits `drop` times below its peak, or under `floor` for a
layer that once had gradients (a dead layer), for `persist` consecutive records. A layer
whose gradient was always zero (an unused parameter) is not a vanishing gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import asof, fmt, nan_median, rolling, tail

_WHY = {
    "G": ("G learns only through D's gradient at its samples; with that gradient near zero G "
          "stops improving while D keeps training. Typical causes: the saturating minimax "
          "loss with a confident D (log(1 - D(G(z))) is flat when D(G(z)) is near 0), dead "
          "ReLUs, saturated tanh/sigmoid units, or a D that overpowers G."),
    "D": ("D's gradients are near zero, so D stopped learning: it saturated (outputs far "
          "into the flat part of its loss), its units died, or its learning rate is too "
          "small to matter."),
}
_FIXES = {
    "G": ["use the non-saturating G loss (loss='nonsaturating'), not minimax",
          "weaken D: a lower D learning rate (TTUR), spectral norm, R1 or instance noise",
          "use LeakyReLU instead of ReLU and check the init of the layers named",
          "check for a D that overpowers G (a d_overpowering alert)"],
    "D": ["check D's last layers for saturation and dead units (LeakyReLU, no Sigmoid "
          "before the loss)", "raise D's learning rate, or lower G's (TTUR)"],
}


@dataclass
class VanishingGradients(Detector):
    """Thresholds: `window` records per rolling median; `drop`: times below the peak;
    `floor`: an absolute level that counts as zero; `persist`: records it must hold."""

    kind = "vanishing_gradients"
    window: int = 100
    drop: float = 100.0
    floor: float = 1e-8
    persist: int = 200

    def lookback(self) -> int:
        return self.window

    def scan(self, view: View, warmup: int) -> list[Alert]:
        alerts = []
        for role in ("D", "G"):
            keys = view.keys(f"{role}/grad_norm/")
            total = f"{role}/grad_norm/total"
            if total not in view:
                continue
            steps = view.new(total)[0]
            found = {key: self._vanished(view, key, steps, warmup) for key in keys}
            condition = np.any([f[0] for f in found.values()], axis=0) if found else steps < 0
            episode = self.episode(role, persist=self.persist)
            for start, index in episode.feed(steps, condition):
                layers = {key.split("/", 2)[2]: (peak[index], median[index])
                          for key, (cond, peak, median) in found.items() if cond[index]}
                alerts.append(self._alert(role, start, int(steps[index]), layers))
        return alerts

    def _vanished(self, view: View, key: str, steps: np.ndarray, warmup: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vanished?, running peak, rolling median) at `steps`."""
        own_steps, values, n = tail(view, key, self.window - 1)
        median = rolling(values, self.window, nan_median)[len(values) - n:]
        peak = np.fmax.accumulate(np.r_[self.state.get(key, np.nan), median])[1:]
        if len(peak):
            self.state[key] = float(peak[-1])
        own = own_steps[len(own_steps) - n:]
        median, peak = asof(steps, own, median), asof(steps, own, peak)
        with np.errstate(all="ignore"):
            had_gradients = peak >= self.floor * self.drop
            vanished = had_gradients & ((peak >= self.drop * median) | (median <= self.floor))
        return vanished & (steps >= warmup), peak, median

    def _alert(self, role: str, step: int, at: int, layers: dict[str, tuple[float, float]]) -> Alert:
        named = sorted(layers, key=lambda name: layers[name][1] / max(layers[name][0], 1e-300))
        shown = ", ".join(f"{name} ({_fell(peak, now)})" for name, (peak, now) in
                          ((n, layers[n]) for n in named[:4]))
        whole = "total" in layers
        message = (f"{role}'s gradients vanished{' in every layer' if whole else ''} for "
                   f"{self.persist}+ steps: {shown}")
        evidence = {"model": role, "layers": {name: {"peak": peak, "median": now}
                                              for name, (peak, now) in layers.items()},
                    "window": self.window, "drop": self.drop}
        return Alert(self.kind, step, "critical" if whole else "warning", message, evidence,
                     _WHY[role], list(_FIXES[role]), detected_at=at)


def _fell(peak: float, now: float) -> str:
    if now <= 0:
        return f"exactly 0, peak {fmt(peak)}"
    return f"{fmt(now)}, {fmt(peak / now)}x below its peak {fmt(peak)}"
