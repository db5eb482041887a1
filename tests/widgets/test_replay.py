"""Replaying stored runs: one run in the dashboard's panels, several overlaid."""

import numpy as np
import pytest
import torch

import gandiag
from gandiag import data, models
from gandiag.detect import Alert
from gandiag.store import RunStoreError, StoreRecorder
from gandiag.widgets.compare import compare_figure


def stored_run(path, name, steps=120, **config):
    torch.manual_seed(0)
    G, D = models.small_toy(pack=config.get("pack", 1))
    trainer = gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(log_every=20, **config),
                              callbacks=[StoreRecorder(path, samples_every=40)], name=name)
    trainer.fit(steps)
    return trainer


def test_a_stored_run_replays_in_the_same_panels_with_its_samples(tmp_path):
    path = tmp_path / "runs.sqlite"
    trainer = stored_run(path, "vanilla")
    dash = gandiag.Dashboard.from_run("vanilla", store=path)
    names = {t.name for t in dash.figure.data}
    assert {"D loss", "G loss", "r_t", "G gradients", "modes", "reverse_kl", "samples"} <= names
    assert [label for label, _ in dash.samples_slider.options] == ["step 40", "step 80", "step 120"]
    assert "vanilla</b>: finished, step 120, no alerts" in dash.status.value

    def samples_title():
        return next(a.text for a in dash.figure.layout.annotations if a.text.startswith("samples at"))

    assert samples_title().startswith("samples at step 120")
    dash.samples_slider.value = 0
    assert samples_title().startswith("samples at step 40")

    trainer.fit(80)  # the run goes on (here, in this process); Reload follows it
    dash.samples_slider.value = 2
    dash.reload_button.click()
    assert len(dash.samples_slider.options) == 5 and samples_title().startswith("samples at step 200")
    assert "step 200" in dash.status.value and dash.figure.data[0].x.max() == 200
    dash.close()


def test_several_runs_overlay_one_colour_each(tmp_path):
    path = tmp_path / "runs.sqlite"
    stored_run(path, "vanilla")
    stored_run(path, "packed", pack=2)
    dash = gandiag.Dashboard.from_run("vanilla", "packed", store=path)
    groups = {t.legendgroup for t in dash.figure.data}
    assert groups == {"vanilla", "packed"}
    colours = {t.legendgroup: t.line.color for t in dash.figure.data}
    assert colours["vanilla"] != colours["packed"]
    assert dash.figure.layout.title.text == "vanilla vs packed"
    assert "<b>packed</b>: finished" in dash.status.value
    dash.close()


def test_unknown_runs_and_no_runs_are_clear_errors(tmp_path):
    path = tmp_path / "runs.sqlite"
    stored_run(path, "vanilla", steps=20)
    with pytest.raises(RunStoreError, match="known names: \\['vanilla'\\]"):
        gandiag.Dashboard.from_run("vanila", store=path)
    with pytest.raises(ValueError, match="expected one or more run names"):
        gandiag.Dashboard.from_run(store=path)


def test_compare_marks_each_runs_alerts_in_its_colour():
    steps = np.arange(1, 1001)
    runs = {"a": {"D/loss": (steps, np.ones(1000)), "D/out_real/mean": (steps, np.ones(1000)),
                  "D/out_fake/mean": (steps, np.zeros(1000)), "metric/modes": (steps[::100], np.full(10, 8.0))},
            "b <i>": {"D/loss": (steps, np.zeros(1000))}}
    alert = Alert("mode_collapse", step=500, severity="warning", message="m", evidence={},
                  explanation="e", fixes=[])
    fig = compare_figure(runs, {"a": [alert]})
    gap = next(t for t in fig.data if "logit gap" in t.hovertemplate)
    assert np.allclose(gap.y, 1.0)  # mean D(x) - mean D(G(z))
    assert sum(1 for s in fig.layout.shapes if s.x0 == 500 and s.line.color == fig.data[0].line.color) >= 3
    assert "b &lt;i&gt;" in next(t for t in fig.data if t.legendgroup == "b <i>").hovertemplate
    with pytest.raises(ValueError, match="at least one run"):
        compare_figure({})


def test_the_smoothing_slider_redraws_a_replay_and_a_comparison(tmp_path):
    path = tmp_path / "runs.sqlite"
    stored_run(path, "vanilla")
    stored_run(path, "packed", pack=2)
    for runs in (("vanilla",), ("vanilla", "packed")):
        dash = gandiag.Dashboard.from_run(*runs, store=path)
        assert dash.smoothing_slider.value == 0.6 and dash.smoothing_slider in dash.widget.children[0].children
        assert any((t.name or "").endswith("(raw)") for t in dash.figure.data)  # TensorBoard's default: on
        dash.smoothing_slider.value = 0.0
        assert not any((t.name or "").endswith("(raw)") for t in dash.figure.data)
        dash.smoothing_slider.value = 0.9
        smoothed = [t for t in dash.figure.data if t.name == ("r_t" if len(runs) == 1 else "vanilla")
                    and not t.opacity and len(t.y) > 4]
        assert smoothed and np.isfinite(smoothed[0].y).all()
        dash.close()
    with pytest.raises(ValueError, match=r"Dashboard.from_run: expected a smoothing weight in \[0, 1\)"):
        gandiag.Dashboard.from_run("vanilla", store=path, smoothing=1.5)
