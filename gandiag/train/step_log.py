"""`StepLog`: the trainer's own scalar series, kept on the device between flushes.

Each step writes one row of scalars (losses, D output means) into a preallocated device
tensor; `flush()` copies the filled rows to the host in one transfer, the only
host-device sync. The hooks of `gandiag.hooks` record much more (per-layer gradient
norms, histograms); this log is what the trainer itself needs to print progress and to
stop on a non-finite loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


class StepLog:
    """Rows of named scalars, one per step, buffered on `device` for `capacity` steps.

    >>> log = StepLog(["D/loss", "G/loss"], capacity=50, device="cpu")
    >>> log.write(1, [torch.tensor(0.7), torch.tensor(0.9)])
    >>> rows = log.flush()      # the one host-device sync
    >>> log.series("D/loss")
    (array([1]), array([0.7], dtype=float32))
    """

    def __init__(self, keys: list[str], *, capacity: int, device: torch.device | str) -> None:
        self.keys = list(keys)
        self.capacity = capacity
        self._buffer = torch.zeros(capacity, len(self.keys), device=device)
        self._pending_steps: list[int] = []
        self._steps: list[np.ndarray] = []
        self._values: list[np.ndarray] = []

    def write(self, step: int, values: list[Tensor]) -> None:
        """Record one row; the values stay on the device (no sync)."""
        if len(self._pending_steps) == self.capacity:
            # The owner flushes (and checks the rows) at least every `capacity` writes; a
            # silent flush here would skip that check, so a full buffer is a bug.
            raise RuntimeError(
                f"StepLog: buffer full ({self.capacity} rows); call flush() at least every "
                f"{self.capacity} writes"
            )
        row = torch.stack([v.detach().float().reshape(()) for v in values])
        self._buffer[len(self._pending_steps)].copy_(row)
        self._pending_steps.append(step)

    def flush(self) -> np.ndarray:
        """Move the buffered rows to the host (one sync); returns them, (n, len(keys))."""
        n = len(self._pending_steps)
        if n == 0:
            return np.zeros((0, len(self.keys)), dtype=np.float32)
        rows = self._buffer[:n].cpu().numpy().copy()  # the one host-device sync
        self._steps.append(np.asarray(self._pending_steps, dtype=np.int64))
        self._values.append(rows)
        self._pending_steps = []
        return rows

    @property
    def last_flushed_steps(self) -> np.ndarray:
        return self._steps[-1] if self._steps else np.zeros(0, dtype=np.int64)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one key, flushed rows only."""
        if key not in self.keys:
            raise KeyError(f"no series {key!r}; recorded: {', '.join(self.keys)}")
        if not self._steps:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        column = self.keys.index(key)
        return np.concatenate(self._steps), np.concatenate([v[:, column] for v in self._values])

    def as_dict(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {key: self.series(key) for key in self.keys}

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        steps = np.concatenate(self._steps) if self._steps else np.zeros(0, dtype=np.int64)
        values = (np.concatenate(self._values) if self._values
                  else np.zeros((0, len(self.keys)), dtype=np.float32))
        return {"keys": list(self.keys), "steps": torch.from_numpy(steps),
                "values": torch.from_numpy(values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["keys"]) != self.keys:
            raise ValueError(
                f"StepLog.load_state_dict: saved keys {state['keys']} differ from {self.keys}; "
                "the checkpoint comes from another gandiag version or loss setup"
            )
        self._pending_steps = []
        self._steps = [state["steps"].numpy().astype(np.int64)]
        self._values = [state["values"].numpy().astype(np.float32)]
