"""Recording a million steps: the process's memory stays flat and the history bounded.

    python benchmarks/recording_memory.py [--steps N] [--every K] [--batch B] [--no-store]
                                          [--keep] [--threads T] [--quick]

A user-style loop (one D update and one G update a step, the non-saturating loss on
logits, SGD, `monitor.log(loss_d=..., loss_g=...)`) runs on tiny models, G = Linear(2, 2)
and D = Linear(2, 4), LeakyReLU(0.2), Linear(4, 1), inside `gandiag.attach(G, D,
opt_g=..., opt_d=..., store=...)`, so every step goes through the real hooks (D's
outputs on real and fake batches, gradient norms, weight norms every 50 steps, the
flush every 50 steps) and every flush through the run store's writer thread (SQLite in a
temporary folder, removed at the end unless `--keep`; `--no-store` leaves it out). The
models are tiny so that a step costs gandiag's bookkeeping and torch's per-call overhead
(the plain loop alone takes ~0.6 ms), not the models: a million steps take ~20 minutes on
a shared 2-core CPU at ~1.3 ms a step (about 1.5 GB of store on disk).

Every `--every` steps (100 000; 4 000 with `--quick`) a line gives the resident set size
(VmRSS of /proc/self/status after `gc.collect()`; where that file is missing, the peak
from `resource.getrusage`), its growth since the first line, what `monitor.history`
holds (values of all scalar keys, the most in one key, histogram rows, bytes of arrays),
the store file's size (with its WAL) and the writer's backlog (batches queued but not yet
committed).

Verdicts. RSS is flat when it grew by less than 20 MiB or 5 %. It is judged twice: from
the first line (warm-up: allocator pools, SQLite's page cache), and from the first line
at which every key's recent window is full: keys measured every `weight_every` (50)
steps, weight norms and update ratios, get one value a flush and hold `recent` (10 000)
of them only from step 500 000, so until then the history grows by design. The history
is bounded when, at every line and at the end, it holds at most (recent + overview)
values per scalar key and (histogram_recent + overview) rows per histogram key, plus one
each for the overview block being filled, in total over the keys: the budget
`gandiag.core.history.History` documents; a key over its own share is reported too.
A report, not a test: exit status 0 either way. `--quick`: 20 000 steps, a line every
4 000 (~35 s).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import gandiag

FLAT_MIB, FLAT_FRACTION = 20.0, 0.05


def rss_mib() -> tuple[float, str]:
    """(resident set size in MiB, where it came from), after a full garbage collection."""
    gc.collect()
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024, "VmRSS"
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max RSS"  # KiB on Linux


def store_mib(path: str | None) -> float:
    if path is None:
        return 0.0
    files = [path, path + "-wal", path + "-shm"]
    return sum(os.path.getsize(f) for f in files if os.path.exists(f)) / 2**20


@dataclass
class Held:
    """What `monitor.history` holds, and its documented budget."""

    scalar_keys: int
    scalar_values: int    # sum over scalar keys of the steps kept
    most_per_key: int     # the largest of those
    histogram_keys: int
    histogram_rows: int
    nbytes: int
    budget: int           # (recent + overview + 1) per scalar key
    histogram_budget: int  # (histogram_recent + overview + 1) per histogram key


def held(monitor: gandiag.Monitor) -> Held:
    history = monitor.history
    lengths = [len(history[key][0]) for key in history]
    histograms = history.histograms
    return Held(
        scalar_keys=len(lengths), scalar_values=sum(lengths), most_per_key=max(lengths, default=0),
        histogram_keys=len(histograms), histogram_rows=sum(len(h.steps) for h in histograms.values()),
        nbytes=history.nbytes,
        budget=(history.recent + history.overview + 1) * len(lengths),
        histogram_budget=(history.histogram_recent + history.overview + 1) * len(histograms),
    )


class UserLoop:
    """The user's own training loop on tiny models: one D and one G update per step."""

    def __init__(self, batch: int) -> None:
        torch.manual_seed(0)
        self.G = nn.Linear(2, 2)
        self.D = nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
        self.opt_g = torch.optim.SGD(self.G.parameters(), lr=1e-3)
        self.opt_d = torch.optim.SGD(self.D.parameters(), lr=1e-3)
        # A pre-made pool of "real" points (a ring): this measures recording, not a loader.
        angles = torch.rand(64, batch) * 2 * torch.pi
        self.reals = torch.stack([angles.cos(), angles.sin()], dim=-1) * 2
        self.batch = batch

    def run(self, monitor: gandiag.Monitor, steps: int, first: int) -> None:
        G, D, opt_g, opt_d = self.G, self.D, self.opt_g, self.opt_d
        for i in range(first, first + steps):
            real = self.reals[i % len(self.reals)]
            fake = G(torch.randn(self.batch, 2))
            loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-D(fake)).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            monitor.log(loss_d=loss_d, loss_g=loss_g)


