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
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    # steps between label-free coverage evaluations (coverage/*: k-means bins NDB/JSD and
    # PRDC of fixed-noise samples of G against kept real samples), in a background thread,
    # at the first flush that many steps after the last one (0: off)
    coverage_every: int = 500
    checkpoint_every: int = 0  # steps between checkpoints (0: off); a multiple of log_every
    checkpoint_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # user notes, stored with the run

    def __post_init__(self) -> None:
        self._normalise_types()
        _check_choice("loss", self.loss, tuple(LOSSES))
        _check_choice("capture", self.capture, CAPTURES)
        for name, (low, low_open, high, _) in _FLOAT_FIELDS.items():
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), low=low, low_open=low_open, high=high)
        self._check_combinations()
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise ValueError(
                f"TrainConfig.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )

    def _normalise_types(self) -> None:
        """Every field as its own type, or a ValueError naming the field: a wrong type must
        never pass as a truthy or rounded value (spectral_norm="no" switching it on)."""
        for name in _BOOL_FIELDS:
            setattr(self, name, parse_bool(f"TrainConfig.{name}", getattr(self, name),
                                           fix=_default_fix(name)))
        for name, (minimum, optional) in _INT_FIELDS.items():
            value = getattr(self, name)
            if value is not None or not optional:
                setattr(self, name, parse_int(f"TrainConfig.{name}", value, minimum=minimum,
                                              maximum=_MAX_SEED if name == "seed" else None,
                                              fix=_default_fix(name)))
        for name, (*_, optional) in _FLOAT_FIELDS.items():
            value = getattr(self, name)
            if value is not None or not optional:
                setattr(self, name, parse_float(f"TrainConfig.{name}", value, text=True,
                                                fix=_default_fix(name)))
        self.betas = _parse_betas(self.betas)
        self._normalise_run_fields()

    def _normalise_run_fields(self) -> None:
        if self.checkpoint_dir is not None:
            if isinstance(self.checkpoint_dir, bytes) or not isinstance(self.checkpoint_dir, (str, os.PathLike)):
                raise ValueError(
                    f"TrainConfig.checkpoint_dir: expected a folder path (str or os.PathLike) or "
                    f"None, got {type(self.checkpoint_dir).__name__} {self.checkpoint_dir!r}; "
                    "pass e.g. checkpoint_dir='runs'"
                )
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)  # a str stays JSON-friendly
        if not isinstance(self.extra, dict):
            raise ValueError(f"TrainConfig.extra: expected a dict of notes, got "
                             f"{type(self.extra).__name__} {self.extra!r}; pass e.g. extra={{'note': 'baseline'}}")

    def _check_combinations(self) -> None:
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
        """Build a config from a dict (a JSON file's, the command line's), naming any unknown
        key and its closest field. Strings are read strictly: booleans as true/false/1/0/
        yes/no/on/off, numbers by value ("2e-4")."""
        if not isinstance(values, dict):
            raise ValueError(f"TrainConfig.from_dict: expected a dict of settings, got "
                             f"{type(values).__name__}; e.g. TrainConfig.from_dict({{'pack': 2}})")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"TrainConfig: unknown setting {key!r}{hint} "
                    f"(known settings: {', '.join(sorted(known))})"
                )
        return cls(**_from_text(values))


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

    Values are read strictly: pack=2.7 or spectral_norm=yes-please is an error, never a
    rounded or guessed value.

    >>> parse_stabilisers(["pack=4", "r1=1", "spectral_norm=off"])
    {'pack': 4, 'r1_gamma': 1.0, 'spectral_norm': False}
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
        label, fix = f"stabiliser {name}", f"write e.g. {name}={str(default).lower()}"
        if not raw.strip():
            out[field_name] = default
        elif isinstance(default, bool):
            out[field_name] = parse_bool(label, raw, text=True, fix=f"write {name}=true or {name}=false")
        elif isinstance(default, int):
            out[field_name] = parse_int(label, raw, fix=fix)
        else:
            out[field_name] = parse_float(label, raw, text=True, fix=fix)
    return out


# ---- strict reading of values -------------------------------------------------------
# Words a boolean may be written as, in a string from the command line or a JSON file.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
_MAX_SEED = 2**63 - 1  # torch seeds are 64-bit; ranks add a small offset to the seed

