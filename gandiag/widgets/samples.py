"""The samples panel: what G makes, drawn from a snapshot (no torch here).

- `PlaneSnapshot` (2-D data): D's logit over the plane as a heatmap (green: D says real,
  pink: D says fake; the white contour is D's decision boundary), the real points, G's
  samples, and arrows from G's samples along the gradient G's loss sends back to them:
  where G's next update moves them (GAN Lab's view, on your own models). Arrows share one
  scale, so their relative lengths are true; the legend gives the longest one's norm.
- `ImageSnapshot`: a PNG (a fixed-noise grid of images, or a stored run's picture).
- `PointsSnapshot` (2-D data of a user's own loop): the most recent fakes D saw over the
  real samples the monitor kept (no G or D call: the loop's models are not ours to run).

`gandiag.widgets.snapshot.take_snapshot(trainer)` makes them from a live trainer,
`gandiag.widgets.kept.kept_snapshot(monitor)` from a monitor's sample reservoir; a stored
run's sample pictures come back as `ImageSnapshot`s (`stored_snapshots(run)`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go


@dataclass(frozen=True)
class PlaneSnapshot:
    """G and D on 2-D data at one step; float32 arrays."""

    step: int
    fake: np.ndarray     # (n, 2) G's samples from fixed noise
    real: np.ndarray     # (m, 2) real samples (a fixed draw)
    grid: np.ndarray     # (r,) coordinates of the surface's columns and rows (a square)
    logits: np.ndarray   # (r, r) D's logit at (grid[col], grid[row]); > 0 reads "real"
    push: np.ndarray     # (k, 2) -d(G loss)/d(sample) at fake[:k]: where G's update moves them


@dataclass(frozen=True)
class ImageSnapshot:
    """A PNG of G's samples at one step (an image grid, or a density picture of points)."""

    step: int
    png: bytes
    what: str = "fixed noise"  # said in the panel's title


@dataclass(frozen=True)
class PointsSnapshot:
    """2-D samples a monitor kept, at one step; float32 arrays."""

    step: int
    fake: np.ndarray  # (n, 2) the most recent fakes D saw, oldest first
    real: np.ndarray  # (m, 2) a uniform sample of the reals D saw


Snapshot = PlaneSnapshot | ImageSnapshot | PointsSnapshot
SURFACE_COLORS = "PiYG"  # pink: D says fake (< 0), green: D says real (> 0)
ARROW_SHARE = 0.08  # the longest arrow spans this share of the plane's width


def stored_snapshots(run: Any, key: str = "samples") -> list[ImageSnapshot]:
    """A stored run's sample pictures (the `StoreRecorder` writes one every few flushes)."""
    return [ImageSnapshot(step, png) for step, png in run.samples(key)]


def samples_panel_traces(fig: go.Figure, snapshot: Snapshot | None, *, row: int) -> None:
    """Draw `snapshot` into the samples panel at `row` (an empty panel for None)."""
    anchor = fig.get_subplot(row, 1).xaxis.plotly_name.replace("axis", "")  # "x8" for layout.xaxis8
    fig.update_yaxes(scaleanchor=anchor, scaleratio=1, constrain="domain", row=row, col=1)
    fig.update_xaxes(constrain="domain", row=row, col=1)
    if isinstance(snapshot, PlaneSnapshot):
        outside, longest = _plane(fig, snapshot, row)
        title = (f"samples at step {snapshot.step}: G(z) over real data<br>D's logit (green: real, "
                 f"pink: fake), arrows: G's update (longest {longest:.2g})"
                 + (f", {outside} samples outside" if outside else ""))
    elif isinstance(snapshot, ImageSnapshot):
        fig.add_trace(go.Image(source="data:image/png;base64," + base64.b64encode(snapshot.png).decode(),
                               name="samples", hoverinfo="skip"), row=row, col=1)
        fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, row=row, col=1)
        fig.update_xaxes(showticklabels=False, showgrid=False, row=row, col=1)
        title = f"samples at step {snapshot.step} ({snapshot.what})"
    elif isinstance(snapshot, PointsSnapshot):
        outside = _points(fig, snapshot, row)
        title = (f"samples at step {snapshot.step}: the last {len(snapshot.fake)} fakes D saw over "
                 f"{len(snapshot.real)} of the reals it saw<br>(kept by the monitor: no extra G call)"
                 + (f", {outside} fakes outside" if outside else ""))
    elif snapshot is None:
        title = "samples: waiting for the first snapshot"
    else:
        raise TypeError(f"samples panel: expected a PlaneSnapshot, an ImageSnapshot or a "
                        f"PointsSnapshot, got {type(snapshot).__name__}; make one with "
                        "take_snapshot(trainer) or kept_snapshot(monitor)")
    for annotation in fig.layout.annotations:  # the subplot title make_subplots wrote
        if annotation.text == "samples":
            annotation.text = title


