"""The Trainer as a callback host (the protocol in `gandiag.core.callback`): its callbacks
are one list with its monitor's, which hands them each batch of records and each alert;
the trainer drives the other hooks."""

from __future__ import annotations

from typing import Any, Iterable

from gandiag.core.alert import Alert
from gandiag.core.callback import Callback
from gandiag.core.records import Records


class CallbackHost:
    """What a Trainer offers its callbacks besides its models (needs `monitor`)."""

    monitor: Any

    def _active_callbacks(self) -> list[Callback]:
        """The callbacks this rank runs (the monitor's rule: under torchrun, ranks other
        than 0 skip the `rank_zero_only` ones, so that one process writes)."""
        return self.monitor.active_callbacks()

    @property
    def callbacks(self) -> list[Callback]:
        """The callbacks this trainer (and its monitor) drive; append to add one."""
        return self.monitor.callbacks

    @callbacks.setter
    def callbacks(self, callbacks: Iterable[Callback]) -> None:
        self.monitor.callbacks = list(callbacks)

    def record(self, values: dict[str, float], *, step: int | None = None,
               histograms: dict[str, Any] | None = None) -> Records:
        """Record host-measured values (e.g. metric/<name>) at `step` (default: now)."""
        return self.monitor.record(values, step=step, histograms=histograms)

    def alert(self, alert: Alert) -> None:
        """Announce a detector's alert to every callback (`on_alert`); kept in `alerts`."""
        self.monitor.alert(alert)

    @property
    def alerts(self) -> list[Alert]:
        """Every alert announced so far (by a DiagnosisCallback)."""
        return self.monitor.alerts
