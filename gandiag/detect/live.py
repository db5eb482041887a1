"""Live diagnosis: the detectors on each flush, in gandiag's Trainer or a user loop.

`DiagnosisCallback` is a `gandiag.core.Callback`: at every batch of records that reaches
its host (`on_records`: also the flush that carries a NaN, before the trainer stops on
it) it feeds the detectors, and announces each new alert on the host (`host.alert`):
every callback's `on_alert` gets it, so a `StoreRecorder` writes it and a dashboard shows
it, with no callback looking for another. Each alert is also shown as a
`GANAlertWarning` and handed to `on_alert`. `watch(monitor, ...)` adds one to a user loop.

    trainer = gandiag.Trainer(G, D, data, config,
                              callbacks=[gandiag.detect.DiagnosisCallback(stop_on={"nonfinite"})])
    with gandiag.attach(G, D, diagnose=True) as monitor:   # a user loop
        ...
    monitor.diagnosis.alerts
    print(monitor.diagnosis.summary())   # the alerts, and which detectors could not judge yet
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Callable, Iterable

from gandiag.core.alert import Alert
from gandiag.core.caller import user_stacklevel
from gandiag.core.callback import Callback
from gandiag.core.records import Records
from gandiag.core.series import loss_name
from gandiag.detect.diagnosis import DETECTORS, Diagnosis, format_diagnosis
from gandiag.detect.readiness import Readiness


class GANAlertWarning(UserWarning):
    """A detector found a training problem (the message is the alert's summary and fixes)."""


class DiagnosisCallback(Callback):
    """The detectors on a host's records; optionally stops a Trainer on chosen alerts.

    `stop_on`: alert kinds that stop training when raised as a warning or critical (the
    step in progress finishes, the run ends as "stopped"; an `info` alert says no harm is
    known, so it never stops a run); `warn`: show each alert as a `GANAlertWarning`; `on_alert`: a
    function called with each new alert; `loss`: the run's loss name (default: the
    host's config says). `alerts` lists what was found.
    """

    rank_zero_only = True  # under torchrun, rank 0 alone diagnoses

    def __init__(self, *, stop_on: Iterable[str] = (), warmup: int = 500,
                 thresholds: Mapping[str, Mapping[str, float]] | None = None,
                 kinds: Iterable[str] | None = None, loss: str | None = None, warn: bool = True,
                 on_alert: Callable[[Alert], None] | None = None) -> None:
        self.stop_on = set(stop_on)
        unknown = self.stop_on - set(DETECTORS)
        if unknown:
            raise ValueError(f"DiagnosisCallback: unknown alert kinds in stop_on: {sorted(unknown)}; "
                             f"the kinds are {list(DETECTORS)}")
        self._options = {"warmup": warmup, "thresholds": thresholds, "kinds": kinds}
        Diagnosis(**self._options)  # bad warmup, kinds or thresholds fail here, not at the first flush
        self.loss, self.warn, self.notify = loss, warn, on_alert
        self.diagnosis: Diagnosis | None = None
        self.stopped_by: Alert | None = None
        self._resumed: dict[str, Any] | None = None

    @property
    def alerts(self) -> list[Alert]:
        return self.diagnosis.alerts if self.diagnosis is not None else []

    def readiness(self) -> list[Readiness]:
        """Which detectors saw enough of the run so far to judge it (see `Diagnosis.readiness`)."""
        return self.diagnosis.readiness() if self.diagnosis is not None else []

    def summary(self, name: str = "this run") -> str:
        """The diagnosis so far as text, with what could not be judged yet."""
        return format_diagnosis(self.alerts, name=name, readiness=self.readiness())

    def on_fit_start(self, host: Any) -> None:
        if self.diagnosis is None:
            self.diagnosis = Diagnosis(loss=self.loss or loss_name(host), **self._options)
            if self._resumed is not None:
                self.diagnosis.load_state_dict(self._resumed)

    def on_records(self, host: Any, records: Records) -> None:
        if self.diagnosis is None:
            return  # records recorded before the first fit(): nothing to diagnose yet
        self.diagnosis.loss = self.loss or loss_name(host)  # a user loop's, known at its first flush
        for alert in self.diagnosis.update(records):
            if self.warn:
                fixes = "; ".join(alert.fixes[:2])
                warnings.warn(f"gandiag {alert.kind} at step {alert.step}: {alert.message}. "
                              f"Try: {fixes}", GANAlertWarning, stacklevel=user_stacklevel())
            host.alert(alert)
            if self.notify is not None:
                self.notify(alert)
            if (alert.kind in self.stop_on and alert.severity != "info" and self.stopped_by is None
                    and hasattr(host, "stop")):
                self.stopped_by = alert
                host.stop()

    def state_dict(self) -> dict[str, Any]:
        return {"diagnosis": self.diagnosis.state_dict() if self.diagnosis is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the detectors go on from where the checkpoint left them."""
        self._resumed = state.get("diagnosis")
        self.diagnosis = None  # rebuilt at the next fit() with the trainer's loss


def watch(monitor: Any, *, warmup: int = 500, thresholds: Mapping[str, Mapping[str, float]] | None = None,
          kinds: Iterable[str] | None = None, loss: str | None = None,
          on_alert: Callable[[Alert], None] | None = None, warn: bool = True) -> Diagnosis:
    """Diagnose `monitor`'s records from now on (a `DiagnosisCallback` added to it);
    returns the `Diagnosis` (its `alerts`)."""
    callback = DiagnosisCallback(warmup=warmup, thresholds=thresholds, kinds=kinds, loss=loss,
                                 warn=warn, on_alert=on_alert)
    monitor.add_callback(callback)
    callback.on_fit_start(monitor.host)  # idempotent; a trainer's monitor starts nothing by itself
    return callback.diagnosis

