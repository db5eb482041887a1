"""Several runs overlaid in one figure: the same quantities, one colour per run.

    >>> import numpy as np
    >>> steps = np.arange(1, 1001)
    >>> runs = {"vanilla": {"G/loss": (steps, np.ones(1000))}, "packed": {"G/loss": (steps, np.zeros(1000))}}
    >>> fig = compare_figure(runs)
    >>> sorted({trace.legendgroup for trace in fig.data})
    ['packed', 'vanilla']

Per-layer heatmaps do not overlay, so the gradient panel shows each model's total norm
(log scale); the run store keeps the per-layer norms for `build_figure(run)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gandiag.core.alert import Alert
from gandiag.core.series import read_series
from gandiag.widgets.decimate import minmax
from gandiag.widgets.figures import ROW_HEIGHT, _hover, _metrics, add_lines, thin_out
from gandiag.widgets.lines import Smoothing, noisy_line, text
from gandiag.widgets.lines import label as short_label
from gandiag.widgets.smoothing import check_weight

RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
# (title, [(key or derived name, line dash, label)]) per panel
COMPARE_PANELS = (
    ("losses (solid: D, dashed: G; x: step = G updates)", [("D/loss", "solid", "D loss"), ("G/loss", "dash", "G loss")]),
    ("logit gap: mean D(x) - mean D(G(z))", [("gap", "solid", "logit gap")]),
    ("r_t = mean sign D(x) (solid), accuracy on fake (dotted)",
     [("D/out_real/sign", "solid", "r_t"), ("D/out_fake/acc", "dot", "accuracy on fake")]),
    ("total gradient norm (solid: D, dashed: G; log scale)",
     [("D/grad_norm/total", "solid", "D grad norm"), ("G/grad_norm/total", "dash", "G grad norm")]),
    ("mode coverage: counts (solid), shares (dotted)", [("counts+shares", "solid", "")]),
    ("distance to the data (lower is better)", [("distances", "solid", "")]),
)

# The runs compared may differ in their loss: units are named where every family shares them.
COMPARE_AXIS_TITLES = ("loss", "logit gap (D's scale)", "r_t = E[sign D(real)]<br>and accuracy",
                       "gradient norm", "count, share", "distance")


def compare_figure(runs: Mapping[str, Any], alerts: Mapping[str, Iterable[Alert]] | None = None, *,
                   max_points: int = 2000, title: str | None = None, smoothing: float = 0.0) -> go.Figure:
    """Overlay `runs` ({label: anything `build_figure` takes}); `alerts` ({label: alerts})
    are marked in their run's colour. `smoothing` in [0, 1) draws the per-step series
    smoothed over their faint raw series (TensorBoard's EMA), so two noisy runs' lines can
    be told apart; scheduled metrics are drawn as evaluated."""
    if not runs:
        raise ValueError("compare_figure: expected at least one run, got none; pass {label: run}")
    smooth = Smoothing(check_weight(smoothing, "compare_figure"))
    fig = make_subplots(rows=len(COMPARE_PANELS), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[panel_title for panel_title, _ in COMPARE_PANELS])
    for i, (label, source) in enumerate(runs.items()):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        series = read_series(source, caller="compare_figure")  # a stored run is read key by key
        shown = False
        for row, (_, lines) in enumerate(COMPARE_PANELS, start=1):
            for key, dash, name, data in _expand(series, lines):
                # hovertemplate reads %{...} as a field: a zero-width space keeps a
                # label's own "%{" as text
                hover = f"{text(label)}: {text(name)}".replace("%{", "%\u200b{")
                if key.startswith("metric/"):
                    x, y = minmax(*data, max_points=max_points)
                    traces = [go.Scatter(x=x, y=y, mode="lines", name=short_label(label),
                                         line={"color": color, "width": 1.2, "dash": dash},
                                         legendgroup=label, showlegend=not shown)]
                else:
                    traces = noisy_line(*data, name=short_label(label), color=color, dash=dash, group=label,
                                        max_points=max_points, smoothing=smooth, showlegend=not shown)
                for trace in traces:
                    trace.hovertemplate = (f"{hover}{' (raw)' if trace.opacity else ''} %{{y:.4g}} "
                                           "at step %{x:.0f}<extra></extra>")
                fig.add_traces(traces, rows=row, cols=1)
                shown = True
        _alert_marks(fig, label, list((alerts or {}).get(label, [])), color)
    fig.update_yaxes(type="log", row=4, col=1)
    for row, axis_title in enumerate(COMPARE_AXIS_TITLES, start=1):
        fig.update_yaxes(title_text=axis_title, title_font_size=11, row=row, col=1)
    fig.update_layout(height=int(ROW_HEIGHT * len(COMPARE_PANELS)) + 120,
                      title=short_label(title, 120) if title else None, template="plotly_white",
                      legend={"x": 1.01, "y": 1.0, "yanchor": "top", "title": {"text": "runs"}},
                      margin={"l": 60, "r": 140, "t": 70, "b": 40})
    return fig


def _expand(series: Mapping, lines: list[tuple[str, str, str]]) -> Iterator[tuple[str, str, str, Any]]:
    """(key, dash, label, (steps, values)) of each line the run has: derived ones (the
    logit gap) and each scheduled metric included."""
    for key, dash, name in lines:
        if key == "gap":
            if "D/out_real/mean" in series and "D/out_fake/mean" in series:
                steps, real = series["D/out_real/mean"]
                yield key, dash, name, (steps, real - np.interp(steps, *series["D/out_fake/mean"]))
        elif key in ("counts+shares", "distances"):
            kinds = ("count", "share") if key == "counts+shares" else ("distance",)
            for metric, kind in _metrics(series, kinds):
                yield f"metric/{metric}", "dot" if kind == "share" else "solid", metric, series[f"metric/{metric}"]
        elif key in series:
            yield key, dash, name, series[key]


def _alert_marks(fig: go.Figure, label: str, alerts: list[Alert], color: str) -> None:
    if not alerts:
        return
    add_lines(fig, thin_out([(alert.step, color) for alert in alerts], 30),
              rows=range(1, len(COMPARE_PANELS) + 1))
    fig.add_trace(go.Scatter(
        x=np.array([a.step for a in alerts], np.float32), y=np.zeros(len(alerts), np.float32),
        mode="markers", marker={"symbol": "triangle-up", "size": 11, "color": color}, name=short_label(label),
        legendgroup=label, showlegend=False, text=[f"{text(label)}: {_hover(a)}" for a in alerts],
        hovertemplate="%{text}<extra></extra>"), row=1, col=1)
