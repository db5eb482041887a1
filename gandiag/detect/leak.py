"""`gradient_leak`: an update included gradients from the other model's update, or from
earlier steps (a missing `zero_grad`), as found by the hooks' leak check.

The hooks check the first `leak_check_steps` updates of each model and record
`grad_leak/<D|G>`: 0 clean, 1 leftovers of the other model's update, 2 never zeroed
(`gandiag.hooks.leak.LEAK_CODES`). It fires at once, once per model.
"""

from __future__ import annotations

from dataclasses import dataclass

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View


@dataclass
class GradientLeak(Detector):
    """No thresholds: a leak is a bug, found or not. `clear` is how many clean checked
    updates re-arm it (the check runs over the first steps only, so it fires once)."""

    kind = "gradient_leak"
    clear: int = 1_000_000

    def scan(self, view: View, warmup: int) -> list[Alert]:
        alerts = []
        for role in ("D", "G"):
            steps, codes = view.new(f"grad_leak/{role}")
            for start, index in self.episode(role, persist=1, clear=self.clear).feed(steps, codes > 0):
                alerts.append(self._alert(view, role, start, int(codes[index])))
        return alerts

    def _alert(self, view: View, role: str, step: int, code: int) -> Alert:
        other = "G" if role == "D" else "D"
        steps, codes = view.get(f"grad_leak/{role}")
        leaked = steps[codes > 0]
        if code == 2:
            what = f"gradients from earlier steps: {role}'s gradients are never zeroed"
            why = (f"{role}'s .grad keeps accumulating over steps, so every update uses the sum "
                   "of all past gradients: the effective learning rate grows without bound and "
                   "the update points in a stale direction.")
        else:
            what = f"gradients left over from the {other} update"
            why = (f"The {other} update's backward pass also writes into {role}'s .grad (the "
                   f"loss goes through both models). Without zero_grad before {role}'s "
                   f"backward, {role}'s update adds the gradient of the *opponent's* "
                   "objective, which pushes it the wrong way.")
        return Alert(
            self.kind, step, "critical",
            f"{role}'s update at step {step} includes {what} "
            f"({len(leaked)} of {len(steps)} checked updates)",
            {"model": role, "kind": "stale" if code == 2 else "other",
             "leaked_steps": leaked[:20].tolist(), "checked_updates": len(steps)},
            why,
            [f"call opt_{role.lower()}.zero_grad() (or {role}.zero_grad()) right before "
             f"{role}'s backward in every step",
             "in the D step, call D on fake.detach() so the D loss does not reach G"],
            detected_at=step)

