"""Min-max decimation: at most `max_points` points per trace, spikes and NaN gaps kept.

A browser redraws a few thousand points per trace at interactive speed and never tells
the kernel it has fallen behind (in headless chromium one update of a 100 000-point
Scattergl trace took about 2 s, of a plain Scatter 70 ms); a long run has millions of
steps. Each bucket of consecutive points keeps its minimum and
its maximum, in step order, so a single spike survives decimation (a plain stride or a
mean would hide it), and a bucket holding a NaN keeps a NaN so the line shows a gap. The
first and the last point are always kept: a live view ends at the latest step.
Infinities (and values beyond float32) become NaN gaps too: plotly cannot place them, and
one infinity breaks the whole figure's autorange (seen: a reverse KL of inf when G made
no high-quality sample). The `nonfinite` detector reports them; the plot shows a gap.

    >>> steps, values = np.arange(10_000), np.zeros(10_000)
    >>> values[5_000] = 100.0
    >>> x, y = minmax(steps, values, max_points=100)
    >>> len(x) <= 100, float(y.max()), x.dtype
    (True, 100.0, dtype('float32'))
"""

from __future__ import annotations

import numpy as np


def minmax(steps: np.ndarray, values: np.ndarray, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as float32 arrays of at most `max_points` points (float arrays travel to the
    browser as binary; int64 and lists go as JSON, 50-400x slower)."""
    steps = np.asarray(steps, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(steps) != len(values):
        raise ValueError(f"minmax: {len(steps)} steps but {len(values)} values")
    values = np.where(np.abs(values) <= np.finfo(np.float32).max, values, np.nan)
    index = minmax_index(values, max_points)
    return steps[index].astype(np.float32), values[index].astype(np.float32)


def minmax_index(values: np.ndarray, max_points: int = 2000) -> np.ndarray:
    """The indexes `minmax` keeps (sorted): a smoothed line drawn at the raw line's points
    shares its x with the raw line, so the offline report swaps only y when re-smoothing."""
    if max_points < 4:
        raise ValueError(f"minmax: expected max_points >= 4, got {max_points}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = np.where(np.abs(values) <= np.finfo(np.float32).max, values, np.nan)
    if len(values) <= max_points:
        return np.arange(len(values))
    buckets = (max_points - 2) // 2  # and the two end points
    size = -(-len(values) // buckets)  # ceil
    padded = np.concatenate([values, np.full(buckets * size - len(values), np.nan)])
    blocks = padded.reshape(buckets, size)
    missing = np.isnan(blocks)
    padding = np.zeros_like(missing)
    padding.reshape(-1)[len(values):] = True
    real_nan = missing & ~padding
    low = np.where(missing, np.inf, blocks).argmin(axis=1)
    high = np.where(missing, -np.inf, blocks).argmax(axis=1)
    has_nan = real_nan.any(axis=1)
    high = np.where(has_nan, real_nan.argmax(axis=1), high)  # a NaN gap beats the maximum
    starts = np.arange(buckets) * size
    index = np.unique(np.concatenate([[0, len(values) - 1], starts + low, starts + high]))
    return index[index < len(values)]
