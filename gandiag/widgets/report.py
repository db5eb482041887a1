"""A static, self-contained HTML report of a run: final values, the diagnosis, the
dashboard's panels (with a smoothing slider), samples over time and the configuration.

For headless machines and for sharing: one file that works offline. plotly.js is inlined,
and a Content-Security-Policy forbids every request out of the page (scripts, styles and
pictures come only from the file itself or from data: URLs); every user-provided string
(run name, config, metric and layer names, alert texts) is escaped, in the page and in
the figure (plotly.js renders tags such as <a href> inside its texts).

    gandiag report vanilla --store runs/gandiag.sqlite --out report.html
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from gandiag.core.alert import Alert
from gandiag.core.series import read_series
from gandiag.detect.diagnosis import diagnosis_of
from gandiag.detect.readiness import Readiness
from gandiag.widgets.figures import build_figure
from gandiag.widgets.report_tables import alerts_html, merge_alerts, summary_html
from gandiag.widgets.samples import ImageSnapshot, stored_snapshots
from gandiag.widgets.smoothing import DEFAULT_SMOOTHING, REPORT_WEIGHTS

# Nothing may leave the file: no default source; inline scripts and styles (plotly.js is
# inlined and adds <style> elements at run time); pictures and fonts only from data: and
# blob: URLs (the sample pictures, plotly's "download as png"). A name that slipped past
# escaping still could not fetch anything.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'")
PANELS_ID = "gandiag-panels"

_STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
.alert{border-left:4px solid;padding:6px 12px;margin:10px 0;background:#fafafa}
.alert p{margin:4px 0} table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left} td.num{text-align:right;
font-variant-numeric:tabular-nums} th{background:#f4f4f4} code{font-size:13px}
.origin{font-size:12px;padding:1px 6px;border-radius:3px;background:#eee;margin-left:6px}
.origin.now{background:#fff3cd} .note{color:#555;font-size:13px} .unjudged{color:#555}
.smoothing{margin:8px 0;font-size:14px} .smoothing input{vertical-align:middle;width:240px}"""

# Swaps each smoothed trace's y for the precomputed one at the chosen weight (the figure
# builder stores them base64 float32 in the trace's meta): no Python, no request.
_SMOOTHING_JS = """(function () {
  var weights = %(weights)s, panels = document.getElementById(%(panels)s);
  var slider = document.getElementById('gandiag-smoothing');
  var shown = document.getElementById('gandiag-smoothing-value');
  var cache = {};
  function decode(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }
  slider.addEventListener('input', function () {
    var k = Number(slider.value), traces = [], ys = [];
    shown.textContent = weights[k].toFixed(2);
    (panels.data || []).forEach(function (trace, i) {
      if (!trace.meta || !trace.meta.smoothed) return;
      var key = i + ':' + k;
      if (!(key in cache)) cache[key] = decode(trace.meta.smoothed[k]);
      traces.push(i); ys.push(cache[key]);
    });
    if (traces.length && window.Plotly) window.Plotly.restyle(panels, {y: ys}, traces);
  });
})();"""


