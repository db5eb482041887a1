"""TrainConfig: classic defaults, and bad settings rejected with a message that says the fix."""

import json
import pathlib

import numpy as np
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
    with pytest.raises(ValueError, match="stabiliser pack: expected an integer, got 'two'"):
        parse_stabilisers(["pack=two"])


@pytest.mark.parametrize("spec, expected", [
    ("spectral_norm=off", {"spectral_norm": False}), ("spectral_norm=TRUE", {"spectral_norm": True}),
    ("spectral_norm=1", {"spectral_norm": True}), ("spectral_norm=No", {"spectral_norm": False}),
    ("pack=2.0", {"pack": 2}), ("n_critic= 5", {"n_critic": 5}), ("r1=1e-1", {"r1_gamma": 0.1}),
])
def test_stabiliser_values_are_read_strictly(spec, expected):
    assert parse_stabilisers([spec]) == expected


@pytest.mark.parametrize("spec, message", [
    ("pack=2.7", r"stabiliser pack: expected an integer, got '2.7'.*pack=2"),
    ("n_critic=true", "stabiliser n_critic: expected an integer, got 'true'"),
    ("spectral_norm=flase", "expected one of true/1/yes/on or false/0/no/off, got 'flase'"),
    ("spectral_norm=yes-please", "got 'yes-please'; write spectral_norm=true or spectral_norm=false"),
    ("r1=abc", "stabiliser r1: expected a finite number, got 'abc'"),
])
def test_stabiliser_values_never_rounded_or_guessed(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_stabilisers([spec])


@pytest.mark.parametrize("settings, message", [
    ({"spectral_norm": "no"}, r"spectral_norm: expected true or false, got 'no' \(a string\); pass spectral_norm=False"),
    ({"amp": "false"}, r"amp: expected true or false, got 'false' \(a string\); pass amp=False"),
    ({"amp": 1}, r"amp: expected true or false, got 1"),
    ({"pack": 2.7}, r"pack: expected an integer >= 1, got 2.7"),
    ({"steps": True}, r"steps: expected an integer >= 1, got True \(a bool\)"),
    ({"seed": "abc"}, r"seed: expected an integer >= 0.*got 'abc'.*seed=0"),
    ({"seed": 2**64}, "seed: expected an integer"),
    ({"lr_g": True}, r"lr_g: expected a finite number, got True \(a bool\)"),
    ({"lr_g": "fast"}, "lr_g: expected a finite number, got 'fast'"),
    ({"r1_gamma": None}, "r1_gamma: expected a finite number, got None"),
    ({"betas": "ab"}, r"betas: expected two numbers in \[0, 1\), got 'ab' \(a string\).*betas=\(0.5, 0.999\)"),
    ({"betas": 0.5}, "betas: expected two numbers"),
    ({"betas": ("a", 0.9)}, "betas: expected a finite number, got 'a'"),
    ({"loss": ["hinge"]}, "loss: expected one of"),
    ({"checkpoint_dir": 3}, r"checkpoint_dir: expected a folder path \(str or os.PathLike\)"),
    ({"extra": "note"}, "extra: expected a dict"),
])
def test_wrong_types_are_errors_never_truthy_or_rounded(settings, message):
    with pytest.raises(ValueError, match=message) as caught:
        TrainConfig(**settings)
    assert "\n" not in str(caught.value)


def test_integral_values_are_normalised_to_their_field_type():
    cfg = TrainConfig(steps=2.0, pack="2", seed=np.int64(3), lr_d="1e-3", r1_gamma=1,
                      spectral_norm=np.bool_(True), checkpoint_dir=pathlib.Path("runs"))
    assert (cfg.steps, cfg.pack, cfg.seed) == (2, 2, 3)
    assert all(type(v) is int for v in (cfg.steps, cfg.pack, cfg.seed))
    assert (cfg.lr_d, cfg.r1_gamma) == (1e-3, 1.0) and type(cfg.r1_gamma) is float
    assert cfg.spectral_norm is True and cfg.checkpoint_dir == "runs"
    json.dumps(cfg.to_dict())  # plain JSON types only


def test_from_dict_reads_words_from_json_and_round_trips():
    cfg = TrainConfig.from_dict({"spectral_norm": "yes", "amp": "OFF", "lr_d": "4e-4",
                                 "betas": ["0.0", "0.9"], "pack": "2"})
    assert cfg == TrainConfig(spectral_norm=True, amp=False, lr_d=4e-4, betas=(0.0, 0.9), pack=2)
    for original in (cfg, TrainConfig(), TrainConfig(loss="wgan-gp", gp_lambda=5, z_dim=8, ema=0.99,
                                                     instance_noise=0.1, instance_noise_steps=100,
                                                     checkpoint_every=100, checkpoint_dir="ck",
                                                     extra={"note": "x"})):
        assert TrainConfig.from_dict(json.loads(json.dumps(original.to_dict()))) == original
    with pytest.raises(ValueError, match="spectral_norm: expected one of true/1/yes/on or false/0/no/off, got 'maybe'"):
        TrainConfig.from_dict({"spectral_norm": "maybe"})
    with pytest.raises(ValueError, match="from_dict: expected a dict of settings, got list"):
        TrainConfig.from_dict([("pack", 2)])
