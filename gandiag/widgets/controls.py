"""The live dashboard's callback: what it does on the training thread.

Between steps it applies the dashboard's requests (learning rates, one step, a samples
snapshot: G and D must not run beside a step); at each batch of records it wakes the
refresher thread, which alone draws (plotly #5691).
"""

from __future__ import annotations

import threading
from typing import Any

from gandiag.core.callback import Callback
from gandiag.widgets.kept import kept_snapshot
from gandiag.widgets.samples import Snapshot
from gandiag.widgets.snapshot import take_snapshot


class Controls(Callback):
    """The dashboard's callback. Between steps, in the training thread, it applies the
    dashboard's requests: learning rates, one step, and a samples snapshot (G and D must
    not run beside a step); at each batch of records it wakes the refresher, and in a
    user loop takes the requested snapshot of the kept samples (the flush that writes
    them runs on this thread, so the copy sees no half-written array)."""

    def __init__(self, new_records: threading.Event, *, user_loop: bool = False) -> None:
        self.new_records = new_records
        self.user_loop = user_loop
        self.lr: dict[str, float] = {}
        self.single_step = False
        self.want_snapshot = False
        self.snapshot: Snapshot | None = None
        self.snapshot_error: BaseException | None = None
        self.snapshot_note: str | None = None  # samples the panel cannot draw: why

    def on_records(self, host: Any, records: Any) -> None:
        if self.user_loop and self.want_snapshot:
            self.want_snapshot = False
            self.take_kept(host)
        self.new_records.set()  # the training thread only flags; the refresher draws

    def on_fit_end(self, host: Any) -> None:
        if self.user_loop:  # the loop is over (its last flush just ran): show where it ended
            self.take_kept(host)
            self.new_records.set()

    def take_kept(self, monitor: Any) -> None:
        """On the loop's thread, or where no loop runs (see `kept_snapshot`)."""
        if self.snapshot_note is not None or self.snapshot_error is not None:
            return
        try:
            shot = kept_snapshot(monitor)
        except ValueError as error:  # a shape the panel cannot draw: said, not drawn
            self.snapshot_note = str(error)
        except Exception as error:  # a view must never stop training
            self.snapshot_error = error
        else:
            self.snapshot = shot if shot is not None else self.snapshot

    def records_metrics(self, host: Any) -> bool:
        return False

    def on_step_end(self, trainer: Any) -> None:
        if not hasattr(trainer, "opt_d"):  # a user loop: its optimizers are not ours to set
            return
        if self.want_snapshot:
            self.want_snapshot = False
            try:
                self.snapshot = take_snapshot(trainer)
            except Exception as error:  # a view must never stop training
                self.snapshot_error = error
        for role, lr in list(self.lr.items()):
            optimizer = trainer.opt_d if role == "D" else trainer.opt_g
            for group in optimizer.param_groups:
                group["lr"] = lr
            del self.lr[role]
        if self.single_step:
            self.single_step = False
            trainer.pause()