def write_report(run: Any, path: str | os.PathLike, *, alerts: Iterable[Alert] | None = None,
                 title: str | None = None, rediagnose: bool = True,
                 smoothing: float = DEFAULT_SMOOTHING, readiness: Iterable[Readiness] | None = None) -> str:
    """Write the report of `run` (a stored run, a trainer, a monitor or a history) to
    `path`; returns the absolute path.

    The alerts shown are the run's own (`alerts` when given, else those stored with a
    stored run), and, with `rediagnose`, those a fresh diagnosis of the recorded series
    adds (other kinds or other episodes), marked "found now". Which detectors could judge
    the run (`readiness`, e.g. a live `DiagnosisCallback.readiness()`; else from the fresh
    diagnosis) is said with them: no alert from a run too short to judge is no verdict.
    `smoothing` is the slider's starting weight (one of REPORT_WEIGHTS; 0 draws the raw series).

        write_report(gandiag.open_run("vanilla"), "vanilla.html")
    """
    if float(smoothing) not in REPORT_WEIGHTS:
        raise ValueError(f"write_report: expected smoothing in {list(REPORT_WEIGHTS)} (the "
                         f"slider's stops), got {smoothing!r}; pass e.g. smoothing=0.6")
    stored = list(alerts) if alerts is not None else (
        run.alerts() if callable(getattr(run, "alerts", None)) else None)
    fresh: list[Alert] = []
    if rediagnose or stored is None:
        diagnosis = diagnosis_of(run, caller="write_report")
        fresh = diagnosis.alerts
        readiness = diagnosis.readiness() if readiness is None else readiness
    shown = merge_alerts(stored or [], fresh)
    name = title or str(getattr(run, "name", "gandiag run"))
    snapshots = stored_snapshots(run) if callable(getattr(run, "samples", None)) else []
    figure = build_figure(run, [alert for alert, _ in shown], title=name,
                          samples=snapshots[-1] if snapshots else None,
                          smoothing=smoothing, smoothing_choices=REPORT_WEIGHTS)
    config = getattr(run, "config", None)
    config = config if isinstance(config, dict) else getattr(config, "to_dict", dict)()
    plot = figure.to_html(full_html=False, include_plotlyjs=True, div_id=PANELS_ID,
                          config={"displaylogo": False, "responsive": True})
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
             f"<title>{html.escape(name)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(name)}</h1>", _run_line(run),
             "<h2>Final values</h2>", summary_html(read_series(run, caller="write_report")),
             "<h2>Diagnosis</h2>", alerts_html(shown, stored_known=stored is not None,
                                                  readiness=None if readiness is None else list(readiness)),
             "<h2>Panels</h2>", _slider_html(smoothing), plot, _gallery_html(snapshots),
             "<h2>Configuration</h2>", _config_html(config),
             "<script>" + _SMOOTHING_JS % {"weights": json.dumps(list(REPORT_WEIGHTS)),
                                           "panels": json.dumps(PANELS_ID)} + "</script>",
             "</body></html>"]
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return os.path.abspath(path)


def _run_line(run: Any) -> str:
    """Status, id, last step and times of the run, where the source knows them."""
    def when(seconds: Any) -> str | None:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds)) if seconds else None

    fields = [("status", getattr(run, "status", None)), ("run id", getattr(run, "id", None)),
              ("last step", getattr(run, "last_step", None)),
              ("step", getattr(run, "step", None) if not hasattr(run, "last_step") else None),
              ("started", when(getattr(run, "started", None))), ("ended", when(getattr(run, "ended", None)))]
    shown = [f"{k}: <b>{html.escape(str(v))}</b>" for k, v in fields if v is not None and not callable(v)]
    return f"<p>{' · '.join(shown)}</p>" if shown else ""


def _slider_html(smoothing: float) -> str:
    stop = REPORT_WEIGHTS.index(float(smoothing))
    return ("<div class='smoothing'><label for='gandiag-smoothing'>smoothing</label> "
            f"<input type='range' id='gandiag-smoothing' min='0' max='{len(REPORT_WEIGHTS) - 1}' "
            f"step='1' value='{stop}'> <b id='gandiag-smoothing-value'>{smoothing:.2f}</b> "
            "<span class='note'>exponential moving average with debiasing, as TensorBoard "
            "smooths (0: raw); the losses, D outputs, r_t and accuracies are drawn smoothed "
            "over their raw series (faint)</span></div>")


def _gallery_html(snapshots: list[ImageSnapshot], most: int = 8) -> str:
    """Up to `most` stored sample pictures, evenly spread over the run: how G's samples
    changed (the first and the last always included)."""
    if not snapshots:
        return ""
    chosen = sorted({round(i) for i in np.linspace(0, len(snapshots) - 1, min(most, len(snapshots)))})
    cells = "".join(
        f"<figure style='display:inline-block;margin:4px'><img width='180' alt='samples at step "
        f"{int(snapshots[i].step)}' src='data:image/png;base64,{base64.b64encode(snapshots[i].png).decode()}'>"
        f"<figcaption>step {int(snapshots[i].step)}</figcaption></figure>" for i in chosen)
    return f"<h2>Samples over time (fixed noise)</h2><div>{cells}</div>"


def _config_html(config: dict[str, Any]) -> str:
    if not config:
        return "<p>(none recorded)</p>"
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
                   for k, v in sorted(config.items(), key=lambda item: str(item[0])))
    return f"<table>{rows}</table>"


__all__ = ["CSP", "write_report"]
