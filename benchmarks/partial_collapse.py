"""Partial collapse in plain user loops: does label-free `mode_collapse` see it?

    python benchmarks/partial_collapse.py                 # ~10 min on one CPU thread
    python benchmarks/partial_collapse.py --quick         # one seed each, ~3 min
    python benchmarks/partial_collapse.py --json out.json --verbose

Every run is a plain loop with `gandiag.attach(G, D, opt_g=..., opt_d=...)` and nothing
else: no labels, no metric schedule, the label-free coverage on its defaults
(`coverage_every=500`). Ground truth comes from outside gandiag's view, and the labels are
set by these rules, written before the alerts were compared:

- digits, k classes: G returns real held-out digits (sklearn's 8x8 digits, 900 train /
  897 held out) of k random classes, k = 1, 2, 5, 8, 10, through a small D (64 -> 128 ->
  1, LeakyReLU), 2 000 steps. Label: collapse for k <= 8, healthy for k = 10.
- digits, skewed: all ten classes, one at 55 % and the others sharing 45 %: collapse;
  digits, uniform (ten classes at 10 %): healthy.
- ring, vanilla: issue 18's loop. 8-mode ring (std 0.01), G and D 3x128 MLPs (ReLU /
  LeakyReLU 0.2), 2-D noise, non-saturating loss, Adam 1e-3 (0.5, 0.999), batch 256, 3 000
  steps; every 250 steps 2 500 samples of G (its own noise) are checked: HQ (within 3
  std of a mode) and the HQ samples per mode; a mode is *starved* when it holds under a
  quarter of an even share of the HQ samples. Label: collapse when two checks in a row
  after step 1 000 have HQ >= 0.3 and a starved mode; healthy when the last two checks
  have no starved mode and HQ >= 0.8, and no such pair; else "unclear". (A first rule,
  "at most 6 fair modes", fair = half an even share, labelled as collapse runs whose
  every mode kept its mass while G was looser at some modes than at others; it was
  replaced by this one before the table below was made.)
- ring, PacGAN2: the same models with D on pairs of samples (`sample_shape=(2,)`), 6 000
  steps, labelled by the same rule.

Printed: per run the label, the first `mode_collapse` alert (step it was raised at,
severity) and the regions' JSD over its null at the last evaluation; then recall on
collapse runs and false alarms on healthy runs. A report, not a test (exit status 0).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import gandiag

DIGIT_CASES = ("k=1", "k=2", "k=5", "k=8", "k=10", "skewed", "uniform")


class HeldOutDigits(nn.Module):
    """G: real held-out digits of some classes, drawn with the given weights."""

    def __init__(self, images: torch.Tensor, pool: np.ndarray, weights: np.ndarray, seed: int) -> None:
        super().__init__()
        self.images, self.pool, self.weights = images, pool, weights / weights.sum()
        self.rng = np.random.default_rng(seed)
        self.w = nn.Parameter(torch.zeros(()))  # G's update is an update

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        picked = torch.from_numpy(self.rng.choice(self.pool, len(z), p=self.weights))
        return self.images[picked] + 0 * self.w


def step(G, D, opt_g, opt_d, real, z, pack=1):
    fake = G(z)
    width = real[0].numel() * pack
    loss_d = (F.softplus(-D(real.reshape(-1, width))).mean()
              + F.softplus(D(fake.detach().reshape(-1, width))).mean())
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.softplus(-D(fake.reshape(-1, width))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()


def digits_run(case: str, seed: int) -> dict:
    torch.manual_seed(seed)
    images, labels = gandiag.data.digits().tensors
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train, held = order[:900], order[900:]
    held_labels = labels[held].numpy()
    if case in ("skewed", "uniform"):
        share = np.full(10, 0.1) if case == "uniform" else np.r_[0.55, np.full(9, 0.45 / 9)]
        weights = share[held_labels] / np.bincount(held_labels, minlength=10)[held_labels]
        pool = held
    else:
        pool = held[np.isin(held_labels, rng.permutation(10)[:int(case[2:])])]
        weights = np.ones(len(pool))
    G = HeldOutDigits(images, pool, weights, seed)
    D = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d) as monitor:
        for _ in range(2000):
            step(G, D, opt_g, opt_d, images[torch.from_numpy(rng.choice(train, 64))], torch.randn(64, 100))
    label = "healthy" if case in ("k=10", "uniform") else "collapse"
    return {"label": label, "truth": case, **verdict(monitor)}


def mlp(n_in: int, n_out: int, act) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, 128), act(), nn.Linear(128, 128), act(),
                         nn.Linear(128, 128), act(), nn.Linear(128, n_out))


def ring_run(pack: int, seed: int) -> dict:
    torch.manual_seed(seed)
    ring = gandiag.data.ring()
    G, D = mlp(2, 2, nn.ReLU), mlp(2 * pack, 1, lambda: nn.LeakyReLU(0.2))
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
    checks, noise = [], torch.Generator().manual_seed(10_000 + seed)
    options = {"sample_shape": (2,)} if pack > 1 else {}
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, **options) as monitor:
        for it in range(1, (6000 if pack > 1 else 3000) + 1):
            step(G, D, opt_g, opt_d, ring.sample(256), torch.randn(256, 2), pack)
            if it % 250 == 0:
                with torch.no_grad():
                    per_mode = ring._hq_histogram(G(torch.randn(2500, 2, generator=noise)), 4096)
                starved = int(np.count_nonzero(4 * per_mode * len(per_mode) < per_mode.sum()))
                checks.append((it, starved, float(per_mode.sum() / 2500)))
    return {"label": ring_label(checks),
            "truth": " ".join(f"{s}/{hq:.2f}" for _, s, hq in checks[3::4]) + " (starved modes/HQ)",
            "checks": checks, **verdict(monitor)}


def ring_label(checks: list[tuple[int, int, float]]) -> str:
    bad = [step > 1000 and hq >= 0.3 and starved > 0 for step, starved, hq in checks]
    if any(a and b for a, b in zip(bad, bad[1:])):
        return "collapse"
    if all(starved == 0 and hq >= 0.8 for _, starved, hq in checks[-2:]):
        return "healthy"
    return "unclear"


def verdict(monitor) -> dict:
    history = monitor.history
    collapse = [a for a in gandiag.diagnose(history) if a.kind == "mode_collapse"]
    jsd, null = (float(history[f"coverage/{key}"][1][-1]) for key in ("regions_jsd", "regions_jsd_null"))
    first = collapse[0] if collapse else None
    return {"alert_step": first.detected_at if first else None, "severity": first.severity if first else None,
            "message": first.message if first else "", "jsd_over_null": jsd / null}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed per setup")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--verbose", action="store_true", help="print each alert's message")
    args = parser.parse_args()
    torch.set_num_threads(1)
    digit_seeds, ring_seeds, pack_seeds = ((0,), (0,), (0,)) if args.quick else ((0, 1, 2), range(6), (0, 1, 2))
    jobs = ([("digits " + case, seed, lambda c=case, s=seed: digits_run(c, s))
             for case in DIGIT_CASES for seed in digit_seeds]
            + [("ring", seed, lambda s=seed: ring_run(1, s)) for seed in ring_seeds]
            + [("ring PacGAN2", seed, lambda s=seed: ring_run(2, s)) for seed in pack_seeds])
    print(f"# partial collapse, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("| setup | seed | ground truth | label | mode_collapse at | severity | regions' JSD / null |")
    print("|---|---|---|---|---|---|---|")
    rows, started = [], time.perf_counter()
    for setup, seed, job in jobs:
        row = {"setup": setup, "seed": seed, **job()}
        rows.append(row)
        at = "-" if row["alert_step"] is None else str(row["alert_step"])
        truth = row["truth"] if setup.startswith("ring") else setup.split()[-1]
        print(f"| {setup} | {seed} | {truth} | {row['label']} | {at} | {row['severity'] or '-'} "
              f"| {row['jsd_over_null']:.1f} |", flush=True)
        if args.verbose and row["message"]:
            print(f"|   | | {row['message']} | | | | |")
    for label, want in (("collapse", True), ("healthy", False)):
        runs = [r for r in rows if r["label"] == label]
        hits = sum((r["alert_step"] is not None) == want for r in runs)
        print(f"{label}: {hits}/{len(runs)} {'detected' if want else 'quiet'}")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
