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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gandiag.core.alert import Alert
from gandiag.core.family import known_family
from gandiag.core.series import loss_name, read_series
from gandiag.widgets.decimate import minmax, minmax_index
from gandiag.widgets.lines import (
    RAW,
    RAW_OPACITY,
    Smoothing,
    label,
    noisy_line,
    smoothed_y,
    text,
    unique_labels,
)
from gandiag.widgets.labelfree import BINS_PANEL, SERIES_PANEL, CoverageBins, bins_panel, latest_bins, series_panel
from gandiag.widgets.samples import Snapshot, samples_panel_traces
from gandiag.widgets.smoothing import check_weight

TIME_PANELS = (
    ("losses", "losses (x: step = G updates)", 1.0),
    ("outputs", "D outputs (logits): mean ± std, logit gap", 1.0),
    ("balance", "D's confidence: r_t and accuracy", 0.8),
    ("G gradients", "G gradient norm per layer (log10)", 1.0),
    ("D gradients", "D gradient norm per layer (log10)", 1.0),
    ("coverage", "mode coverage: counts (left), shares (right)", 0.9),
    ("distance", "distance to the data (lower is better)", 0.8),
)
SAMPLES_PANEL = ("samples", "samples", 2.2)
COLORS = {"D": "#1f77b4", "G": "#d62728", "real": "#2ca02c", "fake": "#ff7f0e", "gap": "#7f7f7f"}
SEVERITY_COLORS = {"info": "#7f7f7f", "warning": "#ff9f1c", "critical": "#d62728"}
HEATMAP_COLUMNS = 400  # step bins of the gradient heatmaps
ROW_HEIGHT = 220  # pixels per unit of a panel's relative height
__all__ = ["RAW_OPACITY", "Smoothing", "build_figure", "label", "noisy_line", "text"]

def _axis_titles(loss: str | None) -> dict[str, str]:
    """y-axis titles in the loss family's units (D outputs are read in that scale)."""
    family = known_family(loss)
    probabilistic = family is None or family.name == "logits"
    return {"losses": "loss (nats)" if probabilistic else f"{text(str(loss))} loss",
            "outputs": ("D output (logit)" if probabilistic else
                        "D output (critic value)" if family.center is None else "D output (score)"),
            "balance": "r_t = E[sign D(real)]<br>and accuracy",
            "G gradients": "G layer", "D gradients": "D layer",
            "distance": "distance"}


