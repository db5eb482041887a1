"""MetricSchedule: metrics on fixed noise every N steps, into the history and the store."""

import numpy as np
import pytest

from gandiag import TrainConfig, Trainer, data, models
from gandiag.metrics.schedule import MetricSchedule
from gandiag.store import StoreRecorder, open_run


def test_metrics_are_recorded_every_n_steps_into_history_and_store(tmp_path):
    ring = data.ring()
    calls = []

    def spread(samples):
        calls.append(samples.clone())
        return float(samples.std())

    schedule = MetricSchedule({"toy": ring.evaluate, "spread": spread}, every=5, n_samples=200)
    recorder = StoreRecorder(tmp_path / "s.sqlite", evaluate=False)
    G, D = models.small_toy()
    trainer = Trainer(G, D, ring, TrainConfig(log_every=5), callbacks=[schedule, recorder], name="m")
    trainer.fit(15)
    recorder.close()
    assert trainer.history["metric/modes"][0].tolist() == [5, 10, 15]
    assert trainer.history["metric/spread"][0].tolist() == [5, 10, 15]
    run = open_run("m", tmp_path / "s.sqlite")
    np.testing.assert_array_equal(run.scalars("metric/reverse_kl")[1], trainer.history["metric/reverse_kl"][1])
    assert len(calls) == 3 and calls[0].shape == (200, 2)
    assert [step for step, _ in schedule.results] == [5, 10, 15]


def test_the_noise_is_fixed_so_the_same_g_gives_the_same_samples():
    samples = []
    schedule = MetricSchedule({"s": lambda x: samples.append(x) or 0.0}, every=1, n_samples=50)
    G, D = models.small_toy()
    trainer = Trainer(G, D, data.ring(), TrainConfig(log_every=5), callbacks=[schedule])
    schedule.run(trainer)
    schedule.run(trainer)  # no training in between
    assert np.array_equal(samples[0].numpy(), samples[1].numpy())


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="expected a dict of name -> callable"):
        MetricSchedule({"toy": 3})
    with pytest.raises(ValueError, match="expected every to be an integer >= 1"):
        MetricSchedule({"toy": len}, every=0)
    schedule = MetricSchedule({"a": lambda s: {"x": 1.0}, "b": lambda s: {"x": 2.0}}, every=1, n_samples=10)
    G, D = models.small_toy()
    with pytest.raises(ValueError, match="two metrics both give 'x'"):
        Trainer(G, D, data.ring(), TrainConfig(log_every=1), callbacks=[schedule]).fit(1)
