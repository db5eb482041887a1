"""Live diagnosis in a Trainer and in a user loop: alerts reach the store, the opt-in
callback stops training, a NaN is reported before the trainer stops on it."""

import math
import warnings

import pytest
import torch
from torch import nn

import gandiag
from gandiag import data, models
from gandiag.detect import Alert, DiagnosisCallback, GANAlertWarning, diagnose
from gandiag.scenarios import SCENARIOS, Inject
from gandiag.store import StoreRecorder, open_run
from gandiag.train.trainer import NonFiniteLossError

QUICK = {"mode_collapse": {"persist": 20, "spread_window": 20}}


def collapsing_trainer(path, callback, steps=1500, onset=300):
    torch.manual_seed(0)
    G, D = models.small_toy(pack=2)
    config = gandiag.TrainConfig(pack=2, steps=steps, seed=0, log_every=10)
    return gandiag.Trainer(G, D, data.ring(), config, name="collapsing",
                           callbacks=[Inject(SCENARIOS["collapse"], onset), callback,
                                      StoreRecorder(path, evaluate=False)])


def test_callback_stops_training_on_a_chosen_alert_and_stores_it(tmp_path):
    path = tmp_path / "gandiag.sqlite"
    callback = DiagnosisCallback(stop_on={"mode_collapse"}, warmup=200, thresholds=QUICK, warn=False)
    trainer = collapsing_trainer(path, callback)
    trainer.fit()
    assert callback.stopped_by is not None and callback.stopped_by.kind == "mode_collapse"
    assert 300 < callback.stopped_by.detected_at <= trainer.step < 400   # stopped within a flush
    with open_run("collapsing", path) as run:
        assert run.status == "stopped"
        stored = [a for a in run.alerts() if a.kind == "mode_collapse"]
        assert len(stored) == 1 and isinstance(stored[0], Alert)
        assert stored[0] == callback.stopped_by   # evidence, explanation, fixes all round-trip
        assert stored[0].time is not None and stored[0].fixes
        # Diagnosing the stored run afterwards finds the same collapse.
        again = [a for a in diagnose(run, warmup=200, thresholds=QUICK) if a.kind == "mode_collapse"]
        assert again == stored


def test_without_stop_on_training_goes_on_and_warns(tmp_path):
    callback = DiagnosisCallback(warmup=200, thresholds=QUICK)
    trainer = collapsing_trainer(tmp_path / "s.sqlite", callback, steps=500)
    with pytest.warns(GANAlertWarning, match="mode_collapse at step .*Try: pack D's inputs"):
        trainer.fit()
    assert trainer.step == 500 and "mode_collapse" in [a.kind for a in callback.alerts]


def test_unknown_stop_on_kind_is_refused():
    with pytest.raises(ValueError, match="unknown alert kinds in stop_on: \\['nan'\\]"):
        DiagnosisCallback(stop_on={"nan"})


def test_the_nonfinite_alert_is_raised_before_the_trainer_stops_on_nan(tmp_path):
    path = tmp_path / "nan.sqlite"
    callback = DiagnosisCallback(warn=False)
    torch.manual_seed(0)
    G, D = models.small_toy()
    trainer = gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(steps=200, log_every=20),
                              callbacks=[Inject(SCENARIOS["nonfinite"], 50), callback,
                                         StoreRecorder(path, evaluate=False)], name="nan")
    with pytest.raises(NonFiniteLossError):
        trainer.fit()
    (alert,) = callback.alerts
    assert alert.kind == "nonfinite" and alert.step == 51
    assert alert.evidence["first"] == "D(fake) in the D update"
    with open_run("nan", path) as run:
        assert [a.kind for a in run.alerts()] == ["nonfinite", "error"]


def test_checkpoint_resume_keeps_the_diagnosis(tmp_path):
    callback = DiagnosisCallback(warmup=200, thresholds=QUICK, warn=False)
    trainer = collapsing_trainer(tmp_path / "a.sqlite", callback, steps=400)
    trainer.fit()
    trainer.save(tmp_path / "ckpt.pt")
    before = list(callback.alerts)
    assert before
    resumed_callback = DiagnosisCallback(warmup=200, thresholds=QUICK, warn=False)
    resumed = collapsing_trainer(tmp_path / "b.sqlite", resumed_callback, steps=400).load(tmp_path / "ckpt.pt")
    resumed.fit(100)
    assert resumed_callback.alerts[:len(before)] == before
    assert resumed.step == 500


