"""Checkpoints: weights_only files, exact resume on the CPU, clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

from gandiag import TrainConfig, Trainer, data
from tests.train.test_trainer import make_trainer, tiny_pair


@pytest.mark.parametrize("settings", [
    {}, {"ema": 0.9, "spectral_norm": True, "instance_noise": 0.2, "r1_gamma": 1.0},
    {"loss": "wgan-gp", "n_critic": 2},
])
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path, settings):
    uninterrupted = make_trainer(**settings).fit(16)

    first = make_trainer(**settings).fit(9)
    first.save(tmp_path / "ckpt.pt")
    resumed = make_trainer(**settings).load(tmp_path / "ckpt.pt")
    torch.manual_seed(1234)  # whatever happens to the global RNG meanwhile is undone by load
    resumed.load(tmp_path / "ckpt.pt").fit(7)

    assert resumed.step == 16
    for key in ("D/loss", "G/loss", "D/out_fake/mean"):
        np.testing.assert_array_equal(resumed.history[key][1], uninterrupted.history[key][1])
    for a, b in zip(resumed.G.state_dict().values(), uninterrupted.G.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_with_tensor_data_continues_the_shuffle(tmp_path):
    points = data.ring().sample(40, generator=torch.Generator().manual_seed(0))

    def build():
        torch.manual_seed(0)
        G, D = tiny_pair()
        return Trainer(G, D, points, TrainConfig(batch_size=16, log_every=4))

    uninterrupted = build().fit(10)
    build().fit(5).save(tmp_path / "c.pt")
    resumed = build().load(tmp_path / "c.pt").fit(5)
    np.testing.assert_array_equal(resumed.history["D/loss"][1], uninterrupted.history["D/loss"][1])


def test_checkpoint_loads_with_weights_only(tmp_path):
    make_trainer(ema=0.9).fit(3).save(tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["format"] == "gandiag-checkpoint" and state["step"] == 3
    assert state["config"]["ema"] == 0.9


def test_loading_into_another_setup_is_a_clear_error(tmp_path):
    make_trainer().fit(2).save(tmp_path / "c.pt")
    with pytest.raises(ValueError, match="trained with other settings.*pack: saved 1 vs now 2"):
        make_trainer(pack=2).load(tmp_path / "c.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a gandiag checkpoint"):
        make_trainer().load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        make_trainer().load(tmp_path / "missing.pt")
    with pytest.warns(UserWarning, match="changed settings: lr_d"):
        make_trainer(lr_d=1e-3).load(tmp_path / "c.pt")


def test_state_dict_round_trip_in_memory():
    source = make_trainer(ema=0.9).fit(4)
    target = make_trainer(ema=0.9)
    target.load_state_dict(source.state_dict())
    assert target.step == 4
    np.testing.assert_array_equal(target.history["D/loss"][1], source.history["D/loss"][1])
    torch.testing.assert_close(target.sample(8), source.sample(8))


# ---- a load that fails changes nothing ----------------------------------------------
def snapshot(trainer):
    """Everything a load would change, as copies."""
    return {"G": {k: v.clone() for k, v in trainer.G.state_dict().items()},
            "D": {k: v.clone() for k, v in trainer.D.state_dict().items()},
            "opt_d": repr(trainer.opt_d.state_dict()), "opt_g": repr(trainer.opt_g.state_dict()),
            "step": trainer.step, "history": trainer.history["D/loss"][1].copy(),
            "noise": trainer.noise_generator.get_state().clone(),
            "data": trainer.data.state_dict()}


def assert_unchanged(trainer, before):
    after = snapshot(trainer)
    for part in ("G", "D"):
        for key, value in before[part].items():
            torch.testing.assert_close(after[part][key], value, rtol=0, atol=0)
    assert (after["opt_d"], after["opt_g"], after["step"]) == (before["opt_d"], before["opt_g"], before["step"])
    np.testing.assert_array_equal(after["history"], before["history"])
    assert torch.equal(after["noise"], before["noise"])
    assert torch.equal(after["data"]["order"], before["data"]["order"])
    assert after["data"]["position"] == before["data"]["position"]


def tensor_trainer(points=40, hidden_d=16, ema=0.0):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    G.z_dim = 2
    D = nn.Sequential(nn.Linear(2, hidden_d), nn.LeakyReLU(0.2), nn.Linear(hidden_d, 1))
    data_points = data.ring().sample(points, generator=torch.Generator().manual_seed(0))
    return Trainer(G, D, data_points, TrainConfig(batch_size=8, log_every=2, ema=ema))


def test_a_d_that_does_not_fit_leaves_g_and_everything_else_as_it_was(tmp_path):
    tensor_trainer(hidden_d=16).fit(4).save(tmp_path / "c.pt")
    target = tensor_trainer(hidden_d=32).fit(2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"checkpoint's D does not fit this trainer's D \(shapes "
                                         r"differ: '0.weight' saved \(16, 2\) vs now \(32, 2\)"):
        target.load(tmp_path / "c.pt")
    assert_unchanged(target, before)
    target.fit(2)  # and it still trains


@pytest.mark.parametrize("damage, message", [
    (lambda s: s["G"].pop("0.bias"), r"checkpoint's G does not fit this trainer's G \(missing '0.bias'"),
    (lambda s: s["D"].update(extra=torch.zeros(1)), r"D does not fit.*unexpected 'extra'"),
    (lambda s: s["G_ema"]["model"].update({"2.weight": torch.zeros(3, 3)}),
     r"G's EMA copy does not fit this trainer's G \(shapes differ: '2.weight' saved \(3, 3\)"),
    (lambda s: s["opt_d"]["state"][0].update(exp_avg=torch.zeros(5)), "D's optimizer state does not fit"),
    (lambda s: s["opt_g"]["param_groups"].append(s["opt_g"]["param_groups"][0]), "G's optimizer state does not fit"),
    (lambda s: s["rng"].update(noise=torch.zeros(16, dtype=torch.uint8)),
     "noise generator state does not fit.*another kind of device"),
    (lambda s: s.pop("opt_g"), "incomplete: expected its 'opt_g' part, got nothing"),
    (lambda s: s.update(step="7"), "incomplete: expected its 'step' part, got str '7'"),
    (lambda s: s["monitor"].pop("history"), "does not fit this trainer's data, records or callbacks.*nothing was loaded"),
])
def test_every_part_is_checked_before_any_is_assigned(damage, message):
    state = tensor_trainer(ema=0.9).fit(4).state_dict()
    damage(state)
    target = tensor_trainer(ema=0.9).fit(2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=message) as caught:
        target.load_state_dict(state)
    assert "\n" not in str(caught.value)
    assert_unchanged(target, before)


def test_data_of_another_size_is_refused_and_rolled_back(tmp_path):
    tensor_trainer(points=40).fit(4).save(tmp_path / "c.pt")
    target = tensor_trainer(points=30).fit(2)
    before = snapshot(target)
    with pytest.raises(ValueError, match="expected the shuffle of 30 samples, got an order of 40"):
        target.load(tmp_path / "c.pt")
    assert_unchanged(target, before)


def write_bytes(path, content):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p, good: write_bytes(p, good.read_bytes()[: good.stat().st_size // 2]), "truncated or damaged"),
    (lambda p, good: write_bytes(p, b""), "truncated or damaged"),
    (lambda p, good: write_bytes(p, b"not a checkpoint\n"), "not a torch file"),
    (lambda p, good: write_bytes(p, b"hello\n"), "not a torch file"),
    (lambda p, good: write_bytes(p, bytes(range(256)) * 4), "is not a gandiag checkpoint"),
    (lambda p, good: torch.save(nn.Linear(2, 2), p), "refuses to read it with weights_only=True"),
    (lambda p, good: torch.save(nn.Linear(2, 2).state_dict(), p), "not a gandiag checkpoint.*G.load_state_dict"),
    (lambda p, good: torch.save({"format": "gandiag-checkpoint", "version": 1}, p), "incomplete"),
    (lambda p, good: p.mkdir(), "expected a checkpoint file, got the folder"),
])
def test_truncated_or_foreign_files_give_one_clear_error(tmp_path, make, message):
    good = tmp_path / "good.pt"
    tensor_trainer().fit(2).save(good)
    bad = tmp_path / "bad.pt"
    make(bad, good)
    target = tensor_trainer().fit(2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=message) as caught:
        target.load(bad)
    error = caught.value
    assert "\n" not in str(error) and error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__  # no torch internals below it
    assert_unchanged(target, before)
