"""Smoothing of noisy series, as TensorBoard's scalar dashboard does it: an exponential
moving average with debiasing, indexed by point (not by step).

    s_k = w * s_{k-1} + (1 - w) * x_k,   s_0 = 0,   smoothed_k = s_k / (1 - w^n_k)

`n_k` counts the finite points so far. The debiasing divides out the weight the zero
start still holds, so the first smoothed value equals the first raw value and a constant
series stays that constant (an undebiased EMA starts at (1 - w) * x_0 and creeps up).
Non-finite points (NaN, inf) are TensorBoard's choice too: each keeps its raw value, so
the smoothed line shows the same gap (or spike) the raw line does, and the average skips
it, so one NaN does not poison every later value.

    >>> ema(np.array([1.0, 2.0, np.nan, 3.0]), 0.5).round(3).tolist()
    [1.0, 1.667, nan, 2.429]
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

DEFAULT_SMOOTHING = 0.6  # TensorBoard's default weight
# The weights the offline report precomputes for its slider (it has no Python to call).
REPORT_WEIGHTS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def check_weight(weight: float, where: str = "smoothing") -> float:
    """`weight` as a float in [0, 1), or a ValueError that says so."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{where}: expected a smoothing weight in [0, 1) (0: raw, TensorBoard's "
                         f"default {DEFAULT_SMOOTHING}), got {weight!r}; pass e.g. smoothing=0.6")
    return value


def ema(values: np.ndarray, weight: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """The debiased exponential moving average of `values` (float64, same length).

    weight 0 gives the values back; a constant series stays constant; the first finite
    value is kept as it is; non-finite values are kept as they are and skipped by the
    average (see the module's docstring)."""
    weight = check_weight(weight, "ema")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    out = values.copy()
    finite = np.isfinite(values)
    if weight == 0.0 or not finite.any():
        return out
    kept = values[finite]
    if np.all(kept == kept[0]):
        return out  # exact, where the debiasing's rounding would leave 1e-16 wiggles
    # lfilter runs the recursion s_k = w s_{k-1} + (1 - w) x_k in C (a Python loop
    # over 1e6 points takes about a second).
    running = lfilter([1.0 - weight], [1.0, -weight], kept)
    seen = np.arange(1, len(kept) + 1, dtype=np.float64)
    # 1 - w^n reaches 1 in float64 after a few thousand points: no underflow to worry about.
    out[finite] = running / -np.expm1(seen * np.log(weight))
    return out
