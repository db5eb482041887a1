"""`frozen_model`: G or D is not being updated, so the run cannot improve.

Every `weight_every` steps the hooks measure each model's update ratio,
`<G|D>/update_ratio/total` = ||w_after - w_before|| / ||w_before|| over all of its
parameters for one update (healthy Adam runs: ~1e-4 to 1e-2), and, when recorded, the
learning rate of its optimizer's first param group, `<G|D>/lr`. It fires when the update
ratio is at most `tiny` on `measurements` consecutive measured updates (no warm-up: a
frozen model is a cause, not a trend). `tiny` (1e-12) is "no weight moved": one float32
rounding step (6e-8 of a weight) in a model of 1e9 parameters is still ~2e-12, and an
update too small to survive rounding is 0.

The update ratio decides: a learning rate of 0 in the first param group while the weights
still change (a frozen backbone in group 0, the head in group 1) is not a frozen model.
The learning rate names the cause (0: the schedule; not 0: the optimizer does not reach
the weights), and decides alone in a run that recorded it without update ratios. A run
recorded before `update_ratio/total` existed is read through its per-layer ratios: the
model is frozen when every layer's is.

A model whose optimizer never steps has no update to measure: the hooks find it *idle*
(no update in max(200, 4 x its largest gap so far) of the other model's updates,
`gandiag.hooks.idle`) and record, at the weight steps, an update ratio of 0 with
`<G|D>/idle/steps` and `<G|D>/idle/other_updates`. Those keys name that cause: its
`step()` is never called (forgotten, skipped, or replaced by a no-op), not an optimizer
whose steps leave the weights unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import asof, fmt

_WHY = {
    "lr": ("{role}'s optimizer has a learning rate of 0, so every step leaves {role}'s "
           "weights where they are. Usually a schedule: one that decays to 0 (cosine or "
           "linear annealing that reached its end, a StepLR with a small gamma), a warm-up "
           "that starts at 0 and is never stepped, or an lr set to 0 by hand (to pause "
           "{role}) and not restored. While {role} is frozen the other model trains against a "
           "fixed opponent: it wins outright or overfits it, and no metric can improve."),
    "weights": ("{role}'s optimizer steps leave its weights unchanged although its learning "
                "rate is not 0. The optimizer does not reach {role}'s weights: it was built "
                "from other parameters (the other model's, or those of an earlier instance "
                "of {role} replaced after the optimizer was made), {role}'s parameters get no "
                "gradient (requires_grad switched off, e.g. to freeze D during the G step, "
                "and not switched back on), the step is called on the wrong optimizer, or "
                "the learning rate is so small that every change rounds away. While {role} "
                "is frozen the other model trains against a fixed opponent."),
    "idle": ("{role}'s optimizer never updated {role} in this stretch while {other} kept "
             "training: the hooks saw no {role} optimizer step at all. Usually the loop calls "
             "{role}'s loss.backward() but not {opt}.step() (forgotten, or under a condition "
             "that never holds), makes no {role} update at all, steps an optimizer whose "
             "step() was replaced or wrapped by one that does nothing, or steps it through "
             "AMP's GradScaler, which skips every step whose gradients hold an inf or NaN. "
             "{role} stays where its last update left it (its initial weights if it never "
             "had one) while {other} trains against a fixed opponent: it wins outright, and "
             "no metric can improve."),
}


def _fixes(role: str) -> list[str]:
    opt, other = f"opt_{role.lower()}", "D" if role == "G" else "G"
    return [f"print {opt}.param_groups[0]['lr'] and your scheduler's get_last_lr(): a schedule "
            "that decayed to 0 or a warm-up starting at 0 leaves it at 0; give the schedule a "
            "floor (eta_min) or step the warm-up",
            f"build the optimizer from this model's parameters, {opt} = "
            f"torch.optim.Adam({role}.parameters(), ...), after {role} is created (not from "
            f"{other}'s, nor from a {role} that was replaced later)",
            f"check requires_grad: all(p.requires_grad for p in {role}.parameters()) must be "
            f"True when {role} is updated; undo a freeze (requires_grad_(False)) before "
            f"{role}'s own step",
            f"call {opt}.step() after {role}'s loss.backward() in every {role} update (not "
            f"the other model's optimizer twice)"]


def _idle_fixes(role: str) -> list[str]:
    opt, other = f"opt_{role.lower()}", "D" if role == "G" else "G"
    return [f"call {opt}.step() after loss_{role.lower()}.backward() in every {role} update",
            f"check that a {role} update runs in every iteration: {opt}.zero_grad(), "
            f"loss_{role.lower()}.backward(), {opt}.step() (not skipped by a condition such as "
            f"`if it % n_critic == 0` that never holds, nor only on {other}'s optimizer)",
            f"check that {opt}.step is the optimizer's own (type({opt}).step): a step replaced "
            "or wrapped by a no-op (a mock, a debugging patch) updates nothing",
            f"with AMP, scaler.step({opt}) skips the step while {role}'s gradients are not "
            f"finite: check torch.isfinite(p.grad).all() for {role}.parameters() and "
            "scaler.get_scale() (a scale that keeps falling)",
            f"if {role} is updated without a torch.optim optimizer, call "
            f"monitor.update_done('{role}') after each update, so its updates are seen"]


@dataclass
class FrozenModel(Detector):
    """Thresholds: `tiny`: an update ratio at or below it is no update; `measurements`:
    consecutive measured updates (every `weight_every` steps) it must hold."""

    kind = "frozen_model"
    tiny: float = 1e-12
    measurements: int = 3

    def lookback(self) -> int:
        return self.measurements + 1

    def scan(self, view: View, warmup: int) -> list[Alert]:
        alerts = []
        for role in ("D", "G"):
            steps, frozen = self._frozen(view, role)
            for start, index in self.episode(role, persist=self.measurements).feed(steps, frozen):
                alerts.append(self._alert(view, role, start, int(steps[index])))
        return alerts

    def _frozen(self, view: View, role: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, frozen?) of the new measured updates of `role`."""
        found = _update_ratio(view, role, new=True)
        if found is not None:
            steps, ratio = found
            with np.errstate(invalid="ignore"):
                return steps, ratio <= self.tiny   # NaN (0/0) is not evidence
        if f"{role}/lr" in view:
            steps, lr = view.new(f"{role}/lr")
            return steps, lr == 0
        return np.zeros(0, np.int64), np.zeros(0, bool)

    def _alert(self, view: View, role: str, step: int, at: int) -> Alert:
        rows = self.measurements + 1   # the episode and the measured update before it
        found = _update_ratio(view, role, new=False, step=at, rows=rows)
        lr_series = view.upto(f"{role}/lr", at, rows) if f"{role}/lr" in view else None
        own, ratio = found if found is not None else (lr_series[0], None)
        episode = own >= step
        evidence: dict = {"model": role, "steps": own[episode]}
        if ratio is not None:
            evidence["update_ratio"] = ratio[episode]
            if not episode.all():
                evidence.update(update_ratio_before=float(ratio[~episode][-1]),
                                update_ratio_before_step=int(own[~episode][-1]))
        idle = _idle(view, role, at)
        if idle is not None:
            return self._idle_alert(role, step, at, evidence, idle)
        lr = None
        if lr_series is not None:
            lrs = asof(own, *lr_series)
            evidence["lr"], lr = lrs[episode], float(lrs[-1])
        cause = "lr" if lr == 0 else "weights"
        evidence["cause"] = "learning_rate_0" if cause == "lr" else "weights_unchanged"
        held = int(episode.sum())
        if cause == "lr":
            message = (f"{role} is not being updated: its learning rate is 0 (the last {held} "
                       f"measured updates, steps {step} to {at})")
        else:
            message = (f"{role} is not being updated: its weights did not change in its last "
                       f"{held} measured updates (update ratio 0, steps {step} to {at})")
            if lr is not None and np.isfinite(lr):
                message += f" although its learning rate is {fmt(lr)}"
        if "update_ratio_before" in evidence:
            message += (f"; the update before had ratio {fmt(evidence['update_ratio_before'])} "
                        f"(step {evidence['update_ratio_before_step']})")
        fixes = _fixes(role)
        if cause == "weights":
            fixes = fixes[1:] + fixes[:1]   # the lr is not 0: the schedule comes last
        return Alert(self.kind, step, "critical", message, evidence,
                     _WHY[cause].format(role=role), fixes, detected_at=at)

    def _idle_alert(self, role: str, step: int, at: int, evidence: dict,
                    idle: tuple[int, int]) -> Alert:
        """The alert of a model whose optimizer made no update at all (see the module doc)."""
        other = "D" if role == "G" else "G"
        steps, updates = idle
        evidence.update(cause="no_optimizer_step", idle_steps=steps, other_updates=updates)
        again = "no longer" if "update_ratio_before" in evidence else "never"
        message = (f"{role}'s optimizer made no update in {steps} steps while {other} made "
                   f"{updates}: its step() is {again} called (or does nothing)")
        why = _WHY["idle"].format(role=role, other=other, opt=f"opt_{role.lower()}")
        return Alert(self.kind, step, "critical", message, evidence, why, _idle_fixes(role),
                     detected_at=at)


