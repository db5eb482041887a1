"""Checkpoints: weights_only files, exact resume on the CPU, clear errors."""

import numpy as np
import pytest
import torch

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
