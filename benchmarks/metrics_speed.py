"""Speed of the heavy metrics: FID's matrix square root, and PRDC in bounded memory.

    python benchmarks/metrics_speed.py [--device auto|cpu|cuda] [--fid-dim D] [--n N]
                                       [--dim D] [--threads T] [--quick]

FID: one random positive definite pair at d = 2048 (--fid-dim), three ways: gandiag's
`frechet_distance` (Cholesky factor of a positive definite covariance, else √Σ₁ from eigh;
eigenvalues from eigvalsh), the eigh form of docs/definitions.md (√Σ₁ from `torch.linalg.eigh`, then the
eigenvalues of √Σ₁ Σ₂ √Σ₁), and `scipy.linalg.sqrtm(Σ₁Σ₂)` in float64 on the CPU, as
pytorch-fid does. Best of 3 (sqrtm: 1) after a warm-up, with the relative differences of
the FIDs. Target (issue): eigen form >= 2x faster than sqrtm on a CPU, >= 100x on a GPU.

PRDC: N = 10 000 real vs 10 000 fake standard normals in d = 1000 (--n, --dim), k = 5:
gandiag's `prdc` (row blocks, <= 64 MiB) against a plain unchunked implementation (three
full `torch.cdist` matrices, the authors' reference code in torch). Each runs in a fresh
subprocess, so their peak memory is measured alone: on a CPU the growth of the process's
max RSS (`resource.getrusage`) over its value once the inputs exist (tracemalloc does not
see torch), on CUDA `torch.cuda.max_memory_allocated` over what the inputs hold.

A report, not a test: the exit status is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

from gandiag.metrics.functional import frechet_distance, prdc

CPU_TARGET, GPU_TARGET = 2.0, 100.0  # sqrtm time ÷ eigen-form time


# ---------------------------------------------------------------------- FID


def eigh_form(mu1, sigma1, mu2, sigma2) -> float:
    """The form of docs/definitions.md, written out: tr √(Σ₁Σ₂) from the eigenvalues of √Σ₁ Σ₂ √Σ₁."""
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma1)
    root = (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T
    product = root @ sigma2 @ root
    trace_sqrt = torch.linalg.eigvalsh((product + product.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)


def sqrtm_form(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's form: scipy's sqrtm of the non-symmetric Σ₁Σ₂, real part, on the CPU."""
    mu1, sigma1, mu2, sigma2 = (t.cpu().numpy() for t in (mu1, sigma1, mu2, sigma2))
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_inputs(d: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)

    def spd() -> torch.Tensor:  # a Wishart matrix: positive definite, spread-out spectrum
        w = torch.randn(d, 2 * d, generator=generator, dtype=torch.float64)
        return w @ w.T / (2 * d)

    mu1, mu2 = (torch.randn(d, generator=generator, dtype=torch.float64) for _ in range(2))
    return tuple(t.to(device) for t in (mu1, spd(), mu2, spd()))


def best_time(fn: Callable[[], float], device: torch.device, repeats: int) -> tuple[float, float]:
    """(best seconds, value) over ``repeats`` calls, the device synchronised around each."""
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        value = fn()  # float(): the result is on the host, so the work has finished
        best = min(best, time.perf_counter() - start)
    return best, value


def report_fid(d: int, device: torch.device, repeats: int) -> str | None:
    for warm_up_d in (64, d) if device.type == "cuda" else (64,):  # solver set-up, allocator
        inputs = fid_inputs(warm_up_d, device)
        frechet_distance(*inputs), eigh_form(*inputs)
    inputs = fid_inputs(d, device)
    gandiag_s, gandiag_value = best_time(lambda: frechet_distance(*inputs), device, repeats)
    eigh_s, eigh_value = best_time(lambda: eigh_form(*inputs), device, repeats)
    sqrtm_s, sqrtm_value = best_time(lambda: sqrtm_form(*inputs), torch.device("cpu"), 1)
    print(f"\nFID, d = {d}, random positive definite pair (best of {repeats}; sqrtm: 1 run)")
    print(f"{'method':<36} {'device':<6} {'seconds':>9} {'FID':>14} {'rel. diff':>10} "
          f"{'sqrtm ÷':>8}")
    target = CPU_TARGET if device.type == "cpu" else GPU_TARGET
    rows = [
        ("gandiag frechet_distance", device.type, gandiag_s, gandiag_value),
        ("eigh form √Σ₁Σ₂√Σ₁ (docs/definitions.md)", device.type, eigh_s, eigh_value),
        ("scipy.linalg.sqrtm (pytorch-fid)", "cpu", sqrtm_s, sqrtm_value),
    ]
    for name, where, seconds, value in rows:
        rel = abs(value - sqrtm_value) / abs(sqrtm_value)
        print(f"{name:<36} {where:<6} {seconds:9.3f} {value:14.6f} {rel:10.1e} "
              f"{sqrtm_s / seconds:7.1f}x")
    speedup = sqrtm_s / eigh_s
    verdict = "PASS" if speedup >= target else "over"
    print(f"target: eigen form >= {target:g}x faster than sqrtm on {device.type}: "
          f"eigh form {speedup:.1f}x, gandiag {sqrtm_s / gandiag_s:.1f}x  {verdict}")
    return None if speedup >= target else f"FID eigh form only {speedup:.1f}x faster than sqrtm"


