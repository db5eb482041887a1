"""What logging costs one GAN training step: the usual ways against gandiag's, eager and captured.

    python benchmarks/step_overhead.py [--device auto|cpu|cuda] [--cases toy,dcgan64]
                                       [--steps N] [--blocks B] [--threads T] [--quick]

One training step (Adam 2e-4, betas (0.5, 0.999); the non-saturating loss on logits; one
D update, then one G update; noise drawn inside the step; one fixed real batch already on
the device) runs in several variants, each on its own copy of the models (same seed):

- `plain eager`: the step, nothing logged.
- `tutorial .item()`: what the PyTorch DCGAN tutorial reads every step: D(x), D(G(z))
  before and after D's update (`output.mean().item()` after each backward, where the
  tutorial has them) and both losses (`.item()`, appended to lists). Five host syncs.
- `per-param .item() norms`: `p.grad.norm().item()` for every parameter of the model just
  backpropagated, before its optimizer step, into a dict of lists.
- `W&B-style histograms`: what `wandb.watch(model, log="gradients", log_freq=1)` does,
  without importing wandb or uploading anything: a hook on every parameter of D and G
  that copies the gradient, checks it for non-finite values, takes its range and a 64-bin
  `torch.histc` and brings that to the host (`log_tensor_stats` in wandb's
  `integration/torch/wandb_torch.py`: five host syncs per gradient). As with wandb, D's
  hooks also fire on the G step's backward, which passes through D.
- `gandiag eager`: the plain step inside `gandiag.attach(G, D, opt_g=..., opt_d=...)`
  plus `monitor.log(loss_d=..., loss_g=...)` (tensors: no sync).
- CUDA only: `captured plain` and `captured gandiag`, the same step functions through
  `gandiag.train.capture.capture_step` (one CUDA graph replayed per step; optimizers with
  `capturable=True`); the four eager/captured plain/gandiag variants again in bf16
  autocast (+ channels_last for DCGAN); and `gandiag Trainer fast path`:
  `Trainer(..., TrainConfig(capture="cuda_graph", amp=True, log_every=50))` timed around
  `trainer.fit(steps)`. On a CPU these rows say `needs CUDA`; an API that does not import
  or fails says so in its row (no crash).

Variants run in alternating blocks (the order reverses every block, so background load
and drift hit all alike); each variant's time is the median of its blocks, its ratio that
median over plain eager's, its spread the range of its per-block ratios (noise). Blocks
are a multiple of `log_every` (50), so gandiag's times include its flushes; every
variant first runs untimed warm-up steps, gandiag's also the 20 leak-check steps (a long
run pays them once) and captured ones the capture itself. On CUDA the device is
synchronised around blocks, never inside a step.

Targets (issue): gandiag ÷ plain <= 1.03 for DCGAN-64 batch 128 on a GPU, eager and
captured; <= 1.10 for the toy MLP (batch 512) on a CPU; gandiag's instrumented fast path
(best of captured gandiag fp32/bf16 and the Trainer's fast path) >= 3x faster than
`tutorial .item()` eager for DCGAN-64 and >= 8x for the toy MLP, on a GPU. A report, not
a test: the exit status is 0 whatever the ratios; `OVER TARGET` closes a run that missed
one. On a CPU the default case is the toy MLP (8 blocks of 50 steps, ~3.5 min); DCGAN-64
takes ~4 s a step there: `--cases dcgan64` runs it in blocks of 2 steps (no flush inside a
block), ~4 min. One torch thread on a CPU unless `--threads` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import platform
import statistics
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gandiag
from _choose import pick_cases, resolve_device
from gandiag import models

FLUSH_EVERY = 50        # attach()'s default and the Trainer's log_every here
LEAK_CHECK_STEPS = 20   # attach()'s default: the leak check runs in these steps only
CAPTURE_WARMUP = 3      # capture_step's default: eager steps before the capture
CPU_TARGET, GPU_TARGET = 1.10, 1.03
SPEEDUP_TARGETS = {"dcgan64": 3.0, "toy": 8.0}  # fast path vs tutorial .item(), GPU only


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    model: str
    sample_shape: tuple[int, ...]
    batch: int
    cpu_steps: int           # timed steps per block on a CPU
    cpu_blocks: int
    cuda_steps: int          # ... and on a GPU (multiples of FLUSH_EVERY)
    cuda_blocks: int
    cuda_only: bool = False  # left out of the default CPU run (seconds per step there)


CASES = [
    Case("toy", "toy MLP (PacGAN pair)", "toy", (2,), 512, 50, 8, 200, 6),   # ~95 ms/step, 1 CPU thread
    # ~4 s/step on one CPU thread: there, blocks of 2 steps (no flush inside a block)
    Case("dcgan64", "DCGAN-64", "dcgan", (3, 64, 64), 128, 2, 2, 100, 6, cuda_only=True),
]


@dataclass(frozen=True)
class Variant:
    name: str
    logging: str      # none | tutorial | norms | histograms | gandiag
    mode: str         # eager | captured | trainer
    bf16: bool = False

    def label(self, case: Case) -> str:
        if not self.bf16 or self.mode == "trainer":
            return self.name
        return f"{self.name} bf16" + ("+cl" if len(case.sample_shape) == 3 else "")


VARIANTS = [
    Variant("plain eager", "none", "eager"),
    Variant("tutorial .item()", "tutorial", "eager"),
    Variant("per-param .item() norms", "norms", "eager"),
    Variant("W&B-style histograms", "histograms", "eager"),
    Variant("gandiag eager", "gandiag", "eager"),
    Variant("captured plain", "none", "captured"),
    Variant("captured gandiag", "gandiag", "captured"),
    Variant("plain eager", "none", "eager", bf16=True),
    Variant("gandiag eager", "gandiag", "eager", bf16=True),
    Variant("captured plain", "none", "captured", bf16=True),
    Variant("captured gandiag", "gandiag", "captured", bf16=True),
    Variant("gandiag Trainer fast path", "gandiag", "trainer", bf16=True),
]
BASELINE = VARIANTS[0]


class Unavailable(Exception):
    """A variant that cannot run here (no CUDA, an API not there yet); its row says why."""


# --------------------------------------------------------------------------- logging


class NoLogging:
    """The plain step: nothing read, nothing kept."""

    def after_backward(self, role: str, outputs: dict[str, Tensor]) -> None:
        pass

    def after_step(self, loss_d: Tensor, loss_g: Tensor) -> None:
        pass


class TutorialItems(NoLogging):
    """The PyTorch DCGAN tutorial's per-step reads: D_x and D_G_z1 after D's backward,
    D_G_z2 after G's, both losses appended to lists. Each `.item()` is a host sync."""

    def __init__(self) -> None:
        self.G_losses: list[float] = []
        self.D_losses: list[float] = []
        self.latest: dict[str, float] = {}

    def after_backward(self, role: str, outputs: dict[str, Tensor]) -> None:
        if role == "D":
            self.latest["D_x"] = outputs["real"].mean().item()      # sync
            self.latest["D_G_z1"] = outputs["fake"].mean().item()   # sync
        else:
            self.latest["D_G_z2"] = outputs["fake_g"].mean().item()  # sync

    def after_step(self, loss_d: Tensor, loss_g: Tensor) -> None:
        self.G_losses.append(loss_g.item())  # sync
        self.D_losses.append(loss_d.item())  # sync