# Field -> (minimum, may be None)
_INT_FIELDS: dict[str, tuple[int, bool]] = {
    "steps": (1, False), "batch_size": (1, False), "n_critic": (1, False), "pack": (1, False),
    "log_every": (1, False), "checkpoint_every": (0, False), "coverage_every": (0, False),
    "seed": (0, False),
    "z_dim": (1, True), "instance_noise_steps": (1, True),
}
# Field -> (low, low excluded, high (excluded) or None, may be None)
_FLOAT_FIELDS: dict[str, tuple[float, bool, float | None, bool]] = {
    "lr_g": (0.0, True, None, False), "lr_d": (0.0, True, None, False),
    "r1_gamma": (0.0, False, None, False), "gp_lambda": (0.0, False, None, True),
    "clip": (0.0, False, None, False), "instance_noise": (0.0, False, None, False),
    "label_smoothing": (0.0, False, 1.0, False), "ema": (0.0, False, 1.0, False),
}
_BOOL_FIELDS = ("spectral_norm", "amp")
_OFF_AT_ZERO = ("checkpoint_every", "coverage_every")  # integer fields where 0 means off


def parse_bool(label: str, value: Any, *, fix: str, text: bool = False) -> bool:
    """`value` as a bool: a bool (numpy's too); with `text`, also one of TRUE_WORDS or
    FALSE_WORDS in any case. Anything else raises ValueError with `label` and `fix`."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if text and isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"{label}: expected one of {'/'.join(TRUE_WORDS)} or "
                         f"{'/'.join(FALSE_WORDS)}, got {value!r}; {fix}")
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        meant = value.strip().lower() in TRUE_WORDS  # say the literal they meant
        fix = f"pass {label.rpartition('.')[2]}={meant}"
    raise ValueError(f"{label}: expected true or false, got {value!r} ({_kind(value)}); {fix}")


def parse_int(label: str, value: Any, *, fix: str, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """`value` as an int: an int, or an integral float or string ("2", 2.0, "2e3"); never
    a bool, and never a fraction rounded away (2.7 is an error)."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = _float_or_none(value)
    if isinstance(number, (float, np.floating)) and math.isfinite(number) and float(number).is_integer():
        number = int(number)
    ok = isinstance(number, (int, np.integer)) and not isinstance(number, (bool, np.bool_))
    bounds = [f">= {minimum}"] if minimum is not None else []
    bounds += [f"<= {maximum}"] if maximum is not None else []
    if ok and (minimum is None or number >= minimum) and (maximum is None or number <= maximum):
        return int(number)
    bound = f" {' and '.join(bounds)}" if bounds else ""
    raise ValueError(f"{label}: expected an integer{bound}, got {value!r}{_kind_note(value)}; {fix}")


def parse_float(label: str, value: Any, *, fix: str, text: bool = False) -> float:
    """`value` as a finite float: an int or float (numpy's too), with `text` also a numeric
    string; never a bool."""
    number = _float_or_none(value) if text and isinstance(value, str) else value
    ok = isinstance(number, (int, float, np.integer, np.floating)) and not isinstance(number, (bool, np.bool_))
    if ok and math.isfinite(number):
        return float(number)
    raise ValueError(f"{label}: expected a finite number, got {value!r}{_kind_note(value)}; {fix}")


def _parse_betas(betas: Any) -> tuple[float, float]:
    fix = "the classic setting is betas=(0.5, 0.999)"
    if isinstance(betas, (str, bytes)) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"TrainConfig.betas: expected two numbers in [0, 1), got {betas!r}"
                         f"{_kind_note(betas)}; {fix}")
    values = tuple(parse_float("TrainConfig.betas", b, text=True, fix=fix) for b in betas)
    if not all(0.0 <= b < 1.0 for b in values):
        raise ValueError(f"TrainConfig.betas: expected two numbers in [0, 1), got {betas!r}; {fix}")
    return values  # type: ignore[return-value]


def _from_text(values: dict[str, Any]) -> dict[str, Any]:
    """Booleans where a JSON file or the command line gives them as words, read strictly
    (numbers in strings are read by the field checks themselves)."""
    out = dict(values)
    for name in _BOOL_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = parse_bool(f"TrainConfig.{name}", out[name], text=True,
                                   fix=f"write {name}=true or {name}=false")
    return out


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _kind(value: Any) -> str:
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _kind_note(value: Any) -> str:
    """' (a string)' or ' (a bool)' where the type is the problem, else nothing."""
    return f" ({_kind(value)})" if isinstance(value, (str, bool, np.bool_)) else ""


def _default_fix(name: str) -> str:
    default = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)
    off = f", or {name}=0 to turn it off" if name in _OFF_AT_ZERO else ""
    return f"pass e.g. {name}={default!r} (the default){off}"


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"TrainConfig.{name}: expected one of {', '.join(choices)}, got {value!r}{hint}"
        )


def _check_range(name: str, value: float, *, low: float, low_open: bool = False,
                 high: float | None = None) -> None:
    if (value > low if low_open else value >= low) and (high is None or value < high):
        return
    bound = f"> {low}" if low_open else f">= {low}"
    if high is not None:
        bound += f" and < {high}"
    raise ValueError(f"TrainConfig.{name}: expected a finite number {bound}, got {value!r}; "
                     f"{_default_fix(name)}")
