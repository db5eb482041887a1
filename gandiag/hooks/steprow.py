"""`StepRow`: the training step in progress, as the monitor's hooks see it.

A row of the buffer is one training step. D's calls wait in `DCalls` until an optimizer
step says which update they served; they are then attributed to that update's slots
(`D/out_real`, `D/out_fake`, `G/out_fake`, `G/out_real`) here. G's optimizer step ends
the step, but the row is committed only at the next hook event (or flush), so that
values a loop logs after `opt_g.step()` still belong to it: `due` says a row waits.

The counters live here together so that they travel together: a captured CUDA-graph
step runs its hooks once without a step happening, and `Monitor.capturing` puts all of
them back with `restore(snapshot())` rather than field by field.

    >>> row = StepRow()
    >>> row.end()                      # G's optimizer step
    >>> row.step, row.due
    (1, True)
    >>> before = row.snapshot()
    >>> row.replayed()
    >>> row.restore(before)
    >>> row.step, row.committed, row.due
    (1, 0, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from gandiag.hooks.calls import DCalls
from gandiag.hooks.outputs import SLOTS

if TYPE_CHECKING:
    from gandiag.hooks.rows import RowWriter


class StepRow:
    """What the step in progress holds (D calls and input spreads by slot) and the
    counters of steps and rows: `step` (steps ended: G updates seen), `committed` (rows
    written to the buffer), `unflushed` (rows committed since the last flush)."""

    def __init__(self) -> None:
        self.step = 0
        self.due = False  # the step has ended, its row is not committed yet
        self.committed = 0
        self.unflushed = 0
        self.calls: dict[str, list[Tensor]] = {slot: [] for slot in SLOTS}  # D's logits
        self.spreads: dict[str, list[Tensor]] = {slot: [] for slot in SLOTS}  # D's input spreads

    def attribute(self, role: str, calls: DCalls) -> None:
        """Move D's pending calls to `role`'s slots: they served the update about to run."""
        for kind, pending in calls.pending.items():
            if pending:
                self.calls[f"{role}/out_{kind}"].extend(pending)
                pending.clear()
            spreads = calls.spreads[kind]
            if spreads:
                self.spreads[f"{role}/out_{kind}"].extend(spreads)
                spreads.clear()

    def end(self) -> None:
        """G's update ended the step: its row is due (committed at the next event)."""
        self.step += 1
        self.due = True

    def commit(self, rows: "RowWriter") -> None:
        """Write the row through `rows` (statistics, then the buffer's commit) and count it."""
        calls = list(self.calls.values())
        rows.commit(self.committed, calls, self.spreads)
        for held in (*calls, *self.spreads.values()):
            held.clear()
        self.due = False
        self.committed += 1
        self.unflushed += 1

    def replayed(self) -> None:
        """One step replayed from a CUDA graph: the graph committed its row itself."""
        self.step += 1
        self.committed += 1
        self.unflushed += 1

    def flushed(self) -> None:
        self.unflushed = 0

    def snapshot(self) -> tuple[int, int, int]:
        """The counters, for `restore` (a captured step must leave no count behind)."""
        return self.step, self.committed, self.unflushed

    def restore(self, snapshot: tuple[int, int, int]) -> None:
        """Put the counters back as `snapshot` had them, with no row due."""
        self.step, self.committed, self.unflushed = snapshot
        self.due = False

    def discard(self) -> None:
        """Forget the calls and spreads held (a failed capture: its step never ran)."""
        for held in (*self.calls.values(), *self.spreads.values()):
            held.clear()