def build_figure(source: Any, alerts: Iterable[Alert] | None = None, *, max_points: int = 2000,
                 title: str | None = None, samples: Snapshot | None = None,
                 samples_panel: bool | None = None, metric_panels: bool | None = None,
                 coverage_panels: bool | None = None, coverage_bins: CoverageBins | None = None,
                 smoothing: float = 0.0, smoothing_choices: Sequence[float] = ()) -> go.Figure:
    """Every panel of a run: `source` is anything `gandiag.core.read_series` reads (a
    stored run, a trainer, a monitor, a history or {key: (steps, values)}, alike: a
    stored run is read one key at a time as the panels ask); `alerts` are marked on the
    time axes with their explanation on hover; `samples` (a `take_snapshot` or a stored
    PNG as `ImageSnapshot`) fills a samples panel, which `samples_panel=True` keeps even
    while empty (a live dashboard whose first snapshot is still to come). The coverage
    and distance panels are drawn when there are `metric/*` series, or when
    `metric_panels=True` (metrics scheduled but not evaluated yet). The label-free
    coverage panels (`gandiag.widgets.labelfree`) likewise with `coverage/*` series or
    `coverage_panels=True`; `coverage_bins` is the latest evaluation's bins when the caller
    keeps them (the live dashboard reads them once per evaluation), else they are read
    from `source`. `smoothing` in [0, 1)
    draws the losses, D outputs, r_t and accuracies smoothed (TensorBoard's EMA, 0.6 is
    its default) over their raw series, drawn faint; `smoothing_choices` precomputes other
    weights (see `Smoothing`)."""
    series = read_series(source, caller="build_figure")  # a key is read when a panel asks
    smooth = Smoothing(check_weight(smoothing, "build_figure"),
                       tuple(check_weight(w, "build_figure") for w in smoothing_choices))
    if metric_panels is None:
        metric_panels = any(key.startswith("metric/") for key in series)
    if coverage_panels is None:
        coverage_panels = "coverage/ndb" in series
    panels = [panel for panel in TIME_PANELS if metric_panels or panel[0] not in ("coverage", "distance")]
    if coverage_panels:  # beside the metric/* panels: after theirs, else after the gradients
        after = "coverage" if metric_panels else "D gradients"
        panels.insert(1 + [name for name, *_ in panels].index(after), SERIES_PANEL)
        panels.append(BINS_PANEL)  # x: bins, not steps: after the time panels
    panels += [SAMPLES_PANEL] if (samples_panel or samples is not None) else []
    fig = make_subplots(rows=len(panels), cols=1, vertical_spacing=0.025,
                        subplot_titles=[panel_title for _, panel_title, _ in panels],
                        row_heights=[height for *_, height in panels],
                        specs=[[{"secondary_y": name == "coverage"}] for name, *_ in panels])
    row = {name: i + 1 for i, (name, *_) in enumerate(panels)}
    losses_panel(fig, series, row=row["losses"], max_points=max_points, smoothing=smooth)
    outputs_panel(fig, series, row=row["outputs"], max_points=max_points, smoothing=smooth)
    balance_panel(fig, series, row=row["balance"], max_points=max_points, smoothing=smooth)
    gradients_panel(fig, series, "G", row=row["G gradients"])
    gradients_panel(fig, series, "D", row=row["D gradients"])
    if metric_panels:
        coverage_panel(fig, series, row=row["coverage"], max_points=max_points)
        distance_panel(fig, series, row=row["distance"], max_points=max_points)
    if coverage_panels:
        series_panel(fig, series, row=row[SERIES_PANEL[0]], max_points=max_points)
        bins_panel(fig, coverage_bins if coverage_bins is not None else latest_bins(source),
                   row=row[BINS_PANEL[0]])
    time_rows = len(panels) - ("samples" in row) - (BINS_PANEL[0] in row)
    for name, axis_title in _axis_titles(loss_name(source)).items():
        if name in row:
            fig.update_yaxes(title_text=axis_title, title_font_size=11, automargin=True, row=row[name], col=1)
    alert_markers(fig, list(alerts or []), rows=time_rows)
    for r in range(2, time_rows + 1):  # the time panels zoom together
        fig.update_xaxes(matches="x", row=r, col=1)
    height = int(ROW_HEIGHT * sum(h for *_, h in panels)) + 100
    if BINS_PANEL[0] in row:  # a three-line title, at 13 px
        _room_for_a_two_line_title(fig, row[BINS_PANEL[0]], share=34 / height)
    if "samples" in row:
        samples_panel_traces(fig, samples, row=row["samples"])
        _room_for_a_two_line_title(fig, row["samples"], share=24 / height)  # 24 px
    legend_per_panel(fig, len(panels), below=("samples",) if "samples" in row else ())
    fig.update_layout(height=height,
                      title=label(title, 120) if title else None,
                      margin={"l": 70, "r": 200, "t": 70, "b": 50}, template="plotly_white")
    return fig


def legend_per_panel(fig: go.Figure, rows: int, *, below: tuple[str, ...] = ()) -> None:
    """One legend beside each panel (plotly's legend2, legend3, ...), so every line is
    named next to where it is drawn; the last panel's legend goes below it when it is
    named in `below` (the samples panel, whose right side holds a colorbar)."""
    axis_row = {}
    for r in range(1, rows + 1):
        for secondary in (False, True):
            try:
                subplot = fig.get_subplot(r, 1, secondary_y=secondary)
            except Exception:  # noqa: BLE001 - no secondary axis in this row
                continue
            if subplot is not None:
                axis_row[subplot.yaxis.plotly_name.replace("axis", "")] = r
    for trace in fig.data:
        r = axis_row.get(trace.yaxis or "y", 1)
        trace.legend = "legend" if r == 1 else f"legend{r}"
    for r in range(1, rows + 1):
        low, high = fig.get_subplot(r, 1).yaxis.domain
        style = {"font": {"size": 10}, "bgcolor": "rgba(255,255,255,0.7)", "tracegroupgap": 2}
        if r == rows and below:
            style |= {"x": 0, "y": low - 0.01, "xanchor": "left", "yanchor": "top", "orientation": "h"}
        else:
            style |= {"x": 1.01, "y": high, "xanchor": "left", "yanchor": "top"}
        fig.update_layout({"legend" if r == 1 else f"legend{r}": style})


