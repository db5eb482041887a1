"""A static, self-contained HTML report of a run: the dashboard's panels and the diagnosis.

For headless machines: one file, plotly.js inlined (works offline), every user-provided
string (run name, config, alert texts) escaped.

    gandiag report vanilla --store runs/gandiag.sqlite --out report.html
"""

from __future__ import annotations

import base64
import html
import json
import os
from typing import Any, Iterable

import numpy as np

from gandiag.detect.alert import Alert
from gandiag.detect.diagnosis import diagnose
from gandiag.widgets.figures import SEVERITY_COLORS, build_figure
from gandiag.widgets.samples import ImageSnapshot, stored_snapshots

_STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
.alert{border-left:4px solid;padding:6px 12px;margin:10px 0;background:#fafafa}
.alert p{margin:4px 0} table{border-collapse:collapse;font-size:13px}
td{border:1px solid #ddd;padding:2px 8px} code{font-size:13px}"""


def write_report(run: Any, path: str | os.PathLike, *, alerts: Iterable[Alert] | None = None,
                 title: str | None = None) -> str:
    """Write the report of `run` (a stored run, a trainer, a monitor or a history) to
    `path`; alerts are those given, else the diagnosis of the run. Returns the path."""
    alerts = list(diagnose(run) if alerts is None else alerts)
    name = title or str(getattr(run, "name", "gandiag run"))
    snapshots = stored_snapshots(run) if callable(getattr(run, "samples", None)) else []
    figure = build_figure(run, alerts, title=name, samples=snapshots[-1] if snapshots else None)
    config = getattr(run, "config", None)
    config = config if isinstance(config, dict) else getattr(config, "to_dict", lambda: {})()
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(name)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(name)}</h1>",
             _summary(run), "<h2>Diagnosis</h2>", _alerts_html(alerts), "<h2>Panels</h2>",
             figure.to_html(full_html=False, include_plotlyjs=True), _gallery_html(snapshots),
             "<h2>Configuration</h2>", _config_html(config), "</body></html>"]
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return os.path.abspath(path)


def _summary(run: Any) -> str:
    fields = [("status", getattr(run, "status", None)), ("last step", getattr(run, "last_step", None)),
              ("step", getattr(run, "step", None) if not hasattr(run, "last_step") else None)]
    shown = [f"{k}: <b>{html.escape(str(v))}</b>" for k, v in fields if v is not None]
    return f"<p>{' · '.join(shown)}</p>" if shown else ""


def _alerts_html(alerts: list[Alert]) -> str:
    if not alerts:
        return "<p>No problems found.</p>"
    blocks = []
    for a in alerts:
        fixes = "".join(f"<li>{html.escape(fix)}</li>" for fix in a.fixes)
        blocks.append(
            f"<div class='alert' style='border-color:{SEVERITY_COLORS[a.severity]}'>"
            f"<p><b>{html.escape(a.kind)}</b> ({html.escape(a.severity)}) at step {a.step}"
            f"{f' (raised at step {a.detected_at})' if a.detected_at != a.step else ''}: "
            f"{html.escape(a.message)}</p><p><i>{html.escape(a.explanation)}</i></p>"
            f"<ul>{fixes}</ul><p><code>{html.escape(json.dumps(a.evidence))}</code></p></div>")
    return "\n".join(blocks)


def _gallery_html(snapshots: list[ImageSnapshot], most: int = 8) -> str:
    """Up to `most` stored sample pictures, evenly spread over the run: how G's samples
    changed (the first and the last always included)."""
    if not snapshots:
        return ""
    chosen = sorted({round(i) for i in np.linspace(0, len(snapshots) - 1, min(most, len(snapshots)))})
    cells = "".join(
        f"<figure style='display:inline-block;margin:4px'><img width='180' alt='samples at step "
        f"{snapshots[i].step}' src='data:image/png;base64,{base64.b64encode(snapshots[i].png).decode()}'>"
        f"<figcaption>step {snapshots[i].step}</figcaption></figure>" for i in chosen)
    return f"<h2>Samples over time (fixed noise)</h2><div>{cells}</div>"


def _config_html(config: dict[str, Any]) -> str:
    if not config:
        return "<p>(none recorded)</p>"
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
                   for k, v in sorted(config.items()))
    return f"<table>{rows}</table>"
