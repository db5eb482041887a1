"""`Callback`: the one extension protocol, driven by a `Trainer` and by an attached `Monitor`.

A callback is handed its *host*: the `gandiag.Trainer` it was given to, or the
`gandiag.Monitor` that `gandiag.attach` put on a user's own loop. Both hosts offer

    host.step                  G updates so far
    host.history               the recorded series, key -> (steps, values)
    host.config                a TrainConfig (Trainer), or attach's `config` dict or None
    host.record(values, step=None)   record host-measured values (metrics): they reach
                               the history and every callback's `on_records`, like a flush
    host.alert(alert)          announce an alert to every callback's `on_alert`
    host.alerts                every alert announced so far
    host.end_status            in `on_fit_end`: "finished", "stopped", "interrupted" or
                               "failed"

and a Trainer also its models, `sample()`, `evaluate()`, `record_evaluation()` and
`stop()`. The hooks, in the order a run meets them:

    on_fit_start(host)         Trainer: once per `fit()`, before the first step.
                               Monitor: when the callback is added.
    on_step_end(host)          after each training step. Trainer: after the G update, the
                               EMA and the logged losses. Monitor: right after G's
                               optimizer step (or `update_done("G")`).
    on_records(host, records)  new records reached the host: every flush and every
                               `host.record(...)`, before anything acts on them, so the
                               store and the detectors also see the flush that carries a
                               NaN. An exception here is shown as a warning and the run
                               goes on (the records stay in `host.history`).
    on_flush(host, records)    after a flush that training goes on from (the Trainer
                               first checks that the losses are finite): progress lines,
                               evaluations, sample pictures. `records.scalars` holds the
                               new rows only.
    on_alert(host, alert)      a detector raised `alert` (see `host.alert`).
    on_fit_end(host)           Trainer: once per `fit()`, also after an error, a stop or
                               Ctrl-C (`host.error` holds the exception). Monitor: when
                               it is removed.

`state_dict()` / `load_state_dict(state)` hold what a checkpoint keeps, and
`records_metrics(host)` says whether the callback will record `metric/*` series (the
dashboard keeps panels for them from the start). Callbacks never look for each other:
alerts travel through `host.alert` (the diagnosis announces, the run store writes), and
what several need is asked of the host (a Trainer's `record_evaluation()` evaluates the
data's metrics once per step for a progress line and a store recorder alike).

Under data-parallel training (torchrun) every rank runs the callbacks, except those with
`rank_zero_only = True`: the ones that write, print or evaluate run on rank 0 alone.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class with no-op hooks; override the ones you need (see the module doc)."""

    rank_zero_only = False

    def on_fit_start(self, host: Any) -> None:
        pass

    def on_step_end(self, host: Any) -> None:
        pass

    def on_records(self, host: Any, records: Any) -> None:
        pass

    def on_flush(self, host: Any, records: Any) -> None:
        pass

    def on_alert(self, host: Any, alert: Any) -> None:
        pass

    def on_fit_end(self, host: Any) -> None:
        pass

    def records_metrics(self, host: Any) -> bool:
        """True when this callback records `metric/*` series on `host`."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
