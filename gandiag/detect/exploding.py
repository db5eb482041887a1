"""`exploding_gradients`: robust spikes and sustained growth of a model's gradient norm.

On `<D|G>/grad_norm/total`, after the warm-up:
- a *spike* is a record above `spike_factor` times the median of the `window` records
  before it and `spike_mads` robust standard deviations (MAD) above that median; it fires
  when `spike_count` spikes fall within `spike_span` records;
- *growth*: the rolling median (over `window`) is `growth_factor` times what it was
  `growth_span` records earlier (both after the warm-up).
ganhacks' "norms over 100" is one input, not the rule: a median above `absolute` makes
the alert critical (large models can have large norms and be fine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import fmt, nan_mad, nan_median, rolling, shift, tail

_WHY = ("Gradient norms that spike or keep growing mean the updates are out of scale with the "
        "weights: the loss surface got steep (a D whose logits grow without bound, a large "
        "learning rate, BatchNorm on tiny batches) and the next steps can overshoot into "
        "NaN. With Adam the step size is normalised, so exploding norms usually show that "
        "the *objective* is blowing up, not just the optimiser.")
_FIXES = ["clip the gradient norm (torch.nn.utils.clip_grad_norm_, e.g. max_norm=10)",
          "lower this model's learning rate (and beta1, e.g. 0.5 or 0)",
          "constrain D: spectral norm, R1 (r1_gamma) or a gradient penalty (wgan-gp)",
          "look at the layers named in the evidence: their weights or BatchNorm statistics"]


@dataclass
class ExplodingGradients(Detector):
    """Thresholds as in the module docstring."""

    kind = "exploding_gradients"
    window: int = 200
    spike_factor: float = 10.0
    spike_mads: float = 8.0
    spike_count: int = 3
    spike_span: int = 1000
    growth_factor: float = 10.0
    growth_span: int = 1000
    absolute: float = 100.0

    def lookback(self) -> int:
        return self.window  # older records live in the detector's own cache

    def scan(self, view: View, warmup: int) -> list[Alert]:
        alerts = []
        for role in ("D", "G"):
            key = f"{role}/grad_norm/total"
            n = view.new_rows.get(key, 0)
            if n == 0:
                continue
            steps, x, spike, baseline, median = self._derived(view, key, role, warmup)
            recent = np.convolve(spike.astype(float), np.ones(self.spike_span))[:len(x)]
            earlier = shift(median, self.growth_span, np.nan)
            earlier_step = shift(steps, self.growth_span, -1)
            with np.errstate(all="ignore"):
                growth = np.where(earlier_step >= warmup, median / earlier, np.nan)
            condition = (steps >= warmup) & ((recent >= self.spike_count) | (growth >= self.growth_factor))
            new = slice(len(x) - n, len(x))
            for start, index in self.episode(role, persist=1, clear=self.spike_span).feed(
                    steps[new], condition[new]):
                i = len(x) - n + index
                alerts.append(self._alert(view, role, start, int(steps[i]), x, spike, baseline,
                                          median, growth, i))
        return alerts

    def _derived(self, view: View, key: str, role: str, warmup: int) -> tuple[np.ndarray, ...]:
        """(steps, norms, spike flags, baselines, rolling medians) of the last
        `max(spike_span, growth_span)` records and the new ones. Older rows come from a
        cache, so a flush costs O(new rows x window), not O(look-back x window)."""
        steps, x, n = tail(view, key, self.window)
        median = rolling(x, self.window, nan_median)
        mad = rolling(x, self.window, nan_mad)
        baseline, spread = median[-n - 1:-1], mad[-n - 1:-1]
        if len(baseline) < n:  # fewer records than one window so far
            baseline = np.r_[np.full(n - len(baseline), np.nan), baseline]
            spread = np.r_[np.full(n - len(spread), np.nan), spread]
        steps, x, median = steps[-n:], x[-n:], median[-n:]
        with np.errstate(all="ignore"):
            spike = ((steps >= warmup) & (x > self.spike_factor * baseline)
                     & (x > baseline + self.spike_mads * spread))
        old = self.state.get(role, {"steps": [], "x": [], "spike": [], "baseline": [], "median": []})
        rows = {"steps": steps, "x": x, "spike": spike, "baseline": baseline, "median": median}
        keep = max(self.spike_span, self.growth_span) + 1
        joined = {name: np.concatenate([np.asarray(old[name], dtype=rows[name].dtype), rows[name]])
                  for name in rows}
        self.state[role] = {name: values[-keep:].tolist() for name, values in joined.items()}
        return joined["steps"], joined["x"], joined["spike"], joined["baseline"], joined["median"]

    def _alert(self, view: View, role: str, step: int, at: int, x: np.ndarray, spike: np.ndarray,
               baseline: np.ndarray, median: np.ndarray, growth: np.ndarray, i: int) -> Alert:
        span = slice(max(i - self.spike_span + 1, 0), i + 1)
        spikes = int(spike[span].sum())
        parts = []
        if spikes >= self.spike_count:
            top = int(np.nanargmax(np.where(spike[span], x[span], np.nan))) + span.start
            parts.append(f"{spikes} spikes over {fmt(self.spike_factor)}x the running median in "
                         f"{self.spike_span} steps (up to {fmt(x[top])} against {fmt(baseline[top])})")
        if growth[i] >= self.growth_factor:
            parts.append(f"its median grew {fmt(growth[i])}x in {self.growth_span} steps "
                         f"(now {fmt(median[i])})")
        over = bool(np.nanmax(x[span]) > self.absolute)
        if over:
            parts.append(f"norms over {fmt(self.absolute)} (ganhacks' warning sign)")
        layers = _fastest_layers(view, role, at)
        if layers:
            parts.append("largest in " + ", ".join(layers))
        evidence = {"model": role, "spikes": spikes, "median": median[i], "growth": growth[i],
                    "max": float(np.nanmax(x[span])), "baseline": baseline[i], "layers": layers}
        return Alert(self.kind, step, "critical" if over else "warning",
                     f"{role}'s gradient norm is exploding: " + "; ".join(parts), evidence,
                     _WHY, list(_FIXES), detected_at=at)


def _fastest_layers(view: View, role: str, step: int) -> list[str]:
    """The layers with the largest gradient norm at `step` (up to three)."""
    found = []
    for key in view.keys(f"{role}/grad_norm/"):
        if key.endswith("/total"):
            continue
        steps, values = view.get(key)
        i = np.searchsorted(steps, step)
        if i < len(steps) and steps[i] == step and np.isfinite(values[i]):
            found.append((float(values[i]), key.split("/", 2)[2]))
    return [f"{name} ({fmt(value)})" for value, name in sorted(found, reverse=True)[:3]]
