"""The report's text parts: the final values, the alerts (stored and found now) and their
evidence, as small HTML tables with numbers rounded to 3 significant digits. Every string
from the run is escaped.

    >>> rounded(0.24531247), rounded(1234.5), rounded(float("nan")), rounded(7)
    ('0.245', '1,230', 'nan', '7')
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.readiness import Readiness
from gandiag.widgets.figures import SEVERITY_COLORS

# The main signals, by key, with the name a reader knows them by.
MAIN_SIGNALS = (
    ("D/loss", "D loss"),
    ("G/loss", "G loss"),
    ("D/out_real/sign", "r_t = E[sign D(real)]"),
    ("D/out_real/mean", "D(real) mean"),
    ("D/out_fake/mean", "D(fake) mean"),
    ("D/out_real/acc", "D accuracy on real"),
    ("D/out_fake/acc", "D accuracy on fake"),
    ("D/grad_norm/total", "D gradient norm (total)"),
    ("G/grad_norm/total", "G gradient norm (total)"),
)
# Label-free coverage (`gandiag.metrics.LabelFreeCoverage`), beside the metric/* rows.
COVERAGE_SIGNALS = (
    ("coverage/ndb", "NDB/k (label-free: share of bins that differ)"),
    ("coverage/ndb_null", "NDB/k of two real samples (null level)"),
    ("coverage/jsd", "JSD over the bins (nats)"),
    ("coverage/jsd_null", "JSD of two real samples (null level)"),
    ("coverage/bins_covered", "bins covered (fake share >= real share / 4)"),
    ("coverage/precision", "precision (label-free)"),
    ("coverage/recall", "recall (label-free)"),
    ("coverage/density", "density (label-free)"),
    ("coverage/coverage", "coverage (label-free)"),
)
TAIL_SHARE = 0.1  # "recent mean": the last 10 % of the run's steps
MOST_LIST_ITEMS = 8


def rounded(value: Any) -> str:
    """A number with 3 significant digits (thousands grouped, no exponent below 1e6);
    integers as they are; other values as text."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        if value == 0 or 1e-3 <= abs(value) < 1e3:
            return f"{value:.3g}"
        if 1e3 <= abs(value) < 1e6:
            return f"{round(value, 2 - math.floor(math.log10(abs(value)))):,.0f}"
        return f"{value:.2e}"
    return str(value)


def value_html(value: Any) -> str:
    """An evidence value as escaped HTML: numbers rounded, lists shortened, dicts nested."""
    if isinstance(value, Mapping):
        return "; ".join(f"{html.escape(str(k))}: {value_html(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        shown = ", ".join(value_html(v) for v in items[:MOST_LIST_ITEMS])
        more = f", … ({len(items)} values)" if len(items) > MOST_LIST_ITEMS else ""
        return f"[{shown}{more}]"
    return html.escape(rounded(value))


def evidence_html(evidence: Mapping[str, Any]) -> str:
    if not evidence:
        return ""
    def numeric(value: Any) -> bool:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

    cell = {True: "<td class='num'>", False: "<td>"}  # numbers right-aligned, text left
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td>{cell[numeric(v)]}{value_html(v)}</td></tr>"
                   for k, v in evidence.items())
    return f"<table><tr><th>evidence</th><th>value</th></tr>{rows}</table>"


def merge_alerts(stored: list[Alert], fresh: list[Alert]) -> list[tuple[Alert, str]]:
    """(alert, origin) pairs, origin "stored" or "found now", ordered by step: every
    stored alert, and each freshly diagnosed one that no stored alert already covers. A
    stored alert covers a fresh one of its kind at its step or inside the stretch it was
    raised over (step .. detected_at): the same episode, told once."""
    def covered(alert: Alert) -> bool:
        return any(s.kind == alert.kind and s.step <= alert.step <= max(s.step, s.detected_at or s.step)
                   for s in stored)

    shown = [(a, "stored") for a in stored] + [(a, "found now") for a in fresh if not covered(a)]
    return sorted(shown, key=lambda pair: (pair[0].step, pair[1] != "stored"))