class ParamNormItems(NoLogging):
    """`p.grad.norm().item()` for every parameter of the model just backpropagated."""

    def __init__(self, G: nn.Module, D: nn.Module) -> None:
        self.named = {"G": list(G.named_parameters()), "D": list(D.named_parameters())}
        self.norms: dict[str, list[float]] = defaultdict(list)

    def after_backward(self, role: str, outputs: dict[str, Tensor]) -> None:
        for name, p in self.named[role]:
            if p.grad is not None:
                self.norms[f"{role}/{name}"].append(p.grad.norm().item())  # one sync each


class WandbHistograms(NoLogging):
    """Gradient hooks on every parameter, as `wandb.watch(log="gradients", log_freq=1)`
    installs them; the latest histogram per key is kept (wandb uploads and forgets)."""

    BINS = 64

    def __init__(self, G: nn.Module, D: nn.Module) -> None:
        self.latest: dict[str, tuple[list[float], float, float]] = {}
        for role, model in (("G", G), ("D", D)):
            for name, p in model.named_parameters():
                p.register_hook(self._hook(f"gradients/{role}.{name}"))

    def _hook(self, key: str) -> Callable[[Tensor], None]:
        def on_gradient(grad: Tensor) -> None:
            histogram = gradient_histogram(grad, self.BINS)
            if histogram is not None:
                self.latest[key] = histogram
        return on_gradient


