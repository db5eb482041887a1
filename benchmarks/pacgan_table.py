"""PacGAN Table 1 (Lin et al. 2018) on the toy mixtures: vanilla GAN against PacGAN2.

    python benchmarks/pacgan_table.py [--seeds N] [--steps N] [--data ring,grid] [--full]
                                      [--device auto|cpu|cuda] [--threads T]
                                      [--json PATH] [--verbose]

Trains the paper's pair (`models.pacgan_toy`: G 2 -> 400x4 (BN+ReLU) -> 2, z ~ N(0, I_2);
D three maxout layers, 200 units, 5 pieces -> 1, input 2m) on the 8-mode ring and the
25-mode grid, unpacked (GAN) and with packing m = 2 (PacGAN2), seeds 0..N-1, and prints
modes covered, HQ share and reverse KL (docs/definitions.md "Toy mixtures", 2500 fixed-noise
samples) as mean ± s.e. (std with ddof 1 over sqrt(n)) beside the published values.

Protocol as in the paper and its code (github.com/fjxmlzn/PacGAN, synthetic_data_experiments):
Adam lr 1e-4, betas (0.8, 0.999), the original GAN loss in its non-saturating form
(gandiag's `nonsaturating`, the trainer's default; the authors' G loss is softplus(-D(G(z)))).
Batch: D sees 100 inputs per step, each of m samples, so PacGAN2 draws 200 real and 200
fake samples per step; gandiag's `batch_size` counts samples before packing, hence
batch_size = 100 * m. Not copied: the authors' N(0, 0.02) weight init (PyTorch defaults
here), their simultaneous D and G updates (gandiag alternates) and a fixed set of 100 000
real samples (fresh samples here). The paper trains 400k updates (`--full`, 10 seeds: a
GPU job, days on a CPU); the default is a short CPU budget, so expect ours far from the
published numbers; the verdict line checks only the direction: PacGAN2 covers at least as
many modes (mean) and has a lower mean reverse KL than GAN. A report, not a test: the
exit status is 0 whatever the verdict.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time

import torch

from gandiag import TrainConfig, Trainer, data, models

METHODS = {"GAN": 1, "PacGAN2": 2}  # method -> packing degree m
D_INPUTS_PER_STEP = 100             # the paper's batch, in packed D inputs
# PacGAN Table 1 (10 runs, 400k updates): (mean, s.e.) of modes, HQ %, reverse KL.
PUBLISHED = {
    ("ring", "GAN"): ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
    ("ring", "PacGAN2"): ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
    ("grid", "GAN"): ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
    ("grid", "PacGAN2"): ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
}
METRICS = ("modes", "hq", "reverse_kl")
DEFAULT_STEPS, DEFAULT_SEEDS = 5000, 3   # ~30 min on one CPU thread (4 cells x 3 seeds)
FULL_STEPS, FULL_SEEDS = 400_000, 10


def run_one(dataset: str, method: str, seed: int, steps: int, device: str) -> dict[str, float]:
    """Train one cell for one seed; its metrics on 2500 fixed-noise samples, and seconds."""
    pack = METHODS[method]
    torch.manual_seed(seed)  # the models' initial weights
    G, D = models.pacgan_toy(pack=pack, z_dim=2)
    config = TrainConfig(loss="nonsaturating", steps=steps, batch_size=D_INPUTS_PER_STEP * pack,
                         pack=pack, lr_g=1e-4, lr_d=1e-4, betas=(0.8, 0.999), seed=seed,
                         device=device, log_every=100)
    start = time.perf_counter()
    trainer = Trainer(G, D, getattr(data, dataset)(), config, name=f"{dataset}-{method}-{seed}")
    trainer.fit()
    result = dict(trainer.evaluate(n=2500, seed=0))
    result["seconds"] = time.perf_counter() - start
    trainer.monitor.remove()
    return result


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error std(ddof=1)/sqrt(n); the s.e. is nan for one value."""
    mean = statistics.fmean(values)
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return mean, math.nan
    return mean, statistics.stdev(values) / math.sqrt(len(values))


def cell(values: list[float], digits: int) -> str:
    mean, se = mean_se(values)
    return f"{mean:.{digits}f} ± {'n/a' if math.isnan(se) else f'{se:.{digits}f}'}"