def alerts_html(shown: list[tuple[Alert, str]], *, stored_known: bool = True,
                readiness: list[Readiness] | None = None) -> str:
    """The diagnosis: a line saying what comes from where, then one block per alert, then
    (with `readiness`) the detectors that could not judge the run and why."""
    stored = sum(origin == "stored" for _, origin in shown)
    now = len(shown) - stored
    if not shown:
        blind = [r for r in readiness or [] if not r.judged]
        if blind:
            able = [r.kind for r in readiness or [] if r.judged]
            by = (f"by the {len(able)} detector(s) that could judge it ({html.escape(', '.join(able))})"
                  if able else "because no detector could judge the run yet")
            return f"<p>No problems found {by}.</p>" + readiness_html(readiness)
        return ("<p>No problems found: no alert was stored with the run and a fresh diagnosis "
                "finds none.</p>" if stored_known else "<p>No problems found by the diagnosis.</p>")
    intro = (f"<p>{stored} alert(s) <b>stored</b> with the run (raised while it trained)"
             f"{f' and {now} more <b>found now</b> by a fresh diagnosis of the recorded series' if now else ''}"
             f"{'; a fresh diagnosis finds nothing more' if stored and not now else ''}.</p>")
    if not stored_known:
        intro = f"<p>{now} alert(s) found by a diagnosis of the recorded series.</p>"
    stored_steps: dict[str, list[int]] = {}
    for alert, origin in shown:
        if origin == "stored":
            stored_steps.setdefault(alert.kind, []).append(alert.step)
    return intro + "\n".join(_alert_html(alert, origin, stored_steps.get(alert.kind, []))
                              for alert, origin in shown) + readiness_html(readiness)


def readiness_html(readiness: list[Readiness] | None) -> str:
    """The detectors that could not judge the run (too short, not recorded, ...) and the
    judged ones that could judge only in part, each with its reason; "" when all could."""
    blind = [r for r in readiness or [] if not r.judged]
    partial = [r for r in readiness or [] if r.judged and r.partial]
    out = ""
    if blind:
        items = "".join(f"<li>{html.escape(r.reason)}</li>" for r in blind)
        out += (f"<p class='unjudged'><b>Could not judge</b> ({len(blind)} of {len(readiness or [])} "
                f"detectors):</p><ul class='unjudged'>{items}</ul>")
    if partial:
        items = "".join(f"<li>{html.escape(r.kind)}: {html.escape(r.partial)}</li>" for r in partial)
        out += f"<p class='unjudged'><b>Judged in part</b>:</p><ul class='unjudged'>{items}</ul>"
    return out


def _alert_html(alert: Alert, origin: str, stored_steps: list[int]) -> str:
    fixes = "".join(f"<li>{html.escape(fix)}</li>" for fix in alert.fixes)
    raised = f" (raised at step {alert.detected_at})" if alert.detected_at != alert.step else ""
    color = SEVERITY_COLORS.get(alert.severity, "#7f7f7f")
    # a fresh episode of a kind the run already stored: say where the stored ones are
    also = (f" <span class='note'>(stored {html.escape(alert.kind)} alerts: step "
            f"{', '.join(str(step) for step in stored_steps)})</span>"
            if origin == "found now" and stored_steps else "")
    return (f"<div class='alert' style='border-color:{color}'>"
            f"<p><b>{html.escape(alert.kind)}</b> ({html.escape(alert.severity)}) at step {alert.step}"
            f"{raised}<span class='origin{' now' if origin == 'found now' else ''}'>{origin}</span>: "
            f"{html.escape(alert.message)}{also}</p>"
            + (f"<p><i>{html.escape(alert.explanation)}</i></p>" if alert.explanation else "")
            + (f"<ul>{fixes}</ul>" if fixes else "") + evidence_html(alert.evidence) + "</div>")


def final_values(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, str, int, float, float]]:
    """(key, label, last step, last value, recent mean) of the main signals, of every
    `metric/*` series and of the label-free coverage; the recent mean is over the finite
    values of the last 10 % of the run's steps (a noisy loss's last value alone says little)."""
    keys = [(key, label) for key, label in MAIN_SIGNALS if key in series]
    keys += [(key, key[len("metric/"):]) for key in sorted(series) if key.startswith("metric/")]
    keys += [(key, label) for key, label in COVERAGE_SIGNALS if key in series]
    rows = []
    for key, label in keys:
        steps, values = (np.asarray(a) for a in series[key])
        if not len(steps):
            continue
        recent = values[steps >= steps[-1] - TAIL_SHARE * (steps[-1] - steps[0])]
        finite = recent[np.isfinite(recent)]
        rows.append((key, label, int(steps[-1]), float(values[-1]),
                     float(finite.mean()) if len(finite) else float("nan")))
    return rows


def summary_html(series: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
    rows = final_values(series)
    if not rows:
        return "<p>(no series recorded)</p>"
    body = "".join(f"<tr><td>{html.escape(label)}</td><td><code>{html.escape(key)}</code></td>"
                   f"<td class='num'>{step:,}</td><td class='num'>{html.escape(rounded(last))}</td>"
                   f"<td class='num'>{html.escape(rounded(recent))}</td></tr>"
                   for key, label, step, last, recent in rows)
    return ("<table><tr><th>quantity</th><th>key</th><th>last step</th><th>last value</th>"
            f"<th>mean of the last {TAIL_SHARE:.0%} of steps</th></tr>{body}</table>")