def user_loop(G, D, steps, nan_at=None, zero_grad_d=True):
    """A user's own loop, BCEWithLogits, written the usual way."""
    criterion = nn.BCEWithLogitsLoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ring = data.ring()
    for step in range(1, steps + 1):
        real = ring.sample(64)
        if step == nan_at:
            real[0, 0] = math.nan   # a corrupt batch
        if zero_grad_d:
            opt_d.zero_grad()
        fake = G(torch.randn(64, 4))
        loss_d = (criterion(D(real).view(-1), torch.ones(64))
                  + criterion(D(fake.detach()).view(-1), torch.zeros(64)))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = criterion(D(fake).view(-1), torch.ones(64))
        loss_g.backward()
        opt_g.step()


def test_attach_with_diagnose_in_a_user_loop_reports_a_corrupt_batch(tmp_path):
    torch.manual_seed(0)
    G, D = models.small_toy()
    with pytest.warns(GANAlertWarning, match="nonfinite at step 30"):
        with gandiag.attach(G, D, store=tmp_path / "user.sqlite", run="mine", diagnose=True,
                            log_every=10) as monitor:
            user_loop(G, D, 60, nan_at=30)
    alerts = monitor.diagnosis.alerts
    assert [a.kind for a in alerts] == ["nonfinite"] and alerts[0].evidence["first"] == "D(real)"
    assert "real batch holds NaN" in alerts[0].explanation
    with open_run("mine", tmp_path / "user.sqlite") as run:
        assert run.alerts() == alerts


def test_attach_diagnose_options_are_checked_and_a_refused_attach_leaves_no_hooks():
    G, D = models.small_toy()
    with pytest.raises(ValueError, match="unknown alert kind"):
        gandiag.attach(G, D, diagnose={"kinds": ["collapse"]})
    # Attaching again works: the refused monitor was removed.
    with gandiag.attach(G, D, diagnose={"warmup": 0, "kinds": ["nonfinite"]}) as monitor:
        with warnings.catch_warnings():
            warnings.simplefilter("error", GANAlertWarning)
            user_loop(G, D, 5)
    assert monitor.diagnosis.alerts == [] and monitor.step == 5


def test_a_missing_zero_grad_becomes_a_gradient_leak_alert():
    torch.manual_seed(0)
    G, D = models.small_toy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hooks' GradientLeakWarning and the alert's warning
        with gandiag.attach(G, D, diagnose=True, log_every=10) as monitor:
            user_loop(G, D, 30, zero_grad_d=False)
    leaks = [a for a in monitor.diagnosis.alerts if a.kind == "gradient_leak"]
    # D's .grad is never zeroed at all: 'stale' (a zero_grad in the wrong place is 'other').
    assert [(a.evidence["model"], a.evidence["kind"]) for a in leaks] == [("D", "stale")]
    assert "never zeroed" in leaks[0].message and "opt_d.zero_grad()" in leaks[0].fixes[0]


def test_an_info_alert_never_stops_a_run():
    """Absorbed gradient spikes are `info`: `stop_on` is for harm, warning or critical."""
    from gandiag.core.records import Records
    from tests.detect.series import healthy

    class Host:
        config, stopped, alerts = {}, False, []

        def alert(self, alert):
            self.alerts.append(alert)

        def stop(self):
            self.stopped = True

    series = healthy()
    s, total = series["D/grad_norm/total"]
    total = total.copy()
    total[[2999, 3099, 3199]] *= 50  # three spikes that the median absorbs
    series["D/grad_norm/total"] = (s, total)
    host, callback = Host(), DiagnosisCallback(stop_on={"exploding_gradients"}, warn=False)
    callback.on_fit_start(host)
    callback.on_records(host, Records(scalars=series))
    assert [(a.kind, a.severity) for a in host.alerts] == [("exploding_gradients", "info")]
    assert not host.stopped and callback.stopped_by is None
