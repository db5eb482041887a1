"""Pure figure builders: recorded series (and alerts) in, one `plotly.graph_objects.Figure` out.

No kernel, no I/O: the live dashboard, the replay of a stored run and the HTML report all
draw with these, and tests check them on synthetic records. One figure holds every panel
as subplots (one FigureWidget per dashboard: each instance ships plotly.js). Every trace
is decimated to at most `max_points` float32 points (min-max, spikes kept).

    >>> import numpy as np
    >>> steps = np.arange(1, 5001)
    >>> fig = build_figure({"D/loss": (steps, np.full(5000, 1.3)), "G/loss": (steps, np.full(5000, 0.8))})
    >>> [trace.name for trace in fig.data][:2], max(len(t.x) for t in fig.data) <= 2000
    (['D loss', 'G loss'], True)
"""

from __future__ import annotations

import html
from typing import Any, Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gandiag.detect.alert import Alert
from gandiag.detect.diagnosis import series_of
from gandiag.widgets.decimate import minmax

PANELS = ("losses", "outputs", "balance", "G gradients", "D gradients", "coverage")
COLORS = {"D": "#1f77b4", "G": "#d62728", "real": "#2ca02c", "fake": "#ff7f0e", "gap": "#7f7f7f"}
SEVERITY_COLORS = {"info": "#7f7f7f", "warning": "#ff9f1c", "critical": "#d62728"}
HEATMAP_COLUMNS = 400  # step bins of the gradient heatmaps


def build_figure(source: Any, alerts: Iterable[Alert] | None = None, *, max_points: int = 2000,
                 title: str | None = None) -> go.Figure:
    """Every panel of a run: `source` is anything `gandiag.diagnose` takes (a stored run,
    a trainer, a monitor, a history or {key: (steps, values)}); `alerts` are marked on the
    time axes with their explanation on hover."""
    series, _ = series_of(source)
    fig = make_subplots(rows=len(PANELS), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=["losses", "D outputs (logits): mean ± std, logit gap",
                                        "D's confidence: r_t and accuracy",
                                        "G gradient norm per layer (log10)", "D gradient norm per layer (log10)",
                                        "mode coverage"])
    losses_panel(fig, series, row=1, max_points=max_points)
    outputs_panel(fig, series, row=2, max_points=max_points)
    balance_panel(fig, series, row=3, max_points=max_points)
    gradients_panel(fig, series, "G", row=4)
    gradients_panel(fig, series, "D", row=5)
    coverage_panel(fig, series, row=6, max_points=max_points)
    alert_markers(fig, list(alerts or []), rows=len(PANELS))
    fig.update_layout(height=260 * len(PANELS), title=html.escape(title) if title else None,
                      legend={"orientation": "h"}, margin={"l": 60, "r": 20, "t": 60, "b": 40},
                      template="plotly_white")
    fig.update_xaxes(title_text="step (G updates)", row=len(PANELS), col=1)
    return fig


def _line(series: dict, key: str, name: str, color: str, max_points: int, **style: Any) -> go.Scatter | None:
    if key not in series:
        return None
    x, y = minmax(*series[key], max_points=max_points)
    return go.Scatter(x=x, y=y, name=name, mode="lines", line={"color": color, "width": 1.2},
                      **style)


def losses_panel(fig: go.Figure, series: dict, *, row: int, max_points: int = 2000) -> None:
    """D's and G's losses."""
    for key, name, color in (("D/loss", "D loss", COLORS["D"]), ("G/loss", "G loss", COLORS["G"])):
        trace = _line(series, key, name, color, max_points)
        if trace is not None:
            fig.add_trace(trace, row=row, col=1)


def outputs_panel(fig: go.Figure, series: dict, *, row: int, max_points: int = 2000) -> None:
    """D(x) and D(G(z)) means (D update) with ± one std bands, and the logit gap."""
    for side, label in (("real", "D(x)"), ("fake", "D(G(z))")):
        mean_key, std_key = f"D/out_{side}/mean", f"D/out_{side}/std"
        if mean_key not in series:
            continue
        steps, mean = series[mean_key]
        if std_key in series:
            std = np.interp(steps, *series[std_key])
            for sign, fill in ((1, None), (-1, "tonexty")):
                x, y = minmax(steps, mean + sign * std, max_points=max_points)
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line={"width": 0},
                                         fill=fill, fillcolor=_alpha(COLORS[side], 0.15),
                                         showlegend=False, hoverinfo="skip"), row=row, col=1)
        fig.add_trace(_line(series, mean_key, f"{label} mean", COLORS[side], max_points), row=row, col=1)
    if "D/out_real/mean" in series and "D/out_fake/mean" in series:
        steps, real = series["D/out_real/mean"]
        gap = real - np.interp(steps, *series["D/out_fake/mean"])
        x, y = minmax(steps, gap, max_points=max_points)
        fig.add_trace(go.Scatter(x=x, y=y, name="logit gap", mode="lines",
                                 line={"color": COLORS["gap"], "width": 1, "dash": "dot"}), row=row, col=1)


