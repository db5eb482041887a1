"""`TrainConfig`: every knob of a training run, with the classic defaults.

The defaults follow the classic setup (Goodfellow et al. 2014 as trained by DCGAN,
Radford et al. 2016): Adam at lr 2e-4 with beta1 0.5 for both players, noise of
dimension 100 where the generator takes it, batch 64, one D step per G step.

Example:
    >>> cfg = TrainConfig(loss="hinge", pack=2, steps=2000)
    >>> cfg.lr_d
    0.0002
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from gandiag.train.losses import LOSSES

CAPTURES = ("none", "cuda_graph", "compile")

# Losses whose D term reads logits as log-odds against a target label, so one-sided
# label smoothing has a meaning (the real target becomes 1 - s).
_LABEL_LOSSES = ("minimax", "nonsaturating", "lsgan")


@dataclass
class TrainConfig:
    """Settings of one GAN training run (see the field comments for what each does)."""

    # --- objective -------------------------------------------------------------------
    loss: str = "nonsaturating"  # minimax | nonsaturating | wgan | wgan-gp | hinge | lsgan
    steps: int = 5000  # G updates that fit() runs by default; also the annealing horizon
    batch_size: int = 64  # real samples per D step (before packing)
    z_dim: int | None = None  # noise size; None: G.z_dim if G has one, else 100
    # --- optimisers (Adam) -----------------------------------------------------------
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # a different lr_d than lr_g is TTUR (Heusel et al. 2017)
    betas: tuple[float, float] = (0.5, 0.999)  # beta1 0.5 as in DCGAN
    n_critic: int = 1  # D steps per G step (WGAN uses 5)
    # --- stabilisers (all off by default: the vanilla GAN) ----------------------------
    r1_gamma: float = 0.0  # R1 penalty gamma/2 * E||grad_x D(x_real)||^2 (Mescheder 2018)
    gp_lambda: float | None = None  # WGAN-GP penalty weight; None: 10 for wgan-gp, else 0
    clip: float = 0.01  # weight clipping range of the critic, used by loss="wgan" only
    spectral_norm: bool = False  # spectral normalisation of every D Linear/Conv weight
    label_smoothing: float = 0.0  # one-sided: D's real target is 1 - s (Salimans 2016)
    instance_noise: float = 0.0  # std of Gaussian noise added to D's inputs at step 0 ...
    instance_noise_steps: int | None = None  # ... annealed linearly to 0 here (None: steps)
    pack: int = 1  # PacGAN: D judges `pack` samples at once (Lin et al. 2018)
    ema: float = 0.0  # decay of an EMA copy of G's weights (0: off; 0.999 is typical)
    # --- run -------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"  # auto (CUDA if present) | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast on CUDA (ignored with a warning on CPU)
    # none: eager PyTorch | cuda_graph: the whole step (D and G updates, noise, recording)
    # replayed as one CUDA graph | compile: G and D through torch.compile. Both fall back
    # to eager, with a warning that says why, where they cannot work (CPU, instance noise).
    capture: str = "none"
    log_every: int = 50  # steps between flushes of recorded values (the only sync)
    checkpoint_every: int = 0  # steps between checkpoints (0: off); a multiple of log_every
    checkpoint_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # user notes, stored with the run

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]  # JSON gives lists
        _check_choice("loss", self.loss, tuple(LOSSES))
        _check_choice("capture", self.capture, CAPTURES)
        for name in ("steps", "batch_size", "n_critic", "pack", "log_every"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        if self.z_dim is not None:
            _check_int("z_dim", self.z_dim, minimum=1)
        if self.instance_noise_steps is not None:
            _check_int("instance_noise_steps", self.instance_noise_steps, minimum=1)
        for name in ("lr_g", "lr_d"):
            _check_float(name, getattr(self, name), low=0.0, low_open=True)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(
                f"TrainConfig.betas: expected two numbers in [0, 1), got {self.betas!r}; "
                "the classic setting is (0.5, 0.999)"
            )
        for name in ("r1_gamma", "instance_noise", "clip"):
            _check_float(name, getattr(self, name), low=0.0)
        if self.gp_lambda is not None:
            _check_float("gp_lambda", self.gp_lambda, low=0.0)
        _check_float("label_smoothing", self.label_smoothing, low=0.0, high=1.0)
        _check_float("ema", self.ema, low=0.0, high=1.0)
        if self.label_smoothing and self.loss not in _LABEL_LOSSES:
            raise ValueError(
                f"TrainConfig: label_smoothing={self.label_smoothing} has no meaning for "
                f"loss={self.loss!r} (no target labels); use it with one of {_LABEL_LOSSES} "
                "or set label_smoothing=0"
            )
        if self.checkpoint_every and (self.checkpoint_every % self.log_every or not self.checkpoint_dir):
            raise ValueError(
                f"TrainConfig: checkpoint_every={self.checkpoint_every} needs a checkpoint_dir "
                f"and must be a multiple of log_every={self.log_every} (checkpoints are written "
                "at flushes, after the non-finite check); e.g. checkpoint_every="
                f"{self.log_every * max(1, self.checkpoint_every // self.log_every)}"
            )
        if self.batch_size % self.pack:
            raise ValueError(
                f"TrainConfig: batch_size={self.batch_size} is not divisible by "
                f"pack={self.pack}; packing groups {self.pack} samples per D input, so pick "
                f"a batch size that is a multiple of it (e.g. {self.batch_size - self.batch_size % self.pack or self.pack})"
            )
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise ValueError(
                f"TrainConfig.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )

    @property
    def penalty_gp(self) -> float:
        """The gradient-penalty weight in force (10 for wgan-gp unless set)."""
        if self.gp_lambda is None:
            return 10.0 if self.loss == "wgan-gp" else 0.0
        return self.gp_lambda

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (betas as a list)."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build a config from a dict, naming any unknown key and its closest field."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"TrainConfig: unknown setting {key!r}{hint} "
                    f"(known settings: {', '.join(sorted(known))})"
                )
        return cls(**values)


# Stabilisers by the name a user says them, mapped to the field they set and the value a
# bare name means ("--stabilise spectral_norm" or "--stabilise pack=2").
STABILISERS: dict[str, tuple[str, Any]] = {
    "r1": ("r1_gamma", 10.0),
    "gp": ("gp_lambda", 10.0),
    "spectral_norm": ("spectral_norm", True),
    "label_smoothing": ("label_smoothing", 0.1),
    "instance_noise": ("instance_noise", 0.1),
    "pack": ("pack", 2),
    "ema": ("ema", 0.999),
    "n_critic": ("n_critic", 5),
}


def parse_stabilisers(specs: list[str]) -> dict[str, Any]:
    """Turn ["pack=2", "spectral_norm"] into TrainConfig fields {"pack": 2, ...}.

    >>> parse_stabilisers(["pack=4", "r1=1"])
    {'pack': 4, 'r1_gamma': 1.0}
    """
    out: dict[str, Any] = {}
    for spec in specs:
        name, _, raw = spec.partition("=")
        name = name.strip().replace("-", "_")
        if name not in STABILISERS:
            close = difflib.get_close_matches(name, list(STABILISERS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown stabiliser {name!r}{hint}; known: {', '.join(STABILISERS)} "
                "(write NAME or NAME=VALUE, e.g. pack=2)"
            )
        field_name, default = STABILISERS[name]
        if not raw:
            out[field_name] = default
            continue
        if isinstance(default, bool):
            out[field_name] = raw.lower() in ("1", "true", "yes", "on")
            continue
        try:
            value = type(default)(float(raw))
        except ValueError:
            raise ValueError(
                f"stabiliser {name}: expected a number after '=', got {raw!r} (e.g. {name}={default})"
            ) from None
        out[field_name] = value
    return out


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"TrainConfig.{name}: expected one of {', '.join(choices)}, got {value!r}{hint}"
        )


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"TrainConfig.{name}: expected an integer >= {minimum}, got {value!r}"
        )


def _check_float(
    name: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        if high is not None:
            bound += f" and < {high}"
        raise ValueError(f"TrainConfig.{name}: expected a finite number {bound}, got {value!r}")
