"""`DeviceBuffer`: where hooks write, on the device, without ever syncing the host.

Hooks add their measurements into a *staging row* (one float per named column). At the
end of a training step the row is committed into a ring of rows at a position computed
on the device from a device-side counter, so committing needs no host value and also
works inside a captured CUDA graph. `read()` moves the whole ring, counter included, to
(pinned) host memory in one non-blocking copy followed by one event wait: the only sync.

Columns are registered by name before use and the buffer grows when new ones appear
(new `monitor.log` keys); growing allocates, so it happens during the first steps only.

    >>> buffer = DeviceBuffer("cpu", capacity=4)
    >>> loss = buffer.columns(["D/loss"])
    >>> buffer.staging[loss] += 0.7
    >>> buffer.commit()
    >>> steps, rows = buffer.read()
    >>> steps, rows[:, loss].tolist()
    (array([1]), [[0.7]])
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor


class DeviceBuffer:
    """A staging row plus a ring of `capacity` committed rows, all on `device`.

    Columns are `sum` (added across DDP ranks: counts, sums of per-rank data) or `mean`
    (the same on every rank, like gradient norms after DDP's all-reduce: averaged).
    """

    def __init__(self, device: torch.device | str, *, capacity: int, dtype: torch.dtype | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"DeviceBuffer: expected capacity >= 1, got {capacity}")
        self.device = torch.device(device)
        # float64 keeps sums of squares exact enough for std; MPS has no float64.
        self.dtype = dtype or (torch.float32 if self.device.type == "mps" else torch.float64)
        self.capacity = capacity
        self.names: list[str] = []
        self.reduce_mean: list[bool] = []
        self.staging = torch.zeros(0, device=self.device, dtype=self.dtype)
        # Row `capacity` of the ring holds the counters, as [..., last step, rows committed].
        self._ring = torch.zeros(capacity + 1, 2, device=self.device, dtype=self.dtype)
        self._rows_read = 0
        self._host: Tensor | None = None

    # ---- columns --------------------------------------------------------------------
    def columns(self, names: list[str], *, reduce: str = "sum") -> slice:
        """Register `names` as consecutive columns; returns their slice of a row."""
        if reduce not in ("sum", "mean"):
            raise ValueError(f"DeviceBuffer.columns: reduce must be 'sum' or 'mean', got {reduce!r}")
        start = len(self.names)
        self.names.extend(names)
        self.reduce_mean.extend([reduce == "mean"] * len(names))
        self._grow(len(self.names))
        return slice(start, len(self.names))

    def _grow(self, width: int) -> None:
        staging = torch.zeros(width, device=self.device, dtype=self.dtype)
        staging[: self.staging.numel()] = self.staging
        ring = torch.zeros(self.capacity + 1, width + 2, device=self.device, dtype=self.dtype)
        old = self._ring.shape[1] - 2
        ring[:, :old] = self._ring[:, :old]       # data columns
        ring[:, -2:] = self._ring[:, -2:]         # [step, counter] columns stay last
        self.staging, self._ring = staging, ring
        self._host = None

    # ---- the step -------------------------------------------------------------------
    def set_step(self, step: int) -> None:
        """Set the step of the last committed row (at attach, or when a run resumes)."""
        self._ring[self.capacity, -2] = step

    def commit(self) -> None:
        """Append the staging row to the ring, tagged with the next step, and clear it.

        Step and position come from counters on the device, so this needs no host value
        and is the same ops every time: it can be captured in a CUDA graph and replayed.
        """
        counters = self._ring[self.capacity]
        counters[-2:].add_(1)  # the step, the rows committed
        position = torch.remainder(counters[-1] - 1, self.capacity).long().reshape(1)
        row = torch.cat([self.staging, counters[-2:]])
        self._ring.index_copy_(0, position, row.reshape(1, -1))
        self.staging.zero_()

    # ---- the sync -------------------------------------------------------------------
    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows committed since the last read: (steps, rows). The one host-device sync.

        Under torch.distributed the ring is all-reduced first (one collective): `sum`
        columns add up across ranks, `mean` columns are averaged.
        """
        ring = self._ring
        world = _world_size()
        if world > 1:
            ring = ring.clone()
            torch.distributed.all_reduce(ring)
        if self._host is None or self._host.shape != ring.shape:
            pin = self.device.type == "cuda"
            self._host = torch.empty(ring.shape, dtype=self.dtype, pin_memory=pin)
        self._host.copy_(ring, non_blocking=True)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # note: the sync point
        host = self._host.numpy().astype(np.float64)
        if world > 1:
            mean_columns = np.flatnonzero(np.array(self.reduce_mean + [True, True]))
            host[:, mean_columns] /= world
        written = int(round(host[self.capacity, -1]))
        new = written - self._rows_read
        if new > self.capacity:
            warnings.warn(
                f"gandiag: {new - self.capacity} recorded steps were overwritten before a "
                f"flush (buffer of {self.capacity} rows); flush at least every "
                f"{self.capacity} steps", RuntimeWarning, stacklevel=3,
            )
            new = self.capacity
        self._rows_read = written
        positions = np.arange(written - new, written) % self.capacity
        rows = host[positions]
        return rows[:, -2].round().astype(np.int64), rows[:, :-2]


def to_device(host: Tensor, device: torch.device) -> Tensor:
    """Copy a small host tensor to `device` without a sync (pinned, non-blocking): a plain
    .to("cuda") from pageable memory waits for the copy, which sync checks flag."""
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def _world_size() -> int:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_world_size()
    return 1
