"""Readiness: could each detector judge the run, and if not, what does it still need?

A detector that saw too little of a run raises nothing, so "no alerts" alone says nothing
about a short run: a 500-step run ends where the trend detectors' warm-up ends, and the
label-free coverage has barely been evaluated. Each kind here states what its rule needs
before it could fire at all, read from its `scan` and its thresholds (the detector's
dataclass fields) and the `Diagnosis` warm-up: the keys it reads (alternatives: any one
will do) and the least data its rule has to see. A run that gave a detector less was not
judged by it, whatever the alerts say.

- `nonfinite`, `gradient_leak`: from the first record of their keys (no warm-up);
- `frozen_model`: `measurements` measured updates of one model (no warm-up);
- `exploding_gradients`: `spike_count` records after the warm-up, each with `window` before
  it (the spike's baseline); `d_overpowering`, `vanishing_gradients`, `runaway_critic` and
  `mode_collapse`'s batch diversity: `persist` records after the warm-up, each ending a full
  rolling window (`d_overpowering` reads nothing from a WGAN critic: not applicable);
- `oscillation`, `divergence`: `evaluations` checks (every `every` steps after the warm-up)
  that each had `window` records (for `divergence`, all of them after the warm-up);
- `mode_collapse`: `evaluations` label-free coverage evaluations after the warm-up with
  `coverage/precision` >= `min_precision`, or `evaluations` coverage-metric evaluations
  after the warm-up (not left out for `metric/hq` < `min_hq`), or the batch diversity above.

`Diagnosis` keeps the counts (per key: first and last step, records, records after the
warm-up; per kind, `probe`: the checks and evaluations its rule made with full data), and
`Diagnosis.readiness()` turns them into one `Readiness` per kind:

    >>> from gandiag.detect.diagnosis import Diagnosis
    >>> diagnosis = Diagnosis(warmup=500, kinds=["nonfinite", "exploding_gradients"])
    >>> _ = diagnosis.update({"D/grad_norm/total": (np.arange(1, 301), np.ones(300))})
    >>> [(r.kind, r.judged) for r in diagnosis.readiness()]
    [('nonfinite', True), ('exploding_gradients', False)]
    >>> diagnosis.readiness()[1].reason
    'too short to judge exploding_gradients: needs 3 records of D/grad_norm/total or G/grad_norm/total after the warm-up (step 500), each with 200 before it (about step 502); this run has 0 (last step 300)'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from gandiag.core.family import known_family
from gandiag.detect.base import Detector, View
from gandiag.detect.collapse import HIGHER_IS_MORE_MODES, KL_TO_UNIFORM, _exactly_at
from gandiag.detect.nonfinite import _derived as _not_training_value
from gandiag.detect.rolling import asof

DEFAULT_COVERAGE_EVERY = 250  # attach's coverage_every (the Trainer's is 500), for estimates
_GRADIENTS = "pass opt_d and opt_g to attach: gradient norms are measured at the optimizer step"


class Tally(NamedTuple):
    """What a `Diagnosis` saw of one key: first and last step, records, records at or
    after the warm-up."""

    first: int
    last: int
    count: int
    after: int


@dataclasses.dataclass(frozen=True)
class Readiness:
    """Whether the detector `kind` could judge the run. `status`: "judged", "too short",
    "not recorded", "not applicable" or "switched off"; `seen` of the `needed` `unit`
    (records, checks or evaluations); `last_step` of what it reads; `about`: the step by
    which a run like this one would have enough (an estimate); `reason`: one plain line;
    `partial`: what a judged detector could not judge yet (one of its kinds of evidence)."""

    kind: str
    judged: bool
    status: str
    seen: int
    needed: int
    unit: str
    last_step: int | None
    about: int | None
    reason: str
    partial: str = ""

    def row(self) -> dict[str, Any]:
        """A JSON-ready dict (the summary files and `--json` output)."""
        return dataclasses.asdict(self)


def probe(detector: Detector, view: View, warmup: int) -> dict[str, int]:
    """How many new checks or evaluations the detector's rule made with full data in this
    update (only kinds whose needs per-key counts cannot answer)."""
    found = _PROBES.get(detector.kind)
    return found(detector, view, warmup) if found is not None else {}


def readiness_of(detectors: list[Detector], seen: Mapping[str, Tally], points: Mapping[str, Mapping[str, int]],
                 *, warmup: int, loss: str | None, kinds: list[str]) -> list[Readiness]:
    """One `Readiness` per kind in `kinds`, in that order (a kind whose detector is not
    in `detectors` was switched off after an error)."""
    running = {d.kind: d for d in detectors}
    out = []
    for kind in kinds:
        if kind not in running:
            out.append(Readiness(kind, False, "switched off", 0, 0, "", None, None,
                                 f"{kind} was switched off after an error (see its RuntimeWarning)"))
            continue
        judge = _JUDGES[kind]
        out.append(judge(running[kind], _Run(seen, dict(points.get(kind, {})), warmup, loss)))
    return out


class _Run(NamedTuple):
    seen: Mapping[str, Tally]
    points: dict[str, int]
    warmup: int
    loss: str | None

    def last(self, keys: list[str]) -> int | None:
        return max((self.seen[k].last for k in keys if k in self.seen), default=None)


# ---------------------------------------------------------------- results


def _judged(kind: str, seen: int, need: int, unit: str, last: int | None, partial: str = "") -> Readiness:
    how = f"judged {kind} on {seen} {unit} (needs {need})"
    return Readiness(kind, True, "judged", seen, need, unit, last, None,
                     how + (f"; {partial}" if partial else ""), partial)


def _short(kind: str, seen: int, need: int, unit: str, last: int | None, about: int | None,
           when: str = "") -> Readiness:
    estimate = f" (about step {about}{when})" if about is not None else ""
    last_text = f" (last step {last})" if last is not None else ""
    return Readiness(kind, False, "too short", seen, need, unit, last, about,
                     f"too short to judge {kind}: needs {need} {unit}{estimate}; this run has "
                     f"{seen}{last_text}")


def _absent(kind: str, keys: str, how: str) -> Readiness:
    return Readiness(kind, False, "not recorded", 0, 1, "", None, None,
                     f"{kind} not recorded: needs {keys} ({how})")


# ---------------------------------------------------------------- needs per kind


def _spacing(tally: Tally, default: Any) -> Any:
    """Steps between records of a key so far (`default` with a single record)."""
    return (tally.last - tally.first) / (tally.count - 1) if tally.count > 1 else default


def _first_record(kind: str, keys: list[str], run: _Run, what: str, how: str) -> Readiness:
    present = [k for k in keys if run.seen[k].count] if keys else []
    if not present:
        return _absent(kind, what, how)
    return _judged(kind, sum(run.seen[k].count for k in present), 1, "records (from the first)",
                   run.last(present))


def _nonfinite(d: Detector, run: _Run) -> Readiness:
    keys = [k for k in run.seen if not _not_training_value(k)]
    return _first_record("nonfinite", keys, run, "any loss, output or gradient record",
                         "attach records them at every step")


def _leak(d: Detector, run: _Run) -> Readiness:
    keys = [k for k in ("grad_leak/D", "grad_leak/G") if k in run.seen]
    return _first_record("gradient_leak", keys, run, "grad_leak/D or grad_leak/G",
                         "the hooks' leak check over the first leak_check_steps steps: pass "
                         "opt_d and opt_g to attach")


def _frozen(d: Detector, run: _Run) -> Readiness:
    counts = {}
    for role in ("D", "G"):
        layers = [k for k in run.seen if k.startswith(f"{role}/update_ratio/")]
        keys = [f"{role}/update_ratio/total"] if f"{role}/update_ratio/total" in run.seen else layers
        keys = keys or [k for k in (f"{role}/lr",) if k in run.seen]
        if keys:
            counts[role] = (max(run.seen[k].count for k in keys), keys)
    if not counts:
        return _absent("frozen_model", "D|G/update_ratio/total or D|G/lr",
                       "measured every weight_every steps: pass opt_d and opt_g to attach")
    role = max(counts, key=lambda r: counts[r][0])
    seen, keys = counts[role]
    unit = f"measured updates of {role} (update ratio or lr)"
    last = run.last(keys)
    if seen >= d.measurements:
        return _judged("frozen_model", seen, d.measurements, unit, last)
    tally = run.seen[keys[0]]
    every = _spacing(tally, None)
    about = None if every is None else math.ceil(tally.last + (d.measurements - seen) * every)
    return _short("frozen_model", seen, d.measurements, unit, last, about)


def _records(kind: str, run: _Run, keys: list[str], *, before: int, need: int, how: str) -> Readiness:
    """`need` records after the warm-up of any one of `keys`, each with `before` records
    before it (a full rolling window or baseline)."""
    present = [k for k in keys if k in run.seen]
    if not present:
        return _absent(kind, " or ".join(keys), how)
    points = {k: max(0, min(run.seen[k].after, run.seen[k].count - before)) for k in present}
    best = max(present, key=lambda k: points[k])
    tally, seen = run.seen[best], points[best]
    unit = f"records of {' or '.join(keys)} after the warm-up (step {run.warmup})"
    if before:
        unit += f", each with {before} before it"
    if seen >= need:
        return _judged(kind, seen, need, unit, run.last(present))
    every = _spacing(tally, 1.0)
    if seen:
        about = tally.last + (need - seen) * every
    else:
        about = max(run.warmup, tally.first + before * every) + (need - 1) * every
    return _short(kind, seen, need, unit, run.last(present), math.ceil(about))


def _exploding(d: Any, run: _Run) -> Readiness:
    return _records("exploding_gradients", run, ["D/grad_norm/total", "G/grad_norm/total"],
                    before=d.window, need=d.spike_count, how=_GRADIENTS)


def _vanishing(d: Any, run: _Run) -> Readiness:
    return _records("vanishing_gradients", run, ["D/grad_norm/total", "G/grad_norm/total"],
                    before=d.window - 1, need=d.persist, how=_GRADIENTS)


def _runaway(d: Any, run: _Run) -> Readiness:
    return _records("runaway_critic", run, ["D/spread_ratio"], before=d.window - 1,
                    need=d.persist, how="attach records it at every D update")


def _stalled(d: Any, run: _Run) -> Readiness:
    need = max(d.evaluations, d.span // DEFAULT_COVERAGE_EVERY + 1)  # evaluations over `span` steps
    return _records("stalled", run, ["coverage/precision"], before=0, need=need,
                    how="attach records it every coverage_every (250) steps once 1 000 real samples are kept")


_D_OUTPUTS = ["D/out_real/sign", "D/out_real/acc", "D/out_fake/acc", "D/out_real/mean", "D/out_fake/mean"]


def _overpowering(d: Any, run: _Run) -> Readiness:
    family = known_family(run.loss)
    if family is not None and family.center is None:
        return Readiness("d_overpowering", False, "not applicable", 0, 0, "", None, None,
                         "d_overpowering: not applicable to a WGAN critic (its outputs have no "
                         "threshold between real and fake)")
    missing = [k for k in _D_OUTPUTS if k not in run.seen]
    if missing:
        return _absent("d_overpowering", ", ".join(missing), "attach's hooks on D's forward")
    # All five are recorded together; the one with the fewest full windows decides.
    fewest = min(_D_OUTPUTS, key=lambda k: min(run.seen[k].after, run.seen[k].count - d.window + 1))
    return _records("d_overpowering", run, [fewest], before=d.window - 1, need=d.persist, how="")


def _checks(kind: str, d: Any, run: _Run, anchors: list[str], *, after_warmup: bool) -> Readiness:
    """`evaluations` checks, every `every` steps after the warm-up, with `window` records."""
    anchor = next((k for k in anchors if k in run.seen), None)
    if anchor is None:
        return _absent(kind, " or ".join(anchors), "attach records D's outputs at every step; "
                       "losses with monitor.log(loss_d=..., loss_g=...)")
    seen, tally = run.points.get("checks", 0), run.seen[anchor]
    unit = (f"checks (every {d.every} steps after the warm-up, step {run.warmup}) on the last "
            f"{d.window} records" + (" all after the warm-up" if after_warmup else ""))
    if seen >= d.evaluations:
        return _judged(kind, seen, d.evaluations, unit, tally.last)
    every = _spacing(tally, 1.0)
    start = (max(run.warmup, tally.first) + (d.window - 1) * every if after_warmup
             else max(run.warmup, tally.first + (d.window - 1) * every))
    about = math.ceil(start / d.every) * d.every + (d.evaluations - 1) * d.every
    return _short(kind, seen, d.evaluations, unit, tally.last, int(about))


def _oscillation(d: Any, run: _Run) -> Readiness:
    return _checks("oscillation", d, run, ["D/loss", "D/out_real/mean"], after_warmup=False)


def _divergence(d: Any, run: _Run) -> Readiness:
    return _checks("divergence", d, run, ["G/loss", "D/out_real/mean"], after_warmup=True)


def _collapse(d: Any, run: _Run) -> Readiness:
    """Any of its three kinds of evidence judges; a coverage that could not judge yet is
    said (`partial`) even when the batch diversity could."""
    kind = "mode_collapse"
    diversity = _records(kind, run, ["D/spread_ratio"], before=d.spread_window - 1, need=d.persist,
                         how="attach records it at every D update")
    candidates = []
    if "coverage/regions_jsd" in run.seen and "coverage/regions_jsd_null" in run.seen:
        candidates.append(_evaluations(d, run, "coverage/regions_jsd", "regions", "label-free coverage "
                                       f"evaluations with coverage/precision >= {d.min_precision:g}"))
    metrics = [k for k in HIGHER_IS_MORE_MODES + KL_TO_UNIFORM if k in run.seen]
    if metrics:
        candidates.append(_evaluations(d, run, metrics[0], "metrics", "coverage-metric evaluations "
                                       f"(with metric/hq >= {d.min_hq:g})"))
    if not candidates:
        return diversity
    coverage = next((c for c in candidates if c.judged), candidates[0])
    if coverage.judged or not diversity.judged:
        return coverage
    partial = coverage.reason.replace(f"too short to judge {kind}", "too short to judge by coverage")
    return _judged(kind, diversity.seen, diversity.needed, diversity.unit, diversity.last_step, partial)


def _evaluations(d: Any, run: _Run, key: str, path: str, what: str) -> Readiness:
    tally = run.seen[key]
    seen, total = run.points.get(path, 0), run.points.get(f"{path}_all", 0)
    unit = f"{what} after the warm-up (step {run.warmup})"
    if seen >= d.evaluations:
        return _judged("mode_collapse", seen, d.evaluations, unit, tally.last)
    every = _spacing(tally, DEFAULT_COVERAGE_EVERY)
    if seen:
        about = tally.last + (d.evaluations - seen) * every
    else:
        about = max(tally.last + every, math.ceil(run.warmup / every) * every) + (d.evaluations - 1) * every
    short = _short("mode_collapse", seen, d.evaluations, unit, tally.last, math.ceil(about),
                   f", one evaluation every {every:g} steps")
    if total > seen:  # evaluated, but G's samples were too few on the data to say
        short = dataclasses.replace(short, reason=short.reason + f" ({total - seen} more left out: "
                                    "too few of G's samples good enough to judge by)")
    return short


_JUDGES: dict[str, Callable[[Any, _Run], Readiness]] = {
    "mode_collapse": _collapse, "d_overpowering": _overpowering, "vanishing_gradients": _vanishing,
    "exploding_gradients": _exploding, "nonfinite": _nonfinite, "oscillation": _oscillation,
    "divergence": _divergence, "gradient_leak": _leak, "frozen_model": _frozen,
    "runaway_critic": _runaway, "stalled": _stalled}


# ---------------------------------------------------------------- probes (during update)


def _full_checks(d: Any, view: View, warmup: int, anchors: tuple[str, ...], *, after_warmup: bool) -> dict[str, int]:
    """Checks (anchor steps that are multiples of `every`, after the warm-up) at which one
    signal had `window` records (all after the warm-up with `after_warmup`)."""
    anchor = next((k for k in anchors if k in view), None)
    if anchor is None:
        return {}
    steps = view.new(anchor)[0]
    checks = steps[(steps % d.every == 0) & (steps >= warmup)]
    keys = [k for k in ("D/loss", "G/loss") if k in view]
    if "D/out_real/mean" in view and "D/out_fake/mean" in view:
        keys.append("D/out_real/mean")  # the logit gap's steps
    full = np.zeros(len(checks), bool)
    for key in keys:
        own = view.get(key)[0]
        end = np.searchsorted(own, checks, side="right")
        ok = end >= d.window
        if after_warmup:
            ok &= own[np.maximum(end - d.window, 0)] >= warmup if len(own) else False
        full |= ok
    return {"checks": int(full.sum())}


def _collapse_probe(d: Any, view: View, warmup: int) -> dict[str, int]:
    out = {}
    if "coverage/regions_jsd" in view and "coverage/regions_jsd_null" in view:
        steps = view.new("coverage/regions_jsd")[0]
        steps = steps[steps >= warmup]
        precision = (_exactly_at(view, "coverage/precision", steps) if "coverage/precision" in view
                     else np.ones(len(steps)))  # the value recorded at the evaluation itself
        with np.errstate(invalid="ignore"):
            out.update(regions=int(np.sum(precision >= d.min_precision)), regions_all=len(steps))
    keys = [k for k in HIGHER_IS_MORE_MODES + KL_TO_UNIFORM if k in view]
    if keys:
        steps = np.unique(np.concatenate([view.new(k)[0] for k in keys]))
        steps = steps[steps >= warmup]
        good = np.zeros(len(steps), bool)
        for key in keys:
            own, values = view.new(key)
            ok = np.isfinite(values)
            if "metric/hq" in view:  # left out by the detector: too few high-quality samples
                with np.errstate(invalid="ignore"):
                    ok &= ~(asof(own, *view.get("metric/hq")) < d.min_hq)
            good |= np.isin(steps, own[ok])
        out.update(metrics=int(good.sum()), metrics_all=len(steps))
    return out


_PROBES: dict[str, Callable[[Any, View, int], dict[str, int]]] = {
    "oscillation": lambda d, view, warmup: _full_checks(d, view, warmup, ("D/loss", "D/out_real/mean"),
                                                        after_warmup=False),
    "divergence": lambda d, view, warmup: _full_checks(d, view, warmup, ("G/loss", "D/out_real/mean"),
                                                       after_warmup=True),
    "mode_collapse": _collapse_probe,
}
