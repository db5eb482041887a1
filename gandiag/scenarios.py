"""Runs built to fail: the evidence that the detectors are right.

Every scenario starts as the healthy setup (the 3x128 toy pair on the 8-mode ring, PacGAN
packing 2 and an EMA of G: the configuration that covers all modes) and, at step `onset`,
injects one fault into the running training:

    healthy         nothing
    collapse        G's noise is squeezed to 1 % around one point: its samples contract
    d_overpowering  G stops learning (lr 0); D gets 5 updates per step at 5x its lr
    vanishing       a dead layer: G's second layer's bias set to -100 (its ReLUs all off)
    exploding       D's last layer grows 1 % per step (logits without bound)
    nonfinite       one weight of G's second layer becomes NaN
    oscillation     D and G take turns: 50 steps D alone, then 50 steps G alone

`run_scenario(name, seed)` trains it with the detectors live and returns what they found.
The instability-zoo notebook and `benchmarks/fault_injection.py` use these.

    >>> result = run_scenario("nonfinite", seed=0, steps=300, onset=200, warmup=100)
    >>> [(a.kind, a.step) for a in result.alerts]
    [('nonfinite', 201)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from gandiag import data, models
from gandiag.core.alert import Alert
from gandiag.detect.live import DiagnosisCallback
from gandiag.metrics.schedule import MetricSchedule
from gandiag.core.callback import Callback
from gandiag.train.config import TrainConfig
from gandiag.train.trainer import NonFiniteLossError, Trainer


def _collapse(trainer: Trainer) -> Callable[[], None] | None:
    anchor = torch.randn(trainer.config.z_dim or trainer.G.z_dim, generator=torch.Generator().manual_seed(7))

    def squeeze(module: torch.nn.Module, args: tuple) -> tuple:
        (z,) = args
        return (anchor.to(z) + 0.01 * z,)
    trainer.G.register_forward_pre_hook(squeeze)
    return None


def _overpower(trainer: Trainer) -> None:
    _scale_lr(trainer.opt_g, 0.0)
    _scale_lr(trainer.opt_d, 5.0)
    trainer.config.n_critic = 5  # read at every step


def _vanish(trainer: Trainer) -> None:
    # A dead layer: every unit after G's second Linear is switched off (a huge negative
    # bias, as one bad update can leave), so no gradient reaches the layers before it.
    layers = [m for m in trainer.G.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        layers[1].bias.fill_(-100.0)


def _explode(trainer: Trainer) -> Callable[[], None]:
    last = [m for m in trainer.D.modules() if isinstance(m, torch.nn.Linear)][-1]

    def grow() -> None:
        with torch.no_grad():
            last.weight.mul_(1.01)
    return grow


def _nan(trainer: Trainer) -> None:
    layers = [m for m in trainer.G.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        layers[1].weight[0, 0] = math.nan


def _oscillate(trainer: Trainer) -> Callable[[], None]:
    # The players take turns: 50 steps D alone, 50 steps G alone (the "train D to
    # convergence, then G" pattern). Each phase undoes the last, so the losses swing.
    base = {opt: [float(group["lr"]) for group in opt.param_groups] for opt in (trainer.opt_d, trainer.opt_g)}

    def take_turns() -> None:
        d_turn = (trainer.step // 50) % 2 == 0
        for opt, on in ((trainer.opt_d, d_turn), (trainer.opt_g, not d_turn)):
            for group, lr in zip(opt.param_groups, base[opt]):
                group["lr"] = lr if on else 0.0
    return take_turns


def _scale_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor


@dataclass
class Scenario:
    """A fault, the alert kind it must raise (None: none at all) and what it does."""

    name: str
    expect: str | None
    inject: Callable[[Trainer], Callable[[], None] | None] | None
    description: str


SCENARIOS = {s.name: s for s in [
    Scenario("healthy", None, None, "no fault: PacGAN packing 2 and an EMA of G"),
    Scenario("collapse", "mode_collapse", _collapse, "G's noise squeezed to 1 % around one point"),
    Scenario("d_overpowering", "d_overpowering", _overpower, "G's lr 0; D: 5 updates per step at 5x lr"),
    Scenario("vanishing", "vanishing_gradients", _vanish, "G's second layer's ReLUs all switched off"),
    Scenario("exploding", "exploding_gradients", _explode, "D's last layer grows 1 % per step"),
    Scenario("nonfinite", "nonfinite", _nan, "one weight of G's second layer set to NaN"),
    Scenario("oscillation", "oscillation", _oscillate, "D and G take turns, 50 steps each"),
]}


class Inject(Callback):
    """Injects a scenario's fault after step `onset` (and its per-step part after that)."""

    def __init__(self, scenario: Scenario, onset: int) -> None:
        self.scenario, self.onset = scenario, onset
        self.every_step: Callable[[], None] | None = None

    def on_step_end(self, trainer: Trainer) -> None:
        if trainer.step == self.onset and self.scenario.inject is not None:
            self.every_step = self.scenario.inject(trainer)
        elif self.every_step is not None:
            self.every_step()


@dataclass
class ScenarioRun:
    """What one scenario run gave: the alerts, the trainer, and whether training stopped
    on a non-finite loss."""

    scenario: Scenario
    seed: int
    onset: int
    steps: int
    alerts: list[Alert]
    trainer: Trainer = field(repr=False)
    error: BaseException | None = None

    def found(self, kind: str) -> Alert | None:
        """The first warning or critical alert of `kind` raised after the onset (an `info`
        alert says no harm is known: it does not detect a fault)."""
        return next((a for a in self.alerts if a.kind == kind and a.detected_at > self.onset
                     and a.severity != "info"), None)

    @property
    def false_alarms(self) -> list[Alert]:
        """Warning or critical alerts the run should not have raised: any raised by the
        onset, and any at all on a healthy run."""
        return [a for a in self.alerts if a.severity != "info"
                and (a.detected_at <= self.onset or self.scenario.expect is None)]


def run_scenario(name: str, seed: int = 0, *, steps: int = 3000, onset: int = 1000,
                 warmup: int = 500, metrics_every: int = 250) -> ScenarioRun:
    """Train scenario `name` (see `SCENARIOS`) with the detectors live."""
    if name not in SCENARIOS:
        raise ValueError(f"run_scenario: unknown scenario {name!r}; the scenarios are {list(SCENARIOS)}")
    scenario = SCENARIOS[name]
    ring = data.ring()
    torch.manual_seed(seed)  # the initial weights are part of the run
    G, D = models.small_toy(pack=2)
    detectors = DiagnosisCallback(warmup=warmup, warn=False)
    callbacks: list[Callback] = [Inject(scenario, onset), detectors]
    if metrics_every:
        callbacks.append(MetricSchedule({"toy": ring.evaluate}, every=metrics_every, n_samples=1000))
    config = TrainConfig(pack=2, ema=0.999, steps=steps, seed=seed)
    trainer = Trainer(G, D, ring, config, callbacks=callbacks, name=f"{name}-{seed}")
    error = None
    try:
        trainer.fit()
    except NonFiniteLossError as caught:  # the trainer stops on NaN; the alert came first
        error = caught
    return ScenarioRun(scenario, seed, onset, steps, list(detectors.alerts), trainer, error)
