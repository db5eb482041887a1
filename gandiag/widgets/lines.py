"""How a series is drawn: user strings made safe (escaped, shortened), and a noisy
per-step series as one line or, smoothed, as its EMA over the faint raw series.

Shared by the dashboard's panels (`figures`) and the comparison of runs (`compare`).

    >>> import numpy as np
    >>> steps = np.arange(1, 101)
    >>> [t.name for t in noisy_line(steps, np.ones(100), name="D loss", color="#1f77b4",
    ...                             max_points=2000, smoothing=Smoothing(0.6))]
    ['D loss (raw)', 'D loss']
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from gandiag.widgets.decimate import minmax_index
from gandiag.widgets.smoothing import ema

RAW_OPACITY = 0.25  # the raw series, drawn faint behind its smoothed line


def text(value: Any) -> str:
    """A user-provided string (run, metric or layer name, config value, alert text) made
    safe for plotly and for HTML: plotly.js renders tags in text (<a href>, <b>, <span
    style>, ...) and turns entities back into characters, so escaping <, > and & shows the
    string as written and nothing in it becomes markup or a link."""
    return html.escape(str(value), quote=False)


def label(value: Any, most: int = 40) -> str:
    """`text(value)` shortened in the middle to `most` characters: a long metric, layer
    or run name would otherwise widen the legend or the tick labels until the panels are
    squeezed to a sliver (seen). The middle goes: names differ at their ends ("...block.3")."""
    value = str(value)
    if len(value) > most:
        keep = most - 1
        value = value[: keep // 2] + "…" + value[len(value) - (keep - keep // 2):]
    return text(value)


def unique_labels(names: list[str], most: int = 32) -> list[str]:
    """`label` of each name, numbered where two shorten alike (heatmap rows would merge)."""
    short = [label(name, most) for name in names]
    return [f"{s} ({i + 1})" if short.count(s) > 1 else s for i, s in enumerate(short)]


@dataclass(frozen=True)
class Smoothing:
    """How noisy per-step series are drawn: `weight` 0 draws them raw; above 0 the
    debiased EMA of `gandiag.widgets.smoothing.ema` is drawn over the raw series (faint).
    `choices` (the offline report's slider) precomputes the smoothed y at each of those
    weights into the trace's `meta["smoothed"]` (base64 float32, in the choices' order)."""

    weight: float = 0.0
    choices: tuple[float, ...] = ()

    @property
    def on(self) -> bool:
        return self.weight > 0 or bool(self.choices)


RAW = Smoothing()  # no smoothing: each series as one line


def _drawable(values: np.ndarray) -> np.ndarray:
    """float32 values for plotly: beyond float32 (inf included) becomes a NaN gap."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.abs(values) <= np.finfo(np.float32).max, values, np.nan).astype(np.float32)


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(_drawable(values).astype("<f4").tobytes()).decode("ascii")


def smoothed_y(values: np.ndarray, index: np.ndarray, smoothing: Smoothing) -> tuple[np.ndarray, dict]:
    """The smoothed series at the kept points, and the trace's `meta` (the precomputed
    choices), for a series drawn at `index` (the raw line's min-max points)."""
    values = np.asarray(values, dtype=np.float64)
    meta = ({"smoothed": [_b64(ema(values, w)[index]) for w in smoothing.choices]}
            if smoothing.choices else {})
    return _drawable(ema(values, smoothing.weight)[index]), meta


def noisy_line(steps: np.ndarray, values: np.ndarray, *, name: str, color: str, max_points: int,
               smoothing: Smoothing | None = None, group: str | None = None,
               showlegend: bool = True, **line: Any) -> list[go.Scatter]:
    """A per-step series as one line, or, smoothing on, the smoothed line (named `name`)
    over the raw one (faint, `name (raw)`); both share the raw line's min-max points (spikes
    and NaN gaps kept) and a legend group, so a legend click hides both."""
    smoothing = RAW if smoothing is None else smoothing
    steps = np.asarray(steps, dtype=np.float64)
    index = minmax_index(values, max_points)
    x, raw = steps[index].astype(np.float32), _drawable(np.asarray(values)[index])
    style = {"color": color, "width": 1.2} | line
    group = group or name
    if not smoothing.on:
        return [go.Scatter(x=x, y=raw, name=name, mode="lines", line=style, legendgroup=group,
                           showlegend=showlegend)]
    y, meta = smoothed_y(values, index, smoothing)
    return [go.Scatter(x=x, y=raw, name=f"{name} (raw)", mode="lines", opacity=RAW_OPACITY,
                       line=style | {"width": 1}, legendgroup=group, showlegend=False),
            go.Scatter(x=x, y=y, name=name, mode="lines", line=style, legendgroup=group,
                       showlegend=showlegend, meta=meta or None)]
