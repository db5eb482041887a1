"""What label-free coverage costs a training step: step time with coverage on ÷ off.

    python benchmarks/coverage_cost.py [--cases toy,dcgan-digits] [--blocks B] [--every N]
                                       [--threads T] [--quick]

Two cases, each measured side by side in one process, on two identical copies of the
models that train in alternating blocks (order reversed every other block, so that
background load and drift hit both alike); the ratio is the median over blocks of
(on ÷ off), each pair of blocks run back to back:

- `toy`: a user's own loop (the PyTorch DCGAN tutorial's D step and G step, BCE on
  logits) on the 8-mode ring, the 3x128 MLPs of `models.build_pair("toy-small")`, batch
  256, inside `gandiag.attach(G, D, opt_g=..., opt_d=..., coverage_every=500)` against
  `coverage_every=None` (both attached: only coverage differs);
- `dcgan-digits`: the `Trainer` on the 8x8 digits with `build_pair("dcgan")` (what
  `gandiag train --data digits --model dcgan` trains), batch 64,
  `TrainConfig(coverage_every=500)` against `coverage_every=0`.

Each side first runs untimed until its first evaluation is over (bins fitted) and half an
interval more; then every timed block is `--every` steps long, so it holds exactly one
evaluation, started mid-block and run in the background thread, and its recording: the
steady cost of a long run. A Trainer block is one `fit(every)`, whose end waits for an
evaluation still running (`on_fit_end`), which a long run would not do; none is left
running at a block's end here unless an evaluation takes more than half a block.
Target (issue): ratio <= 1.05 for both. A report, not a test: exit status 0 whatever the
ratios.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
from torch import nn

import gandiag
from gandiag import TrainConfig, Trainer, data, models

TARGET = 1.05
FLUSH_EVERY = 50  # attach()'s and TrainConfig's default


class ToyLoop:
    """A user's loop on the ring, attached with or without coverage."""

    def __init__(self, coverage_every: int | None, batch: int = 256) -> None:
        torch.manual_seed(0)
        self.G, self.D = models.build_pair("toy-small", sample_shape=(2,))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion, self.ring, self.batch = nn.BCEWithLogitsLoss(), data.ring(), batch
        self.monitor = gandiag.attach(self.G, self.D, opt_g=self.opt_g, opt_d=self.opt_d,
                                      log_every=FLUSH_EVERY, coverage_every=coverage_every)

    def step(self) -> None:
        real = self.ring.sample(self.batch)
        self.D.zero_grad()
        out_real = self.D(real).reshape(-1)
        loss_d = self.criterion(out_real, torch.ones_like(out_real))
        fake = self.G(torch.randn(self.batch, self.G.z_dim))
        out_fake = self.D(fake.detach()).reshape(-1)
        loss_d = loss_d + self.criterion(out_fake, torch.zeros_like(out_fake))
        loss_d.backward()
        self.opt_d.step()
        self.G.zero_grad()
        out = self.D(fake).reshape(-1)
        loss_g = self.criterion(out, torch.ones_like(out))
        loss_g.backward()
        self.opt_g.step()
        self.monitor.log(loss_d=loss_d, loss_g=loss_g)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - start

    @property
    def evaluations(self) -> int:
        return len(self.monitor.history["coverage/ndb"][0]) if "coverage/ndb" in self.monitor.history else 0

    def close(self) -> None:
        self.monitor.remove()


class DigitsTrainer:
    """The Trainer on the 8x8 digits with the DCGAN pair, coverage on or off."""

    def __init__(self, coverage_every: int, batch: int = 64) -> None:
        torch.manual_seed(0)
        G, D = models.build_pair("dcgan", sample_shape=(1, 8, 8))
        config = TrainConfig(batch_size=batch, log_every=FLUSH_EVERY, coverage_every=coverage_every,
                             device="cpu")
        self.trainer = Trainer(G, D, data.digits(), config)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        self.trainer.fit(steps)
        return time.perf_counter() - start

    @property
    def evaluations(self) -> int:
        history = self.trainer.history
        return len(history["coverage/ndb"][0]) if "coverage/ndb" in history else 0

    def close(self) -> None:
        self.trainer.monitor.remove()


CASES: dict[str, Callable[[bool, int], object]] = {
    "toy": lambda on, every: ToyLoop(every if on else None),
    "dcgan-digits": lambda on, every: DigitsTrainer(every if on else 0),
}


def warm_up(on: object, off: object, every: int) -> None:
    """Until `on` has finished one evaluation (bins fitted), then half an interval, so
    that each later block of `every` steps starts its evaluation mid-block; `off` runs
    the same steps."""
    steps = 0
    while on.evaluations == 0:
        on.run(FLUSH_EVERY)
        off.run(FLUSH_EVERY)
        steps += FLUSH_EVERY
        if steps > 20 * every:
            raise SystemExit("coverage_cost: no coverage evaluation was recorded; check the setup")
    on.run(every // 2)
    off.run(every // 2)


def measure(name: str, every: int, blocks: int) -> tuple[float, float, float, list[float], int]:
    """(median s/step off, on, median ratio, all ratios, evaluations in the timed blocks)."""
    on, off = CASES[name](True, every), CASES[name](False, every)
    try:
        warm_up(on, off, every)
        before = on.evaluations
        times_on, times_off, ratios = [], [], []
        for i in range(blocks):
            if i % 2 == 0:  # ABBA: neither side always goes first
                t_on, t_off = on.run(every), off.run(every)
            else:
                t_off, t_on = off.run(every), on.run(every)
            times_on.append(t_on / every)
            times_off.append(t_off / every)
            ratios.append(t_on / t_off)
        evaluations = on.evaluations - before
    finally:
        on.close()
        off.close()
    return (statistics.median(times_off), statistics.median(times_on), statistics.median(ratios),
            ratios, evaluations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    parser.add_argument("--blocks", type=int, default=8, help="timed blocks per side (default 8)")
    parser.add_argument("--every", type=int, default=500,
                        help="coverage_every, and the steps of each timed block (default 500)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: stable numbers, as the other benchmarks)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 blocks of 100 steps, coverage every 100 (noisy)")
    args = parser.parse_args()
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"coverage_cost: unknown case(s) {unknown}; expected names from {list(CASES)}")
    every, blocks = (100, 2) if args.quick else (args.every, args.blocks)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch CPU threads, device cpu; coverage every {every} steps, "
          f"flush every {FLUSH_EVERY}" + (" (--quick: smoke run, noisy)" if args.quick else ""))
    print(f"{'case':<13} {'blocks':>9} {'off ms':>8} {'on ms':>8} {'ratio':>6} {'min':>6} {'max':>6} "
          f"{'evals':>5} {'target':>6}  result")
    over = []
    for name in names:
        off, on, ratio, ratios, evaluations = measure(name, every, blocks)
        result = "PASS" if ratio <= TARGET else "over"
        print(f"{name:<13} {f'{blocks}x{every}':>9} {1e3 * off:8.3f} {1e3 * on:8.3f} {ratio:6.3f} "
              f"{min(ratios):6.3f} {max(ratios):6.3f} {evaluations:>5} {TARGET:6.2f}  {result}", flush=True)
        if ratio > TARGET:
            over.append(f"{name} {ratio:.3f} > {TARGET:.2f}")
    print("blocks: timed blocks per side x steps per block; off/on: median ms per step; ratio: "
          "median over block pairs of on ÷ off; min/max: of those ratios (noise); evals: coverage "
          "evaluations recorded during the timed blocks")
    print(f"OVER TARGET: {'; '.join(over)}" if over else "all ratios within target")


if __name__ == "__main__":
    main()
