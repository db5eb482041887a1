"""One callback protocol: the same objects, the same hooks, in a Trainer and in a user loop."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag import data, models
from gandiag.core import Alert, Callback
from gandiag.metrics import MetricSchedule
from gandiag.scenarios import SCENARIOS, Inject
from gandiag.store import StoreRecorder, open_run
from gandiag.train import ProgressPrinter


class Log(Callback):
    """Writes down each hook it gets, with the step and the host."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.hosts: set[int] = set()

    def _note(self, hook: str, host) -> None:
        self.calls.append((hook, host.step))
        self.hosts.add(id(host))

    def on_fit_start(self, host):
        self._note("fit_start", host)

    def on_step_end(self, host):
        self._note("step_end", host)

    def on_records(self, host, records):
        self._note("records", host)

    def on_flush(self, host, records):
        self._note("flush", host)

    def on_alert(self, host, alert):
        self._note(f"alert:{alert.kind}", host)

    def on_fit_end(self, host):
        self._note(f"fit_end:{host.end_status}", host)


def user_loop(monitor, steps: int, *, fail_at: int | None = None) -> None:
    """A plain D-first loop on a tiny MLP GAN, as a user writes it."""
    G, D = monitor._G(), monitor._D()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    for step in range(steps):
        if step == fail_at:
            raise RuntimeError("the user's loop failed")
        real = torch.randn(16, 2, generator=generator)
        fake = G(torch.randn(16, 3, generator=generator))
        loss_d = bce(D(real), torch.ones(16, 1)) + bce(D(fake.detach()), torch.zeros(16, 1))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(D(fake), torch.ones(16, 1))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        monitor.log(loss_d=loss_d, loss_g=loss_g)


def tiny_pair():
    torch.manual_seed(0)
    return (nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)),
            nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1)))


def test_a_user_loop_drives_every_hook_in_order():
    log = Log()
    G, D = tiny_pair()
    with gandiag.attach(G, D, log_every=5) as monitor:
        monitor.add_callback(log)
        user_loop(monitor, 10)
    hooks = [hook for hook, _ in log.calls]
    assert hooks[0] == "fit_start" and hooks[-1] == "fit_end:finished"
    assert hooks.count("step_end") == 10
    # Each flush: the records first, then on_flush; at steps 5 and 10 (the flush at
    # removal finds nothing new: no records, no on_flush).
    flushes = [(hook, step) for hook, step in log.calls if hook in ("records", "flush")]
    assert flushes == [("records", 5), ("flush", 5), ("records", 10), ("flush", 10)]
    assert log.hosts == {id(monitor)}


@pytest.mark.parametrize("error, status", [(RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")])
def test_a_user_loop_that_ends_by_an_error_says_so_to_its_callbacks(error, status):
    log = Log()
    G, D = tiny_pair()
    with pytest.raises(error):
        with gandiag.attach(G, D, log_every=5) as monitor:
            monitor.add_callback(log)
            user_loop(monitor, 3)
            raise error()
    assert log.calls[-1] == (f"fit_end:{status}", 3)


def test_a_trainer_drives_the_same_callback_with_itself_as_the_host():
    log = Log()
    G, D = models.small_toy()
    trainer = gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(log_every=10), callbacks=[log])
    trainer.fit(25)
    hooks = [hook for hook, _ in log.calls]
    assert hooks[0] == "fit_start" and hooks[-1] == "fit_end:finished"
    assert hooks.count("step_end") == 25
    flushes = [(hook, step) for hook, step in log.calls if hook in ("records", "flush")]
    assert flushes == [("records", 10), ("flush", 10), ("records", 20), ("flush", 20),
                       ("records", 25), ("flush", 25)]
    assert log.hosts == {id(trainer)}
    assert trainer.callbacks is trainer.monitor.callbacks  # one list, driven by both


def test_alerts_travel_through_the_host_to_every_callback_and_the_store(tmp_path):
    path = tmp_path / "s.sqlite"
    log = Log()
    G, D = models.small_toy()
    trainer = gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(steps=200, log_every=20),
                              callbacks=[Inject(SCENARIOS["nonfinite"], 50),
                                         gandiag.detect.DiagnosisCallback(warn=False), log,
                                         StoreRecorder(path, evaluate=False)], name="nan")
    with pytest.raises(gandiag.train.NonFiniteLossError):
        trainer.fit()
    assert [a.kind for a in trainer.alerts] == ["nonfinite"]
    assert ("alert:nonfinite", 60) in log.calls  # announced at the flush that carried it
    assert log.calls[-1] == ("fit_end:failed", 60)
    with open_run("nan", path) as run:
        assert run.alerts()[0] == trainer.alerts[0]


class CountingRing:
    """The ring, counting how often its metrics are evaluated."""

    def __init__(self) -> None:
        self.ring, self.calls = data.ring(), 0

    def sample(self, *args, **kwargs):
        return self.ring.sample(*args, **kwargs)

    def evaluate(self, samples):
        self.calls += 1
        return self.ring.evaluate(samples)


def test_the_datas_metrics_are_evaluated_once_per_flush_however_many_callbacks_ask(tmp_path):
    ring = CountingRing()
    G, D = models.small_toy()
    printer = ProgressPrinter(evaluate=True, bar=False, stream=open(tmp_path / "log.txt", "w"))
    trainer = gandiag.Trainer(G, D, ring, gandiag.TrainConfig(log_every=10),
                              callbacks=[printer, StoreRecorder(tmp_path / "s.sqlite")], name="once")
    trainer.fit(25)
    assert ring.calls == 3  # steps 10, 20, 25
    steps, _ = trainer.history["metric/modes"]
    assert steps.tolist() == [10, 20, 25]
    with open_run("once", tmp_path / "s.sqlite") as run:
        assert run.scalars("metric/modes")[0].tolist() == [10, 20, 25]
    assert [step for step, _ in printer.evaluations] == [10, 20, 25]
    assert printer.evaluations[-1][1] == trainer.evaluate()  # the final weights' metrics


def test_a_metric_schedule_runs_in_a_user_loop_with_its_own_sampler():
    G, D = tiny_pair()
    ring = data.ring()

    @torch.no_grad()
    def sample(n: int, seed: int) -> torch.Tensor:
        return G(torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)))

    schedule = MetricSchedule({"toy": ring.evaluate}, every=4, n_samples=200, sample=sample)
    with gandiag.attach(G, D, log_every=5) as monitor:
        monitor.add_callback(schedule)
        user_loop(monitor, 10)
    steps, _ = monitor.history["metric/modes"]
    assert steps.tolist() == [4, 8]
    assert schedule.records_metrics(monitor)


