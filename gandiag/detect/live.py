"""Live diagnosis: the detectors on a monitor's flushes, in gandiag's Trainer or a user loop.

`watch(monitor, ...)` adds a `Diagnosis` to the monitor's consumers, so every flush is
diagnosed as soon as it reaches the host (also the flush that carries a NaN, before the
trainer stops on it). New alerts are written to the run store when there is one, shown
as a `GANAlertWarning` (once each), and handed to `on_alert`.

    trainer = gandiag.Trainer(G, D, data, config,
                              callbacks=[gandiag.detect.DiagnosisCallback(stop_on={"nonfinite"})])
    with gandiag.attach(G, D, diagnose=True) as monitor:   # a user loop
        ...
    monitor.diagnosis.alerts
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from gandiag.core.alert import Alert
from gandiag.detect.diagnosis import DETECTORS, Diagnosis
from gandiag.core.records import Records
from gandiag.core.callback import Callback

if TYPE_CHECKING:
    from gandiag.train.trainer import Trainer


class GANAlertWarning(UserWarning):
    """A detector found a training problem (the message is the alert's summary and fixes)."""


class Watch:
    """The monitor consumer that diagnoses each flush; see `watch`."""

    def __init__(self, diagnosis: Diagnosis, *, writer: Callable[[], Any] | None = None,
                 on_alert: Callable[[Alert], None] | None = None, warn: bool = True) -> None:
        self.diagnosis, self._writer, self.on_alert, self.warn = diagnosis, writer, on_alert, warn

    def __call__(self, records: Records) -> None:
        for alert in self.diagnosis.update(records):
            writer = self._writer() if self._writer is not None else None
            if writer is not None:
                writer.add_alert(**alert.row())
            if self.warn:
                fixes = "; ".join(alert.fixes[:2])
                warnings.warn(f"gandiag {alert.kind} at step {alert.step}: {alert.message}. "
                              f"Try: {fixes}", GANAlertWarning, stacklevel=2)
            if self.on_alert is not None:
                self.on_alert(alert)


def watch(monitor: Any, *, warmup: int = 500, thresholds: Mapping[str, Mapping[str, float]] | None = None,
          kinds: Iterable[str] | None = None, loss: str | None = None,
          on_alert: Callable[[Alert], None] | None = None, warn: bool = True) -> Diagnosis:
    """Diagnose `monitor`'s flushes from now on; returns the `Diagnosis` (its `alerts`)."""
    diagnosis = Diagnosis(warmup=warmup, thresholds=thresholds, kinds=kinds, loss=loss)
    monitor.consumers.append(Watch(diagnosis, writer=lambda: monitor.writer, on_alert=on_alert,
                                   warn=warn))
    return diagnosis


class DiagnosisCallback(Callback):
    """The detectors on a Trainer's flushes; optionally stops training on chosen alerts.

    `stop_on`: alert kinds that stop training (the step in progress finishes, the run
    ends as "stopped"); `warn`: show each alert as a `GANAlertWarning`. Alerts go to the
    run store of a `StoreRecorder` in the same trainer. `alerts` lists them.
    """

    rank_zero_only = True  # under torchrun, rank 0 alone diagnoses

    def __init__(self, *, stop_on: Iterable[str] = (), warmup: int = 500,
                 thresholds: Mapping[str, Mapping[str, float]] | None = None,
                 kinds: Iterable[str] | None = None, warn: bool = True) -> None:
        self.stop_on = set(stop_on)
        unknown = self.stop_on - set(DETECTORS)
        if unknown:
            raise ValueError(f"DiagnosisCallback: unknown alert kinds in stop_on: {sorted(unknown)}; "
                             f"the kinds are {list(DETECTORS)}")
        self._options = {"warmup": warmup, "thresholds": thresholds, "kinds": kinds}
        self.warn = warn
        self.diagnosis: Diagnosis | None = None
        self.stopped_by: Alert | None = None
        self._trainer: Trainer | None = None
        self._resumed: dict[str, Any] | None = None

    @property
    def alerts(self) -> list[Alert]:
        return self.diagnosis.alerts if self.diagnosis is not None else []

    def on_fit_start(self, trainer: "Trainer") -> None:
        self._trainer = trainer
        if self.diagnosis is None:
            self.diagnosis = Diagnosis(loss=trainer.config.loss, **self._options)
            if self._resumed is not None:
                self.diagnosis.load_state_dict(self._resumed)
        if not any(isinstance(c, Watch) and c.diagnosis is self.diagnosis for c in trainer.monitor.consumers):
            trainer.monitor.consumers.append(
                Watch(self.diagnosis, writer=self._writer, on_alert=self._on_alert, warn=self.warn))

    def _writer(self) -> Any:
        from gandiag.store.recorder import StoreRecorder  # the store is optional
        trainer = self._trainer
        recorders = [c for c in (trainer.callbacks if trainer else []) if isinstance(c, StoreRecorder)]
        return recorders[0].writer if recorders else None

    def _on_alert(self, alert: Alert) -> None:
        if alert.kind in self.stop_on and self._trainer is not None and self.stopped_by is None:
            self.stopped_by = alert
            self._trainer.stop()

    def state_dict(self) -> dict[str, Any]:
        return {"diagnosis": self.diagnosis.state_dict() if self.diagnosis is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the detectors go on from where the checkpoint left them."""
        self._resumed = state.get("diagnosis")
        self.diagnosis = None  # rebuilt at the next fit() with the trainer's loss