def backlog(monitor: gandiag.Monitor) -> int | str:
    writer = monitor.writer
    if writer is None:
        return "-"
    return writer._queued - writer._committed  # private counters: a benchmark may peek


def growth_line(lines: list[tuple[int, float, Held]], since: int) -> tuple[bool, str]:
    """(flat?, text) for the RSS growth from the report line at `since` to the last."""
    (first_step, first, _), (last_step, last, _) = lines[since], lines[-1]
    growth = last - first
    flat = growth < FLAT_MIB or growth < FLAT_FRACTION * first
    return flat, f"{growth:+.1f} MiB from step {first_step:,} to {last_step:,} ({100 * growth / first:+.1f} %)"


def print_rss_verdict(lines: list[tuple[int, float, Held]], monitor: gandiag.Monitor) -> None:
    """Growth from the first line; and, once every key's recent window is full, from there.

    Keys measured every `weight_every` steps (weight norms, update ratios) fill their
    `recent` window only after recent x weight_every steps (500 000 by default), one
    value per flush: until then the history grows, by design."""
    criterion = f"flat means < {FLAT_MIB:.0f} MiB or < {100 * FLAT_FRACTION:.0f} %"
    flat, text = growth_line(lines, 0)
    full_at = monitor.history.recent * max(1, monitor.weight_every)
    filling = (f"keys measured every {monitor.weight_every} steps reach {monitor.history.recent:,} "
               f"values at step {full_at:,}")
    full = next((i for i, (step, _, _) in enumerate(lines) if step >= full_at), None)
    if full is None or full == len(lines) - 1:
        print(f"RSS: {'flat' if flat else 'GROWING'}: {text}; {criterion}; the history is still "
              f"filling ({filling})")
        return
    print(f"RSS over the whole run: {text}, most of it while the history fills ({filling})")
    flat, text = growth_line(lines, full)
    print(f"RSS once the history is full: {'flat' if flat else 'GROWING'}: {text}; {criterion}")


