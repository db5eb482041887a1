"""The samples panel of a user's own loop: the samples its monitor kept of D's inputs.

A `Monitor` keeps a uniform sample of the reals D saw and D's most recent fakes
(`monitor.reservoir`, see `gandiag.hooks.reservoir`), with no extra G call. The monitor's
flush writes those arrays, partly in place, on the thread that runs the loop, and holds
no lock a reader could share: so `kept_snapshot` is called on that thread (the
dashboard's callback, at a flush, when the refresher asked for a picture) and copies what
it draws; the refresher thread only ever sees the copies.

- 2-D points (n, 2): the last fakes over the kept reals (`PointsSnapshot`);
- images (n, C, H, W), C 1 or 3: a PNG grid of the last fakes (`ImageSnapshot`), in the
  reals' value range (a loop's data may be in [0, 1] or [-1, 1]);
- other shapes: no picture; `shape_note` says why.

    >>> import torch
    >>> from torch import nn
    >>> import gandiag
    >>> G, D = nn.Linear(4, 2), nn.Linear(2, 1)
    >>> with gandiag.attach(G, D, coverage_every=None) as monitor:
    ...     _ = D(torch.randn(8, 2)), D(G(torch.randn(8, 4)))
    ...     monitor.update_done("D"); monitor.update_done("G")
    >>> shot = kept_snapshot(monitor)
    >>> type(shot).__name__, shot.real.shape[1], shot.fake.shape[1]
    ('PointsSnapshot', 2, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gandiag.store.png import samples_png
from gandiag.widgets.samples import ImageSnapshot, PointsSnapshot, Snapshot

FAKE_POINTS = 500  # the most recent fakes drawn over the reals (plain Scatter stays fast)
REAL_POINTS = 2000
IMAGES = 36  # a 6 x 6 grid
RANGE_FROM = 256  # reals that give the images' value range


def shape_note(shape: tuple[int, ...]) -> str | None:
    """None when the samples panel can draw samples of `shape` (one sample's), else why not."""
    if tuple(shape) == (2,) or (len(shape) == 3 and shape[0] in (1, 3)):
        return None
    return (f"no samples panel: D's inputs have shape {tuple(shape)}, and the panel draws 2-D "
            "points (2,) or images (C, H, W) with C 1 or 3")


def kept_shape(monitor: Any) -> tuple[int, ...] | None:
    """The shape of one kept sample, where it is known yet (None: nothing kept so far)."""
    reservoir = getattr(monitor, "reservoir", None)
    if reservoir is None:
        return None
    held = reservoir.real if reservoir.real is not None else reservoir.fake
    if held is not None:
        return tuple(held.shape[1:])
    return reservoir.sample_shape


def kept_snapshot(monitor: Any, *, fakes: int = FAKE_POINTS, images: int = IMAGES) -> Snapshot | None:
    """A picture of what `monitor` kept, or None while it holds no fakes. Call it on the
    thread that runs the loop (see the module doc). Raises ValueError (`shape_note`'s
    text) for samples the panel cannot draw."""
    reservoir = getattr(monitor, "reservoir", None)
    if reservoir is None or reservoir.fake is None:
        return None
    real = reservoir.real  # read once: a flush replaces the attribute
    shape = tuple(reservoir.fake.shape[1:])
    note = shape_note(shape)
    if note is not None:
        raise ValueError(note)
    if shape == (2,):
        kept = np.zeros((0, 2), np.float32) if real is None else real[:REAL_POINTS]
        return PointsSnapshot(int(monitor.step), reservoir.recent_fakes(fakes).astype(np.float32),
                              kept.astype(np.float32))  # astype copies
    fake = reservoir.recent_fakes(images)
    low, high = _value_range(real, fake)
    scaled = 2.0 * (fake.astype(np.float64) - low) / (high - low) - 1.0  # samples_png reads [-1, 1]
    return ImageSnapshot(int(monitor.step), samples_png(scaled),
                         what=f"the last {len(fake)} fakes D saw, kept by the monitor")


def _value_range(real: np.ndarray | None, fake: np.ndarray) -> tuple[float, float]:
    """The reals' value range (the fakes' where no real is kept), [-1, 1] when flat."""
    sample = real[:RANGE_FROM] if real is not None and len(real) else fake
    finite = sample[np.isfinite(sample)]
    if not len(finite) or float(finite.max() - finite.min()) < 1e-6:
        return -1.0, 1.0
    return float(finite.min()), float(finite.max())
