"""`CallbackDriver`: how a `Monitor` drives `gandiag.core.Callback`s.

In a user's loop (`owner="user"`) the monitor is the only thing that can call the
callbacks, so it drives every hook: `on_fit_start` when one is added, `on_step_end`
after G's optimizer step, `on_records` then `on_flush` at each flush, `on_fit_end` at
removal. Under a Trainer (`owner="trainer"`) the trainer drives the loop's hooks itself,
and the monitor delivers only what it alone sees: `on_records` and `on_alert`, with the
trainer as the `host` the callbacks are handed.

Under DDP every rank records, but only rank 0 delivers records, and the ranks other
than 0 skip the `rank_zero_only` callbacks (store, progress, diagnosis), so that one
process writes. A callback that fails on new records is reported once as a warning:
training goes on, the records stay in the history.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

from gandiag.core.alert import Alert
from gandiag.core.callback import Callback
from gandiag.core.caller import user_stacklevel
from gandiag.core.records import Records


class CallbackDriver:
    """The callback side of a `Monitor` (its base class): `callbacks`, `host`, `alerts`,
    `add_callback`, `remove_callback`, `alert`, and the deprecated `consumers`."""

    def __init__(self, *, owner: str) -> None:
        self.owner = owner
        self.callbacks: list[Callback] = []
        self.host: Any = self  # what callbacks are handed: this monitor, or the trainer that owns it
        self.alerts: list[Alert] = []  # every alert announced through alert()
        self._consumers: list[Callable[[Records], None]] = []  # deprecated plain callables
        self._warned: set[str] = set()

    def add_callback(self, callback: Callback) -> Callback:
        """Drive `callback` (see the module doc) from now on; in a user's loop its
        `on_fit_start` runs at once. Returns it."""
        if not callable(getattr(callback, "on_records", None)):
            raise TypeError(f"monitor.add_callback: expected a gandiag.Callback, got "
                            f"{type(callback).__name__}; subclass gandiag.Callback and override "
                            "the hooks you need (e.g. on_records(host, records))")
        if self.owner == "user" and (_rank() == 0 or not callback.rank_zero_only):
            callback.on_fit_start(self.host)  # first: a callback that cannot start is not kept
        self.callbacks.append(callback)
        return callback

    def remove_callback(self, callback: Callback) -> None:
        """Stop driving `callback` (no-op if it is not driven)."""
        if callback in self.callbacks:
            self.callbacks.remove(callback)

    @property
    def consumers(self) -> list[Callable[[Records], None]]:
        """Deprecated: plain callables that get each records batch; use `add_callback`
        with a `gandiag.Callback` overriding `on_records(host, records)`."""
        warnings.warn("monitor.consumers is deprecated; use monitor.add_callback(callback) with a "
                      "gandiag.Callback overriding on_records(host, records)", DeprecationWarning,
                      stacklevel=2)
        return self._consumers

    def alert(self, alert: Alert) -> None:
        """Announce `alert` (raised by a detector): kept in `alerts`, handed to every
        callback's `on_alert` (the run store writes it, a dashboard shows it)."""
        self.alerts.append(alert)
        for callback in self.active_callbacks():
            callback.on_alert(self.host, alert)

    def active_callbacks(self) -> list[Callback]:
        """The callbacks this rank runs: under DDP, ranks other than 0 skip the
        `rank_zero_only` ones (store, progress, diagnosis), so one process writes."""
        if _rank() == 0:
            return list(self.callbacks)
        return [c for c in self.callbacks if not getattr(c, "rank_zero_only", False)]

    def _step_ended(self) -> None:
        """After G's update, outside the lock: a user loop's `on_step_end`."""
        if self.owner == "user":
            for callback in self.active_callbacks():
                callback.on_step_end(self.host)

    def _flushed(self, records: Records) -> None:
        """After a flush: `on_records` to all, then a user loop's `on_flush`."""
        self._deliver(records)
        if records and self.owner == "user":
            for callback in self.active_callbacks():
                callback.on_flush(self.host, records)

    def _fit_ended(self) -> None:
        """At removal: a user loop's `on_fit_end`."""
        if self.owner == "user":
            for callback in self.active_callbacks():
                callback.on_fit_end(self.host)

    def _deliver(self, records: Records) -> None:
        if records and _rank() == 0:
            for callback in list(self.callbacks):
                self._guarded(callback.on_records, records, callback)
            for consumer in list(self._consumers):
                self._guarded(consumer, records, consumer)

    def _guarded(self, hook: Callable, records: Records, owner: Any) -> None:
        try:
            hook(self.host, records) if owner is not hook else hook(records)
        except Exception as error:  # a broken callback must not stop training
            self._warn_once(f"callback {owner!r}",
                            f"gandiag: {type(owner).__name__} failed on new records ({error!r}); "
                            "the records stay in the history and training goes on")

    def _warn_once(self, topic: str, message: str, category: type[Warning] = UserWarning) -> None:
        """Warn about `topic` the first time only (a notice, not a per-step complaint)."""
        if topic not in self._warned:
            self._warned.add(topic)
            warnings.warn(message, category, stacklevel=user_stacklevel())


def _rank() -> int:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank()
    return 0
