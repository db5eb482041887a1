import numpy as np
import pytest

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


def test_axes_are_titled_in_the_loss_familys_units_and_shares_tick_as_round_percents():
    steps = np.arange(250, 5001, 250)
    series = healthy(n=5000) | {"metric/modes": (steps, np.full(20, 8.0)), "metric/hq": (steps, np.full(20, 0.5))}
    fig = build_figure(series)
    titles = {fig.layout[name].title.text for name in fig.layout if name.startswith("yaxis")}
    assert {"loss (nats)", "D output (logit)", "r_t = E[sign D(real)]<br>and accuracy", "count",
            "share"} <= titles
    hq = next(t for t in fig.data if t.name == "hq")
    share_axis = fig.layout[hq.yaxis.replace("y", "yaxis")]
    assert list(share_axis.tickvals) == [0, 0.25, 0.5, 0.75, 1] and share_axis.tickformat == ".0%"

    class Wgan(dict):
        config = {"loss": "wgan"}

    wgan = build_figure(Wgan(series))
    assert {"wgan loss", "D output (critic value)"} <= {wgan.layout[n].title.text for n in wgan.layout
                                                       if n.startswith("yaxis")}


def test_smoothing_draws_the_ema_over_the_faint_raw_series_at_the_same_points():
    from gandiag.widgets.smoothing import ema

    rng = np.random.default_rng(0)
    steps = np.arange(1, 10_001)
    loss = 1.3 + rng.normal(0, 0.3, 10_000)
    raw_only = build_figure({"D/loss": (steps, loss)})
    assert [t.name for t in raw_only.data] == ["D loss"]
    fig = build_figure({"D/loss": (steps, loss)}, smoothing=0.9)
    raw, smooth = fig.data
    assert (raw.name, smooth.name, raw.opacity, raw.showlegend) == ("D loss (raw)", "D loss", 0.25, False)
    assert raw.legendgroup == smooth.legendgroup and np.array_equal(raw.x, smooth.x) and len(raw.x) <= 2000
    assert np.allclose(smooth.y, ema(loss, 0.9)[np.searchsorted(steps, raw.x)], atol=1e-6)
    assert smooth.y.std() < 0.5 * raw.y.std()
    with pytest.raises(ValueError, match=r"build_figure: expected a smoothing weight in \[0, 1\)"):
        build_figure({"D/loss": (steps, loss)}, smoothing=1.0)


def test_compared_runs_are_smoothed_in_their_own_colours_with_escaped_labels():
    from gandiag.widgets.compare import compare_figure

    steps = np.arange(1, 3001)
    rng = np.random.default_rng(0)
    runs = {"<b>a</b>": {"D/out_real/sign": (steps, 0.3 + rng.normal(0, 0.5, 3000))},
            "b": {"D/out_real/sign": (steps, 0.5 + rng.normal(0, 0.5, 3000))}}
    fig = compare_figure(runs, smoothing=0.95)
    smoothed = [t for t in fig.data if not t.opacity]
    assert [t.name for t in smoothed] == ["&lt;b&gt;a&lt;/b&gt;", "b"]
    assert all(t.opacity == 0.25 for t in fig.data if t.name.endswith("(raw)"))
    # the runs differ by 0.2 under noise of std 0.5: raw, 0.4 std apart; smoothed (std
    # 0.5 * sqrt(0.05 / 1.95) = 0.08), about 2.5 std apart: two lines one can tell apart
    raw = [t for t in fig.data if t.opacity]
    gap = lambda a, b: (np.nanmean(b.y[100:]) - np.nanmean(a.y[100:])) / np.nanstd(a.y[100:])  # noqa: E731
    assert gap(*raw) < 0.6 and gap(*smoothed) > 1.5
    assert fig.layout.yaxis3.title.text == "r_t = E[sign D(real)]<br>and accuracy"


def test_long_names_are_shortened_in_the_middle_and_layers_stay_distinct_rows():
    from gandiag.widgets.figures import label

    assert label("a" * 30 + "<b>" + "z" * 30, 20) == "a" * 9 + "…" + "z" * 10
    assert label("<b>short</b>") == "&lt;b&gt;short&lt;/b&gt;"
    steps = np.arange(1, 101)
    layers = {f"D/grad_norm/{'encoder.' * 8}block.{i}.{'x' * 20}.conv": (steps, np.ones(100)) for i in (1, 2)}
    heatmap = next(t for t in build_figure(layers).data if t.type == "heatmap")
    assert len(set(heatmap.y)) == 2 and all(len(y) <= 36 for y in heatmap.y)


def test_compared_runs_may_be_stored_runs_histories_or_dicts_alike(tmp_path):
    from gandiag.core import History, Records
    from gandiag.store import RunWriter, open_run
    from gandiag.widgets.compare import compare_figure

    series = healthy(n=2000) | {"metric/modes": (np.arange(500, 2001, 500), np.full(4, 8.0))}
    history = History()
    history.append(Records(scalars=series))
    with RunWriter(tmp_path / "s.sqlite", name="stored") as writer:
        writer.write(Records(scalars=series))
    with open_run("stored", tmp_path / "s.sqlite") as run:
        figures = [compare_figure({"a": a, "b": b}, smoothing=0.6).to_json()
                   for a, b in ((run, history), (history, series), (series, run))]
    assert figures[0] == figures[1] == figures[2]