def _add_line(fig: go.Figure, series: Mapping, key: str, name: str, color: str, *, row: int,
              max_points: int, smoothing: Smoothing, **line: Any) -> None:
    if key in series:
        steps, values = series[key]
        fig.add_traces(noisy_line(steps, values, name=name, color=color, max_points=max_points,
                                  smoothing=smoothing, **line), rows=row, cols=1)


def losses_panel(fig: go.Figure, series: Mapping, *, row: int, max_points: int = 2000,
                 smoothing: Smoothing = RAW) -> None:
    """D's and G's losses; in a user's loop they come from `monitor.log(...)`, which the
    empty panel says (the hooks see D's outputs and the gradients, not the loss values)."""
    for key, name, color in (("D/loss", "D loss", COLORS["D"]), ("G/loss", "G loss", COLORS["G"])):
        _add_line(fig, series, key, name, color, row=row, max_points=max_points, smoothing=smoothing)
    if "D/loss" not in series and "G/loss" not in series:
        low, high = fig.get_subplot(row, 1).yaxis.domain
        fig.add_annotation(text="no losses recorded yet: in your own loop, add "
                                "monitor.log(loss_d=errD, loss_g=errG)",
                           xref="paper", yref="paper", x=0.47, y=(low + high) / 2, showarrow=False,
                           font={"color": "#7f7f7f"})


def outputs_panel(fig: go.Figure, series: Mapping, *, row: int, max_points: int = 2000,
                  smoothing: Smoothing = RAW) -> None:
    """D(x) and D(G(z)) means (D update) with ± one std bands, and the logit gap; with
    smoothing, the bands are the smoothed mean ± the smoothed std."""
    for side, output in (("real", "D(x)"), ("fake", "D(G(z))")):
        mean_key, std_key = f"D/out_{side}/mean", f"D/out_{side}/std"
        if mean_key not in series:
            continue
        steps, mean = series[mean_key]
        if std_key in series:
            index = minmax_index(mean, max_points)
            std = np.interp(steps, *series[std_key])
            for sign, fill in ((1, None), (-1, "tonexty")):
                y, meta = smoothed_y(mean + sign * std, index, smoothing)
                fig.add_trace(go.Scatter(x=np.asarray(steps, np.float64)[index].astype(np.float32), y=y,
                                         mode="lines", line={"width": 0}, fill=fill,
                                         fillcolor=_alpha(COLORS[side], 0.15), meta=meta or None,
                                         showlegend=False, hoverinfo="skip"), row=row, col=1)
        _add_line(fig, series, mean_key, f"{output} mean", COLORS[side], row=row,
                  max_points=max_points, smoothing=smoothing)
    if "D/out_real/mean" in series and "D/out_fake/mean" in series:
        steps, real = series["D/out_real/mean"]
        gap = real - np.interp(steps, *series["D/out_fake/mean"])
        fig.add_traces(noisy_line(steps, gap, name="logit gap", color=COLORS["gap"], width=1, dash="dot",
                                  max_points=max_points, smoothing=smoothing), rows=row, cols=1)


def balance_panel(fig: go.Figure, series: Mapping, *, row: int, max_points: int = 2000,
                  smoothing: Smoothing = RAW) -> None:
    """r_t = mean sign(D(x)) and D's accuracy on real and fake batches (0.5 is balanced)."""
    for key, name, color in (("D/out_real/sign", "r_t", COLORS["D"]),
                             ("D/out_real/acc", "accuracy on real", COLORS["real"]),
                             ("D/out_fake/acc", "accuracy on fake", COLORS["fake"])):
        _add_line(fig, series, key, name, color, row=row, max_points=max_points, smoothing=smoothing)
    fig.update_yaxes(range=[-1.05, 1.05], tickvals=[-1, -0.5, 0, 0.5, 1], row=row, col=1)


