"""`Dashboard`: the live notebook view of a training run (ipywidgets + one FigureWidget).

    dash = gandiag.Dashboard(trainer)      # or Dashboard(monitor) for your own loop
    dash                                   # shows it
    dash.train(5000)                       # trains in a background thread; the notebook stays usable
    dash.wait()                            # joins; re-raises an exception from training
                                           # (the buttons wait while a cell runs: Interrupt stops)

Why a background thread: ipykernel (7.4 measured) handles no widget message, so no
button click, while a cell runs synchronously, so the controls (pause, resume, stop, one
step, learning-rate sliders) only work when training runs beside the kernel's main
thread. The figure is refreshed by one refresher thread only (plotly #5691: FigureWidget
updates from several threads interleave), at most every `refresh_seconds` and only after
a flush brought new records, as one `batch_update` with full, decimated float32 arrays
(a reloaded page recovers). The dashboard is a `gandiag.core.Callback` of its trainer or
monitor: `on_records` wakes the refresher, `on_step_end` applies the controls.

Samples panel: a trainer's G and D are sampled between steps (`take_snapshot`); a user
loop's models are not ours to run, so its panel shows what the monitor kept of D's inputs
(`kept_snapshot`), copied at a flush on the loop's thread. The label-free coverage panels
(`coverage/*`) are kept from the start where a `LabelFreeCoverage` callback will fill
them; their bins are read once per evaluation, not at every refresh.
"""

from __future__ import annotations

import html
import threading
import time
import traceback
import warnings
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from gandiag.detect.live import DiagnosisCallback
from gandiag.store.schema import DEFAULT_STORE
from gandiag.metrics.coverage import LabelFreeCoverage
from gandiag.widgets.controls import Controls
from gandiag.widgets.figures import build_figure
from gandiag.widgets.kept import kept_shape, shape_note
from gandiag.widgets.labelfree import CoverageBins, latest_bins
from gandiag.widgets.replay import Replay, smoothing_slider
from gandiag.widgets.smoothing import DEFAULT_SMOOTHING, check_weight
from gandiag.widgets.snapshot import take_snapshot
from gandiag.widgets.sync import sync_figure


REST_FACTOR = 20  # the refresher rests 20x as long as a refresh took (measured ~90 ms) ...
MAX_REST = 5.0  # ... but at most 5 s, so a loaded machine still sees the run move