def published(dataset: str, method: str, index: int, digits: int) -> str:
    mean, se = PUBLISHED[dataset, method][index]
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def print_table(runs: list[dict], datasets: list[str]) -> None:
    print("| data | method | modes | paper | HQ % | paper | reverse KL | paper |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset in datasets:
        for method in METHODS:
            rows = [r for r in runs if r["data"] == dataset and r["method"] == method]
            modes = cell([r["modes"] for r in rows], 1)
            hq = cell([100 * r["hq"] for r in rows], 1)
            rkl = cell([r["reverse_kl"] for r in rows], 2)
            print(f"| {dataset} | {method} | {modes} | {published(dataset, method, 0, 1)} | {hq} | "
                  f"{published(dataset, method, 1, 1)} | {rkl} | {published(dataset, method, 2, 2)} |")


def verdict(runs: list[dict], dataset: str) -> str:
    """PacGAN2 covers at least as many modes and has lower reverse KL (means) than GAN."""
    means = {m: {k: statistics.fmean(r[k] for r in runs if r["data"] == dataset and r["method"] == m)
                 for k in METRICS} for m in METHODS}
    gan, pac = means["GAN"], means["PacGAN2"]
    ok = pac["modes"] >= gan["modes"] and pac["reverse_kl"] < gan["reverse_kl"]
    return (f"{dataset}: direction {'reproduced' if ok else 'NOT reproduced'} (modes PacGAN2 "
            f"{pac['modes']:.1f} vs GAN {gan['modes']:.1f}; reverse KL {pac['reverse_kl']:.2f} "
            f"vs {gan['reverse_kl']:.2f})")


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("pacgan_table: --device cuda, but torch sees no CUDA device; use --device cpu")
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"seeds 0..N-1 per cell (default {DEFAULT_SEEDS}; --full: {FULL_SEEDS})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"G updates per run (default {DEFAULT_STEPS}, ~30 min on one CPU "
                             f"thread in all; --full: {FULL_STEPS})")
    parser.add_argument("--data", default="ring,grid", help="comma-separated, from ring, grid")
    parser.add_argument("--full", action="store_true",
                        help=f"the paper's protocol: {FULL_STEPS} updates, {FULL_SEEDS} seeds; a GPU "
                             "job (40 runs of 400k steps: days on a CPU)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default 1 on CPU)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the per-seed results here")
    parser.add_argument("--verbose", action="store_true", help="print a row per seed as it finishes")
    args = parser.parse_args()
    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    if not datasets or any(d not in ("ring", "grid") for d in datasets):
        raise SystemExit(f"pacgan_table: --data expects names from ring, grid; got {args.data!r}")
    steps = args.steps or (FULL_STEPS if args.full else DEFAULT_STEPS)
    seeds = args.seeds or (FULL_SEEDS if args.full else DEFAULT_SEEDS)
    device = resolve_device(args.device)
    threads = args.threads or (1 if device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    n = torch.get_num_threads()
    label = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({n} thread{'s' * (n > 1)})"
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {label}; "
          f"{steps} steps x seeds 0..{seeds - 1} x {len(datasets)} data x {len(METHODS)} methods")
    runs: list[dict] = []
    start = time.perf_counter()
    for dataset in datasets:
        for method in METHODS:
            for seed in range(seeds):
                result = run_one(dataset, method, seed, steps, device)
                runs.append({"data": dataset, "method": method, "pack": METHODS[method],
                             "seed": seed, "steps": steps, **result})
                if args.verbose:
                    print(f"  {dataset:<4} {method:<7} seed {seed}: modes {result['modes']:>2}, "
                          f"HQ {100 * result['hq']:5.1f} %, reverse KL {result['reverse_kl']:.3f} "
                          f"({result['seconds']:.0f} s)", flush=True)
    wall = time.perf_counter() - start
    print_table(runs, datasets)
    print(f"ours: mean ± s.e. over {seeds} seeds (0..{seeds - 1}), {steps} steps each, device {label}, "
          f"{wall:.0f} s in all; paper: 10 runs, 400k updates")
    for dataset in datasets:
        print(verdict(runs, dataset))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": steps, "seeds": seeds, "device": label, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