def _idle(view: View, role: str, at: int) -> tuple[int, int] | None:
    """(steps without an update, the other model's updates since) recorded at step `at`
    when the hooks found `role` idle there, else None."""
    key = f"{role}/idle/steps"
    if key not in view or f"{role}/idle/other_updates" not in view:
        return None
    own, steps = view.upto(key, at, 1)
    _, other = view.upto(f"{role}/idle/other_updates", at, 1)
    if not len(own) or own[-1] != at:
        return None
    return int(steps[-1]), int(other[-1])


def _update_ratio(view: View, role: str, *, new: bool, step: int = 0, rows: int = 0
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, update ratio) of `role`'s measured updates: the new ones, or the last `rows`
    at or before `step`. The total when recorded, else the largest layer's ratio (the
    model is frozen when every layer is); None when neither was recorded."""
    total = f"{role}/update_ratio/total"
    keys = [total] if total in view else view.keys(f"{role}/update_ratio/")
    if not keys:
        return None
    parts = [view.new(key) if new else view.upto(key, step, rows) for key in keys]
    if len(parts) == 1:
        return parts[0][0], parts[0][1].astype(float)
    steps = np.unique(np.concatenate([own for own, _ in parts]))
    stacked = np.full((len(parts), len(steps)), np.nan)
    for row, (own, values) in zip(stacked, parts):
        row[np.searchsorted(steps, own)] = values
    return steps, np.fmax.reduce(stacked, axis=0)   # NaN only where every layer is NaN
