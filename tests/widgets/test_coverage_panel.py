"""The label-free coverage panels: bin shares at the latest evaluation (bars, by real share,
starved bins marked) and the coverage/* series over steps, live, replayed and in the report.
Histories and stored runs are built by hand: no training."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag.core.history import History
from gandiag.core.records import Histograms, Records
from gandiag.store import RunWriter, open_run
from gandiag.widgets import dashboard as dashboard_module
from gandiag.widgets.figures import build_figure
from gandiag.widgets.labelfree import latest_bins
from gandiag.widgets.report import write_report

K = 8
# real counts per bin (n = 200) and fake counts: bins 1 and 6 starved (fake < real / 4),
# bin 3 holds as many fakes as reals (not starved at exactly a quarter: 4 * 5 == 20 is not < 20)
REAL = np.array([10, 40, 20, 20, 30, 50, 25, 5], float)
FAKE = np.array([30, 2, 40, 5, 30, 60, 3, 30], float)
VALUES = {"ndb": 0.5, "ndb_null": 0.125, "jsd": 0.0875, "jsd_null": 0.0123, "bins_covered": 0.75,
          "precision": 0.9, "recall": 0.6, "density": 1.1, "coverage": 0.7, "n": 200.0}


def evaluation(step, real=REAL, fake=FAKE, **values):
    at = np.array([step])
    values = VALUES | values
    return Records(scalars={f"coverage/{name}": (at, np.array([value])) for name, value in values.items()},
                   histograms={"coverage/real_bins": Histograms(at, np.arange(K + 1.0), real[None]),
                               "coverage/fake_bins": Histograms(at, np.arange(K + 1.0), fake[None])})


def losses(n=1000):
    steps = np.arange(1, n + 1)
    return Records(scalars={"D/loss": (steps, np.full(n, 1.3)), "G/loss": (steps, np.full(n, 0.8))})


def history(*records):
    h = History()
    for r in records:
        h.append(r)
    return h


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def titles(fig):
    return [a.text for a in fig.layout.annotations]


def test_bars_are_the_bin_shares_ordered_by_real_share_with_the_starved_bins_marked():
    early = evaluation(500, real=np.full(K, 25.0), fake=np.full(K, 25.0), ndb=0.0)
    fig = build_figure(history(losses(), early, evaluation(1000)))
    order = [5, 1, 4, 6, 2, 3, 0, 7]  # by real count, largest first; ties (2, 3) by bin id
    real, fake = trace(fig, "real share"), trace(fig, "fake share")
    assert real.type == fake.type == "bar" and list(real.x) == list(range(1, K + 1))
    np.testing.assert_allclose(real.y, REAL[order] / 200, rtol=1e-6)  # the latest evaluation's
    np.testing.assert_allclose(fake.y, FAKE[order] / 200, rtol=1e-6)
    assert list(real.customdata) == order  # the hover names the k-means bin
    starved = trace(fig, "starved (fake < real/4)")
    assert list(starved.x) == [2, 4]  # bins 1 and 6, at their ranks
    assert list(starved.customdata) == [1, 6] and (np.asarray(starved.y) > real.y[[1, 3]]).all()
    title = next(t for t in titles(fig) if t.startswith("coverage bins at step 1000"))
    assert title == ("coverage bins at step 1000: 8 k-means bins by real share<br>"
                     "200 samples each; 2 starved (fake share < real share / 4)<br>"
                     "NDB/k 0.50 (real vs real 0.12) · JSD 0.087 (0.012) · bins covered 75%")


def test_the_series_panel_sits_beside_the_metrics_on_the_time_axis():
    metrics = Records(scalars={"metric/modes": (np.array([500, 1000]), np.array([6.0, 8.0])),
                               "metric/reverse_kl": (np.array([500, 1000]), np.array([0.5, 0.1]))})
    fig = build_figure(history(losses(), metrics, evaluation(500, ndb=0.25), evaluation(1000)))
    ndb = trace(fig, "NDB/k")
    assert list(ndb.x) == [500, 1000] and list(ndb.y) == [0.25, 0.5]
    for name in ("NDB/k, real vs real", "JSD (nats)", "bins covered", "precision", "recall"):
        assert len(trace(fig, name).x) == 2, name
    assert trace(fig, "NDB/k, real vs real").line.dash == "dash"
    ordered = [t.split(" ")[0] for t in titles(fig)]
    # losses ... mode coverage (metric/*), label-free coverage, distance, then the bins
    assert ordered.index("mode") < ordered.index("label-free") < ordered.index("distance") < ordered.index("coverage")
    assert fig.layout[ndb.xaxis.replace("x", "xaxis")].matches == "x"  # zooms with the losses
    bars_axis = fig.layout[trace(fig, "real share").xaxis.replace("x", "xaxis")]
    assert bars_axis.matches is None  # bins, not steps


def test_no_coverage_keys_no_panels_and_a_live_one_waits():
    plain = build_figure(history(losses()))
    assert not any(t.type == "bar" for t in plain.data)
    assert not any("coverage bins" in t or "label-free" in t for t in titles(plain))
    waiting = build_figure(history(losses()), coverage_panels=True)
    assert "coverage bins: waiting for the first label-free evaluation" in titles(waiting)
    assert latest_bins(history(losses())) is None and latest_bins({"D/loss": ([1], [1.0])}) is None


def stored(path, *records, name="covered"):
    with RunWriter(path, name=name, config={"loss": "nonsaturating"}) as writer:
        for r in records:
            writer.write(r)


def test_the_report_shows_the_panels_and_the_final_values(tmp_path):
    stored(tmp_path / "s.sqlite", losses(), evaluation(500, ndb=0.25), evaluation(1000))
    stored(tmp_path / "s.sqlite", losses(), name="plain")
    with open_run("covered", tmp_path / "s.sqlite") as run:
        text = Path(write_report(run, tmp_path / "r.html", rediagnose=False)).read_text(encoding="utf-8")
    assert "coverage bins at step 1000" in text and json.dumps("real share") in text
    assert "<td>NDB/k (label-free: share of bins that differ)</td><td><code>coverage/ndb</code></td>" in text
    assert "<code>coverage/bins_covered</code></td><td class='num'>1,000</td><td class='num'>0.75</td>" in text
    with open_run("plain", tmp_path / "s.sqlite") as run:
        plain = Path(write_report(run, tmp_path / "p.html", rediagnose=False)).read_text(encoding="utf-8")
    assert "coverage bins" not in plain and "coverage/ndb" not in plain


def test_a_stored_run_replays_with_its_coverage_bins(tmp_path):
    stored(tmp_path / "s.sqlite", losses(), evaluation(500, ndb=0.25), evaluation(1000))
    replay = gandiag.Dashboard.from_run("covered", store=tmp_path / "s.sqlite")
    try:
        np.testing.assert_allclose(trace(replay.figure, "real share").y, np.sort(REAL)[::-1] / 200, rtol=1e-6)
        assert any(t.startswith("coverage bins at step 1000") for t in titles(replay.figure))
        assert list(trace(replay.figure, "NDB/k").y) == [0.25, 0.5]
    finally:
        replay.close()


def test_the_live_dashboard_reads_the_bins_once_per_evaluation(monkeypatch):
    reads = []

    def counted(source):
        reads.append(source)
        return latest_bins(source)

    monkeypatch.setattr(dashboard_module, "latest_bins", counted)
    G, D = nn.Linear(4, 2), nn.Linear(2, 1)
    with gandiag.attach(G, D, loss="nonsaturating", coverage_every=None) as monitor:
        dash = gandiag.Dashboard(monitor, refresh_seconds=60, samples_seconds=None)
        try:
            assert not any("coverage bins" in t for t in titles(dash.figure))  # no callback: no panels
            monitor.record({f"coverage/{k}": v for k, v in VALUES.items()}, step=500,
                           histograms=evaluation(500).histograms)
            for _ in range(3):
                dash.refresh()
            assert len(reads) == 1
            assert any(t.startswith("coverage bins at step 500") for t in titles(dash.figure))
            fake = FAKE[::-1].copy()
            monitor.record({f"coverage/{k}": v for k, v in VALUES.items()}, step=1000,
                           histograms=evaluation(1000, fake=fake).histograms)
            dash.refresh()
            dash.refresh()
            assert len(reads) == 2
            order = np.argsort(-REAL, kind="stable")
            np.testing.assert_allclose(trace(dash.figure, "fake share").y, fake[order] / 200, rtol=1e-6)
        finally:
            dash.close()


def test_a_coverage_callback_keeps_the_panels_from_the_start():
    torch.manual_seed(0)
    G, D = nn.Linear(4, 2), nn.Linear(2, 1)
    with gandiag.attach(G, D, loss="nonsaturating", coverage_every=500) as monitor:
        dash = gandiag.Dashboard(monitor, refresh_seconds=60, samples_seconds=None)
        try:
            assert "coverage bins: waiting for the first label-free evaluation" in titles(dash.figure)
        finally:
            dash.close()


def test_a_coverage_figure_renders_to_png(tmp_path):
    pytest.importorskip("kaleido")
    fig = build_figure(history(losses(), evaluation(500, ndb=0.25), evaluation(1000)))
    png = fig.to_image(format="png", width=1000)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "coverage.png").write_bytes(png)
