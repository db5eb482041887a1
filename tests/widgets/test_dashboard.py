"""The live dashboard without a browser: controls driven with Button.click() and the
toggle's value, training in a background thread, errors re-raised by wait()."""

import time

import numpy as np
import pytest
import torch

import gandiag
from gandiag import data, models
from gandiag.widgets.dashboard import Dashboard


def trainer(steps=100_000, **config):
    torch.manual_seed(0)
    G, D = models.small_toy()
    return gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(steps=steps, log_every=20, **config))


def until(condition, timeout=30.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_pause_resume_and_stop_a_background_run():
    t = trainer()
    dash = Dashboard(t, refresh_seconds=0.05)
    dash.train()
    until(lambda: t.step > 50)
    dash.pause_button.value = True          # the toggle, as a click sets it
    time.sleep(0.2)
    paused_at = t.step
    time.sleep(0.3)
    assert t.step <= paused_at + 1 and dash.pause_button.description == "Resume"
    dash.pause_button.value = False
    until(lambda: t.step > paused_at + 40)
    dash.stop_button.click()
    dash.wait(timeout=30)
    assert not dash._thread.is_alive() and t.step < 100_000
    until(lambda: "step" in dash.status.value)
    dash.close()


def test_one_step_and_learning_rate_sliders_take_effect_at_the_next_step():
    t = trainer()
    dash = Dashboard(t, refresh_seconds=0.05)
    dash.pause()
    dash.train()
    time.sleep(0.2)
    assert t.step == 0
    dash.lr_sliders["D"].value = 1e-3
    dash.step_button.click()
    until(lambda: t.step == 1)
    time.sleep(0.2)
    assert t.step == 1 and t.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3)
    dash.stop()
    dash.wait(timeout=30)
    dash.close()


class Boom(gandiag.Callback):
    def on_step_end(self, trainer):
        if trainer.step == 50:
            raise RuntimeError("boom <in> the data pipeline")


def test_an_exception_in_training_is_shown_and_reraised_by_wait():
    t = trainer(steps=200)
    t.callbacks.append(Boom())
    dash = Dashboard(t, refresh_seconds=0.05)
    dash.train()
    with pytest.raises(RuntimeError, match="boom"):
        dash.wait(timeout=30)
    assert "training failed" in dash.status.value and "boom &lt;in&gt; the data" in dash.status.value
    assert t.step == 50
    dash.close()


def test_panels_refresh_with_bounded_float32_traces():
    t = trainer(steps=400)
    dash = Dashboard(t, refresh_seconds=0.05)
    dash.train()
    dash.wait(timeout=60)
    dash.refresh()
    names = {trace.name for trace in dash.figure.data}
    assert {"D loss", "G loss", "r_t", "G gradients"} <= names
    # the samples panel ends where training did
    assert any(a.text.startswith("samples at step 400:") for a in dash.figure.layout.annotations)
    for trace in dash.figure.data:
        if trace.type == "scatter":
            assert 0 < len(trace.x) <= 2000 and np.asarray(trace.y).dtype == np.float32
    dash.close()


def test_the_samples_panel_follows_training_from_the_training_thread():
    t = trainer(steps=100_000)
    dash = Dashboard(t, refresh_seconds=0.05, samples_seconds=0.1)

    def samples_step():
        title = next(a.text for a in dash.figure.layout.annotations if a.text.startswith("samples"))
        return int(title.split()[3].rstrip(":")) if title.startswith("samples at step") else -1

    assert samples_step() == 0  # taken at once: nothing was training
    dash.train()
    until(lambda: samples_step() >= 100)
    assert {"D's logit", "G(z)", "G's gradient"} <= {trace.name for trace in dash.figure.data}
    dash.stop()
    dash.wait(timeout=30)
    dash.close()
    plain = Dashboard(t, samples_seconds=None)
    assert not any(a.text.startswith("samples") for a in plain.figure.layout.annotations)
    plain.close()
    with pytest.raises(ValueError, match="samples_seconds > 0"):
        Dashboard(t, samples_seconds=0)


def test_interrupting_wait_stops_training_cleanly():
    t = trainer()
    dash = Dashboard(t, refresh_seconds=0.05)
    dash.train()
    until(lambda: t.step > 20)
    # Kernel -> Interrupt raises KeyboardInterrupt in the main thread, inside wait()'s join.
    # Raised here by the join itself: interrupt_main() needs a SIGINT handler, which a
    # background CI job does not have (and there it also aborted Python at exit).
    real_join, interrupted = dash._thread.join, []

    def join(timeout=None):
        if not interrupted and t.step > 40:
            interrupted.append(t.step)
            raise KeyboardInterrupt
        return real_join(timeout)

    dash._thread.join = join
    with pytest.raises(KeyboardInterrupt):
        dash.wait()
    assert not dash._thread.is_alive() and t.stop_requested and t.step < 100_000
    assert "stopped by Kernel -> Interrupt" in dash.status.value
    dash.close()


def test_a_user_loop_monitor_and_bad_input():
    G, D = models.small_toy()
    with gandiag.attach(G, D) as monitor:
        dash = Dashboard(monitor)
        with pytest.raises(TypeError, match="watches a user loop"):
            dash.train(10)
        dash.close()
    with pytest.raises(TypeError, match="expected a gandiag.Trainer or a Monitor"):
        Dashboard("run")


def test_the_smoothing_slider_sits_with_the_controls_and_redraws_from_the_refresher():
    t = trainer(steps=60)
    dash = Dashboard(t, refresh_seconds=0.05, samples_seconds=None)
    assert dash.smoothing_slider.value == 0.6 and dash.smoothing_slider in dash.controls.children
    dash.train()
    dash.wait(timeout=60)
    until(lambda: any(tr.name == "D loss (raw)" for tr in dash.figure.data))
    dash.smoothing_slider.value = 0.0  # the refresher thread redraws, training or not
    until(lambda: not any((tr.name or "").endswith("(raw)") for tr in dash.figure.data))
    dash.close()
    G, D = models.small_toy()
    with gandiag.attach(G, D) as monitor:  # a user loop: the slider is its one control
        dash = Dashboard(monitor, smoothing=0.9)
        assert list(dash.controls.children) == [dash.smoothing_slider] and dash.smoothing == 0.9
        dash.close()
    with pytest.raises(ValueError, match=r"Dashboard: expected a smoothing weight in \[0, 1\)"):
        Dashboard(trainer(), smoothing=-0.5)
