"""`GraphSteps`: the part of a `Monitor` that `gandiag.capture_step` drives.

A step captured as a CUDA graph runs its hooks once, at capture, without a step
happening; each replay then records a row with device ops alone (the write position
lives on the device). So the monitor undoes the capture's counting (`capturing`), counts
each replay (`replayed`), and a captured step commits its own row (`commit_step`).
Steps run eagerly, not captured, while the leak check of the first steps runs; a user
loop's loss family is decided for good before the first capture (`ready_to_capture`),
and its sample reservoir keeps the samples of the eager steps.
"""

from __future__ import annotations

import contextlib
from typing import Iterator


class GraphSteps:
    """Mixed into `Monitor` (it supplies `_lock`, `_row`, `_rows`, `_updates`, `calls`,
    `family`, `flush`, ...)."""

    def commit_step(self) -> None:
        """Commit the finished step's row now rather than at the next hook; a captured step
        ends with it, so that each replay commits its own row inside the graph."""
        with self._lock:
            self._commit_due()

    @property
    def weights_due(self) -> bool:
        """True when the coming step measures weight norms (every `weight_every` steps):
        such steps run another captured graph than the others."""
        return bool(self.weight_every) and (self.step + 1) % self.weight_every == 0

    @property
    def leak_check_active(self) -> bool:
        """True during the first `leak_check_steps` steps (host-side checks: not capturable)."""
        return bool(self._updates.probes)

    def ready_to_capture(self) -> bool:
        """False while the leak check of the first steps runs. A loss family still being
        inferred is decided here for good, from the eager steps so far (a sync, before
        any capture): its gradient hooks cannot run in a replayed graph."""
        if self.leak_check_active:
            return False
        if self.family.inferring:
            with self._lock:
                self.family.settle(self, flushing=False, final=True)
        return True

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """While a step is captured its hooks run but no step happens: undo their counting."""
        if not self._rows.capturable:
            raise RuntimeError("monitor.capturing: a CPU monitor records on the host; only a "
                               "CUDA monitor can be captured in a graph")
        if not self.ready_to_capture():
            raise RuntimeError("monitor.capturing: the leak check of the first steps still runs "
                               "on the host; run steps eagerly until monitor.ready_to_capture()")
        with self._lock:
            # A replay runs no Python: the sample reservoir keeps what eager steps offered.
            self.calls.reservoir = None
            counters = self._row.snapshot()
            try:
                yield
            except BaseException:  # a failed capture: what its hooks collected never ran
                self.calls.clear()
                self._row.discard()
                raise
            finally:
                self._row.restore(counters)

    def replayed(self) -> None:
        """Account for one step replayed from a CUDA graph (its row is already committed)."""
        with self._lock:
            self._row.replayed()
            due = self.auto_flush and self._row.unflushed >= self.log_every
        if due:
            self.flush()
        self._step_ended()
