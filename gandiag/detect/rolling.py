"""Rolling statistics over the tail of a series: what detectors compute their signals with.

A detector asks for the new records plus `lookback` older ones, computes a rolling
statistic over that tail (each value uses only records at or before it: causal), and
keeps the part over the new records.

    >>> rolling(np.array([1.0, 2, 3, 4]), 2, nan_mean)
    array([nan, 1.5, 2.5, 3.5])
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from gandiag.core.family import LOGIT_GAP, known_family
from gandiag.detect.base import View


def tail(view: View, key: str, lookback: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(steps, values, n_new): the new records of `key` and up to `lookback` before them."""
    steps, values = view.get(key)
    n = view.new_rows.get(key, 0)
    start = max(len(steps) - n - lookback, 0)
    return steps[start:], values[start:].astype(float), n


def rolling(values: np.ndarray, window: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """`reduce` over the `window` values ending at each position; NaN where the window
    reaches before the first value. `reduce(array2d, axis=1)`."""
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN
            out[window - 1:] = reduce(windows, axis=1)
    return out


def shift(values: np.ndarray, by: int, fill: float) -> np.ndarray:
    """`values` moved `by` places later (same length), the first `by` places `fill`."""
    out = np.full(len(values), fill, dtype=np.result_type(values, np.asarray(fill)))
    if by < len(values):
        out[by:] = values[:len(values) - by]
    return out


def nan_mean(windows: np.ndarray, axis: int = 1) -> np.ndarray:
    """Mean of the finite values of each window (NaN when there are none)."""
    finite = np.isfinite(windows)
    count = finite.sum(axis=axis)
    total = np.where(finite, windows, 0.0).sum(axis=axis)
    with np.errstate(all="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def nan_median(windows: np.ndarray, axis: int = 1) -> np.ndarray:
    """Median of the finite values of each window (NaN when there are none)."""
    finite = np.isfinite(windows)
    if finite.all():
        return np.median(windows, axis=axis)  # the common case, several times faster
    return np.nanmedian(np.where(finite, windows, np.nan), axis=axis)


def nan_mad(windows: np.ndarray, axis: int = 1) -> np.ndarray:
    """Median absolute deviation of the finite values (scaled to a normal's std)."""
    center = np.expand_dims(nan_median(windows, axis=axis), axis)
    return 1.4826 * nan_median(np.abs(windows - center), axis=axis)


def asof(steps: np.ndarray, source_steps: np.ndarray, source_values: np.ndarray) -> np.ndarray:
    """The most recent value of a series at or before each of `steps` (NaN before its first)."""
    where = np.searchsorted(source_steps, steps, side="right") - 1
    out = np.full(len(steps), np.nan)
    ok = where >= 0
    out[ok] = source_values[where[ok]]
    return out


def logit_gap(view: View, step: int, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, mean D(real) - mean D(fake)) of the last `rows` D updates at or before `step`,
    or None when either side was not recorded. One definition for every detector."""
    if "D/out_real/mean" not in view or "D/out_fake/mean" not in view:
        return None
    own, real = view.upto("D/out_real/mean", step, rows)
    return own, real - asof(own, *view.upto("D/out_fake/mean", step, rows))


def gap_scale(view: View) -> float:
    """How the run's loss family scales a gap in D's outputs against a logit gap: 1 for
    logits, e.g. 0.21 for LSGAN 0/1 (a gap of 0.64 there is a logit gap of 3); 1 for a
    critic or an unknown loss. Thresholds written in logits are multiplied by it."""
    family = known_family(view.meta.get("loss"))
    if family is None or family.center is None:
        return 1.0
    return family.sure_gap / LOGIT_GAP


def fmt(value: float) -> str:
    """A number for a message: 3 significant digits, scientific when tiny or huge."""
    if not np.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.3g}"
