"""TrainConfig: classic defaults, and bad settings rejected with a message that says the fix."""

import pytest

from gandiag.train import TrainConfig, parse_stabilisers


def test_defaults_follow_the_classic_setup():
    cfg = TrainConfig()
    assert (cfg.lr_g, cfg.lr_d, cfg.betas, cfg.batch_size) == (2e-4, 2e-4, (0.5, 0.999), 64)
    assert cfg.n_critic == 1 and cfg.pack == 1 and cfg.penalty_gp == 0.0
    assert TrainConfig(loss="wgan-gp").penalty_gp == 10.0


@pytest.mark.parametrize("settings, message", [
    ({"loss": "wgan_gp"}, "did you mean 'wgan-gp'"),
    ({"lr_d": -1e-4}, r"lr_d: expected a finite number > 0.0, got -0.0001"),
    ({"lr_g": float("nan")}, "lr_g"),
    ({"betas": (0.5, 1.2)}, "betas"),
    ({"n_critic": 0}, "n_critic: expected an integer >= 1"),
    ({"pack": 3}, "batch_size=64 is not divisible by pack=3"),
    ({"label_smoothing": 0.1, "loss": "wgan"}, "no meaning for loss='wgan'"),
    ({"ema": 1.0}, "ema"),
    ({"device": "gpu"}, "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ({"steps": 1.5}, "steps: expected an integer"),
    ({"checkpoint_every": 120, "checkpoint_dir": "runs"}, "multiple of log_every=50.*checkpoint_every=100"),
    ({"checkpoint_every": 100}, "needs a checkpoint_dir"),
])
def test_bad_settings_say_what_was_expected(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_from_dict_names_unknown_settings():
    with pytest.raises(ValueError, match="unknown setting 'r1_gama'; did you mean 'r1_gamma'"):
        TrainConfig.from_dict({"r1_gama": 1.0})
    cfg = TrainConfig.from_dict(TrainConfig(pack=2, betas=(0.0, 0.9)).to_dict())
    assert cfg == TrainConfig(pack=2, betas=(0.0, 0.9))


def test_stabilisers_by_name():
    assert parse_stabilisers(["pack=4", "spectral_norm", "r1=0.5"]) == {
        "pack": 4, "spectral_norm": True, "r1_gamma": 0.5}
    with pytest.raises(ValueError, match="unknown stabiliser 'spectral'; did you mean 'spectral_norm'"):
        parse_stabilisers(["spectral"])
    with pytest.raises(ValueError, match="expected a number after '='"):
        parse_stabilisers(["pack=two"])