class Dashboard:
    """Live panels and controls for a `Trainer` (or a `Monitor` of a user loop)."""

    def __init__(self, source: Any, *, refresh_seconds: float = 0.5, max_points: int = 2000,
                 title: str | None = None, samples_seconds: float | None = 2.0,
                 smoothing: float = DEFAULT_SMOOTHING, **deprecated: Any) -> None:
        refresh_seconds, samples_seconds = _renamed(deprecated, refresh_seconds, samples_seconds)
        if hasattr(source, "monitor") and hasattr(source, "fit"):
            self.trainer, self.monitor = source, source.monitor
        elif hasattr(source, "history") and hasattr(source, "add_callback"):
            self.trainer, self.monitor = None, source
        else:
            raise TypeError(f"Dashboard: expected a gandiag.Trainer or a Monitor (gandiag.attach), "
                            f"got {type(source).__name__}; for a stored run use "
                            "gandiag.Dashboard.from_run(name)")
        if not refresh_seconds > 0:
            raise ValueError(f"Dashboard: expected refresh_seconds > 0, got {refresh_seconds!r}")
        if samples_seconds is not None and not samples_seconds > 0:
            raise ValueError(f"Dashboard: expected samples_seconds > 0 (or None: no samples "
                             f"panel), got {samples_seconds!r}")
        self.refresh_seconds, self.max_points, self.title = refresh_seconds, max_points, title
        self.smoothing = check_weight(smoothing, "Dashboard")
        self._new_records = threading.Event()
        self._controls = Controls(self._new_records, user_loop=self.trainer is None)
        self.samples_seconds = samples_seconds
        self._last_snapshot_request = time.monotonic()
        if self.trainer is None:
            self._first_kept_snapshot()
        elif self.samples_seconds is not None and not self.trainer.running:
            self._controls.snapshot = _quietly(take_snapshot, self.trainer)
        host = self.trainer if self.trainer is not None else self.monitor
        self._expects_metrics = _expects_metrics(host)
        self._expects_coverage = _expects_coverage(host) or None  # None: once recorded
        self._bins: CoverageBins | None = None  # the latest evaluation's, read once per evaluation
        self.figure = go.FigureWidget(self._build())
        self.status = widgets.HTML("waiting for the first flush")
        self.error: BaseException | None = None
        self._interrupted = False
        self._failure: str | None = None  # "training failed: ..." kept at the front of the status
        self._status_lock = threading.Lock()  # the refresher and the training thread both write it
        self._draw_lock = threading.Lock()  # the refresher, and a refresh() called from a cell
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        # Ends the refresher's rest early: training ended (nothing to leave the GIL to, and
        # the last steps should show at once), the smoothing moved, or the dashboard closed.
        self._wake = threading.Event()
        if self.trainer is not None:
            self.trainer.callbacks.append(self._controls)
        else:
            self.monitor.add_callback(self._controls)
        self.controls = self._make_controls()
        self.widget = widgets.VBox([self.controls, self.status, self.figure])
        self._refresher = threading.Thread(target=self._refresh_loop, daemon=True, name="gandiag-dashboard")
        self._refresher.start()

    @classmethod
    def from_run(cls, *runs: Any, store: str = DEFAULT_STORE, max_points: int = 2000,
                 title: str | None = None, smoothing: float = DEFAULT_SMOOTHING) -> Replay:
        """A stored run in the same panels, or several overlaid for comparison: run names
        (the newest of that name), ids or `open_run(...)` objects from `store`.

            gandiag.Dashboard.from_run("vanilla", "packed", store="runs/gandiag.sqlite")
        """
        return Replay(*runs, store=store, max_points=max_points, title=title, smoothing=smoothing)

    # ---- display ------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _make_controls(self) -> widgets.Widget:
        self.pause_button = widgets.ToggleButton(description="Pause", icon="pause")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger")
        self.step_button = widgets.Button(description="One step", icon="step-forward")
        self.lr_sliders = {}
        self.smoothing_slider = smoothing_slider(self.smoothing)
        self.smoothing_slider.observe(self._on_smoothing, names="value")
        if self.trainer is None:  # a user loop: only the view is ours to control
            return widgets.HBox([self.smoothing_slider])
        self.pause_button.observe(self._on_pause, names="value")
        self.stop_button.on_click(lambda _: self.stop())
        self.step_button.on_click(lambda _: self.step())
        for role, optimizer in (("D", self.trainer.opt_d), ("G", self.trainer.opt_g)):
            slider = widgets.FloatLogSlider(value=float(optimizer.param_groups[0]["lr"]), base=10, min=-6,
                                            max=-1, step=0.1, description=f"lr {role}",
                                            readout_format=".1e", continuous_update=False)
            slider.observe(lambda change, role=role: self._controls.lr.__setitem__(role, change["new"]),
                           names="value")
            self.lr_sliders[role] = slider
        # wrapped, not squeezed: four sliders beside three buttons overflow a narrow notebook
        return widgets.HBox([self.pause_button, self.step_button, self.stop_button,
                             *self.lr_sliders.values(), self.smoothing_slider],
                            layout=widgets.Layout(flex_flow="row wrap"))

    # ---- training -----------------------------------------------------------------
    def train(self, steps: int | None = None) -> None:
        """Train `steps` more steps in a background thread; returns at once (and returns
        nothing, so a cell ending in `dash.train(n)` does not show the dashboard again)."""
        if self.trainer is None:
            raise TypeError("Dashboard.train: this dashboard watches a user loop (a Monitor); run "
                            "your loop as usual, the panels refresh at each flush")
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("Dashboard.train: training is already running; wait() or stop() first")
        if self._controls not in self.trainer.callbacks:  # closed, then trained again
            self.trainer.callbacks.append(self._controls)
        self.error, self._interrupted, self._failure = None, False, None
        self._thread = threading.Thread(target=self._train, args=(steps,), daemon=True,
                                        name="gandiag-training")
        self._thread.start()

    def _train(self, steps: int | None) -> None:
        try:
            self.trainer.fit(steps)
            if self.samples_seconds is not None:  # the samples panel ends where training did
                self._controls.snapshot = _quietly(take_snapshot, self.trainer)
        except BaseException as error:  # shown in the widget, re-raised by wait()
            self.error = error
            text = "".join(traceback.format_exception_only(type(error), error)).strip()
            with self._status_lock:
                self._failure = f"<b style='color:#d62728'>training failed:</b> {html.escape(text)}"
                self.status.value = self._failure
        finally:
            self._new_records.set()
            self._wake.set()

    def wait(self, timeout: float | None = None) -> None:
        """Join the training thread; re-raise what stopped it with an error.

        While `wait()` runs, the kernel is busy and the dashboard's buttons cannot reach it
        (ipykernel 7.4 handles no widget message during a running cell): call it where a
        script must block (nbval, the end of a notebook), and stop a waiting cell with
        Kernel -> Interrupt, which stops training cleanly at the next step."""
        if self._thread is None:
            return
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while self._thread.is_alive() and (end is None or time.monotonic() < end):
                self._thread.join(0.1)  # short joins: an interrupt gets through at once
        except KeyboardInterrupt:
            self.stop()
            self._thread.join()
            with self._status_lock:
                self._interrupted = True  # said in the status line from now on
                self.status.value += " · stopped by Kernel -> Interrupt"
            raise
        if self.error is not None:
            raise self.error

    def pause(self) -> None:
        self.pause_button.value = True

    def resume(self) -> None:
        self.pause_button.value = False

    def stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()

    def step(self) -> None:
        """Train one step, then pause (from a paused state)."""
        if self.trainer is not None:
            self._controls.single_step = True
            self.trainer.resume()

    def _on_pause(self, change: dict) -> None:
        if change["new"]:
            self.trainer.pause()
            self.pause_button.description, self.pause_button.icon = "Resume", "play"
        else:
            self.trainer.resume()
            self.pause_button.description, self.pause_button.icon = "Pause", "pause"

    def _on_smoothing(self, change: dict) -> None:
        # The refresher thread redraws (one thread touches the figure), also when paused.
        self.smoothing = check_weight(change["new"], "smoothing slider")
        self._new_records.set()
        self._wake.set()

    # ---- refreshing ---------------------------------------------------------------
    def _refresh_loop(self) -> None:
        while not self._closed.is_set():
            if (self.samples_seconds is not None
                    and time.monotonic() - self._last_snapshot_request > self.samples_seconds):
                self._controls.want_snapshot = True  # taken at the next step end
                self._last_snapshot_request = time.monotonic()
            pause = self.refresh_seconds
            if self._new_records.wait(timeout=self.refresh_seconds):
                self._new_records.clear()
                started = time.perf_counter()
                try:
                    self.refresh()
                except Exception as error:  # never let drawing stop training
                    self.status.value = f"dashboard refresh failed: {html.escape(repr(error))}"
                # Drawing holds the GIL that training needs: rest REST_FACTOR times as
                # long as the refresh took, so it takes <= ~1/REST_FACTOR of it.
                pause = max(pause, min(REST_FACTOR * (time.perf_counter() - started), MAX_REST))
            self._wake.wait(pause)
            self._wake.clear()

    def _alerts(self) -> list:
        return list(self.monitor.alerts)  # every alert announced on the host (see Callback)

    def _not_judging(self) -> str:
        """" (7 of 10 detectors cannot judge yet)" while the live diagnosis has seen too
        little for some detectors: "no alerts" early in a run is no verdict."""
        found = [cb for cb in self.monitor.callbacks if isinstance(cb, DiagnosisCallback)]
        readiness = found[0].readiness() if found else []
        blind = sum(not r.judged for r in readiness)
        return f" ({blind} of {len(readiness)} detectors cannot judge yet)" if blind else ""

    def _first_kept_snapshot(self) -> None:
        """A user loop's samples panel: shown where the monitor keeps samples of a shape
        the panel draws (or of a shape still unknown); the first picture is taken here when
        samples are kept already (here no loop runs in this thread: a loop in another
        thread may be mid-flush, which can mix two flushes in this one picture)."""
        shape = kept_shape(self.monitor)
        if getattr(self.monitor, "reservoir", None) is None:
            self.samples_seconds = None  # attach(keep_samples=0): nothing kept, nothing to show
        elif shape is not None and shape_note(shape) is not None:
            self._controls.snapshot_note, self.samples_seconds = shape_note(shape), None
        elif self.samples_seconds is not None:
            self._controls.take_kept(self.monitor)

    def _coverage_bins(self) -> CoverageBins | None:
        """The latest evaluation's bins: read again only when a new evaluation arrived."""
        history = self.monitor.history
        if "coverage/ndb" not in history:
            return None
        step = int(history["coverage/ndb"][0][-1])
        if self._bins is None or self._bins.step != step:
            self._bins = latest_bins(history)
        return self._bins

    def _build(self) -> go.Figure:
        fig = build_figure(self.monitor.history, self._alerts(), max_points=self.max_points,
                           title=self.title, samples=self._controls.snapshot,
                           samples_panel=self.samples_seconds is not None,
                           metric_panels=self._expects_metrics,
                           coverage_panels=self._expects_coverage, coverage_bins=self._coverage_bins(),
                           smoothing=self.smoothing)
        if self._controls.snapshot_note is not None:  # the panel was kept before the shape was known
            for annotation in fig.layout.annotations:
                if annotation.text == "samples: waiting for the first snapshot":
                    annotation.text = self._controls.snapshot_note
        return fig

    def refresh(self) -> None:
        """Redraw every panel from the current records (one message to the browser)."""
        with self._draw_lock:  # built and sent whole: a refresh begun earlier cannot land last
            sync_figure(self.figure, self._build())
        step = self.monitor.step
        alerts = self._alerts()
        status = (f"step {step}" + (f" · {len(alerts)} alert(s): "
                                    + html.escape(", ".join(sorted({a.kind for a in alerts})))
                                    if alerts else " · no alerts" + self._not_judging()))
        if self._controls.snapshot_error is not None:
            status += " · samples panel off: " + html.escape(repr(self._controls.snapshot_error))
            self.samples_seconds = None
        if self._controls.snapshot_note is not None:
            status += " · " + html.escape(self._controls.snapshot_note)
        with self._status_lock:  # written whole, with what the training thread said last
            if self._failure is not None:
                status = f"{self._failure} · {status}"
            if self._interrupted:
                status += " · stopped by Kernel -> Interrupt"
            self.status.value = status

    def close(self) -> None:
        """Stop refreshing and detach from the monitor."""
        self._closed.set()
        self._wake.set()
        self._new_records.set()
        if self.trainer is not None:
            if self._controls in self.trainer.callbacks:
                self.trainer.callbacks.remove(self._controls)
        else:
            self.monitor.remove_callback(self._controls)
        if self._refresher is not threading.current_thread():
            self._refresher.join(timeout=10)


