"""`StepRow`: the training step in progress, as the monitor's hooks see it.

A row of the buffer is one training step, one iteration of the user's loop: one G update
and the D updates of the same iteration. D's calls wait in `DCalls` until an optimizer
step says which update they served; they are then filed into that update's slots
(`D/out_real`, `D/out_fake`, `G/out_fake`, `G/out_real`) here.

Which D updates share a row with G's depends on the loop's order, read from the first
update: in a *D-first* loop (D updates, then G's) G's optimizer step ends the row; in a
*G-first* loop (G's update, then D's) the row stays open for the D updates that follow
and ends when the next G update begins. An ended row is committed at the next hook
event (or flush), so that values a loop logs after the last update of its iteration
still belong to it: `due` says a row waits. What is left when the monitor is removed (D
updates after the last G update, values logged after it) is committed as a *partial*
row. While G is idle (no G update in a long stretch of D updates, `idle`) each D update
ends a step, and its row stays open until the next D update begins.

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
        self.order: str | None = None  # 'D-first' or 'G-first', from the first update
        self.updated: set[str] = set()  # the models updated in the open row
        self.logged = False  # values were logged into the open row
        self.calls: dict[str, list[Tensor]] = {slot: [] for slot in SLOTS}  # D's logits
        self.spreads: dict[str, list[Tensor]] = {slot: [] for slot in SLOTS}  # D's input spreads

    def begin(self, role: str) -> None:
        """`role`'s update is about to run: in a G-first loop a G update ends the row that
        holds the previous G update and the D updates after it."""
        if self.order is None:
            self.order = "G-first" if role == "G" else "D-first"
        if role == "G" and self.order == "G-first" and "G" in self.updated:
            self.due = True

    def attribute(self, role: str, calls: DCalls) -> None:
        """File D's pending calls into `role`'s slots: they served the update about to run."""
        for kind, (outputs, spreads) in calls.file(role).items():
            self.calls[f"{role}/out_{kind}"].extend(outputs)
            self.spreads[f"{role}/out_{kind}"].extend(spreads)
        self.updated.add(role)

    def end(self, *, hold: bool = False) -> None:
        """G's update ended: one more step; in a D-first loop its row is due (committed at
        the next event). `hold`: the row stays open all the same (a D update standing in
        for an idle G's, see `idle`: the next D update makes it due)."""
        self.step += 1
        if self.order != "G-first" and not hold:
            self.due = True

    @property
    def open(self) -> bool:
        """The row not yet due holds something (updates, D calls or logged values)."""
        return bool(self.updated or self.logged or any(self.calls.values()))

    @property
    def partial(self) -> bool:
        """The open row lacks part of an iteration: no G update, or (G-first) no D update."""
        return "G" not in self.updated or (self.order == "G-first" and "D" not in self.updated)

    def commit(self, rows: "RowWriter") -> None:
        """Write the row through `rows` (statistics, then the buffer's commit) and count it."""
        calls = list(self.calls.values())
        rows.commit(self.committed, calls, self.spreads)
        for held in (*calls, *self.spreads.values()):
            held.clear()
        self.due = self.logged = False
        self.updated = set()
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
        """Put the counters back as `snapshot` had them, with no row due or open."""
        self.step, self.committed, self.unflushed = snapshot
        self.due = self.logged = False
        self.updated = set()

    def discard(self) -> None:
        """Forget the calls and spreads held (a failed capture: its step never ran)."""
        for held in (*self.calls.values(), *self.spreads.values()):
            held.clear()