def test_a_metric_schedule_without_a_sampler_in_a_user_loop_says_what_it_needs():
    G, D = tiny_pair()
    with gandiag.attach(G, D) as monitor:
        schedule = MetricSchedule({"toy": data.ring().evaluate}, every=1)
        with pytest.raises(TypeError, match="needs sample="):
            schedule.run(monitor)


def test_a_failing_callback_is_warned_about_and_the_loop_goes_on():
    class Broken(Callback):
        def on_records(self, host, records):
            raise ValueError("broken on purpose")

    G, D = tiny_pair()
    with pytest.warns(UserWarning, match="Broken failed on new records"):
        with gandiag.attach(G, D, log_every=5) as monitor:
            monitor.add_callback(Broken())
            user_loop(monitor, 10)
    assert monitor.history["D/loss"][0].tolist() == list(range(1, 11))


def test_the_old_consumers_list_still_works_and_warns():
    G, D = tiny_pair()
    got = []
    with gandiag.attach(G, D, log_every=5) as monitor:
        with pytest.warns(DeprecationWarning, match="add_callback"):
            monitor.consumers.append(lambda records: got.append(int(records.steps[-1])))
        user_loop(monitor, 10)
    assert got == [5, 10]


def test_add_callback_refuses_what_is_not_a_callback():
    G, D = tiny_pair()
    with gandiag.attach(G, D) as monitor:
        with pytest.raises(TypeError, match="expected a gandiag.Callback, got function"):
            monitor.add_callback(lambda records: None)


def test_a_store_recorder_in_a_user_loop_writes_records_alerts_and_status(tmp_path):
    G, D = tiny_pair()
    path = tmp_path / "s.sqlite"
    alert = Alert("oscillation", step=3, severity="warning", message="made up for the test")
    with gandiag.attach(G, D, log_every=5, store=path, run="mine", config={"lr": 2e-4}) as monitor:
        user_loop(monitor, 10)
        monitor.alert(alert)
    with open_run("mine", path) as run:
        assert run.status == "finished" and run.config == {"lr": 2e-4, "loss": "logits"}
        assert run.scalars("D/loss")[0].tolist() == list(range(1, 11))
        assert run.alerts() == [alert]
        np.testing.assert_array_equal(monitor.history["D/loss"][1], run.scalars("D/loss")[1])


def test_the_dashboards_old_keyword_names_still_work_and_warn():
    from gandiag.widgets.dashboard import Dashboard

    G, D = models.small_toy()
    trainer = gandiag.Trainer(G, D, data.ring())
    with pytest.warns(DeprecationWarning, match="refresh_seconds"):
        dash = Dashboard(trainer, refresh_every=0.25, samples_every=None)
    try:
        assert dash.refresh_seconds == 0.25 and dash.samples_seconds is None
    finally:
        dash.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Dashboard(trainer, refresh_seconds=0.25, samples_seconds=None).close()


def test_attachs_config_is_the_monitors_so_a_later_diagnosis_knows_the_loss():
    from gandiag.core import series_of

    G, D = tiny_pair()
    with gandiag.attach(G, D, config={"loss": "wgan"}) as monitor:
        user_loop(monitor, 2)
    assert monitor.config == {"loss": "wgan"}
    assert series_of(monitor)[1] == "wgan"  # what diagnose(monitor) judges the outputs by