def _expects_metrics(host: Any) -> bool | None:
    """Will `metric/*` series come? Decided once so the panels keep their places: yes
    when a callback says it records metrics (a metric schedule, a store recorder or
    progress line evaluating self-scoring data). Otherwise no for a trainer; for a user
    loop None: the panels appear with the first metric it records."""
    for callback in host.callbacks:
        records_metrics = getattr(callback, "records_metrics", None)
        if callable(records_metrics) and records_metrics(host):
            return True
    if any(key.startswith("metric/") for key in host.history):
        return True
    return False if hasattr(host, "fit") else None


def _expects_coverage(host: Any) -> bool:
    """Will `coverage/*` series come (a `LabelFreeCoverage` callback, or recorded already)?"""
    return (any(isinstance(callback, LabelFreeCoverage) for callback in host.callbacks)
            or "coverage/ndb" in host.history)


def _renamed(deprecated: dict[str, Any], refresh_seconds: float,
             samples_seconds: float | None) -> tuple[float, float | None]:
    """The old spellings `refresh_every` / `samples_every` (seconds here, while `*_every`
    counts steps everywhere else), still accepted with a DeprecationWarning."""
    renames = {"refresh_every": "refresh_seconds", "samples_every": "samples_seconds"}
    unknown = set(deprecated) - set(renames)
    if unknown:
        raise TypeError(f"Dashboard: unexpected arguments {sorted(unknown)}; the options are "
                        "refresh_seconds, max_points, title, samples_seconds, smoothing")
    for old, new in renames.items():
        if old in deprecated:
            warnings.warn(f"Dashboard({old}=...) is deprecated; pass {new}=... (seconds)",
                          DeprecationWarning, stacklevel=3)
    return (deprecated.get("refresh_every", refresh_seconds),
            deprecated.get("samples_every", samples_seconds))


def _quietly(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception:  # noqa: BLE001 - the panel stays empty; training is not ours to stop
        return None
