"""`Records`: what one flush brings to the host, the currency between hooks and callbacks.

The Monitor (hooks) produces a `Records` batch at every flush; the run store, the
detectors and the dashboard take it in their `on_records`. Everything is plain numpy,
so a batch can be written, compared and tested without torch or a device.

    >>> import numpy as np
    >>> batch = Records(scalars={"D/loss": (np.array([1, 2]), np.array([0.7, 0.6]))})
    >>> batch.steps
    array([1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Histograms:
    """Fixed-range histograms of one key, one row per step.

    `counts[i, b]` is how many values fell in bin b at `steps[i]`; values below the first
    edge count in the first bin and values above the last edge in the last bin (so nothing
    finite is dropped); NaN and inf are counted under `nonfinite/...`, not here.
    """

    steps: np.ndarray   # (n,) int64
    edges: np.ndarray   # (bins + 1,) float64, increasing, the same for every row
    counts: np.ndarray  # (n, bins) float64

    def __post_init__(self) -> None:
        self.steps = np.asarray(self.steps, dtype=np.int64)
        self.edges = np.asarray(self.edges, dtype=np.float64)
        self.counts = np.asarray(self.counts, dtype=np.float64).reshape(len(self.steps), -1)
        if self.counts.shape[1] != len(self.edges) - 1:
            raise ValueError(
                f"Histograms: {len(self.edges)} edges need {len(self.edges) - 1} bins per row, "
                f"got counts of shape {self.counts.shape}"
            )


@dataclass
class Records:
    """One flush worth of records: scalar series and histogram series, by key.

    `scalars[key] = (steps, values)`: int64 steps (G updates) and float64 values; a key
    only has the steps at which it was measured. Keys follow docs/definitions.md (`D/loss`,
    `D/out_real/mean`, `D/grad_norm/main.0`, `nonfinite/D/grad`, ...).
    """

    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    histograms: dict[str, Histograms] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.scalars) or bool(self.histograms)

    @property
    def steps(self) -> np.ndarray:
        """Every step that has a record in this batch, sorted."""
        parts = [s for s, _ in self.scalars.values()] + [h.steps for h in self.histograms.values()]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))
