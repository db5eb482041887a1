"""The label-free coverage panels: `gandiag.metrics.LabelFreeCoverage`'s `coverage/*` keys.

- over steps: NDB/k and JSD beside what two real samples of the same size give (their
  null levels, dashed), the share of bins covered, precision and recall;
- at the latest evaluation: each k-means bin's share of the real and of the fake
  samples, bins ordered by real share, largest first (the picture of Richardson & Weiss
  2018, "On GANs and GMMs"), with the starved bins (fake share under a quarter of the real
  share, as `coverage/bins_covered` counts them) marked.

The bin counts are the histogram series `coverage/real_bins` and `coverage/fake_bins`
(one row per evaluation, one column per k-means bin), read from a live history and a
stored run alike.

    >>> import numpy as np
    >>> from gandiag.core.history import History
    >>> from gandiag.core.records import Histograms, Records
    >>> history = History()
    >>> at = np.array([500])
    >>> history.append(Records(scalars={"coverage/ndb": (at, np.array([0.5]))}, histograms={
    ...     "coverage/real_bins": Histograms(at, np.arange(5.0), [[40, 30, 20, 10]]),
    ...     "coverage/fake_bins": Histograms(at, np.arange(5.0), [[0, 60, 38, 2]])}))
    >>> bins = latest_bins(history)
    >>> bins.step, bins.order.tolist(), bins.starved.tolist()
    (500, [0, 1, 2, 3], [True, False, False, True])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from gandiag.core.series import read_series
from gandiag.widgets.decimate import minmax

REAL_BINS, FAKE_BINS = "coverage/real_bins", "coverage/fake_bins"
STARVED_BELOW = 0.25  # a bin is starved when its fake share is under this part of its real share
SERIES_PANEL = ("label-free", "label-free coverage (dashed: what two real samples give)", 0.9)
BINS_PANEL = ("coverage bins", "coverage bins", 1.1)  # its title says the step and the numbers
# (key, legend name, colour, dash): lower is better for NDB/k and JSD, higher for the rest
LINES = (
    ("coverage/ndb", "NDB/k", "#d62728", "solid"),
    ("coverage/ndb_null", "NDB/k, real vs real", "#d62728", "dash"),
    ("coverage/jsd", "JSD (nats)", "#8c564b", "solid"),
    ("coverage/jsd_null", "JSD, real vs real", "#8c564b", "dash"),
    ("coverage/regions_jsd", "regions' JSD (what mode_collapse reads)", "#e377c2", "solid"),
    ("coverage/regions_jsd_null", "regions' JSD, real vs real", "#e377c2", "dash"),
    ("coverage/bins_covered", "bins covered", "#2ca02c", "solid"),
    ("coverage/precision", "precision", "#9467bd", "dot"),
    ("coverage/recall", "recall", "#17becf", "dot"),
)
REAL_COLOR, FAKE_COLOR, STARVED_COLOR = "#2ca02c", "#ff7f0e", "#d62728"


@dataclass(frozen=True)
class CoverageBins:
    """The bin counts of one evaluation, and its `coverage/*` values (without the prefix)."""

    step: int
    real: np.ndarray  # (k,) real samples per k-means bin
    fake: np.ndarray  # (k,) fake samples per k-means bin
    values: Mapping[str, float]

    @property
    def real_share(self) -> np.ndarray:
        return self.real / max(float(self.real.sum()), 1.0)

    @property
    def fake_share(self) -> np.ndarray:
        return self.fake / max(float(self.fake.sum()), 1.0)

    @property
    def order(self) -> np.ndarray:
        """Bin ids by real share, largest first (ties by id)."""
        return np.argsort(-self.real_share, kind="stable")

    @property
    def starved(self) -> np.ndarray:
        """Per bin (by id): real samples fall there, fakes hardly (under a quarter as often)."""
        real = self.real_share
        return (real > 0) & (self.fake_share < STARVED_BELOW * real)


def has_coverage(source: Any) -> bool:
    """Whether `source` recorded label-free coverage (cheap: one key lookup)."""
    return "coverage/ndb" in read_series(source, caller="has_coverage")


def latest_bins(source: Any) -> CoverageBins | None:
    """The last evaluation's bin counts (None when there is none yet). `source`: anything
    `build_figure` takes that holds histograms: a stored run, a Trainer, a Monitor, a History."""
    real, fake = _histograms(source, REAL_BINS), _histograms(source, FAKE_BINS)
    if real is None or fake is None or not len(real.steps):
        return None
    step = int(real.steps.max())
    at_fake = np.flatnonzero(fake.steps == step)
    if not len(at_fake):  # the fake row of that evaluation has not arrived (yet)
        return None
    series = read_series(source, caller="latest_bins")
    values = {}
    for key, *_ in LINES + (("coverage/n",),):
        if key in series:
            steps, column = series[key]
            here = np.flatnonzero(steps == step)
            if len(here):
                values[key[len("coverage/"):]] = float(column[here[-1]])
    return CoverageBins(step, real.counts[np.flatnonzero(real.steps == step)[-1]].astype(np.float64),
                        fake.counts[at_fake[-1]].astype(np.float64), values)


def _histograms(source: Any, key: str) -> Any:
    """`key`'s Histograms from a stored run (read only when recorded), a History, or a
    Trainer / Monitor (its history); None where the source holds none."""
    history = getattr(source, "history", None)
    holder = history if history is not None and hasattr(history, "histograms") else source
    histograms = getattr(holder, "histograms", None)
    if callable(histograms):  # a stored Run: one query per key, so ask only for recorded ones
        keys = getattr(holder, "histogram_keys", None)
        return histograms(key) if callable(keys) and key in keys() else None
    return histograms.get(key) if isinstance(histograms, Mapping) else None


def series_panel(fig: go.Figure, series: Mapping, *, row: int, max_points: int = 2000) -> None:
    """The `coverage/*` values over steps, as evaluated (no smoothing: few points)."""
    traces = [go.Scatter(x=x, y=y, name=name, mode="lines+markers", marker={"size": 4},
                         line={"color": color, "dash": dash, "width": 1.5})
              for key, name, color, dash in LINES if key in series
              for x, y in [minmax(*series[key], max_points=max_points)]]
    if traces:  # one call: each add_trace(row=...) walks the whole layout (refresh time)
        fig.add_traces(traces, rows=row, cols=1)
    fig.update_yaxes(title_text="share (JSD: nats)", title_font_size=11, range=[0, 1.05],
                     tickvals=[0, 0.25, 0.5, 0.75, 1], row=row, col=1)


def bins_panel(fig: go.Figure, bins: CoverageBins | None, *, row: int) -> None:
    """Real and fake shares per bin at `bins.step`, bins by real share, starved ones marked;
    the panel's title gives the step, NDB/k and JSD against their null levels and the
    bins covered. None: an empty panel that says it waits for the first evaluation."""
    if bins is None:
        title = "coverage bins: waiting for the first label-free evaluation"
    else:
        order = bins.order
        rank = np.arange(1, len(order) + 1, dtype=np.float32)
        real, fake = bins.real_share[order].astype(np.float32), bins.fake_share[order].astype(np.float32)
        ids = order.astype(np.float32)  # the k-means bin, for the hover
        starved = bins.starved[order]
        traces = [go.Bar(x=rank, y=share, name=name, marker={"color": color}, customdata=ids,
                         hovertemplate=f"bin %{{customdata:.0f}}: {name} %{{y:.1%}}<extra></extra>")
                  for name, share, color in (("real share", real, REAL_COLOR), ("fake share", fake, FAKE_COLOR))]
        traces.append(go.Scatter(  # always there (maybe empty): a refresh reuses the traces
            x=rank[starved], y=np.maximum(real, fake)[starved] + 0.08 * float(real.max(initial=0)),
            mode="markers", name=f"starved (fake < real/{round(1 / STARVED_BELOW)})",
            marker={"symbol": "triangle-down", "size": 9, "color": STARVED_COLOR},
            customdata=ids[starved], hovertemplate="bin %{customdata:.0f}: starved<extra></extra>"))
        fig.add_traces(traces, rows=row, cols=1)
        fig.layout.barmode, fig.layout.bargap = "group", 0.2
        title = _bins_title(bins, int(starved.sum()))
    # no axis title: the samples panel's two-line title sits right below (the title says it)
    fig.update_xaxes(range=[0.5, len(bins.real) + 0.5] if bins is not None else None, row=row, col=1)
    fig.update_yaxes(title_text="share of samples", title_font_size=11, tickformat=".0%",
                     rangemode="tozero", row=row, col=1)
    for annotation in fig.layout.annotations:  # the subplot title make_subplots wrote
        if annotation.text == BINS_PANEL[1]:
            annotation.text, annotation.font.size = title, 13


def _bins_title(bins: CoverageBins, starved: int) -> str:
    def number(name: str, form: str) -> str:
        value = bins.values.get(name)
        return "n/a" if value is None or not np.isfinite(value) else format(value, form)

    n = bins.values.get("n", bins.real.sum())
    # three short lines: a notebook's output area is ~550 px wide (one long line was cut)
    return (f"coverage bins at step {bins.step}: {len(bins.real)} k-means bins by real share<br>"
            f"{n:.0f} samples each; {starved} starved (fake share < real share / 4)<br>"
            f"NDB/k {number('ndb', '.2f')} (real vs real {number('ndb_null', '.2f')}) · "
            f"JSD {number('jsd', '.3f')} ({number('jsd_null', '.3f')}) · "
            f"bins covered {number('bins_covered', '.0%')}")
