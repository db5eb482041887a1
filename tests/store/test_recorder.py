"""Runs reach the store: from the trainer (StoreRecorder) and from attach(store=...)."""

import numpy as np
import pytest
import torch

import gandiag
from gandiag import TrainConfig, Trainer, data, models
from gandiag.store import RunStoreError, StoreRecorder, open_run
from gandiag.store.png import PNG_SIGNATURE
from tests.hooks.test_monitor import tutorial_loop, tutorial_pair


def test_a_trainer_run_is_stored_in_full(tmp_path):
    path = tmp_path / "gandiag.sqlite"
    G, D = models.small_toy()
    recorder = StoreRecorder(path, samples_every=20)
    trainer = Trainer(G, D, data.ring(), TrainConfig(log_every=10, steps=40), callbacks=[recorder], name="ring")
    trainer.fit()
    recorder.close()
    run = open_run("ring", path)
    assert run.status == "finished" and run.config["log_every"] == 10 and run.config["G"] == type(G).__name__
    assert set(trainer.history) <= set(run.keys())
    for key in trainer.history:
        steps, values = run.scalars(key)
        np.testing.assert_array_equal(steps, trainer.history[key][0])
        np.testing.assert_array_equal(values, trainer.history[key][1])
    stored = run.histograms("D/out_real/hist")
    np.testing.assert_array_equal(stored.counts, trainer.history.histograms["D/out_real/hist"].counts)
    assert run.scalars("metric/modes")[0].tolist() == [10, 20, 30, 40]
    samples = run.samples()
    assert [step for step, _ in samples] == [20, 40] and samples[0][1].startswith(PNG_SIGNATURE)


def test_a_failed_run_is_marked_with_an_alert(tmp_path):
    path = tmp_path / "gandiag.sqlite"
    G, D = models.small_toy()
    recorder = StoreRecorder(path)
    trainer = Trainer(G, D, data.ring(), TrainConfig(log_every=5, lr_d=1e30, lr_g=1e30),
                      callbacks=[recorder], name="boom")
    with pytest.raises(gandiag.train.trainer.NonFiniteLossError):
        trainer.fit(200)
    run = open_run("boom", path)
    assert run.status == "failed"
    assert run.alerts()[0].kind == "error" and "NonFiniteLossError" in run.alerts()[0].message


def test_attach_with_a_store_records_a_user_loop(tmp_path):
    path = tmp_path / "runs" / "gandiag.sqlite"
    torch.manual_seed(0)
    G, D = tutorial_pair()
    with gandiag.attach(G, D, store=path, run="tutorial", config={"lr": 2e-4}, log_every=3) as monitor:
        tutorial_loop(G, D, 7, monitor)
    run = open_run("tutorial", path)
    assert run.status == "finished" and run.config == {"lr": 2e-4, "loss": "logits"}
    for key in ("D/out_real/mean", "D/grad_norm/total", "D/loss"):
        np.testing.assert_array_equal(run.scalars(key)[1], monitor.history[key][1])
    assert run.scalars("D/loss")[0].tolist() == list(range(1, 8))


def test_an_error_in_the_loop_marks_the_run_failed_and_keeps_its_records(tmp_path):
    path = tmp_path / "gandiag.sqlite"
    G, D = tutorial_pair()
    with pytest.raises(RuntimeError, match="user bug"):
        with gandiag.attach(G, D, store=path, run="broken", log_every=2) as monitor:
            tutorial_loop(G, D, 3, monitor)
            raise RuntimeError("user bug")
    run = open_run("broken", path)
    assert run.status == "failed" and run.scalars("D/loss")[0].tolist() == [1, 2, 3]


def test_an_unusable_store_path_leaves_nothing_attached(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    G, D = tutorial_pair()
    with pytest.raises(RunStoreError):
        gandiag.attach(G, D, store=blocker / "gandiag.sqlite")
    for module in (*G.modules(), *D.modules()):
        assert not module._forward_hooks and not module._forward_pre_hooks
    gandiag.attach(G, D).remove()
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(RunStoreError):
        gandiag.attach(G, D, store=foreign)
    assert foreign.read_bytes() == b"this is not sqlite at all" * 100


def test_a_user_loop_stores_pictures_of_the_fakes_its_monitor_kept(tmp_path):
    path = tmp_path / "gandiag.sqlite"
    torch.manual_seed(0)
    ring = data.ring()
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, store=path, run="points", log_every=5):
        for _ in range(10):
            fake = G(torch.randn(16, 2))
            loss_d = (D(fake.detach()) - D(ring.sample(16))).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = -D(fake).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    pictures = open_run("points", path).samples()
    assert [step for step, _ in pictures] == [5, 10]
    assert all(png.startswith(PNG_SIGNATURE) for _, png in pictures)
