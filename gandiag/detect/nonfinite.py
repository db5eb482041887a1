"""`nonfinite`: where NaN or inf first appeared: which model, which layer, which phase.

The hooks count non-finite values (`nonfinite/<where>`) and keep NaN in the gradient norm
of the layer it is in. Within one step things happen in a fixed order, so the first
non-finite quantity of the first bad step points at the cause:

    D update: D(real) -> D(fake) -> D's loss -> D's gradients -> D's weights
    G update: D(G(z)) -> G's loss -> G's gradients -> G's weights

It fires at once (no warm-up: a NaN is never normal) and re-arms after `clear` finite steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View

# The chain within a step, earliest first: (what, its keys).
_ORDER = [
    ("D(real)", ["nonfinite/D/out_real"]),
    ("D(fake) in the D update", ["nonfinite/D/out_fake"]),
    ("D's loss", ["D/loss"]),
    ("D's gradients", ["nonfinite/D/grad"]),
    ("D(G(z)) in the G update", ["nonfinite/G/out_fake", "nonfinite/G/out_real"]),
    ("G's loss", ["G/loss"]),
    ("G's gradients", ["nonfinite/G/grad"]),
]

_CAUSES = {
    "D(real)": ("D's output on a real batch was non-finite while everything before it was "
                "finite: either the real batch holds NaN/inf (check the data pipeline: "
                "`torch.isfinite(real).all()`), or D's weights had already become non-finite "
                "in its previous update."),
    "D(fake) in the D update": (
        "D's output on G's samples was non-finite while its output on real data was finite: "
        "G produced NaN/inf samples, so G's weights (last updated in the previous step) or "
        "its noise input hold non-finite values."),
    "D's loss": ("D's outputs were finite but its loss was not: the loss computation "
                 "overflowed, typically log(0) from a Sigmoid followed by BCELoss with a "
                 "saturated D."),
    "D's gradients": ("D's outputs and loss were finite but its gradients were not: the "
                      "backward pass overflowed (a huge gradient penalty term, an extreme "
                      "learning rate, or fp16 without loss scaling)."),
    "D(G(z)) in the G update": ("D's outputs on G's samples became non-finite in the G update "
                                "after a finite D update: D's update just made its weights "
                                "non-finite or huge."),
    "G's loss": ("D's outputs were finite but G's loss was not: log(0) in the loss (a "
                 "saturated Sigmoid + BCELoss)."),
    "G's gradients": ("G's loss was finite but its gradients were not: the backward pass "
                      "through D and G overflowed."),
}

_FIXES = [
    "compute losses from logits (BCEWithLogitsLoss, or gandiag's losses) instead of "
    "nn.Sigmoid followed by BCELoss",
    "lower the learning rate of the model named above, and clip its gradient norm "
    "(torch.nn.utils.clip_grad_norm_)",
    "with fp16 autocast use torch.amp.GradScaler, or train in bf16",
    "run one step under torch.autograd.set_detect_anomaly(True) to get the operation that "
    "produced the first NaN",
]


@dataclass
class NonFinite(Detector):
    """Thresholds: `clear`: finite steps after which a new NaN is a new alert."""

    kind = "nonfinite"
    clear: int = 100

    def scan(self, view: View, warmup: int) -> list[Alert]:
        bad: list[np.ndarray] = []
        seen: list[np.ndarray] = []
        for key in view.series:
            steps, values = view.new(key)
            if not len(steps) or _derived(key):
                continue
            seen.append(steps)
            broken = values > 0 if key.startswith("nonfinite/") else ~np.isfinite(values)
            bad.append(steps[broken])
        if not seen:
            return []
        steps = np.unique(np.concatenate(seen))
        condition = np.isin(steps, np.concatenate(bad))
        alerts = []
        for _, index in self.episode("any", persist=1, clear=self.clear).feed(steps, condition):
            alerts.append(self._alert(view, int(steps[index])))
        return alerts

    def _alert(self, view: View, step: int) -> Alert:
        at = {key: _value_at(view, key, step) for key in view.series if not _derived(key)}
        broken = {key: value for key, value in at.items() if value is not None and
                  (value > 0 if key.startswith("nonfinite/") else not np.isfinite(value))}
        first = next((what for what, keys in _ORDER if any(k in broken for k in keys)), None)
        layers = sorted(f"{key.split('/')[0]}/{key.split('/', 2)[2]}" for key in broken
                        if "/grad_norm/" in key and not key.endswith("/total"))
        layers_by_model = {role: [k.split("/", 2)[2] for k in broken
                                  if k.startswith(f"{role}/grad_norm/") and not k.endswith("/total")]
                           for role in ("D", "G")}
        where = first or (f"the series {sorted(broken)[0]}" if broken else "a recorded value")
        message = f"non-finite values first appeared at step {step}, first in {where}"
        for role, names in layers_by_model.items():
            if names:
                message += f"; {role}'s gradient is non-finite in layer(s) {', '.join(sorted(names))}"
        evidence: dict[str, Any] = {
            "first": where, "step": step,
            "nonfinite_counts": {k: v for k, v in broken.items() if k.startswith("nonfinite/")},
            "nonfinite_series": sorted(k for k in broken if not k.startswith("nonfinite/")),
            "layers": layers,
        }
        explanation = _CAUSES.get(first or "", "A recorded value was NaN or inf.") + (
            " Once a weight is NaN every later step is NaN too, so the first step is what "
            "matters; the records before it are intact.")
        return Alert(self.kind, step, "critical", message, evidence, explanation, list(_FIXES),
                     detected_at=step)

    def lookback(self) -> int:
        return 1


def _derived(key: str) -> bool:
    """Series whose NaN is not a training NaN: ratios (0/0 when a spread or weight is 0),
    metrics (a metric may give no value) and the leak check's codes."""
    return key.startswith(("grad_leak/", "metric/")) or "ratio" in key


def _value_at(view: View, key: str, step: int) -> float | None:
    steps, values = view.get(key)
    i = np.searchsorted(steps, step)
    return float(values[i]) if i < len(steps) and steps[i] == step else None
