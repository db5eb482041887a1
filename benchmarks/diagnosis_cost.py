"""What live diagnosis costs the training thread, and what a stored run's diagnosis costs.

The detectors run in the training thread at each flush (a monitor consumer), so their
cost per flush, divided by `flush_every`, is what they add to a step. This feeds a
synthetic run shaped like a DCGAN's records (five layers per model, every key the hooks
write) to `Diagnosis` flush by flush, and also diagnoses the whole run at once, and
prints ms per flush, ms per step and the offline time. It also times a small toy GAN's
`Trainer.fit` with and without `DiagnosisCallback` (same seed, one thread).

    python benchmarks/diagnosis_cost.py                # 20 000 steps, flush every 50
    python benchmarks/diagnosis_cost.py --steps 200000 --flush-every 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import gandiag
from gandiag.detect import Diagnosis, DiagnosisCallback, diagnose


def synthetic_run(steps: int, layers: int = 5, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    s = np.arange(1, steps + 1)
    noisy = lambda level, scale: level + scale * rng.standard_normal(steps)  # noqa: E731
    series = {key: (s, noisy(level, 0.1)) for key, level in [
        ("D/loss", 1.3), ("G/loss", 0.8), ("D/out_real/mean", 0.2), ("D/out_fake/mean", -0.2),
        ("D/out_real/sign", 0.1), ("D/out_real/acc", 0.55), ("D/out_fake/acc", 0.55),
        ("D/spread_ratio", 1.0), ("D/in_real/spread", 1.0), ("D/in_fake/spread", 1.0)]}
    for role in ("D", "G"):
        for i in range(layers):
            series[f"{role}/grad_norm/layer{i}"] = (s, np.exp(noisy(0.0, 0.3)))
        series[f"{role}/grad_norm/total"] = (s, np.exp(noisy(1.0, 0.3)))
        series[f"nonfinite/{role}/grad"] = (s, np.zeros(steps))
    for slot in ("D/out_real", "D/out_fake", "G/out_fake", "loss"):
        series[f"nonfinite/{slot}"] = (s, np.zeros(steps))
    return series


def live_cost(series: dict, flush_every: int) -> tuple[float, float]:
    """(median ms per flush, max ms per flush) feeding the run flush by flush."""
    diagnosis = Diagnosis()
    steps = len(next(iter(series.values()))[0])
    times = []
    for start in range(0, steps, flush_every):
        batch = {k: (s[start:start + flush_every], v[start:start + flush_every]) for k, (s, v) in series.items()}
        began = time.perf_counter()
        diagnosis.update(batch)
        times.append(time.perf_counter() - began)
    return 1e3 * float(np.median(times)), 1e3 * float(np.max(times))


def trainer_cost(steps: int) -> tuple[float, float]:
    """(plain, with DiagnosisCallback) seconds for `steps` of the small toy GAN."""
    out = []
    for callbacks in ([], [DiagnosisCallback(warn=False)]):
        torch.manual_seed(0)
        G, D = gandiag.models.small_toy(pack=2)
        trainer = gandiag.Trainer(G, D, gandiag.data.ring(), gandiag.TrainConfig(pack=2, steps=steps),
                                  callbacks=callbacks)
        began = time.perf_counter()
        trainer.fit()
        out.append(time.perf_counter() - began)
    return out[0], out[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--flush-every", type=int, default=50)
    parser.add_argument("--train-steps", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    series = synthetic_run(args.steps)
    median, worst = live_cost(series, args.flush_every)
    began = time.perf_counter()
    diagnose(series)
    offline = time.perf_counter() - began
    print(f"{len(series)} keys, {args.steps} steps, flush every {args.flush_every}")
    print(f"live: {median:.2f} ms per flush (max {worst:.1f}) = {median / args.flush_every:.3f} ms per step")
    print(f"offline (whole run at once): {offline:.2f} s = {1e6 * offline / args.steps:.0f} us per step")
    plain, watched = trainer_cost(args.train_steps)
    print(f"toy GAN (3x128 MLPs, pack 2), {args.train_steps} steps: plain {plain:.1f} s, with "
          f"DiagnosisCallback {watched:.1f} s, ratio {watched / plain:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