def _plane(fig: go.Figure, shot: PlaneSnapshot, row: int) -> tuple[int, float]:
    """Draw the plane; returns how many of G's samples fall outside it and the longest
    gradient's norm (for the title: trace names stay fixed so refreshes reuse traces)."""
    grid = np.asarray(shot.grid, np.float32)
    low, high = float(grid[0]), float(grid[-1])
    fig.add_trace(go.Heatmap(
        x=grid, y=grid, z=np.clip(shot.logits, -10, 10).astype(np.float32), zmid=0,
        colorscale=SURFACE_COLORS, opacity=0.75, name="D's logit", colorbar=_samples_colorbar(fig, row),
        hovertemplate="(%{x:.2f}, %{y:.2f})<br>D logit %{z:.2f}<extra></extra>"), row=row, col=1)
    fig.add_trace(go.Contour(
        x=grid, y=grid, z=shot.logits.astype(np.float32), contours={"start": 0, "end": 0, "size": 1,
                                                                    "coloring": "none"},
        line={"color": "white", "width": 2}, showscale=False, name="D's boundary", hoverinfo="skip"),
        row=row, col=1)
    fig.add_trace(go.Scatter(x=shot.real[:, 0], y=shot.real[:, 1], mode="markers", name="real",
                             marker={"size": 3, "color": "#1b5e20", "opacity": 0.6}), row=row, col=1)
    inside = np.all((shot.fake >= low) & (shot.fake <= high), axis=1)
    fig.add_trace(go.Scatter(x=shot.fake[inside, 0], y=shot.fake[inside, 1], mode="markers",
                             name="G(z)",
                             marker={"size": 4, "color": "#4a148c", "opacity": 0.8}), row=row, col=1)
    x, y, longest = _arrows(shot.fake[: len(shot.push)], shot.push, high - low)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name="G's gradient",
                             line={"color": "#e65100", "width": 1.2},
                             marker={"symbol": "arrow", "angleref": "previous",
                                     "size": np.tile(np.array([0, 8, 0], np.float32), len(x) // 3),
                                     "color": "#e65100"}, hoverinfo="skip"), row=row, col=1)
    fig.update_xaxes(range=[low, high], row=row, col=1)
    fig.update_yaxes(range=[low, high], row=row, col=1)
    return int((~inside).sum()), longest


def _points(fig: go.Figure, shot: PointsSnapshot, row: int) -> int:
    """Fakes over reals in a square that holds the reals and most fakes (a fake far off
    would squeeze the data to a dot); returns how many fakes fall outside it."""
    both = np.concatenate([shot.real, shot.fake])
    both = both[np.isfinite(both).all(axis=1)]
    if len(both):
        low, high = np.quantile(both, [0.005, 0.995], axis=0)
        low, high = np.minimum(low, shot.real.min(axis=0, initial=np.inf)), np.maximum(
            high, shot.real.max(axis=0, initial=-np.inf))
    else:
        low, high = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    center, half = (low + high) / 2, 0.55 * max(float((high - low).max()), 1e-6)
    fig.add_trace(go.Scatter(x=shot.real[:, 0], y=shot.real[:, 1], mode="markers", name="real",
                             marker={"size": 3, "color": "#1b5e20", "opacity": 0.5}), row=row, col=1)
    inside = np.all(np.abs(shot.fake - center) <= half, axis=1)
    fig.add_trace(go.Scatter(x=shot.fake[inside, 0], y=shot.fake[inside, 1], mode="markers",
                             name="G(z)", marker={"size": 4, "color": "#4a148c", "opacity": 0.8}),
                  row=row, col=1)
    fig.update_xaxes(range=[float(center[0] - half), float(center[0] + half)], row=row, col=1)
    fig.update_yaxes(range=[float(center[1] - half), float(center[1] + half)], row=row, col=1)
    return int((~inside).sum())


def _arrows(starts: np.ndarray, push: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Segments start -> start + scaled push, NaN-separated (one trace for all arrows)."""
    norms = np.linalg.norm(push, axis=1)
    finite = np.isfinite(norms)
    longest = float(norms[finite].max()) if finite.any() else 0.0
    scale = ARROW_SHARE * width / longest if longest > 0 else 0.0
    starts, push = starts[finite], push[finite]
    ends = starts + scale * push
    nan = np.full(len(starts), np.nan, np.float32)
    x = np.stack([starts[:, 0], ends[:, 0], nan], axis=1).reshape(-1).astype(np.float32)
    y = np.stack([starts[:, 1], ends[:, 1], nan], axis=1).reshape(-1).astype(np.float32)
    return x, y, longest


def _samples_colorbar(fig: go.Figure, row: int) -> dict:
    low, high = fig.get_subplot(row, 1).yaxis.domain
    return {"title": "D logit", "len": (high - low) * 0.9, "y": (low + high) / 2, "yanchor": "middle",
            "thickness": 12}
