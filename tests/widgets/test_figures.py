import numpy as np

from gandiag.detect import Alert
from gandiag.widgets import build_figure
from tests.detect.series import healthy


def test_every_panel_is_drawn_and_every_trace_is_bounded():
    series = healthy(n=50_000) | {"metric/modes": (np.arange(500, 50_001, 500), np.full(100, 8.0))}
    fig = build_figure(series)
    names = {t.name for t in fig.data}
    assert {"D loss", "G loss", "D(x) mean", "D(G(z)) mean", "logit gap", "r_t", "modes",
            "G gradients", "D gradients"} <= names
    for trace in fig.data:
        if trace.type == "scatter":
            assert len(trace.x) <= 2000 and trace.x.dtype == np.float32
    heatmap = next(t for t in fig.data if t.name == "D gradients")
    assert list(heatmap.y) == ["net.0", "net.2", "net.4", "net.6"] and heatmap.z.shape == (4, 400)
    # log10 of the layers' levels (0.05, 0.3, 0.25, 0.35, log-normal noise)
    assert np.allclose(np.nanmean(heatmap.z, axis=1), np.log10([0.05, 0.3, 0.25, 0.35]), atol=0.02)


def test_alerts_are_marked_with_escaped_explanations():
    alert = Alert("mode_collapse", step=3000, severity="critical", message="<script>x</script> collapsed",
                  evidence={"r": 1}, explanation="G maps most noise to a few outputs", fixes=["pack"])
    fig = build_figure(healthy(), [alert])
    marker = next(t for t in fig.data if t.name == "alerts")
    assert marker.x.tolist() == [3000] and "&lt;script&gt;" in marker.text[0]
    assert "<script>" not in marker.text[0] and "G maps most noise" in marker.text[0]
    # one line on every panel that has data (plotly skips empty subplots: no metrics here)
    assert sum(1 for shape in fig.layout.shapes if shape.x0 == 3000) == 5


def test_missing_series_leave_panels_empty_not_broken():
    fig = build_figure({"G/loss": (np.arange(10), np.ones(10))}, title="a <b>run</b>")
    assert [t.name for t in fig.data] == ["G loss"]
    assert fig.layout.title.text == "a &lt;b&gt;run&lt;/b&gt;"


def test_coverage_counts_and_shares_get_their_own_axes_and_distances_their_own_panel():
    steps = np.arange(250, 5001, 250)
    series = {"metric/modes": (steps, np.full(20, 8.0)), "metric/hq": (steps, np.full(20, 0.9)),
              "metric/reverse_kl": (steps, np.r_[np.inf, np.full(19, 0.1)])}
    fig = build_figure(series)
    by_name = {t.name: t for t in fig.data}
    modes, hq, rkl = by_name["modes"], by_name["hq"], by_name["reverse_kl"]
    assert modes.xaxis == hq.xaxis and modes.yaxis != hq.yaxis  # one panel, left and right axes
    assert fig.layout[hq.yaxis.replace("y", "yaxis")].overlaying == modes.yaxis
    assert rkl.xaxis != modes.xaxis and np.isnan(rkl.y[0])  # its own panel; inf drawn as a gap
    # shares alone take the left axis (a right axis over an empty left one is misdrawn)
    alone = build_figure({"metric/hq": (steps, np.full(20, 0.9))})
    assert alone.data[0].yaxis == "y6"


def test_metric_panels_appear_with_metrics_or_when_asked():
    titles = lambda fig: [a.text for a in fig.layout.annotations]  # noqa: E731
    plain = build_figure(healthy(n=1000))
    assert not any(t.startswith(("mode coverage", "distance")) for t in titles(plain))
    asked = build_figure(healthy(n=1000), metric_panels=True)
    assert sum(t.startswith(("mode coverage", "distance")) for t in titles(asked)) == 2


def test_an_empty_losses_panel_says_how_to_record_losses():
    fig = build_figure({"D/out_real/mean": (np.arange(10), np.ones(10))})
    assert any("monitor.log(loss_d=errD, loss_g=errG)" in a.text for a in fig.layout.annotations)
    assert not any("monitor.log" in a.text for a in build_figure(healthy(n=1000)).layout.annotations)


def test_alert_lines_stay_bounded_and_every_alert_keeps_its_marker():
    alerts = [Alert("exploding_gradients", step=step, severity="warning", message="m", evidence={},
                    explanation="e", fixes=[]) for step in range(100, 40_100, 100)]  # 400 alerts
    fig = build_figure(healthy(n=50_000), alerts)
    assert len(fig.layout.shapes) <= 61 * 5  # about MAX_ALERT_LINES per panel, five panels
    assert len(next(t for t in fig.data if t.name == "alerts").x) == 400
