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
from gandiag.detect.runaway import RunawayCritic
from gandiag.detect.vanishing import VanishingGradients

DETECTORS: dict[str, type[Detector]] = {cls.kind: cls for cls in (
    ModeCollapse, DOverpowering, VanishingGradients, ExplodingGradients, NonFinite,
    Oscillation, Divergence, GradientLeak, FrozenModel, RunawayCritic)}

class Diagnosis:
    """Runs every detector over records as they arrive; `alerts` holds all raised so far.

    `warmup`: steps during which the trend detectors stay quiet (early training is
    supposed to look odd); `nonfinite`, `gradient_leak` and `frozen_model` report at once.
    `thresholds`: {kind: {field: value}} overrides; `kinds`: the detectors to run (all by
    default); `loss`: the run's loss name ('wgan' silences the probability readings).

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
        self.warmup, self.loss = warmup, loss
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
        view = View(self._series, new, {"loss": self.loss})
        raised: list[Alert] = []
        for detector in list(self.detectors):
            try:
                raised += detector.scan(view, self.warmup)
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

    def state_dict(self) -> dict[str, Any]:
        # Tensors, not numpy arrays: checkpoints load with torch.load(weights_only=True).
        return {"detectors": {d.kind: d.state_dict() for d in self.detectors},
                "series": {k: (torch.from_numpy(s.copy()), torch.from_numpy(v.copy()))
                           for k, (s, v) in self._series.items()},
                "alerts": [a.row() | {"time": a.time} for a in self.alerts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for detector in self.detectors:
            if detector.kind in state["detectors"]:
                detector.load_state_dict(state["detectors"][detector.kind])
        self._series = {k: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64))
                        for k, (s, v) in state["series"].items()}
        self.alerts = [Alert.from_row(**row) for row in state["alerts"]]


def diagnose(source: Any, *, warmup: int = 500, thresholds: Mapping[str, Mapping[str, float]] | None = None,
             kinds: Iterable[str] | None = None, loss: str | None = None, chunk: int = 5000) -> list[Alert]:
    """Every alert the detectors raise on a whole run, oldest first.

    `source`: a stored run (`gandiag.open_run(...)`), a `Trainer`, a `Monitor`, its
    `history`, a `Records` batch or {key: (steps, values)}, all read alike by
    `gandiag.core.series_of`. The series are fed in chunks of `chunk` steps, as a live
    run would (the result does not depend on `chunk`). `loss` overrides the loss name
    found in the source's config.
    """
    series, found_loss = series_of(source, caller="diagnose")
    loss = loss or found_loss
    diagnosis = Diagnosis(warmup=warmup, thresholds=thresholds, kinds=kinds, loss=loss)
    if not series:
        return []
    first = min(int(s[0]) for s, _ in series.values() if len(s))
    last = max(int(s[-1]) for s, _ in series.values() if len(s))
    for start in range(first, last + 1, chunk):
        piece = {}
        for key, (steps, values) in series.items():
            lo, hi = np.searchsorted(steps, [start, start + chunk])
            if hi > lo:
                piece[key] = (steps[lo:hi], values[lo:hi])
        diagnosis.update(piece)
    return diagnosis.alerts


def format_diagnosis(alerts: list[Alert], *, name: str = "this run") -> str:
    """The diagnosis as text: one block per alert, or a line saying nothing was found."""
    if not alerts:
        return f"Diagnosis of {name}: no problems found."
    kinds = sorted({a.kind for a in alerts})
    lines = [f"Diagnosis of {name}: {len(alerts)} alert(s) ({', '.join(kinds)})"]
    return "\n".join(lines + [str(alert) for alert in alerts])


def _known(kind: str, where: str) -> str:
    if kind not in DETECTORS:
        close = difflib.get_close_matches(str(kind), list(DETECTORS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"Diagnosis: unknown alert kind {kind!r} in {where}; {hint}the kinds "
                         f"are {list(DETECTORS)}")
    return kind
