"""`exploding_gradients`: a model's gradient norm blows up together with D's outputs, or spikes.

On `<D|G>/grad_norm/total`, after the warm-up:
- *growth*: the rolling median (over `window`) is `growth_factor` times what it was
  `growth_span` records earlier (both after the warm-up), while D's outputs blow up too:
  the median |logit gap| over `window` D updates is at least `gap` logits (scaled to the
  run's loss family like `d_overpowering`'s), or, for a WGAN critic or an unknown loss,
  its output scale (|gap| + std of D(real)) grew `growth_factor` times as well. Gradient
  norms that grow 10-60x while G first reaches the data, with D's logit gap under 1, are
  learning, not an explosion: on natural runs (benchmarks/natural_runs.py) every healthy
  toy run did that between steps 500 and 2 000. Growth alone raises nothing.
- *spikes*: a record above `spike_factor` times the median of the `window` records
  before it and `spike_mads` robust standard deviations (MAD) above that median;
  `spike_count` spikes within `spike_span` records make an alert. Spikes that training
  absorbs (the running median is back under `settled` times the median before them) are
  `info`; spikes that lift the median are a `warning`.
Growth with D's outputs blowing up is a `warning`, `critical` once the median norm is over
`absolute` (ganhacks' "norms over 100": large models can have large norms and be fine, so
it never decides alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.core.family import known_family
from gandiag.detect.rolling import (asof, fmt, gap_scale, logit_gap, nan_mad, nan_median, rolling,
                                     shift, tail)

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
    settled: float = 3.0
    growth_factor: float = 10.0
    growth_span: int = 1000
    gap: float = 3.0
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
            steps, x, spike, baseline, median, scale = self._derived(view, key, role, warmup)
            recent = np.convolve(spike.astype(float), np.ones(self.spike_span))[:len(x)]
            earlier = shift(median, self.growth_span, np.nan)
            earlier_step = shift(steps, self.growth_span, -1)
            with np.errstate(all="ignore"):
                growth = np.where(earlier_step >= warmup, median / earlier, np.nan)
                blown = self._blown_up(view, scale, shift(scale, self.growth_span, np.nan))
            after = steps >= warmup
            new = slice(len(x) - n, len(x))
            for cause, condition in (("growth", after & (growth >= self.growth_factor) & blown),
                                     ("spikes", after & (recent >= self.spike_count))):
                for start, index in self.episode(f"{role} {cause}", persist=1, clear=self.spike_span).feed(
                        steps[new], condition[new]):
                    i = len(x) - n + index
                    alerts.append(self._alert(view, role, cause, start, int(steps[i]), x, spike, baseline,
                                              median, growth, scale, i))
        return alerts

    def _blown_up(self, view: View, scale: np.ndarray, earlier: np.ndarray) -> np.ndarray:
        """Whether D's outputs blew up at each record: a logit gap of `gap` (in the run's
        loss family), or for a critic an output scale grown `growth_factor` times."""
        family = known_family(view.meta.get("loss"))
        if family is not None and family.center is not None:
            return scale >= self.gap * gap_scale(view)
        return scale >= self.growth_factor * earlier

    def _derived(self, view: View, key: str, role: str, warmup: int) -> tuple[np.ndarray, ...]:
        """(steps, norms, spike flags, baselines, rolling medians, D's output scale) of the
        last `max(spike_span, growth_span)` records and the new ones. Older rows come from a
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
        rows = {"steps": steps, "x": x, "spike": spike, "baseline": baseline, "median": median,
                "scale": self._scale(view, steps)}
        old = self.state.get(role, {name: [] for name in rows})
        old.setdefault("scale", [np.nan] * len(old["steps"]))  # a state saved before "scale"
        keep = max(self.spike_span, self.growth_span) + 1
        joined = {name: np.concatenate([np.asarray(old[name], dtype=rows[name].dtype), rows[name]])
                  for name in rows}
        self.state[role] = {name: values[-keep:].tolist() for name, values in joined.items()}
        return tuple(joined[name] for name in rows)

    def _scale(self, view: View, steps: np.ndarray) -> np.ndarray:
        """D's output scale at each of `steps`: the median over `window` D updates of the
        |logit gap| plus, for a critic, the std of D(real) (both ignore a shift of all of
        D's outputs). NaN where D's outputs were not recorded."""
        found = logit_gap(view, int(steps[-1]), self.window + len(steps))
        if found is None:
            return np.full(len(steps), np.nan)
        own, gap = found
        scale = np.abs(gap)
        family = known_family(view.meta.get("loss"))
        if (family is None or family.center is None) and "D/out_real/std" in view:
            scale = scale + asof(own, *view.upto("D/out_real/std", int(steps[-1]), self.window + len(steps)))
        return asof(steps, own, rolling(scale, min(self.window, len(scale)), nan_median))

    def _alert(self, view: View, role: str, cause: str, step: int, at: int, x: np.ndarray,
               spike: np.ndarray, baseline: np.ndarray, median: np.ndarray, growth: np.ndarray,
               scale: np.ndarray, i: int) -> Alert:
        span = slice(max(i - self.spike_span + 1, 0), i + 1)
        spikes = int(spike[span].sum())
        evidence = {"model": role, "cause": cause, "spikes": spikes, "median": median[i],
                    "growth": growth[i], "max": float(np.nanmax(x[span])), "baseline": baseline[i],
                    "d_output_scale": scale[i]}
        if cause == "growth":
            parts = [f"its median grew {fmt(growth[i])}x in {self.growth_span} steps (now {fmt(median[i])}) "
                     f"while D's outputs blew up (output scale {fmt(scale[i])})"]
            severity = "critical" if median[i] > self.absolute else "warning"
            if median[i] > self.absolute:
                parts.append(f"norms over {fmt(self.absolute)} (ganhacks' warning sign)")
        else:
            first = int(np.flatnonzero(spike[span])[0]) + span.start
            before = baseline[first]
            top = int(np.nanargmax(np.where(spike[span], x[span], np.nan))) + span.start
            settled = bool(median[i] < self.settled * before)
            evidence.update(settled=settled, median_before=before)
            parts = [f"{spikes} spikes over {fmt(self.spike_factor)}x the running median in "
                     f"{self.spike_span} steps (up to {fmt(x[top])} against {fmt(baseline[top])})",
                     f"the median {'settled back' if settled else 'rose'} to {fmt(median[i])} "
                     f"(it was {fmt(before)})"]
            severity = "info" if settled else "warning"
        layers = _fastest_layers(view, role, at)
        evidence["layers"] = layers
        if layers:
            parts.append("largest in " + ", ".join(layers))
        verb = "is exploding" if cause == "growth" else "spiked"
        return Alert(self.kind, step, severity, f"{role}'s gradient norm {verb}: " + "; ".join(parts),
                     evidence, _WHY, list(_FIXES), detected_at=at)


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