def gradients_panel(fig: go.Figure, series: Mapping, role: str, *, row: int) -> None:
    """A layer x step heatmap of log10 gradient norms (block means over step bins). Each
    layer is read twice (its step range, then its bins), never all layers at once: a
    stored run reads a key from disk whenever it is asked for."""
    prefix = f"{role}/grad_norm/"
    layers = [k for k in series if k.startswith(prefix) and not k.endswith("/total")]
    if not layers:
        return
    spans = [(int(s[0]), int(s[-1])) for s in (series[k][0] for k in layers) if len(s)]
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
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
    # 2-D arrays travel as JSON (only 1-D ones as binary): 2 decimals of log10 are plenty.
    fig.add_trace(go.Heatmap(z=np.round(np.array(rows, dtype=np.float64), 2), x=centers,
                             y=unique_labels([k[len(prefix):] for k in layers]), colorscale="Viridis",
                             colorbar=_colorbar(fig, row, "log10 norm"),
                             name=f"{role} gradients",
                             hovertemplate="step %{x:.0f}<br>layer %{y}<br>log10 norm %{z:.2f}<extra></extra>"),
                  row=row, col=1)


# Scheduled metrics (`metric/<name>`) by what their numbers mean: distances to the data
# (lower is better) get their own panel; of the rest, shares in [0, 1] (HQ, precision,
# recall, coverage) read on the right axis and counts (modes, classes) on the left.
DISTANCES = ("kl", "fid", "kid", "wasserstein", "distance")
SHARES = ("hq", "precision", "recall", "coverage", "density", "accuracy")
COUNTS = ("modes", "classes", "count")
PALETTE = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#1f77b4", "#ff7f0e"]


def _metric_kind(name: str, values: np.ndarray) -> str:
    if any(word in name.lower() for word in DISTANCES):
        return "distance"
    if any(word in name.lower() for word in COUNTS):
        return "count"
    if name.lower() in SHARES or not np.isfinite(values).any() or np.nanmax(np.abs(values)) <= 1.0:
        return "share"
    return "count"