def gradient_histogram(grad: Tensor, bins: int) -> tuple[list[float], float, float] | None:
    """The work `wandb.watch` does per gradient (its `log_tensor_stats`): a copy, two
    finite-value checks, the range, a `bins`-bin histc brought to the host."""
    flat = grad.detach().clone().reshape(-1).float()
    finite = torch.isfinite(flat)
    if not finite.any().item():            # sync: nothing finite, nothing to log
        return None
    if not finite.all():                   # sync (bool of a device tensor)
        flat = flat[finite]
    low, high = flat.min().item(), flat.max().item()  # two syncs
    if low == high:
        return [float(flat.numel())], low, high
    counts = flat.histc(bins=bins, min=low, max=high).cpu()  # sync
    return counts.tolist(), low, high


class GandiagLog(NoLogging):
    """`monitor.log(loss_d=..., loss_g=...)` with the loss tensors: no sync."""

    def __init__(self) -> None:
        self.monitor: gandiag.Monitor | None = None

    def after_step(self, loss_d: Tensor, loss_g: Tensor) -> None:
        self.monitor.log(loss_d=loss_d, loss_g=loss_g)


# --------------------------------------------------------------------------- the step


class GANStep:
    """One user's training step on its own models: `step()` is one D and one G update."""

    def __init__(self, case: Case, variant: Variant, device: torch.device) -> None:
        torch.manual_seed(0)  # every variant starts from the same weights
        G, D = models.build_pair(case.model, sample_shape=case.sample_shape)
        images = len(case.sample_shape) == 3
        self.memory_format = torch.channels_last if variant.bf16 and images else torch.contiguous_format
        self.G = G.to(device, memory_format=self.memory_format)
        self.D = D.to(device, memory_format=self.memory_format)
        # Fused Adam on CUDA, foreach on the CPU (the Trainer's choice); a captured step
        # keeps Adam's step count on the device (capturable=True).
        fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
        if variant.mode == "captured":
            fast["capturable"] = True
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999), **fast)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999), **fast)
        self.z_shape = tuple(getattr(G, "z_shape", None) or (G.z_dim,))
        # One static real batch: this measures the step, not a loader (and a captured
        # graph reads its inputs from fixed memory).
        real = torch.rand(case.batch, *case.sample_shape, device=device) * 2 - 1
        self.real = real.contiguous(memory_format=self.memory_format) if images else real
        self.batch, self.device, self.bf16 = case.batch, device, variant.bf16
        self.logging = make_logging(variant.logging, self.G, self.D)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16:  # no weight-cast cache: it would not survive a graph capture
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def step(self) -> None:
        G, D, log = self.G, self.D, self.logging
        z = torch.randn(self.batch, *self.z_shape, device=self.device)
        # D step: push D(x) up and D(G(z)) down.
        with self.autocast():
            fake = G(z)
            out_real = D(self.real).reshape(-1)
            out_fake = D(fake.detach()).reshape(-1)
        loss_d = F.softplus(-out_real.float()).mean() + F.softplus(out_fake.float()).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        log.after_backward("D", {"real": out_real, "fake": out_fake})
        self.opt_d.step()
        # G step (non-saturating): push D(G(z)) up through D into G.
        with self.autocast():
            out_g = D(fake).reshape(-1)
        loss_g = F.softplus(-out_g.float()).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        log.after_backward("G", {"fake_g": out_g})
        self.opt_g.step()
        log.after_step(loss_d, loss_g)

    def attach(self) -> gandiag.Monitor:
        return gandiag.attach(self.G, self.D, opt_g=self.opt_g, opt_d=self.opt_d,
                              log_every=FLUSH_EVERY, leak_check_steps=LEAK_CHECK_STEPS)


