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
    >>> steps, rows[:, loss].tolist()  # sync ok: an example, on the CPU
    (array([1]), [[0.7]])
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from gandiag.core.caller import user_stacklevel


# On the CPU, use numpy views and host-side shortcuts (same results, a fraction of the
# cost). Tests switch it off to run the device code path on the CPU.
CPU_FAST_PATH = True


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
        # Staging row and ring rows end with two counters: [..., step, rows committed].
        self.staging = torch.zeros(2, device=self.device, dtype=self.dtype)
        self._ring = torch.zeros(capacity + 1, 2, device=self.device, dtype=self.dtype)
        self._counters = self._ring[capacity, -2:]  # the extra last row: the running counters
        self._position = torch.zeros(1, device=self.device, dtype=torch.long)
        self._rows_read = 0
        self._host: Tensor | None = None
        # Chosen once: the monitor picks how rows are filled (gandiag.hooks.rows) from it.
        self._numpy = self.device.type == "cpu" and CPU_FAST_PATH
        self._views()

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
        old = self.staging.numel() - 2
        staging = torch.zeros(width + 2, device=self.device, dtype=self.dtype)
        staging[:old] = self.staging[:old]
        ring = torch.zeros(self.capacity + 1, width + 2, device=self.device, dtype=self.dtype)
        ring[:, :old] = self._ring[:, :old]       # data columns
        ring[:, -2:] = self._ring[:, -2:]         # [step, rows committed] stay last
        self.staging, self._ring = staging, ring
        self._counters = ring[self.capacity, -2:]
        self._host = None
        self._views()

    def _views(self) -> None:
        # On the CPU, host and device are the same memory: numpy views of the same
        # tensors do each small update in ~1 us instead of torch's ~5 us dispatch
        # (measured), which is most of the hooks' cost on toy-sized models.
        if self._numpy:
            self._staging_np = self.staging.numpy()
            self._ring_np = self._ring.numpy()
            self._counters_np = self._counters.numpy()
            self._position_np = self._position.numpy()

    @property
    def on_host(self) -> bool:
        """True on the CPU: host code may then fill committed rows itself (see add_to_rows)."""
        return self._numpy

    @property
    def addresses(self) -> tuple[int, int]:
        """Where the staging row and the ring are in memory. They move when a new column
        grows the buffer, and a CUDA graph captured before still writes the old memory:
        `gandiag.capture_step` recaptures when these change."""
        return self.staging.data_ptr(), self._ring.data_ptr()

    @property
    def next_position(self) -> int:
        """The ring row the next commit writes (CPU only: on a GPU it lives on the device)."""
        if not self._numpy:
            raise RuntimeError("DeviceBuffer.next_position: only on the CPU")
        return int(self._position_np[0])

    def add_to_rows(self, positions: list[int], columns: slice, values: np.ndarray | Tensor) -> None:
        """ring[positions, columns] += values (positions distinct): fill committed rows
        later, e.g. statistics computed for many steps at once, before read()."""
        if self._numpy:
            self._ring_np[positions, columns] += values.numpy() if isinstance(values, Tensor) else values
        else:
            index = torch.tensor(positions, device=self.device)
            self._ring[index, columns] += torch.as_tensor(values, device=self.device, dtype=self.dtype)

    # ---- writing into the staging row -------------------------------------------------
    def add(self, columns: slice | int, value: Tensor | np.ndarray | float) -> None:
        """staging[columns] += value (no sync)."""
        if self._numpy:
            self._staging_np[columns] += value.numpy() if isinstance(value, Tensor) else value
        else:
            self.staging[columns].add_(value)

    def put(self, columns: slice | int, value: Tensor | np.ndarray | float) -> None:
        """staging[columns] = value (no sync)."""
        if self._numpy:
            self._staging_np[columns] = value.numpy() if isinstance(value, Tensor) else value
        elif isinstance(value, Tensor):
            self.staging[columns].copy_(value)
        else:
            self.staging[columns] = value

    # ---- the step -------------------------------------------------------------------
    def set_step(self, step: int) -> None:
        """Set the step of the last committed row (at attach, or when a run resumes)."""
        self._counters[0] = step

    def commit(self) -> None:
        """Append the staging row to the ring, tagged with the next step, and clear it.

        Step and position come from counters on the device, so this needs no host value
        and is the same six ops every time: it can be captured in a CUDA graph.
        """
        if self._numpy:  # the same steps on numpy views of the same memory
            self._counters_np += 1
            self._staging_np[-2:] = self._counters_np
            self._ring_np[self._position_np[0]] = self._staging_np
            self._position_np[0] = (self._position_np[0] + 1) % self.capacity
            self._staging_np[:] = 0.0
            return
        self._counters.add_(1)  # the step, the rows committed
        self.staging[-2:].copy_(self._counters)
        self._ring.index_copy_(0, self._position, self.staging[None])
        self._position.add_(1).remainder_(self.capacity)
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
        if self._numpy and world == 1:
            host = self._ring_np  # the CPU: the ring already is host memory (rows are copied below)
        else:
            host = self._copy_to_host(ring)
            if world > 1:
                mean_columns = np.flatnonzero(np.array(self.reduce_mean + [True, True]))
                host[:, mean_columns] /= world  # the counters too: the same on every rank
        return self._new_rows(host)

    def _copy_to_host(self, ring: Tensor) -> np.ndarray:
        if self._host is None or self._host.shape != ring.shape:
            pin = self.device.type == "cuda"
            self._host = torch.empty(ring.shape, dtype=self.dtype, pin_memory=pin)
        self._host.copy_(ring, non_blocking=True)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # note: the sync point
        return self._host.numpy().astype(np.float64)  # a copy, also when already float64

    def _new_rows(self, host: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        written = int(round(host[self.capacity, -1]))
        new = written - self._rows_read
        if new > self.capacity:
            warnings.warn(
                f"gandiag: {new - self.capacity} recorded steps were overwritten before a "
                f"flush (buffer of {self.capacity} rows); flush at least every "
                f"{self.capacity} steps", RuntimeWarning, stacklevel=user_stacklevel(),
            )
            new = self.capacity
        self._rows_read = written
        positions = np.arange(written - new, written) % self.capacity
        rows = host[positions]
        return rows[:, -2].round().astype(np.int64), rows[:, :-2]


def _world_size() -> int:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_world_size()
    return 1