def _metrics(series: Mapping, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    names = sorted(k[len("metric/"):] for k in series if k.startswith("metric/"))
    found = [(name, _metric_kind(name, series[f"metric/{name}"][1])) for name in names]
    return [(name, kind) for name, kind in found if kind in kinds]


def coverage_panel(fig: go.Figure, series: Mapping, *, row: int, max_points: int = 2000) -> None:
    """Counts (modes covered, classes) on the left axis, shares (HQ, PRDC) on the right;
    shares alone take the left axis (plotly misplaces a right axis over an empty left one)."""
    metrics = _metrics(series, ("count", "share"))
    two_axes = {kind for _, kind in metrics} == {"count", "share"}
    for i, (name, kind) in enumerate(metrics):
        x, y = minmax(*series[f"metric/{name}"], max_points=max_points)
        fig.add_trace(go.Scatter(x=x, y=y, name=label(name), mode="lines+markers", marker={"size": 4},
                                 line={"color": PALETTE[i % len(PALETTE)],
                                       "dash": "dot" if kind == "share" else "solid"}),
                      row=row, col=1, secondary_y=two_axes and kind == "share")
    # Shares read as percent at round ticks (left alone, the right axis syncs its ticks to
    # the left one's and lands on 24.5 %, 48.9 %, ...).
    share_axis = {"title_text": "share", "range": [0, 1.05], "tickmode": "array",
                  "tickvals": [0, 0.25, 0.5, 0.75, 1], "tickformat": ".0%", "title_font_size": 11}
    if two_axes:
        fig.update_yaxes(title_text="count", rangemode="tozero", title_font_size=11, row=row, col=1,
                         secondary_y=False)
        fig.update_yaxes(share_axis, row=row, col=1, secondary_y=True)
    elif metrics:
        shares = metrics[0][1] == "share"
        fig.update_yaxes(share_axis if shares else {"title_text": "count", "rangemode": "tozero",
                                                    "title_font_size": 11},
                         row=row, col=1, secondary_y=False)


def distance_panel(fig: go.Figure, series: Mapping, *, row: int, max_points: int = 2000) -> None:
    """Reverse KL, KL, FID, KID: how far G's distribution is from the data's."""
    for i, (name, _) in enumerate(_metrics(series, ("distance",))):
        x, y = minmax(*series[f"metric/{name}"], max_points=max_points)
        fig.add_trace(go.Scatter(x=x, y=y, name=label(name), mode="lines+markers", marker={"size": 4},
                                 line={"color": PALETTE[-1 - i % len(PALETTE)]}), row=row, col=1)
    fig.update_yaxes(rangemode="tozero", row=row, col=1)


MAX_ALERT_LINES = 60  # a long run re-arms its detectors: lines per figure stay bounded


def alert_markers(fig: go.Figure, alerts: list[Alert], *, rows: int) -> None:
    """A vertical line on every panel where each alert's evidence began, and a marker on
    the losses panel whose hover shows the message and the explanation (escaped)."""
    if not alerts:
        return
    lines = [(alert.step, SEVERITY_COLORS[alert.severity]) for alert in alerts]
    add_lines(fig, thin_out(lines, MAX_ALERT_LINES), rows=range(1, rows + 1))
    fig.add_trace(go.Scatter(
        x=np.array([a.step for a in alerts], dtype=np.float32), y=np.zeros(len(alerts), np.float32),
        mode="markers", name="alerts", yaxis="y", marker={"symbol": "triangle-up", "size": 11,
                                                          "color": [SEVERITY_COLORS[a.severity] for a in alerts]},
        text=[_hover(a) for a in alerts], hovertemplate="%{text}<extra></extra>"), row=1, col=1)


def thin_out(lines: list[tuple[int, str]], most: int) -> list[tuple[int, str]]:
    """At most about `most` (step, colour) lines: beyond that, one per colour in each of
    `most` equal step bins (every alert keeps its marker; only the lines are merged)."""
    lines = sorted(set(lines))
    if len(lines) <= most:
        return lines
    first, last = lines[0][0], lines[-1][0]
    width = max((last - first + 1) / most, 1)
    kept: dict[tuple[int, str], tuple[int, str]] = {}
    for step, color in lines:
        kept.setdefault((int((step - first) // width), color), (step, color))
    return list(kept.values())


def add_lines(fig: go.Figure, lines: list[tuple[int, str]], *, rows: Iterable[int]) -> None:
    """Vertical dashed lines across the given panels, assigned as one list: plotly's
    add_vline re-validates every shape so far on each call (quadratic: 31 s for 40
    alerts on seven panels, measured)."""
    shapes = list(fig.layout.shapes)
    for row in rows:
        subplot = fig.get_subplot(row, 1)
        x_ref = subplot.xaxis.plotly_name.replace("axis", "")
        y_ref = subplot.yaxis.plotly_name.replace("axis", "") + " domain"
        shapes += [{"type": "line", "xref": x_ref, "yref": y_ref, "x0": step, "x1": step, "y0": 0,
                    "y1": 1, "line": {"color": color, "width": 1, "dash": "dash"}} for step, color in lines]
    fig.layout.shapes = shapes


def _hover(alert: Alert) -> str:
    """Alert text for a hover label: escaped (messages can hold user strings), wrapped."""
    words = text(alert.explanation).split()
    lines, line = [], ""
    for word in words:
        if len(line) + len(word) > 80:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    lines.append(line)
    return (f"<b>{text(alert.kind)}</b> ({text(alert.severity)}) at step {alert.step}<br>"
            f"{text(alert.message)}<br><i>" + "<br>".join(lines) + "</i>")


def _room_for_a_two_line_title(fig: go.Figure, row: int, *, share: float) -> None:
    """Lower a panel's top (and its title with it) so a two-line title clears the panel above."""
    axis = fig.get_subplot(row, 1).yaxis
    low, high = axis.domain
    title = next(a for a in fig.layout.annotations if a.y == high and a.yref == "paper")
    axis.domain = [low, high - share]
    title.y = high - share


def _colorbar(fig: go.Figure, row: int, title: str) -> dict:
    """A colorbar beside its own panel (paper coordinates from the row's domain)."""
    low, high = fig.get_subplot(row, 1).yaxis.domain
    return {"title": title, "len": high - low, "y": (low + high) / 2, "yanchor": "middle",
            "thickness": 12}


def _alpha(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
