"""`Diagnosis` (live, flush by flush) and `diagnose` (a whole run at once): the detectors
over recorded series, turned into `Alert`s.

Both run the same detectors on the same records, so a stored run diagnosed afterwards
gives the alerts the live run raised. Thresholds are the detectors' dataclass fields
(see each module under `gandiag.detect`); override them by kind:

    >>> import numpy as np
    >>> steps = np.arange(1, 2001)
    >>> losses = {"D/loss": (steps, np.full(2000, 1.3)),
    ...           "nonfinite/loss": (steps, (steps >= 1500).astype(float))}
    >>> [(a.kind, a.step) for a in diagnose(losses)]
    [('nonfinite', 1500)]
    >>> diagnose(losses, thresholds={"d_overpowering": {"rt": 0.95}}) == diagnose(losses)
    True

No alert is not the same as no problem: a detector that saw too little of the run (the
warm-up, its windows, its evaluations) could not have raised one. `diagnosis_of` returns
the whole run's `Diagnosis`, whose `readiness()` says, per kind, whether it could judge
and what it still needs (`gandiag.detect.readiness`); `format_diagnosis(...,
readiness=...)` says it with the alerts:

    >>> short = {"D/loss": (steps[:300], np.full(300, 1.3))}
    >>> diagnosis = diagnosis_of(short)
    >>> print(format_diagnosis(diagnosis.alerts, readiness=diagnosis.readiness()).splitlines()[0])
    Diagnosis of this run: no problems found by the 1 detector that could judge it (nonfinite); 10 could not judge it yet.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from gandiag.core.alert import Alert
from gandiag.core.series import series_mapping, series_of  # series_of: re-exported, still imported from here
from gandiag.detect.base import Detector, View
from gandiag.detect.collapse import ModeCollapse
from gandiag.detect.divergence import Divergence
from gandiag.detect.exploding import ExplodingGradients
from gandiag.detect.frozen import FrozenModel
from gandiag.detect.leak import GradientLeak
from gandiag.detect.nonfinite import NonFinite
from gandiag.detect.oscillation import Oscillation
from gandiag.detect.overpowering import DOverpowering
from gandiag.detect.readiness import Readiness, Tally, probe, readiness_of
from gandiag.detect.runaway import RunawayCritic
from gandiag.detect.stalled import Stalled
from gandiag.detect.vanishing import VanishingGradients

DETECTORS: dict[str, type[Detector]] = {cls.kind: cls for cls in (
    ModeCollapse, DOverpowering, VanishingGradients, ExplodingGradients, NonFinite,
    Oscillation, Divergence, GradientLeak, FrozenModel, RunawayCritic, Stalled)}

class Diagnosis:
    """Runs every detector over records as they arrive; `alerts` holds all raised so far.

    `warmup`: steps during which the trend detectors stay quiet (early training is
    supposed to look odd); `nonfinite`, `gradient_leak` and `frozen_model` report at once.
    `thresholds`: {kind: {field: value}} overrides; `kinds`: the detectors to run (all by
    default); `loss`: the run's loss name ('wgan' silences the probability readings).
    `readiness()` says which detectors saw enough of the records to judge them, and
    `summary()` is the diagnosis as text with it.

    >>> diagnosis = Diagnosis(warmup=1000, kinds=["nonfinite"])
    >>> diagnosis.update({"D/loss": ([1, 2], [0.7, float("nan")])})[0].step
    2
    """

    def __init__(self, *, warmup: int = 500, thresholds: Mapping[str, Mapping[str, float]] | None = None,
                 kinds: Iterable[str] | None = None, loss: str | None = None) -> None:
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"Diagnosis: expected warmup to be an integer >= 0 (steps), got {warmup!r}")
        kinds = list(DETECTORS) if kinds is None else [_known(k, "kinds") for k in kinds]
        thresholds = dict(thresholds or {})
        for kind in thresholds:
            _known(kind, "thresholds")
        self.warmup, self.loss, self.kinds = warmup, loss, kinds
        self.detectors: list[Detector] = []
        for kind in kinds:
            cls = DETECTORS[kind]
            try:
                self.detectors.append(cls(**dict(thresholds.get(kind, {}))))
            except TypeError:
                fields = list(cls().thresholds())
                raise ValueError(f"Diagnosis: thresholds[{kind!r}] has unknown names "
                                 f"{sorted(set(thresholds[kind]) - set(fields))}; the thresholds of "
                                 f"{kind} are {fields}") from None
        # Rows kept per key: every detector's look-back, so windows never run short.
        self.context = max(d.lookback() for d in self.detectors) + 1 if self.detectors else 1
        self.alerts: list[Alert] = []
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # What readiness() reads: the series are trimmed to the context, so counters.
        self._seen: dict[str, Tally] = {}            # per key: first, last step, records, after warm-up
        self._points: dict[str, dict[str, int]] = {}  # per kind: full checks/evaluations (`probe`)

    def update(self, records: Any) -> list[Alert]:
        """Feed new records (a `Records` batch or {key: (steps, values)}, steps increasing
        per key); returns the alerts they raised, oldest first."""
        scalars = series_mapping(records, caller="Diagnosis.update")
        new: dict[str, int] = {}
        for key, (steps, values) in scalars.items():
            steps = np.asarray(steps, dtype=np.int64).reshape(-1)
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            if len(steps) != len(values):
                raise ValueError(f"Diagnosis.update: {key!r} has {len(steps)} steps but "
                                 f"{len(values)} values; pass (steps, values) of equal length")
            if not len(steps):
                continue
            old_steps, old_values = self._series.get(key, (steps[:0], values[:0]))
            keep = steps > (old_steps[-1] if len(old_steps) else np.iinfo(np.int64).min)
            steps, values = steps[keep], values[keep]  # a step already seen is not news
            self._series[key] = (np.concatenate([old_steps, steps]), np.concatenate([old_values, values]))
            new[key] = len(steps)
            if len(steps):
                self._count(key, steps)
        view = View(self._series, new, {"loss": self.loss})
        raised: list[Alert] = []
        for detector in list(self.detectors):
            try:
                raised += detector.scan(view, self.warmup)
                points = self._points.setdefault(detector.kind, {})
                for path, n in probe(detector, view, self.warmup).items():
                    points[path] = points.get(path, 0) + n
            except Exception as error:  # a detector bug must not cost the others or the run
                self.detectors.remove(detector)
                warnings.warn(f"gandiag: the {detector.kind} detector failed on the records of "
                              f"steps up to {max((int(s[-1]) for s, _ in self._series.values()), default=0)} "
                              f"({error!r}) and is switched off for this run; the other detectors "
                              "go on. Please report this with the run's store.", RuntimeWarning)
        for key, (steps, values) in self._series.items():
            if len(steps) > self.context:
                self._series[key] = (steps[-self.context:], values[-self.context:])
        raised.sort(key=lambda a: (a.detected_at, a.step))
        self.alerts += [alert.stamped() for alert in raised]
        return raised

    def _count(self, key: str, steps: np.ndarray) -> None:
        after = int(np.count_nonzero(steps >= self.warmup))
        old = self._seen.get(key)
        first = int(steps[0]) if old is None else old.first
        count, after = (len(steps), after) if old is None else (old.count + len(steps), old.after + after)
        self._seen[key] = Tally(first, int(steps[-1]), count, after)

    def readiness(self) -> list[Readiness]:
        """Per detector kind, whether the records so far let it judge the run and, if not,
        what it still needs (a `gandiag.detect.readiness.Readiness`)."""
        # Copies: a dashboard may ask while the training thread updates them.
        points = {kind: dict(paths) for kind, paths in list(self._points.items())}
        return readiness_of(list(self.detectors), dict(self._seen), points, warmup=self.warmup,
                            loss=self.loss, kinds=self.kinds)

    def summary(self, name: str = "this run") -> str:
        """The diagnosis so far as text: the alerts, and what could not be judged yet."""
        return format_diagnosis(self.alerts, name=name, readiness=self.readiness())

    def state_dict(self) -> dict[str, Any]:
        # Tensors, not numpy arrays: checkpoints load with torch.load(weights_only=True).
        return {"detectors": {d.kind: d.state_dict() for d in self.detectors},
                "series": {k: (torch.from_numpy(s.copy()), torch.from_numpy(v.copy()))
                           for k, (s, v) in self._series.items()},
                "alerts": [a.row() | {"time": a.time} for a in self.alerts],
                "seen": {k: list(tally) for k, tally in self._seen.items()},
                "points": {kind: dict(points) for kind, points in self._points.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for detector in self.detectors:
            if detector.kind in state["detectors"]:
                detector.load_state_dict(state["detectors"][detector.kind])
        self._series = {k: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                        for k, (s, v) in state["series"].items()}
        self.alerts = [Alert.from_row(**row) for row in state["alerts"]]
        if "seen" in state:
            self._seen = {k: Tally(*(int(x) for x in tally)) for k, tally in state["seen"].items()}
        else:  # a checkpoint from before the counters: count what the kept context holds
            self._seen = {}
            for key, (steps, _) in self._series.items():
                if len(steps):
                    self._count(key, steps)
        self._points = {kind: {path: int(n) for path, n in points.items()}
                        for kind, points in state.get("points", {}).items()}


def diagnose(source: Any, *, warmup: int = 500, thresholds: Mapping[str, Mapping[str, float]] | None = None,
             kinds: Iterable[str] | None = None, loss: str | None = None, chunk: int = 5000) -> list[Alert]:
    """Every alert the detectors raise on a whole run, oldest first.

    `source`: a stored run (`gandiag.open_run(...)`), a `Trainer`, a `Monitor`, its
    `history`, a `Records` batch or {key: (steps, values)}, all read alike by
    `gandiag.core.series_of`. The series are fed in chunks of `chunk` steps, as a live
    run would (the result does not depend on `chunk`). `loss` overrides the loss name
    found in the source's config. `diagnosis_of` (same arguments) also says which
    detectors could judge the run.
    """
    return diagnosis_of(source, warmup=warmup, thresholds=thresholds, kinds=kinds, loss=loss,
                        chunk=chunk, caller="diagnose").alerts


def diagnosis_of(source: Any, *, warmup: int = 500, thresholds: Mapping[str, Mapping[str, float]] | None = None,
                 kinds: Iterable[str] | None = None, loss: str | None = None, chunk: int = 5000,
                 caller: str = "diagnosis_of") -> Diagnosis:
    """The `Diagnosis` of a whole run (arguments as in `diagnose`): its `alerts` are what
    `diagnose` returns, its `readiness()` says which detectors could judge the run, and
    `summary(name)` prints both."""
    series, found_loss = series_of(source, caller=caller)
    loss = loss or found_loss
    diagnosis = Diagnosis(warmup=warmup, thresholds=thresholds, kinds=kinds, loss=loss)
    if not series:
        return diagnosis
    first = min(int(s[0]) for s, _ in series.values() if len(s))
    last = max(int(s[-1]) for s, _ in series.values() if len(s))
    for start in range(first, last + 1, chunk):
        piece = {}
        for key, (steps, values) in series.items():
            lo, hi = np.searchsorted(steps, [start, start + chunk])
            if hi > lo:
                piece[key] = (steps[lo:hi], values[lo:hi])
        diagnosis.update(piece)
    return diagnosis


def format_diagnosis(alerts: list[Alert], *, name: str = "this run",
                     readiness: list[Readiness] | None = None) -> str:
    """The diagnosis as text: one block per alert, or a line saying nothing was found.

    With `readiness` (`Diagnosis.readiness()`), "no problems found" names the detectors
    that could judge the run, and each one that could not says why, after the alerts: a
    short run is not a healthy one."""
    blind = [r for r in readiness or [] if not r.judged]
    partial = [r for r in readiness or [] if r.judged and r.partial]
    if not alerts:
        if readiness is None or not blind:
            lines = [f"Diagnosis of {name}: no problems found."]
        else:
            able = [r.kind for r in readiness if r.judged]
            lines = [f"Diagnosis of {name}: no problems found by the {len(able)} detector"
                     f"{'s' if len(able) != 1 else ''} that could judge it ({', '.join(able)}); "
                     f"{len(blind)} could not judge it yet." if able else
                     f"Diagnosis of {name}: no detector could judge it yet, so no problems found means nothing."]
    else:
        kinds = sorted({a.kind for a in alerts})
        lines = [f"Diagnosis of {name}: {len(alerts)} alert(s) ({', '.join(kinds)})"]
        lines += [str(alert) for alert in alerts]
    if blind:
        lines.append(f"Could not judge ({len(blind)} of {len(readiness or [])} detectors):")
        lines += [f"  - {r.reason}" for r in blind]
    if partial:
        lines.append("Judged in part:")
        lines += [f"  - {r.kind}: {r.partial}" for r in partial]
    return "\n".join(lines)


def _known(kind: str, where: str) -> str:
    if kind not in DETECTORS:
        close = difflib.get_close_matches(str(kind), list(DETECTORS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"Diagnosis: unknown alert kind {kind!r} in {where}; {hint}the kinds "
                         f"are {list(DETECTORS)}")
    return kind