def balance_panel(fig: go.Figure, series: dict, *, row: int, max_points: int = 2000) -> None:
    """r_t = mean sign(D(x)) and D's accuracy on real and fake batches (0.5 is balanced)."""
    for key, name, color in (("D/out_real/sign", "r_t", COLORS["D"]),
                             ("D/out_real/acc", "accuracy on real", COLORS["real"]),
                             ("D/out_fake/acc", "accuracy on fake", COLORS["fake"])):
        trace = _line(series, key, name, color, max_points)
        if trace is not None:
            fig.add_trace(trace, row=row, col=1)
    fig.update_yaxes(range=[-1.05, 1.05], row=row, col=1)


def gradients_panel(fig: go.Figure, series: dict, role: str, *, row: int) -> None:
    """A layer x step heatmap of log10 gradient norms (block means over step bins)."""
    prefix = f"{role}/grad_norm/"
    layers = [k for k in series if k.startswith(prefix) and not k.endswith("/total")]
    if not layers:
        return
    first = min(int(series[k][0][0]) for k in layers if len(series[k][0]))
    last = max(int(series[k][0][-1]) for k in layers if len(series[k][0]))
    edges = np.linspace(first, last + 1, min(HEATMAP_COLUMNS, last - first + 1) + 1)
    rows = []
    for key in layers:
        steps, norms = series[key]
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(np.where(norms > 0, norms, np.nan))
        column = np.clip(np.searchsorted(edges, steps, side="right") - 1, 0, len(edges) - 2)
        total = np.bincount(column, np.nan_to_num(logs, nan=0.0, posinf=0.0, neginf=0.0), len(edges) - 1)
        count = np.bincount(column, np.isfinite(logs), len(edges) - 1)
        with np.errstate(invalid="ignore"):
            rows.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    fig.add_trace(go.Heatmap(z=np.array(rows, dtype=np.float32), x=centers,
                             y=[k[len(prefix):] for k in layers], colorscale="Viridis",
                             colorbar={"title": "log10", "len": 0.12, "y": 1 - (row - 0.5) / len(PANELS)},
                             name=f"{role} gradients",
                             hovertemplate="step %{x:.0f}<br>layer %{y}<br>log10 norm %{z:.2f}<extra></extra>"),
                  row=row, col=1)


def coverage_panel(fig: go.Figure, series: dict, *, row: int, max_points: int = 2000) -> None:
    """Scheduled metrics (`metric/<name>`): modes, HQ, reverse KL, PRDC, FID, ..."""
    palette = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#1f77b4", "#ff7f0e"]
    for i, key in enumerate(sorted(k for k in series if k.startswith("metric/"))):
        x, y = minmax(*series[key], max_points=max_points)
        fig.add_trace(go.Scatter(x=x, y=y, name=key[len("metric/"):], mode="lines+markers",
                                 marker={"size": 4}, line={"color": palette[i % len(palette)]}),
                      row=row, col=1)


def alert_markers(fig: go.Figure, alerts: list[Alert], *, rows: int) -> None:
    """A vertical line on every panel where each alert's evidence began, and a marker on
    the losses panel whose hover shows the message and the explanation (escaped)."""
    if not alerts:
        return
    for alert in alerts:
        for row in range(1, rows + 1):
            fig.add_vline(x=alert.step, line={"color": SEVERITY_COLORS[alert.severity], "width": 1,
                                              "dash": "dash"}, row=row, col=1)
    fig.add_trace(go.Scatter(
        x=np.array([a.step for a in alerts], dtype=np.float32), y=np.zeros(len(alerts), np.float32),
        mode="markers", name="alerts", yaxis="y", marker={"symbol": "triangle-up", "size": 11,
                                                          "color": [SEVERITY_COLORS[a.severity] for a in alerts]},
        text=[_hover(a) for a in alerts], hovertemplate="%{text}<extra></extra>"), row=1, col=1)


def _hover(alert: Alert) -> str:
    """Alert text for a hover label: escaped (messages can hold user strings), wrapped."""
    words = html.escape(alert.explanation).split()
    lines, line = [], ""
    for word in words:
        if len(line) + len(word) > 80:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    lines.append(line)
    return (f"<b>{html.escape(alert.kind)}</b> ({alert.severity}) at step {alert.step}<br>"
            f"{html.escape(alert.message)}<br><i>" + "<br>".join(lines) + "</i>")


def _alpha(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
