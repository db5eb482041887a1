"""Trainer: the loop, callbacks, determinism, EMA, threads, and every bad input of issue 1."""

import threading

import numpy as np
import pytest
import torch
from torch import nn

from gandiag import Callback, TrainConfig, Trainer, data, models
from gandiag.train import NonFiniteLossError


def tiny_pair(pack=1):
    G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    G.z_dim = 2
    D = nn.Sequential(nn.Linear(2 * pack, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return G, D


def make_trainer(pack=1, callbacks=None, **settings):
    torch.manual_seed(0)
    G, D = tiny_pair(pack)
    config = TrainConfig(batch_size=16, pack=pack, steps=20, log_every=5, **settings)
    return Trainer(G, D, data.ring(), config, callbacks=callbacks)


def test_fit_runs_and_records_every_step():
    trainer = make_trainer().fit(12)
    steps, loss_d = trainer.history["D/loss"]
    assert trainer.step == 12
    assert steps.tolist() == list(range(1, 13))  # flushed at 5, 10 and at the end of fit
    assert np.isfinite(loss_d).all()
    probs = trainer.history["D/prob_real/mean"][1]
    assert ((probs > 0) & (probs < 1)).all()


def test_fit_again_continues_where_it_stopped():
    a = make_trainer().fit(8).fit(7)
    b = make_trainer().fit(15)
    assert a.step == 15
    np.testing.assert_array_equal(a.history["G/loss"][1], b.history["G/loss"][1])


def test_same_seed_same_losses_other_seed_other_losses():
    a, b = make_trainer().fit(), make_trainer().fit()
    c = make_trainer(seed=1).fit()
    np.testing.assert_array_equal(a.history["D/loss"][1], b.history["D/loss"][1])
    assert not np.array_equal(a.history["D/loss"][1], c.history["D/loss"][1])


@pytest.mark.parametrize("settings", [
    {"loss": "minimax"}, {"loss": "wgan", "n_critic": 2}, {"loss": "wgan-gp"},
    {"loss": "hinge", "spectral_norm": True}, {"loss": "lsgan", "label_smoothing": 0.1},
    {"r1_gamma": 1.0}, {"instance_noise": 0.1}, {"pack": 2}, {"ema": 0.9},
    {"pack": 2, "r1_gamma": 1.0, "instance_noise": 0.1}, {"pack": 2, "loss": "wgan-gp"},
    {"lr_d": 4e-4, "lr_g": 1e-4},
])
def test_every_loss_and_stabiliser_trains(settings):
    pack = settings.pop("pack", 1)
    trainer = make_trainer(pack=pack, **settings).fit(6)
    assert np.isfinite(trainer.history["D/loss"][1]).all()
    assert trainer.sample(10).shape == (10, 2)


def test_wgan_clips_the_critic():
    trainer = make_trainer(loss="wgan", clip=0.05).fit(3)
    assert max(p.abs().max().item() for p in trainer.D.parameters()) == pytest.approx(0.05)


def test_ema_follows_g_by_its_decay():
    trainer = make_trainer(ema=0.5)
    before_ema = [p.clone() for p in trainer.G_ema.parameters()]
    trainer.fit(1)
    for old, ema, new in zip(before_ema, trainer.G_ema.parameters(), trainer.G.parameters()):
        torch.testing.assert_close(ema, 0.5 * old + 0.5 * new.detach())
    assert all(not p.requires_grad for p in trainer.G_ema.parameters())
    assert make_trainer().G_ema is None


def test_callbacks_are_called_by_name_in_order():
    events = []

    class Recorder(Callback):
        def on_fit_start(self, trainer):
            events.append(("start", trainer.step))

        def on_step_end(self, trainer):
            events.append(("step", trainer.step))

        def on_flush(self, trainer, records):
            events.append(("flush", records.scalars["D/loss"][0].tolist()))

        def on_fit_end(self, trainer):
            events.append(("end", trainer.step))

    make_trainer(callbacks=[Recorder()]).fit(6)
    assert events[0] == ("start", 0) and events[-1] == ("end", 6)
    assert ("flush", [1, 2, 3, 4, 5]) in events and ("flush", [6]) in events
    assert [e for e in events if e[0] == "step"] == [("step", s) for s in range(1, 7)]


def test_stop_and_pause_from_another_thread():
    gate = threading.Event()

    class PauseAtThree(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 3:
                trainer.pause()
                gate.set()

    trainer = make_trainer(callbacks=[PauseAtThree()])
    worker = threading.Thread(target=trainer.fit, args=(1000,))
    worker.start()
    assert gate.wait(10)
    assert trainer.paused and trainer.running
    step = trainer.step
    worker.join(0.2)
    assert trainer.step == step == 3  # held while paused
    trainer.resume()
    trainer.stop()
    worker.join(10)
    assert not worker.is_alive() and not trainer.running
    assert trainer.step < 1000
    assert len(trainer.history["D/loss"][0]) == trainer.step  # everything recorded


def test_non_finite_loss_stops_with_the_step_and_keeps_the_record():
    class PoisonAtStep7(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 6:
                with torch.no_grad():
                    trainer.D[-1].bias.fill_(float("nan"))

    trainer = make_trainer(callbacks=[PoisonAtStep7()])
    with pytest.raises(NonFiniteLossError, match="D/loss became nan at step 7") as caught:
        trainer.fit(20)
    assert caught.value.step == 7 and trainer.error is caught.value
    steps, losses = trainer.history["D/loss"]
    assert steps.tolist() == list(range(1, 11))  # detected at the flush of step 10
    assert np.isfinite(losses[:6]).all() and np.isnan(losses[6])


def test_non_finite_loss_keeps_the_last_good_checkpoint(tmp_path):
    class PoisonAtStep12(Callback):
        def on_step_end(self, trainer):
            if trainer.step == 11:
                with torch.no_grad():
                    trainer.G[-1].bias.fill_(float("inf"))

    trainer = make_trainer(callbacks=[PoisonAtStep12()], checkpoint_every=5,
                           checkpoint_dir=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="at step 12"):
        trainer.fit(20)
    saved = torch.load(tmp_path / "run-last.pt", weights_only=True)
    assert saved["step"] == 10
    assert all(torch.isfinite(v).all() for v in saved["G"].values())


# ---- bad input ----------------------------------------------------------------------
def test_models_must_be_modules():
    G, D = tiny_pair()
    with pytest.raises(TypeError, match="expected D to be an nn.Module, got a function"):
        Trainer(G, D.forward, data.ring())


def test_d_with_the_wrong_output_shape():
    G, _ = tiny_pair()
    D = nn.Linear(2, 3)
    trainer = Trainer(G, D, data.ring(), TrainConfig(batch_size=8))
    with pytest.raises(ValueError, match=r"D returned shape \(8, 3\).*expected logits of shape \(8,\) or \(8, 1\)"):
        trainer.fit(1)


def test_g_output_must_match_the_data():
    G = nn.Linear(2, 3)
    G.z_dim = 2
    trainer = Trainer(G, nn.Linear(3, 1), data.ring(), TrainConfig(batch_size=8))
    with pytest.raises(ValueError, match=r"G produced samples of shape \(3,\) but the data has \(2,\)"):
        trainer.fit(1)


def test_g_that_rejects_the_noise():
    G = nn.Linear(5, 2)  # no z_dim attribute: gets the default 100
    trainer = Trainer(G, nn.Linear(2, 1), data.ring(), TrainConfig(batch_size=8))
    with pytest.raises(ValueError, match=r"G failed on noise of shape \(8, 100\)"):
        trainer.fit(1)


def test_g_and_d_on_different_devices():
    G, D = tiny_pair()
    with pytest.raises(ValueError, match="G is on meta and D is on cpu"):
        Trainer(G.to("meta"), D, data.ring())


def test_empty_dataset():
    G, D = tiny_pair()
    with pytest.raises(ValueError, match="expected at least one training sample, got an empty dataset"):
        Trainer(G, D, torch.zeros(0, 2))


def test_packing_with_an_incompatible_d():
    G, D = tiny_pair(pack=1)
    trainer = Trainer(G, D, data.ring(), TrainConfig(batch_size=8, pack=2))
    with pytest.raises(ValueError, match=r"D failed on a batch of shape \(4, 4\).*pack=2"):
        trainer.fit(1)
    G, D = models.small_toy(pack=2)
    with pytest.raises(ValueError, match="D was built for pack=2 but config.pack=1"):
        Trainer(G, D, data.ring(), TrainConfig())


def test_z_dim_that_contradicts_g():
    G, D = models.small_toy()
    with pytest.raises(ValueError, match="TrainConfig.z_dim=100 but G.z_dim=4"):
        Trainer(G, D, data.ring(), TrainConfig(z_dim=100))


def test_fit_with_bad_steps():
    with pytest.raises(ValueError, match="expected steps to be an integer >= 0, got -5"):
        make_trainer().fit(-5)


def test_evaluate_needs_data_that_can_evaluate():
    G, D = tiny_pair()
    trainer = Trainer(G, D, torch.randn(100, 2), TrainConfig(batch_size=8))
    with pytest.raises(TypeError, match="has no .evaluate"):
        trainer.evaluate()
    assert make_trainer().fit(2).evaluate(100)["modes"] >= 0


def test_resume_mid_interval_never_overfills_the_record_buffer(tmp_path):
    # Flushes fall on multiples of log_every; a run resumed at step 7 must still fit.
    first = make_trainer().fit(7)
    first.save(tmp_path / "c.pt")
    resumed = make_trainer().load(tmp_path / "c.pt").fit(9)
    assert resumed.history["D/loss"][0].tolist() == list(range(1, 17))


@pytest.mark.parametrize("G, message", [
    (nn.Identity(), "expected G to have trainable parameters, got Identity with none"),
    (nn.Linear(2, 2).requires_grad_(False), r"all have requires_grad=False; call G.requires_grad_\(True\)"),
])
def test_g_without_trainable_parameters_fails_at_construction(G, message):
    with pytest.raises(ValueError, match=message):
        Trainer(G, nn.Linear(2, 1), data.ring(), TrainConfig(batch_size=8))
    with pytest.raises(TypeError, match="expected G to be an nn.Module, got a function"):
        Trainer(lambda z: z, nn.Linear(2, 1), data.ring())


@pytest.mark.parametrize("name, message", [
    ("../../x", r"expected a plain file name, got '../../x' \(it contains '/'\); use letters, digits"),
    ("/tmp/x", "contains '/'"), ("a\\b", "contains"), ("..", "a path, not a name"),
    ("", "expected a non-empty name"), ("x" * 300, "expected at most 239 bytes.*choose a shorter name"),
    (3, "expected a string, got int"),
])
def test_unsafe_run_names_are_refused(tmp_path, name, message):
    G, D = tiny_pair()
    config = TrainConfig(batch_size=8, log_every=5, checkpoint_every=5, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match=f"Trainer: name: .*{message}"):
        Trainer(G, D, data.ring(), config, name=name)


def test_the_longest_allowed_name_fits_every_file(tmp_path):
    from gandiag.train.paths import MAX_NAME_BYTES

    G, D = tiny_pair()
    config = TrainConfig(batch_size=8, log_every=2, checkpoint_every=2, checkpoint_dir=tmp_path)
    trainer = Trainer(G, D, data.ring(), config, name="é" * (MAX_NAME_BYTES // 2)).fit(2)
    assert [p.name for p in tmp_path.iterdir()] == [f"{trainer.name}-last.pt"]


def test_checkpoint_dir_must_be_a_writable_folder(tmp_path):
    G, D = tiny_pair()
    (tmp_path / "file").write_text("x")
    for folder, message in ((tmp_path / "file", "got '.*file', which is a file"),
                            (tmp_path / "file" / "sub", "got '.*sub', but '.*file' on its way is a file")):
        config = TrainConfig(batch_size=8, log_every=5, checkpoint_every=5, checkpoint_dir=folder)
        with pytest.raises(ValueError, match=f"TrainConfig.checkpoint_dir: expected a folder, {message}"):
            Trainer(G, D, data.ring(), config)
    (tmp_path / "run-last.pt").mkdir()
    config = TrainConfig(batch_size=8, log_every=5, checkpoint_every=5, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="run-last.pt' would be written as a file but is a folder"):
        Trainer(G, D, data.ring(), config)
    new_folder = tmp_path / "new" / "deeper"
    config = TrainConfig(batch_size=8, log_every=5, checkpoint_every=5, checkpoint_dir=new_folder)
    Trainer(G, D, data.ring(), config).fit(5)
    assert (new_folder / "run-last.pt").is_file()


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_data_of_another_float_type_trains(recwarn, dtype):
    G, D = tiny_pair()
    points = np.random.default_rng(0).standard_normal((64, 2)).astype(dtype)
    trainer = Trainer(G, D, points, TrainConfig(batch_size=8, log_every=2)).fit(2)
    assert np.isfinite(trainer.history["D/loss"][1]).all()
    notes = [str(w.message) for w in recwarn if "converted to float32" in str(w.message)]
    assert len(notes) == (1 if dtype == np.float64 else 0)  # float16 -> float32 loses nothing


def test_uint8_images_are_refused_with_the_scaling_fix():
    G, D = tiny_pair()
    with pytest.raises(TypeError, match=r"got dtype torch.uint8; .*127.5 - 1"):
        Trainer(G, D, np.zeros((16, 2), dtype=np.uint8))
