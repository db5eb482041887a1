"""Cheap mode-collapse signals from raw sample batches: spread, near duplicates, drift.

No feature extractor needed: samples of any shape ``(n, ...)`` are flattened to vectors
and compared with the Euclidean distance (float64, on the input's device).

- :func:`mean_pairwise_distance`: the spread of one batch;
- :func:`relative_diversity`: fake spread / real spread, ~1 healthy, → 0 collapsed;
- :func:`near_duplicate_rate`: share of samples with a (near) copy in the batch;
- :func:`fixed_noise_drift`: how far the samples of a fixed noise moved between two times.

These see collapse of the whole batch or of clumps within it; they are blind to a
generator that covers a few modes with healthy spread inside each (use mode or
precision/recall metrics for that).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from gandiag.metrics.functional import _inputs

__all__ = [
    "fixed_noise_drift", "mean_pairwise_distance", "near_duplicate_rate", "relative_diversity"
]

#: Default near-duplicate threshold, as a fraction of the batch's median radius.
NEAR_DUPLICATE_FRACTION = 1e-3


def mean_pairwise_distance(x: Tensor | np.ndarray) -> float:
    """Mean Euclidean distance over the n(n−1)/2 distinct pairs of a batch ``(n, ...)``.

    An unbiased estimate of E‖X − X'‖ for independent samples, so batches of different
    sizes from one distribution agree in expectation.

    Example:
        >>> x = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]])
        >>> round(mean_pairwise_distance(x), 6)  # (5 + 5 + 0) / 3
        3.333333
    """
    where = "mean_pairwise_distance"
    device = _inputs.compute_device(x, where=where)
    points = _samples(x, name="x", where=where, device=device, min_rows=2)
    return _mean_pairwise_distance(points)


def relative_diversity(fake: Tensor | np.ndarray, real: Tensor | np.ndarray) -> float:
    """Mean pairwise distance of ``fake`` over that of ``real`` (both ``(n, ...)``).

    ~1 when the generator is as diverse as the data, → 0 when it collapses, > 1 when its
    samples are more spread out than the data (noise, divergence).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(500, 3, 8, 8, generator=g)
        >>> collapsed = real[:1].repeat(500, 1, 1, 1)
        >>> round(relative_diversity(collapsed, real), 6)
        0.0
    """
    where = "relative_diversity"
    device = _inputs.compute_device(fake, real, where=where)
    fake_points = _samples(fake, name="fake", where=where, device=device, min_rows=2)
    real_points = _samples(real, name="real", where=where, device=device, min_rows=2)
    if fake_points.shape[1] != real_points.shape[1]:
        raise ValueError(
            f"{where}: expected fake and real samples of one size, got {fake_points.shape[1]} "
            f"and {real_points.shape[1]} values per sample; compare samples of the same shape"
        )
    real_spread = _mean_pairwise_distance(real_points)
    if real_spread == 0:
        raise ValueError(
            f"{where}: expected a real batch with some spread, got {real_points.shape[0]} "
            "identical real samples; pass a shuffled batch of distinct real samples"
        )
    return _mean_pairwise_distance(fake_points) / real_spread


def near_duplicate_rate(x: Tensor | np.ndarray, *, threshold: float | None = None) -> float:
    """Share of samples whose nearest other sample lies within ``threshold`` (``<=``).

    Args:
        x: A batch ``(n, ...)``, n >= 2.
        threshold: Euclidean distance. ``None`` (default) is scale-free: 1e-3 x the
            batch's median radius, i.e. the median distance of a sample to the
            coordinate-wise median sample. Medians make it robust to a few outliers
            (a diverging sample does not inflate it). When most of the batch is one exact
            copy, that radius is 0 and exact copies are what counts.

    Exact copies always count (their distance is computed exactly, not through the
    rounding of the matrix-product form). Being relative to the batch's own spread, the
    default sees clumps within a batch, not a batch that shrank as a whole: compare
    with real data through :func:`relative_diversity` for that.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> healthy = torch.randn(100, 16, generator=g)
        >>> near_duplicate_rate(healthy), near_duplicate_rate(torch.cat([healthy[:50]] * 2))
        (0.0, 1.0)
    """
    where = "near_duplicate_rate"
    device = _inputs.compute_device(x, where=where)
    points = _samples(x, name="x", where=where, device=device, min_rows=2)
    if threshold is None:
        centre = points.median(dim=0).values
        threshold = NEAR_DUPLICATE_FRACTION * float((points - centre).norm(dim=1).median())
    else:
        threshold = _inputs.finite_float(threshold, name="threshold", where=where)
        if threshold < 0:
            raise ValueError(f"{where}: expected threshold >= 0, got {threshold}; pass a distance")
    nearest = _nearest_other_distances(points)
    return int((nearest <= threshold).sum()) / points.shape[0]


def fixed_noise_drift(previous: Tensor | np.ndarray, current: Tensor | np.ndarray) -> float:
    """Mean distance between samples of one fixed noise at two times, relative to their size.

    ``mean_i ‖current_i − previous_i‖ / mean_i ‖previous_i‖``, row i being the sample of
    noise vector i. ~0 when G stopped changing (converged, or stuck), large when it jumps
    between snapshots (oscillation, mode hopping).

    Example:
        >>> previous = np.array([[3.0, 4.0], [0.0, 5.0]])
        >>> fixed_noise_drift(previous, previous + [0.0, 0.5])  # 0.5 / 5
        0.1
    """
    where = "fixed_noise_drift"
    device = _inputs.compute_device(previous, current, where=where)
    before = _samples(previous, name="previous", where=where, device=device, min_rows=1)
    after = _samples(current, name="current", where=where, device=device, min_rows=1)
    if before.shape != after.shape:
        raise ValueError(
            f"{where}: expected previous and current of one shape (the same fixed noise), "
            f"got {tuple(before.shape)} and {tuple(after.shape)} after flattening; generate "
            "both from the same noise tensor"
        )
    size = float(before.norm(dim=1).mean())
    if size == 0:
        raise ValueError(
            f"{where}: expected previous samples with a non-zero norm, got all zeros; drift "
            "relative to zero is undefined (compare later snapshots, or use absolute distances)"
        )
    return float((after - before).norm(dim=1).mean()) / size


# ------------------------------------------------------------------- helpers


def _samples(
    value: object, *, name: str, where: str, device: torch.device, min_rows: int
) -> Tensor:
    """Validate a finite batch ``(n, ...)`` with n >= min_rows; float64 ``(n, D)``."""
    x = _inputs.as_float64(value, name=name, where=where, device=device)
    if x.ndim < 2 or x.shape[1:].numel() == 0:
        raise ValueError(
            f"{where}: expected {name} as a batch of shape (n, ...), got {tuple(x.shape)}; "
            f"for scalar samples pass {name}[:, None]"
        )
    if x.shape[0] < min_rows:
        raise ValueError(
            f"{where}: expected at least {min_rows} {name} samples, got {x.shape[0]}; "
            "pass a larger batch"
        )
    x = x.reshape(x.shape[0], -1)
    _inputs.check_finite_rows(x, name=name, where=where)
    return x


def _blocks(points: Tensor, *, self_distance: float) -> Iterator[tuple[int, int, Tensor]]:
    """Yield ``(start, stop, distances)`` row blocks of the pairwise distances, with each
    sample's distance to itself set to ``self_distance`` (the x·y form leaves noise there)."""
    points = points - points.mean(dim=0)  # same distances, less cancellation in x·y form
    n = points.shape[0]
    rows = _inputs.chunk_rows(None, n, where="diversity")
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        distances = torch.cdist(points[start:stop], points, compute_mode="use_mm_for_euclid_dist")
        local = torch.arange(stop - start, device=points.device)
        distances[local, local + start] = self_distance
        yield start, stop, distances


def _mean_pairwise_distance(points: Tensor) -> float:
    n = points.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=points.device)
    for _, _, distances in _blocks(points, self_distance=0.0):  # self is not a pair
        total += distances.sum()
    return float(total) / (n * (n - 1))


def _nearest_other_distances(points: Tensor) -> Tensor:
    """Exact distance of each sample to its nearest other sample."""
    nearest = torch.empty(points.shape[0], dtype=torch.long, device=points.device)
    for start, stop, distances in _blocks(points, self_distance=torch.inf):
        nearest[start:stop] = distances.argmin(dim=1)
    # The x·y form rounds (an exact copy comes out ~1e-8 x the norm, not 0): recompute the
    # distance to the neighbour found directly, and pin exact copies at 0.
    exact = (points - points[nearest]).norm(dim=1)
    _, inverse, counts = torch.unique(points, dim=0, return_inverse=True, return_counts=True)
    return exact.masked_fill(counts[inverse] > 1, 0.0)
