"""`stalled`: G's samples do not reach the data, evaluation after evaluation.

Read from the label-free coverage (`coverage/precision`: the share of G's samples inside
some real sample's k-NN ball, Naeem et al. 2020, measured against the run's own data):
it fires when every evaluation of the last `span` steps, all after the warm-up and at
least `evaluations` of them, has precision under `precision`. A G that learns leaves that
floor early: on the natural-run corpus (benchmarks/natural_runs.py) the slowest healthy
run (the Sigmoid/BCE tutorial loop at lr 2e-4) was above it by step 1 500, while WGAN-GP
on the tight 8-mode ring, an unconstrained WGAN critic and a G whose optimizer never
stepped stayed under 0.03 for thousands of steps. The losses of such runs can look
calm: nothing else says that G gets nowhere. The alert names what D does meanwhile
(its logit gap and r_t when recorded) as a pointer to the cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import fmt, logit_gap

_WHY = ("G's samples stay off the data: almost none of them falls where real samples are, "
        "and that does not change from one evaluation to the next. G is not learning from "
        "D's gradient: D wins so surely that its gradient says little, or says the wrong "
        "thing (an unconstrained critic), G's updates do not happen or are too small, or "
        "the data is too hard for this G at this learning rate (tight modes and a smooth D "
        "can take far longer than the run).")
_FIXES = ["check that G's optimizer steps and G's loss reaches its parameters (a frozen_model "
          "or gradient_leak alert says so)",
          "constrain a WGAN critic (a gradient penalty, wgan-gp) or use a bounded loss "
          "(non-saturating, hinge)",
          "weaken D or strengthen G: TTUR (a higher G learning rate), fewer D steps per G step, "
          "R1 or spectral norm on D",
          "look at G's samples: if they approach the data slowly, train longer or raise the "
          "learning rates"]


@dataclass
class Stalled(Detector):
    """Thresholds as in the module docstring."""

    kind = "stalled"
    precision: float = 0.05
    span: int = 1500
    evaluations: int = 4

    def scan(self, view: View, warmup: int) -> list[Alert]:
        key = "coverage/precision"
        if key not in view:
            return []
        new = view.new(key)[0]
        steps, values = view.get(key)
        history = self.state.setdefault("evaluations", [])  # [step, precision] after the warm-up
        alerts = []
        for step in new[new >= warmup]:
            history.append([int(step), float(values[int(np.searchsorted(steps, step))])])
            self.state.setdefault("first", int(step))
            recent = [(s, p) for s, p in history if s > step - self.span]
            del history[:len(history) - len(recent)]
            stuck = (step - self.state["first"] >= self.span - 1 and len(recent) >= self.evaluations
                     and all(p < self.precision for _, p in recent))
            for start, _ in self.episode("G", persist=1, clear=1).feed(np.array([step]), np.array([stuck])):
                alerts.append(self._alert(view, int(recent[0][0]), int(step), recent))
        return alerts

    def _alert(self, view: View, start: int, at: int, recent: list[tuple[int, float]]) -> Alert:
        worst = max(p for _, p in recent)
        parts = [f"at most {fmt(worst)} of G's samples lie on the data (precision) on all "
                 f"{len(recent)} coverage evaluations since step {start}"]
        evidence = {"precision_max": worst, "evaluations": len(recent), "since": start}
        gap = logit_gap(view, at, 200)
        if gap is not None and len(gap[1]):
            evidence["logit_gap"] = float(np.nanmean(gap[1]))
            parts.append(f"D's logit gap meanwhile {fmt(evidence['logit_gap'])}")
        if "D/out_real/sign" in view:
            rt = view.upto("D/out_real/sign", at, 200)[1]
            if len(rt):
                evidence["r_t"] = float(np.nanmean(rt))
                parts.append(f"r_t {evidence['r_t']:.2f}")
        return Alert(self.kind, start, "warning", "G is not reaching the data: " + "; ".join(parts),
                     evidence, _WHY, list(_FIXES), detected_at=at)
