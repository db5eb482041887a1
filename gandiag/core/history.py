"""`History`: the recorded series in memory, under a fixed budget however long the run.

Each key keeps its most recent `recent` steps at full resolution and an *overview* of
everything older: block means whose block size doubles whenever the overview passes
`overview` points. So memory is bounded by (recent + overview + 1) values per key (the
+ 1: the block being filled), the overview still spans the whole run, and the run store
keeps full resolution. Block means keep NaN visible (a NaN in a block makes it NaN).

    >>> import numpy as np
    >>> history = History(recent=100, overview=10)
    >>> history.append(Records(scalars={"D/loss": (np.arange(1, 1001), np.ones(1000))}))
    >>> steps, values = history["D/loss"]
    >>> len(steps) <= 100 + 10, int(steps[-1])   # the overview spans steps 1..900
    (True, 1000)
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from gandiag.core.records import Histograms, Records

# Recent rows arrive one chunk per flush; chunks smaller than this are merged, so that a
# key recorded once per flush costs its values, not two numpy arrays per value.
MERGE_ROWS = 1024


class Series:
    """One key: recent rows at full resolution plus a decimated overview of older rows.

    Values are 1-D (scalars) or 2-D (one histogram per row). Appending is O(new rows):
    recent rows are kept as the flushed chunks (small ones merged, so a key recorded
    once per flush does not pay two arrays per value) and joined only when read. Rows
    leaving the recent window are averaged into overview blocks of `stride` rows; the
    block being filled is a running sum, so memory stays within the budget however long
    the run (the stride grows, the held rows do not).
    """

    def __init__(self, *, recent: int, overview: int) -> None:
        self.recent, self.overview = recent, overview
        self.stride = 1  # rows per overview point
        self._chunks: deque[tuple[np.ndarray, np.ndarray]] = deque()  # the recent rows
        self._count = 0
        self._old_steps = np.zeros(0, dtype=np.int64)  # the overview
        self._old_values: np.ndarray | None = None
        self._partial_sum: np.ndarray | None = None  # the block being filled: sum of its rows,
        self._partial_rows = 0                      # how many,
        self._partial_step = 0                      # and its last step
        self._joined: tuple[np.ndarray, np.ndarray] | None = None

    def append(self, steps: np.ndarray, values: np.ndarray) -> None:
        if self._chunks and len(self._chunks[-1][0]) + len(steps) <= MERGE_ROWS:
            last_steps, last_values = self._chunks.pop()
            self._chunks.append((np.concatenate([last_steps, steps]), np.concatenate([last_values, values])))
        else:
            self._chunks.append((steps.copy(), values.copy()))
        self._count += len(steps)
        self._joined = None
        excess = self._count - self.recent
        while excess > 0:
            first_steps, first_values = self._chunks[0]
            if len(first_steps) <= excess:
                self._chunks.popleft()
                taken = len(first_steps)
                self._fold(first_steps, first_values)
            else:
                taken = excess
                self._fold(first_steps[:taken], first_values[:taken])
                self._chunks[0] = (first_steps[taken:], first_values[taken:])
            self._count -= taken
            excess -= taken

    def _fold(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Rows leaving the recent window into the overview, as means of `stride` rows.
        A sum keeps NaN visible (a NaN in a block makes the block NaN)."""
        start = 0
        while start < len(steps):
            if self._partial_rows == 0 and len(steps) - start >= self.stride:  # whole blocks at once
                full = (len(steps) - start) // self.stride * self.stride
                self._add_blocks(*_blocks(steps[start:start + full], values[start:start + full], self.stride))
                start += full
                continue
            take = min(self.stride - self._partial_rows, len(steps) - start)
            rows = values[start:start + take].sum(axis=0)
            self._partial_sum = rows if self._partial_rows == 0 else self._partial_sum + rows
            self._partial_rows += take
            self._partial_step = int(steps[start + take - 1])
            start += take
            if self._partial_rows >= self.stride:
                self._partial_rows = 0
                self._add_blocks(np.array([self._partial_step]), (self._partial_sum / self.stride)[None])

    def _add_blocks(self, block_steps: np.ndarray, block_values: np.ndarray) -> None:
        self._old_steps = np.concatenate([self._old_steps, block_steps])
        self._old_values = (block_values if self._old_values is None
                            else np.concatenate([self._old_values, block_values]))
        while len(self._old_steps) > self.overview:  # halve the overview, double the stride
            even = len(self._old_steps) // 2 * 2
            merged_steps, merged_values = _blocks(self._old_steps[:even], self._old_values[:even], 2)
            self._old_steps = np.concatenate([merged_steps, self._old_steps[even:]])
            self._old_values = np.concatenate([merged_values, self._old_values[even:]])
            self.stride *= 2

    def _partial(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The block being filled, as one point (its mean so far, at its last step)."""
        if not self._partial_rows:
            return np.zeros(0, dtype=np.int64), None
        return np.array([self._partial_step]), (self._partial_sum / self._partial_rows)[None]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values): the overview, the block being filled, then the recent rows."""
        if self._joined is None:
            parts = [(self._old_steps, self._old_values), self._partial(), *self._chunks]
            parts = [(s, v) for s, v in parts if v is not None and len(s)]
            if not parts:
                return np.zeros(0, dtype=np.int64), np.zeros(0)
            joined = (np.concatenate([s for s, _ in parts]), np.concatenate([v for _, v in parts]))
            for array in joined:
                array.setflags(write=False)  # shared with every reader until the next append
            self._joined = joined
        return self._joined

    @property
    def nbytes(self) -> int:
        arrays = [self._old_steps, self._old_values, self._partial_sum,
                  *(a for chunk in self._chunks for a in chunk)]
        return sum(a.nbytes for a in arrays if a is not None)


def _blocks(steps: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of consecutive blocks of `size` rows, stamped with each block's last step."""
    n = len(steps) // size
    block_values = values[: n * size].reshape(n, size, *values.shape[1:]).mean(axis=1)
    return steps[size - 1: n * size: size], block_values


class History(Mapping):
    """Scalar series by key (a read-only mapping key -> (steps, values)), plus histograms.

    `history[key]` gives numpy arrays; `history.histograms[key]` gives `Histograms`.
    """

    def __init__(self, *, recent: int = 10_000, overview: int = 2_000, histogram_recent: int = 1_000) -> None:
        if recent < 1 or overview < 2 or histogram_recent < 1:
            raise ValueError(
                f"History: expected recent >= 1, overview >= 2 and histogram_recent >= 1, got "
                f"{recent}, {overview}, {histogram_recent}"
            )
        self.recent, self.overview, self.histogram_recent = recent, overview, histogram_recent
        self._scalars: dict[str, Series] = {}
        self._histograms: dict[str, Series] = {}
        self._edges: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # the dashboard reads while the training thread appends

    def append(self, records: Records) -> None:
        with self._lock:
            self._append(records)

    def _append(self, records: Records) -> None:
        for key, (steps, values) in records.scalars.items():
            series = self._scalars.get(key)
            if series is None:
                series = self._scalars[key] = Series(recent=self.recent, overview=self.overview)
            series.append(np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
        for key, hist in records.histograms.items():
            series = self._histograms.get(key)
            if series is None:
                series = self._histograms[key] = Series(recent=self.histogram_recent, overview=self.overview)
            self._edges[key] = hist.edges
            series.append(hist.steps, hist.counts)

    def __getitem__(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        series = self._scalars.get(key)
        if series is None:
            hint = " (a histogram: use history.histograms[key])" if key in self._histograms else ""
            known = ", ".join(sorted(self._scalars)[:12]) or "nothing yet (flush first)"
            raise KeyError(f"no recorded series {key!r}{hint}; recorded: {known}")
        with self._lock:
            return series.arrays()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(list(self._scalars)))

    def __len__(self) -> int:
        return len(self._scalars)

    @property
    def histograms(self) -> dict[str, Histograms]:
        result = {}
        with self._lock:
            for key, series in self._histograms.items():
                steps, counts = series.arrays()
                result[key] = Histograms(steps, self._edges[key], counts)
        return result

    @property
    def nbytes(self) -> int:
        """Memory held by the recorded arrays (bounded by the budget)."""
        return sum(s.nbytes for s in (*self._scalars.values(), *self._histograms.values()))

    def state_dict(self) -> dict[str, Any]:
        """The arrays as tensors (checkpoints load with weights_only=True)."""
        return {
            "scalars": {k: [torch.from_numpy(a.copy()) for a in s.arrays()] for k, s in self._scalars.items()},
            "histograms": {k: [torch.from_numpy(a.copy()) for a in (h.steps, h.edges, h.counts)]
                           for k, h in self.histograms.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._scalars, self._histograms, self._edges = {}, {}, {}
        self.append(Records(
            scalars={k: (s.numpy(), v.numpy()) for k, (s, v) in state["scalars"].items()},
            histograms={k: Histograms(s.numpy(), e.numpy(), c.numpy())
                        for k, (s, e, c) in state["histograms"].items()},
        ))
