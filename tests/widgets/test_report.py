"""The offline HTML report: escaped strings, no request out of the page, the stored alerts
shown (and those a fresh diagnosis adds, marked), rounded evidence and final values."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gandiag.detect import Alert
from gandiag.core.records import Records
from gandiag.store import RunWriter, open_run
from gandiag.store.png import samples_png
from gandiag.widgets.figures import build_figure
from gandiag.widgets.report import CSP, write_report
from gandiag.widgets.report_tables import merge_alerts, rounded
from tests.detect.series import healthy

IMG = "<img src=http://example.com/{}.png>"
LINK = "<a href='http://example.com/{}'>click</a>"


def hostile(what: str) -> str:
    return f"{what} {IMG.format(what)} {LINK.format(what)} <script>alert('{what}')</script>"


def hostile_run(path, *, alerts=(), nan_from=None):
    """A stored run with a hostile string in every field a user or a model names."""
    series = healthy(n=3000)
    if nan_from is not None:
        steps, loss = series["D/loss"]
        series["D/loss"] = (steps, np.where(steps >= nan_from, np.nan, loss))
    steps = np.arange(500, 3001, 500)
    series[f"metric/{hostile('metric')}"] = (steps, np.full(6, 0.5))
    series[f"metric/kl {hostile('distance')}"] = (steps, np.linspace(2.0, 0.1, 6))
    layer_steps, norms = series.pop("D/grad_norm/net.0")
    series[f"D/grad_norm/{hostile('layer')}"] = (layer_steps, norms)
    config = {hostile("config-key"): hostile("config-value"), "loss": "nonsaturating"}
    with RunWriter(path, name=hostile("name"), config=config) as writer:
        writer.write(Records(scalars=series))
        writer.add_sample(3000, samples_png(np.random.default_rng(0).normal(size=(100, 2))))
        for alert in alerts:
            writer.add_alert(**alert.row())
    return hostile("name")


def stored_alert(step, kind="d_overpowering", **fields):
    return Alert(kind, step=step, severity="warning", message=fields.pop("message", f"alert at {step}"),
                 evidence=fields.pop("evidence", {"r_t": 0.987654321}), explanation="D wins",
                 fixes=["lower D's learning rate"], detected_at=step + 100, **fields)


def figure_strings(fig):
    """Every string in the figure's JSON (what plotly.js renders)."""
    def walk(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from walk(v)
    return list(walk(json.loads(fig.to_json())))


def test_hostile_names_reach_neither_the_page_nor_plotly_as_markup(tmp_path):
    alert = stored_alert(1000, message=hostile("message"),
                         evidence={hostile("evidence-key"): hostile("evidence-value"), "x": [0.1, 2]})
    alert.explanation, alert.fixes = hostile("explanation"), [hostile("fix")]
    name = hostile_run(tmp_path / "s.sqlite", alerts=[alert])
    with open_run(name, tmp_path / "s.sqlite") as run:
        text = Path(write_report(run, tmp_path / "r.html")).read_text(encoding="utf-8")
        fig = build_figure(run, run.alerts(), title=run.name, smoothing=0.6)
    # no tag from the run, raw in the page or inside plotly's JSON (which writes < as \u003c)
    for tag in ("<img src=http://example.com", "<a href='http://example.com", "<script>alert("):
        assert tag not in text and json.dumps(tag)[1:-1].replace("<", "\\u003c").replace("/", "\\u002f") not in text
    assert re.search(r"<(img|a|script|link|iframe)[^>]*example\.com", text) is None
    for what in ("name", "config-key", "config-value", "message", "explanation", "fix",
                 "evidence-key", "evidence-value"):
        assert f"{what} &lt;img src=http://example.com/{what}.png&gt;" in text, what
    assert "<td>evidence-value &lt;img" in text and "<td>[0.1, 2]</td>" in text  # text, a list: left
    # in the figure: every string that holds a user string shows it as text, not markup
    # (long names shortened in the middle, so the panels keep their width)
    strings = figure_strings(fig)
    for what in ("metric", "distance", "layer", "name", "message"):
        assert any(f"{what} &lt;img sr" in s for s in strings), what
    for s in strings:
        assert "<img" not in s and "<a " not in s and "<script" not in s, s
    # nothing can be fetched: plotly.js inline, and a policy that forbids any other source
    assert "<script src" not in text and "<link" not in text and len(text) > 1_000_000
    assert f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">" in text
    assert "default-src 'none'" in CSP and "http" not in CSP


def test_stored_alerts_are_shown_and_a_fresh_diagnosis_adds_only_what_is_new(tmp_path):
    stored = [stored_alert(step) for step in range(500, 2501, 250)][:8]
    name = hostile_run(tmp_path / "s.sqlite", alerts=stored, nan_from=2600)
    with open_run(name, tmp_path / "s.sqlite") as run:
        text = Path(write_report(run, tmp_path / "r.html")).read_text(encoding="utf-8")
    assert "No problems found" not in text
    assert text.count("<span class='origin'>stored</span>") == 8
    # the NaN losses from step 2600 were never stored as an alert: found now, and said so
    assert "<span class='origin now'>found now</span>" in text and "<b>nonfinite</b>" in text
    assert "8 alert(s) <b>stored</b> with the run" in text and "more <b>found now</b>" in text
    assert "(stored nonfinite alerts" not in text  # said only for a kind the run stored


def test_a_fresh_episode_of_a_stored_kind_says_where_the_stored_ones_are(tmp_path):
    name = hostile_run(tmp_path / "s.sqlite", alerts=[stored_alert(700, kind="nonfinite")], nan_from=2600)
    with open_run(name, tmp_path / "s.sqlite") as run:
        text = Path(write_report(run, tmp_path / "r.html")).read_text(encoding="utf-8")
    assert "<span class='origin now'>found now</span>" in text
    assert "(stored nonfinite alerts: step 700)" in text


def test_merging_keeps_every_stored_alert_and_drops_fresh_repeats_of_an_episode():
    stored = [stored_alert(1000)]  # covers steps 1000..1100 of d_overpowering
    fresh = [stored_alert(1000), stored_alert(1050), stored_alert(5000),
             stored_alert(1000, kind="mode_collapse")]
    merged = merge_alerts(stored, fresh)
    assert [(a.kind, a.step, origin) for a, origin in merged] == [
        ("d_overpowering", 1000, "stored"), ("mode_collapse", 1000, "found now"),
        ("d_overpowering", 5000, "found now")]
    assert merge_alerts([], []) == []


def test_evidence_and_final_values_are_small_rounded_tables(tmp_path):
    name = hostile_run(tmp_path / "s.sqlite", alerts=[stored_alert(1000)])
    with open_run(name, tmp_path / "s.sqlite") as run:
        text = Path(write_report(run, tmp_path / "r.html")).read_text(encoding="utf-8")
        last_loss = run.scalars("D/loss")[1][-1]
    assert "<td>r_t</td><td class='num'>0.988</td>" in text and "0.987654321" not in text
    assert f"<td>D loss</td><td><code>D/loss</code></td><td class='num'>3,000</td>" \
           f"<td class='num'>{rounded(last_loss)}</td>" in text
    for label in ("G loss", "r_t = E[sign D(real)]", "D(real) mean", "D(fake) mean"):
        assert f"<td>{label}</td>" in text, label
    assert "<td>kl " in text and "<code>metric/kl " in text  # every metric, escaped
    assert [rounded(v) for v in (0.24531247, 1234.5, 2.0e7, 1e-5, float("inf"), 8, 12345)] == [
        "0.245", "1,230", "2.00e+07", "1.00e-05", "inf", "8", "12,345"]


def test_the_smoothing_slider_has_every_weight_precomputed(tmp_path):
    name = hostile_run(tmp_path / "s.sqlite")
    with open_run(name, tmp_path / "s.sqlite") as run:
        text = Path(write_report(run, tmp_path / "r.html")).read_text(encoding="utf-8")
        with pytest.raises(ValueError, match="expected smoothing in"):
            write_report(run, tmp_path / "bad.html", smoothing=0.42)
    assert "id='gandiag-smoothing'" in text and "value='3'" in text  # 0.6, the fourth stop
    assert text.count('"smoothed":[') >= 8  # losses, D outputs and bands, gap, r_t, accuracies


def test_a_run_a_history_and_a_dict_report_the_same_values_and_panels(tmp_path):
    from gandiag.core.history import History

    series = healthy(n=3000)
    history = History()
    history.append(Records(scalars=series))
    with RunWriter(tmp_path / "s.sqlite", name="same") as writer:
        writer.write(Records(scalars=series))
    pages = {}
    with open_run("same", tmp_path / "s.sqlite") as run:
        for name, source in (("run", run), ("history", history), ("dict", series)):
            text = Path(write_report(source, tmp_path / f"{name}.html", alerts=[], title="same")).read_text()
            pages[name] = text[text.index("<h2>Final values</h2>"):text.index("<h2>Configuration</h2>")]
    assert pages["run"] == pages["history"] == pages["dict"]
    assert "<td>D loss</td><td><code>D/loss</code></td><td class='num'>3,000</td>" in pages["dict"]