def print_history_verdict(seen: list[Held], history: Any, stride: int) -> None:
    """Bounded: at every report line and at the end, (recent + overview + 1) values per
    scalar key and (histogram_recent + overview + 1) rows per histogram key, in total over
    the keys (the + 1: the overview block being filled, shown as its mean so far)."""
    worst = max(seen, key=lambda h: h.scalar_values - h.budget)
    worst_rows = max(seen, key=lambda h: h.histogram_rows - h.histogram_budget)
    most = max(h.most_per_key for h in seen)
    bounded = worst.scalar_values <= worst.budget
    print(f"history: {'bounded' if bounded else 'OVER BUDGET'}: at most {worst.scalar_values:,} values in "
          f"{worst.scalar_keys} scalar keys (budget (recent {history.recent:,} + overview "
          f"{history.overview:,} + 1) x {worst.scalar_keys} = {worst.budget:,}), "
          f"{seen[-1].nbytes / 2**20:.2f} MiB of arrays at the end")
    rows_ok = worst_rows.histogram_rows <= worst_rows.histogram_budget
    print(f"histograms: {'bounded' if rows_ok else 'OVER BUDGET'}: at most {worst_rows.histogram_rows:,} rows "
          f"in {worst_rows.histogram_keys} keys (budget (histogram_recent {history.histogram_recent:,} + "
          f"overview {history.overview:,} + 1) x {worst_rows.histogram_keys} = {worst_rows.histogram_budget:,})")
    per_key = history.recent + history.overview + 1
    if most > per_key:
        print(f"  over the per-key budget: up to {most:,} values in one scalar key (budget {per_key:,}, "
              f"overview stride {stride:,} rows at this run length)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 1 000 000)")
    parser.add_argument("--every", type=int, default=None,
                        help="steps between report lines (default 100 000; 4 000 with --quick)")
    parser.add_argument("--batch", type=int, default=8, help="samples per D and G batch (default 8)")
    parser.add_argument("--no-store", action="store_true", help="record without the run store")
    parser.add_argument("--keep", action="store_true", help="keep the run store (its path is printed)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 000 steps, a line every 4 000 (~35 s)")
    args = parser.parse_args()
    steps = args.steps or (20_000 if args.quick else 1_000_000)
    every = args.every or (4_000 if args.quick else 100_000)
    torch.set_num_threads(args.threads)
    folder = None if args.no_store else tempfile.mkdtemp(prefix="gandiag-recording-")
    path = None if folder is None else os.path.join(folder, "gandiag.sqlite")
    loop = UserLoop(args.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); {steps:,} steps of a "
          f"user loop on tiny models (batch {args.batch}), recorded by gandiag.attach"
          + (f" into {path}" if path else " (no store)"))
    print(f"{'step':>9} {'RSS MiB':>8} {'growth':>7} {'scalar keys':>11} {'values':>8} {'most/key':>8} "
          f"{'hist rows':>9} {'hist KiB':>8} {'store MiB':>9} {'backlog':>7} {'steps/s':>8}")
    lines: list[tuple[int, float, Held]] = []  # (step, RSS MiB, history) per report line
    start = time.perf_counter()
    with gandiag.attach(loop.G, loop.D, opt_g=loop.opt_g, opt_d=loop.opt_d, store=path,
                        run="recording-memory") as monitor:
        done, tick = 0, time.perf_counter()
        while done < steps:
            chunk = min(every, steps - done)
            loop.run(monitor, chunk, done)
            done += chunk
            rate = chunk / (time.perf_counter() - tick)
            rss, source = rss_mib()
            now = held(monitor)
            lines.append((done, rss, now))
            print(f"{done:>9,} {rss:8.1f} {rss - lines[0][1]:+7.1f} {now.scalar_keys:>11} "
                  f"{now.scalar_values:>8,} {now.most_per_key:>8,} {now.histogram_rows:>9,} "
                  f"{now.nbytes / 1024:8.0f} {store_mib(path):9.1f} {backlog(monitor):>7} {rate:8.0f}",
                  flush=True)
            tick = time.perf_counter()
        # the overview's block size (private: a benchmark may peek): it bounds the evicted
        # rows that wait for a full block
        strides = max((series.stride for series in monitor.history._scalars.values()), default=1)
    seconds = time.perf_counter() - start
    print(f"{steps:,} steps in {seconds:.0f} s ({1e6 * seconds / steps:.0f} µs a step); RSS from {source}; "
          f"the store (closed) {store_mib(path):.1f} MiB" + (f", kept at {path}" if args.keep and path else ""))
    print_rss_verdict(lines, monitor)
    print_history_verdict([held_now for _, _, held_now in lines] + [held(monitor)], monitor.history, strides)
    if folder is not None and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
