"""`Replay`: a stored run in the dashboard's panels, or several runs overlaid.

    dash = gandiag.Dashboard.from_run("vanilla")              # runs/gandiag.sqlite
    dash = gandiag.Dashboard.from_run("vanilla", "packed")    # overlaid for comparison

Reload re-reads the store, so a run that another process (`gandiag train`, a job on a
cluster) is still writing can be followed. A single run's stored sample pictures are
shown in the samples panel, with a slider over the steps they were taken at.
"""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from gandiag.store.reader import Run, open_run
from gandiag.store.schema import DEFAULT_STORE
from gandiag.widgets.compare import compare_figure
from gandiag.widgets.figures import build_figure
from gandiag.widgets.samples import stored_snapshots
from gandiag.widgets.smoothing import DEFAULT_SMOOTHING, check_weight
from gandiag.widgets.sync import sync_figure


def smoothing_slider(value: float) -> widgets.FloatSlider:
    """The smoothing control of the dashboard and the replay (TensorBoard's: 0 is raw)."""
    return widgets.FloatSlider(value=value, min=0.0, max=0.99, step=0.01, description="smoothing",
                               readout_format=".2f", continuous_update=False,
                               tooltip="exponential moving average with debiasing (TensorBoard's); 0: raw")


class Replay:
    """Stored runs in one FigureWidget with a Reload button (see `Dashboard.from_run`)."""

    def __init__(self, *runs: str | int | Run, store: str | os.PathLike = DEFAULT_STORE,
                 max_points: int = 2000, title: str | None = None,
                 smoothing: float = DEFAULT_SMOOTHING) -> None:
        if not runs:
            raise ValueError("Dashboard.from_run: expected one or more run names (or ids, or "
                             "open_run(...) objects), got none; see gandiag.list_runs(store)")
        self.runs = [run if isinstance(run, Run) else open_run(run, os.fspath(store)) for run in runs]
        self.max_points, self.title = max_points, title
        self.smoothing = check_weight(smoothing, "Dashboard.from_run")
        self.snapshots = stored_snapshots(self.runs[0]) if len(self.runs) == 1 else []
        self.status = widgets.HTML()
        self.figure = go.FigureWidget(self._build())
        self.reload_button = widgets.Button(description="Reload", icon="refresh",
                                            tooltip="re-read the store (a run still being written moves on)")
        self.reload_button.on_click(lambda _: self.reload())
        self.samples_slider = widgets.SelectionSlider(
            options=self._slider_options() or [("none", -1)], description="samples at",
            disabled=not self.snapshots, continuous_update=False)
        if self.snapshots:
            self.samples_slider.value = len(self.snapshots) - 1
        self._quiet_slider = False  # set while reload() rebuilds the slider's options
        self.samples_slider.observe(lambda _: self._quiet_slider or self.refresh(), names="value")
        self.smoothing_slider = smoothing_slider(self.smoothing)
        self.smoothing_slider.observe(self._on_smoothing, names="value")
        controls = ([self.reload_button] + ([self.samples_slider] if len(self.runs) == 1 else [])
                    + [self.smoothing_slider])
        self.widget = widgets.VBox([widgets.HBox(controls), self.status, self.figure])
        self._show_status()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _on_smoothing(self, change: dict) -> None:
        self.smoothing = check_weight(change["new"], "smoothing slider")
        self.refresh()

    def _slider_options(self) -> list[tuple[str, int]]:
        return [(f"step {shot.step}", i) for i, shot in enumerate(self.snapshots)]

    def _build(self) -> go.Figure:
        if len(self.runs) > 1:
            labels = _labels(self.runs)
            return compare_figure(dict(zip(labels, self.runs)),
                                  {label: run.alerts() for label, run in zip(labels, self.runs)},
                                  max_points=self.max_points, title=self.title or " vs ".join(labels),
                                  smoothing=self.smoothing)
        run = self.runs[0]
        chosen = getattr(self, "samples_slider", None)
        index = chosen.value if chosen is not None and chosen.value >= 0 else len(self.snapshots) - 1
        return build_figure(run, run.alerts(), max_points=self.max_points, title=self.title or run.name,
                            samples=self.snapshots[index] if self.snapshots else None,
                            smoothing=self.smoothing)

    def refresh(self) -> None:
        """Redraw from what has been read (one message to the browser)."""
        sync_figure(self.figure, self._build())
        self._show_status()

    def reload(self) -> None:
        """Re-read the store: new steps, alerts and samples of runs still being written."""
        for run in self.runs:
            run.refresh()
        if len(self.runs) == 1:
            shown = self.samples_slider.value
            following = shown == len(self.snapshots) - 1  # showing the newest: keep showing the newest
            self.snapshots = stored_snapshots(self.runs[0])
            if self.snapshots:
                self._quiet_slider = True
                try:
                    self.samples_slider.options = self._slider_options()
                    self.samples_slider.value = len(self.snapshots) - 1 if following else max(shown, 0)
                    self.samples_slider.disabled = False
                finally:
                    self._quiet_slider = False
        self.refresh()

    def _show_status(self) -> None:
        parts = []
        for label, run in zip(_labels(self.runs), self.runs):
            alerts = run.alerts()
            kinds = ", ".join(sorted({a.kind for a in alerts}))
            parts.append(f"<b>{html.escape(label)}</b>: {html.escape(str(run.status))}, "
                         f"step {run.last_step}, "
                         + (f"{len(alerts)} alert(s): {html.escape(kinds)}" if alerts else "no alerts"))
        self.status.value = "<br>".join(parts)

    def close(self) -> None:
        for run in self.runs:
            run.close()


def _labels(runs: list[Run]) -> list[str]:
    """Run names, with the id added where two runs share a name."""
    names = [run.name for run in runs]
    return [f"{run.name} #{run.id}" if names.count(run.name) > 1 else run.name for run in runs]
