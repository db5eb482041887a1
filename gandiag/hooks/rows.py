"""How a committed step's D-output statistics and input spreads reach the buffer.

Two ways, chosen once when the monitor is built (`row_writer`), from where the buffer
lives:

- `DeviceRows` (a GPU, or the device code path on the CPU): at commit the logits of all
  the step's D calls become sums in one batched computation on the device, added to the
  staging row before it is committed. No sync, and the same ops every step, so a
  captured CUDA graph records them too. While the loss family is being inferred (in a
  user loop, see `infer`) its rows wait like `HostRows`' and are filled at the next
  flush, by the family known then.
- `HostRows` (the CPU): the buffer is host memory, so a commit only notes which ring row
  the step went to; at flush, `fill` computes the statistics of all those steps in one
  numpy pass and adds them to their rows (measured ~10x cheaper than per step).
"""

from __future__ import annotations

from torch import Tensor
import torch

from gandiag.hooks.buffer import DeviceBuffer
from gandiag.hooks.layout import Layout
from gandiag.hooks.outputs import OutputStats


class RowWriter:
    """The part of a commit that differs between host and device; see the module doc."""

    capturable = False  # can a step be captured in a CUDA graph with this writer

    def __init__(self, buffer: DeviceBuffer, stats: OutputStats, layout: Layout) -> None:
        self.buffer, self.stats, self.layout = buffer, stats, layout

    def commit(self, row: int, calls: list[list[Tensor]], spreads: dict[str, list[Tensor]]) -> None:
        """Write row number `row` (rows committed before it): its D calls' logits by slot
        (in `SLOTS` order), the sum and count of its input spreads, then commit it."""
        if any(calls):
            self.outputs(row, calls)
        for slot, held in spreads.items():
            if held:
                column = self.layout.spreads[slot]
                self.buffer.add(column, self.spread_total(held))
                self.buffer.add(column + 1, float(len(held)))
        self.buffer.commit()

    def outputs(self, row: int, calls: list[list[Tensor]]) -> None:
        raise NotImplementedError

    def spread_total(self, spreads: list[Tensor]) -> Tensor | float:
        raise NotImplementedError

    def fill(self, committed: int) -> None:
        """Before a read, with `committed` rows committed so far: complete their rows."""

    def stays_on_device(self, value: Tensor) -> bool:
        """Whether a logged tensor is added on the device (no sync) rather than as a number."""
        return False


class DeviceRows(RowWriter):
    """Statistics summed on the device at each commit (see the module doc)."""

    capturable = True

    def __init__(self, buffer: DeviceBuffer, stats: OutputStats, layout: Layout) -> None:
        super().__init__(buffer, stats, layout)
        self.defer = False  # rows wait for the fill (while the loss family is inferred)
        self._deferred: list[tuple[int, list[list[Tensor]]]] = []  # (row number, calls by slot)

    def outputs(self, row: int, calls: list[list[Tensor]]) -> None:
        if self.defer:
            self._deferred.append((row, [list(c) for c in calls]))
            return
        # all D outputs of the step in one batched computation on the device
        self.buffer.add(self.layout.all_slots, self.stats.sums(calls, self.buffer.dtype).reshape(-1))

    def fill(self, committed: int) -> None:
        oldest = committed - self.buffer.capacity  # rows before it were overwritten
        deferred = [entry for entry in self._deferred if entry[0] >= oldest]
        self._deferred = []
        if deferred:
            # Every commit goes through the monitor, so row r sits at ring position r % capacity.
            positions = [row % self.buffer.capacity for row, _ in deferred]
            sums = self.stats.sums([c for _, row in deferred for c in row], self.buffer.dtype)
            self.buffer.add_to_rows(positions, self.layout.all_slots, sums.reshape(len(deferred), -1))

    def spread_total(self, spreads: list[Tensor]) -> Tensor:
        return torch.stack(spreads).sum()

    def stays_on_device(self, value: Tensor) -> bool:
        return value.device == self.buffer.device


class HostRows(RowWriter):
    defer = True  # always: a flush fills the rows
    """Statistics computed at flush time for all the steps since the last one."""

    def __init__(self, buffer: DeviceBuffer, stats: OutputStats, layout: Layout) -> None:
        super().__init__(buffer, stats, layout)
        # (row number, ring position, calls by slot) of the rows committed since the last fill
        self._deferred: list[tuple[int, int, list[list[Tensor]]]] = []

    def outputs(self, row: int, calls: list[list[Tensor]]) -> None:
        # Copies of the lists: the step row clears its own once committed.
        self._deferred.append((row, self.buffer.next_position, [list(c) for c in calls]))

    def spread_total(self, spreads: list[Tensor]) -> float:
        return sum(v.item() for v in spreads)  # sync ok: CPU tensors

    def fill(self, committed: int) -> None:
        oldest = committed - self.buffer.capacity  # rows before it were overwritten
        deferred = [entry for entry in self._deferred if entry[0] >= oldest]
        self._deferred = []
        if deferred:
            positions = [position for _, position, _ in deferred]
            slots = [calls for _, _, row in deferred for calls in row]
            sums = self.stats.sums_numpy(slots).reshape(len(deferred), -1)
            self.buffer.add_to_rows(positions, self.layout.all_slots, sums)


def row_writer(buffer: DeviceBuffer, stats: OutputStats, layout: Layout) -> RowWriter:
    """The writer for `buffer`: `HostRows` where it is host memory, else `DeviceRows`."""
    return (HostRows if buffer.on_host else DeviceRows)(buffer, stats, layout)