def make_logging(kind: str, G: nn.Module, D: nn.Module) -> NoLogging:
    if kind == "tutorial":
        return TutorialItems()
    if kind == "norms":
        return ParamNormItems(G, D)
    if kind == "histograms":
        return WandbHistograms(G, D)
    if kind == "gandiag":
        return GandiagLog()
    return NoLogging()


# --------------------------------------------------------------------------- runners


class Runner:
    """One variant, ready to run: `prepare()` is its untimed warm-up, `run(n)` n steps."""

    monitor: gandiag.Monitor | None = None
    steps_run = 0

    def prepare(self, warmup: int) -> None:
        self.run(warmup)

    def run(self, steps: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.remove()  # the final flush


class EagerRunner(Runner):
    def __init__(self, step: GANStep) -> None:
        self.gan = step
        if isinstance(step.logging, GandiagLog):
            self.monitor = step.logging.monitor = step.attach()  # attached for the whole run

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.gan.step()
        self.steps_run += steps


class CapturedRunner(Runner):
    def __init__(self, step: GANStep) -> None:
        try:
            from gandiag.train.capture import capture_step
        except ImportError as error:
            raise Unavailable(f"unavailable: gandiag.train.capture ({error})") from None
        self.gan = step
        if isinstance(step.logging, GandiagLog):
            self.monitor = step.logging.monitor = step.attach()
        self.captured = capture_step(step.step, monitor=self.monitor, warmup=CAPTURE_WARMUP)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.captured()
        self.steps_run += steps


class TrainerRunner(Runner):
    def __init__(self, case: Case, device: torch.device) -> None:
        torch.manual_seed(0)
        G, D = models.build_pair(case.model, sample_shape=case.sample_shape)
        data = torch.rand(8 * case.batch, *case.sample_shape, device=device) * 2 - 1
        try:
            config = gandiag.TrainConfig(batch_size=case.batch, capture="cuda_graph", amp=True,
                                         log_every=FLUSH_EVERY, device=device.type)
        except (TypeError, ValueError) as error:
            raise Unavailable(f"unavailable: TrainConfig(capture='cuda_graph') ({error})") from None
        self.trainer = gandiag.Trainer(G, D, data, config)
        self.monitor = self.trainer.monitor

    def run(self, steps: int) -> None:
        self.trainer.fit(steps)  # fit's own flushes included
        self.steps_run += steps

    def close(self) -> None:
        self.monitor.flush()  # the trainer owns its monitor: leave it attached


def make_runner(case: Case, variant: Variant, device: torch.device) -> Runner:
    cuda_only = variant.mode != "eager" or variant.bf16
    if cuda_only and device.type != "cuda":
        raise Unavailable("needs CUDA")
    if variant.mode == "trainer":
        return TrainerRunner(case, device)
    step = GANStep(case, variant, device)
    return CapturedRunner(step) if variant.mode == "captured" else EagerRunner(step)


def warmup_steps(variant: Variant, base: int, quick: bool) -> int:
    """Untimed steps: allocator and cudnn, plus the leak check and the capture."""
    steps = base
    if variant.logging == "gandiag" and not quick:
        steps += LEAK_CHECK_STEPS
    if variant.mode != "eager":
        steps += CAPTURE_WARMUP + 2  # eager warm-up, the capture, a first replay
    return steps


# --------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # block boundaries only, never inside a step


def timed_block(runner: Runner, steps: int, device: torch.device) -> float:
    """Seconds per step of `steps` steps."""
    sync(device)
    start = time.perf_counter()
    runner.run(steps)
    sync(device)
    return (time.perf_counter() - start) / steps


@dataclass
class Row:
    label: str
    seconds: list[float]
    note: str = ""         # why there are no numbers
    warnings: list[str] = field(default_factory=list)  # raised while preparing the variant

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan


def measure(case: Case, variants: list[Variant], device: torch.device, steps: int, blocks: int,
            quick: bool) -> tuple[dict[Variant, Row], dict[Variant, Runner]]:
    rows = {v: Row(v.label(case), []) for v in variants}
    runners: dict[Variant, Runner] = {}
    base = 1 if quick else max(3, steps // 10)
    for variant in variants:
        try:
            # What gandiag warns while setting up (e.g. a fast path falling back to eager)
            # goes under the variant's row: the numbers may not be what the label says.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                runner = make_runner(case, variant, device)
                runner.prepare(warmup_steps(variant, base, quick))
            rows[variant].warnings = sorted({str(w.message) for w in caught})
        except Unavailable as why:
            rows[variant].note = str(why)
            continue
        except Exception as error:  # an API still being written: report, go on
            rows[variant].note = f"failed: {type(error).__name__}: {error}"[:160]
            continue
        runners[variant] = runner
    for block in range(blocks):
        order = list(runners) if block % 2 == 0 else list(runners)[::-1]
        for variant in order:
            if variant not in runners:  # failed in an earlier block
                continue
            try:
                rows[variant].seconds.append(timed_block(runners[variant], steps, device))
            except Exception as error:
                rows[variant].note = f"failed in block {block}: {type(error).__name__}: {error}"[:160]
                rows[variant].seconds = []
                del runners[variant]
    for runner in runners.values():
        runner.close()
    return rows, runners


def ratio_spread(row: Row, base: Row) -> tuple[float, float]:
    """Median over median, and the range of the per-block ratios."""
    if not row.seconds or not base.seconds:
        return math.nan, math.nan
    ratios = [a / b for a, b in zip(row.seconds, base.seconds)]
    return row.median / base.median, max(ratios) - min(ratios)


def recording_check(label: str, runner: Runner) -> str:
    """Did the monitor record every step it was given? (The captured path records replays
    through the device buffer; a count that falls short is a bug.)"""
    monitor = runner.monitor
    try:
        steps, values = monitor.history["D/loss"]
        out_real = monitor.history["D/out_real/mean"][0]
    except KeyError as error:
        return f"{label}: missing series {error}"
    expected = runner.steps_run
    finite = bool(len(values)) and math.isfinite(float(values[-1]))
    ok = monitor.step == expected and len(steps) and int(steps[-1]) == expected and len(out_real) == len(steps)
    return (f"{label}: monitor.step {monitor.step} of {expected} steps run, D/loss {len(steps)} values "
            f"(last step {int(steps[-1]) if len(steps) else '-'}, {'finite' if finite else 'NOT finite'}), "
            f"D/out_real/mean {len(out_real)} values: {'ok' if ok and finite else 'MISMATCH'}")


# --------------------------------------------------------------------------- report


def print_table(case: Case, rows: dict[Variant, Row], device: torch.device, steps: int, blocks: int) -> None:
    base = rows[BASELINE]
    print(f"\n{case.name}: {case.title}, batch {case.batch}, {device.type}, {blocks} blocks x {steps} steps")
    print(f"  {'variant':<32} {'ms/step':>9} {'ratio':>7} {'spread':>7}")
    for row in rows.values():
        if not row.seconds:
            print(f"  {row.label:<32} {row.note}")
            continue
        ratio, spread = ratio_spread(row, base)
        print(f"  {row.label:<32} {1000 * row.median:9.3f} {ratio:7.3f} {spread:7.3f}")
        for message in row.warnings:
            print(f"    warning: {message[:200]}")


def find(rows: dict[Variant, Row], name: str, bf16: bool = False) -> Row | None:
    return next((row for v, row in rows.items() if v.name == name and v.bf16 == bf16), None)


def targets(case: Case, rows: dict[Variant, Row], device: torch.device) -> list[tuple[str, str]]:
    """(line, result) per target of this case on this device; result ok | over | n/a."""
    lines = []

    def overhead(instrumented: str, plain: str, goal: float | None, bf16: bool = False) -> None:
        top, bottom = find(rows, instrumented, bf16), find(rows, plain, bf16)
        what = f"{case.name}: {top.label if top else instrumented} ÷ {bottom.label if bottom else plain}"
        if not (top and bottom and top.seconds and bottom.seconds):
            lines.append((f"{what}: not measured", "n/a"))
            return
        ratio = top.median / bottom.median
        if goal is None:
            lines.append((f"{what} = {ratio:.3f} (no target)", "-"))
        else:
            result = "ok" if ratio <= goal else "over"
            lines.append((f"{what} = {ratio:.3f}, target <= {goal:.2f}", result))

    gpu = device.type == "cuda"
    if case.name == "dcgan64" and gpu:
        overhead("gandiag eager", "plain eager", GPU_TARGET)
        overhead("captured gandiag", "captured plain", GPU_TARGET)
    elif case.name == "toy" and not gpu:
        overhead("gandiag eager", "plain eager", CPU_TARGET)
    else:
        overhead("gandiag eager", "plain eager", None)
        if gpu:
            overhead("captured gandiag", "captured plain", None)
    if gpu:
        overhead("gandiag eager", "plain eager", None, bf16=True)
        overhead("captured gandiag", "captured plain", None, bf16=True)
    goal = SPEEDUP_TARGETS.get(case.name)
    if goal is None:
        return lines
    what = f"{case.name}: tutorial .item() ÷ gandiag's fastest instrumented step"
    if not gpu:
        lines.append((f"{what}: needs CUDA (target >= {goal:.0f}x on a GPU)", "n/a"))
        return lines
    tutorial = find(rows, "tutorial .item()")
    fast = [row for row in (find(rows, "captured gandiag"), find(rows, "captured gandiag", True),
                            find(rows, "gandiag Trainer fast path", True)) if row and row.seconds]
    if not (tutorial and tutorial.seconds and fast):
        lines.append((f"{what}: not measured (no captured gandiag nor Trainer fast path row)", "n/a"))
        return lines
    best = min(fast, key=lambda row: row.median)
    speedup = tutorial.median / best.median
    result = "ok" if speedup >= goal else "over"
    lines.append((f"{what} ({best.label}) = {speedup:.2f}x, target >= {goal:.0f}x", result))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cases", default=None,
                        help=f"comma-separated, from {[c.name for c in CASES]} (default: toy on a CPU, "
                             "both on a GPU; naming dcgan64 forces it on a CPU)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per block (default per case; use a multiple of 50)")
    parser.add_argument("--blocks", type=int, default=None, help="blocks per variant (default per case)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default 1 on CPU, for stable numbers)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run, < 40 s on a CPU: 2 short blocks, leak check timed (noisy)")
    args = parser.parse_args()
    device = resolve_device(args.device, "step_overhead")
    cases = pick_cases(CASES, args.cases, device, "step_overhead")
    threads = args.threads or (1 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads, device {label}; flush every {FLUSH_EVERY} steps"
          + (f", cudnn.benchmark {torch.backends.cudnn.benchmark}" if device.type == "cuda" else "")
          + (" (--quick: smoke run, noisy)" if args.quick else ""))
    results, checks = [], []
    for case in cases:
        gpu = device.type == "cuda"
        steps = args.steps or (case.cuda_steps if gpu else case.cpu_steps)
        blocks = args.blocks or (case.cuda_blocks if gpu else case.cpu_blocks)
        if args.quick:
            steps, blocks = min(steps, 10 if case.model == "toy" else 1), 2
        rows, runners = measure(case, VARIANTS, device, steps, blocks, args.quick)
        print_table(case, rows, device, steps, blocks)
        results += targets(case, rows, device)
        checks += [recording_check(rows[v].label, r) for v, r in runners.items() if r.monitor is not None]
    print("\nratio: median ms/step ÷ plain eager's (fp32); spread: max - min of the per-block ratios")
    print("recorded by gandiag (every step must be in the history):")
    for line in checks:
        print(f"  {line}")
    print("targets:")
    for line, result in results:
        print(f"  {result:<4} {line}")
    over = [line for line, result in results if result == "over"]
    if over:
        print(f"OVER TARGET on {label}: {'; '.join(over)}")
    else:
        print(f"no target missed on {label}")


if __name__ == "__main__":
    main()