# --------------------------------------------------------------------- PRDC


def unchunked_prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    """The authors' reference code in torch: three full distance matrices, float64."""
    real, fake = real.double(), fake.double()
    real_real, fake_fake = torch.cdist(real, real), torch.cdist(fake, fake)
    real_fake = torch.cdist(real, fake)
    real_radii = real_real.kthvalue(k + 1, dim=1).values  # the point itself is the 1st
    fake_radii = fake_fake.kthvalue(k + 1, dim=1).values
    inside = real_fake < real_radii[:, None]
    return {
        "precision": float(inside.any(dim=0).double().mean()),
        "recall": float((real_fake < fake_radii[None, :]).any(dim=1).double().mean()),
        "density": float(inside.sum(dim=0).double().mean()) / k,
        "coverage": float((real_fake.min(dim=1).values < real_radii).double().mean()),
    }


def max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def prdc_worker(kind: str, n: int, dim: int, device: torch.device) -> None:
    """One PRDC run in this (fresh) process; prints a JSON line."""
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(n, dim, generator=generator).to(device)
    fake = torch.randn(n, dim, generator=generator).to(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = max_rss_bytes()
    start = time.perf_counter()
    result = prdc(real, fake, k=5) if kind == "chunked" else unchunked_prdc(real, fake, k=5)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else max_rss_bytes())
    print(json.dumps({"seconds": seconds, "peak_bytes": peak - base, "result": result}))


def run_worker(kind: str, args: argparse.Namespace, device: torch.device) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--n", str(args.n), "--dim",
               str(args.dim), "--device", str(device)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"PRDC worker {kind!r} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report_prdc(args: argparse.Namespace, device: torch.device) -> None:
    print(f"\nPRDC, {args.n} real vs {args.n} fake standard normals, d = {args.dim}, k = 5 "
          "(each in a fresh process)")
    memory = "peak memory (CUDA allocated)" if device.type == "cuda" else "peak memory (RSS growth)"
    print(f"{'implementation':<36} {'device':<6} {'seconds':>9} {memory:>29}   P / R / D / C")
    runs = {}
    for kind, name in (("chunked", "gandiag prdc (row blocks)"),
                       ("unchunked", "unchunked: 3 full cdist matrices")):
        runs[kind] = run = run_worker(kind, args, device)
        values = " / ".join(f"{v:.4f}" for v in run["result"].values())
        print(f"{name:<36} {device.type:<6} {run['seconds']:9.2f} "
              f"{run['peak_bytes'] / 2**20:25.0f} MiB   {values}", flush=True)
    diff = max(abs(runs["chunked"]["result"][key] - runs["unchunked"]["result"][key])
               for key in runs["chunked"]["result"])
    print(f"largest difference of the four values: {diff:.1e}; one full distance matrix: "
          f"{8 * args.n**2 / 2**20:.0f} MiB in float64")


# --------------------------------------------------------------------- main


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--fid-dim", type=int, default=None, help="FID feature dimension (2048)")
    parser.add_argument("--n", type=int, default=None, help="PRDC samples per side (10 000)")
    parser.add_argument("--dim", type=int, default=None, help="PRDC feature dimension (1000)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run, ~10 s: FID d = 512, PRDC 2000 x 2000 at d = 256")
    parser.add_argument("--worker", choices=["chunked", "unchunked"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.fid_dim = args.fid_dim or (512 if args.quick else 2048)
    args.n = args.n or (2000 if args.quick else 10_000)
    args.dim = args.dim or (256 if args.quick else 1000)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.worker:
        prdc_worker(args.worker, args.n, args.dim, device)
        return
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, scipy {scipy.__version__}, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch CPU "
          f"threads, device {label}" + (" (--quick: smoke run)" if args.quick else ""))
    over = report_fid(args.fid_dim, device, repeats=1 if args.quick else 3)
    report_prdc(args, device)
    print(f"\nOVER TARGET on {label}: {over}" if over else f"\nFID target met on {label}")


if __name__ == "__main__":
    main()
