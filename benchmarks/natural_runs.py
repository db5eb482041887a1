"""The natural-run corpus: do the detectors' alerts match what really happened to a run?

    python benchmarks/natural_runs.py                    # 39 runs, ~20 min on 2 cores
    python benchmarks/natural_runs.py --cache /tmp/corpus  # keep the recordings; a rerun
                                                          # only re-diagnoses them
    python benchmarks/natural_runs.py --only ring --json out.json --verbose

No fault is injected: each run of `natural_setups.SETUPS` (toy ring and grid, the DCGAN-
style conv pair on digits, stacked digits, WGAN-GP, an unconstrained WGAN critic, hinge +
spectral norm, R1, LSGAN, the Sigmoid/BCE tutorial loop, D-first and G-first, a
conditional D; some that train well and some that fail on their own) trains as a plain
user loop under `gandiag.attach`, and every `check_every` steps a probe outside gandiag
measures G's samples (see `natural_setups`): `hq`, the share of samples on the data, and
per mode how many of them it holds. A mode is *starved* when it holds less than a quarter
of an even share of the HQ samples.

The label comes from the probes only, by these rules, written before any alert was
compared (K modes; "bad" checks are after step 1 000 unless said otherwise):

    diverged          a loss or a sample of G became NaN/inf; bad from that step
    stalled           in a run of at least 2 000 steps, every check of the last 1 000 steps
                      has hq < 0.1: G's samples are still not on the data; bad from the
                      first check of the last stretch with hq < 0.1
    total collapse    two checks in a row with hq >= 0.3 and at most max(1, K/10) modes
                      not starved; bad from the first of them
    partial collapse  two checks in a row with hq >= 0.3 and at least max(1, K/20) starved
                      modes (and not total); bad from the first of them
    healthy           the last two checks have hq >= 0.5 and fewer than max(1, K/20)
                      starved modes, and none of the above
    not converged     none of the above (short runs, or runs still on their way)

Revised after the first table, and only these: "stalled" first read "the last two checks
have hq < 0.1", which labelled a 500-step run stalled; and a stalled G first counted as
detected only by the instability kinds, before `stalled` existed.

An alert *detects* a failure label when it is warning or critical, of a kind that names
that failure (`EXPECTED`: `mode_collapse` for the collapses, `nonfinite` for NaN, any
kind for a G that never reached the data), and raised (`detected_at`) before the run ends; its delay is
`detected_at` minus the step the outcome turned bad (negative: it came earlier). On
healthy runs every warning-or-critical alert is a false alarm. For every alert the table
says whether the outcome got worse after it: `score` = hq x (modes not starved) / K, and
"worse" means the lowest score in the 1 000 steps after the alert is 0.05 below the
score at the alert, or the run ends labelled with a failure it detected.

A report, not a test (exit status 0); `tests/detect/test_natural_runs.py` runs a small
subset.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import platform
import sys
import time
from collections import Counter

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gandiag  # noqa: E402
from natural_setups import SETUPS, build  # noqa: E402

FAILURES = ("diverged", "stalled", "total collapse", "partial collapse")
LABELS = FAILURES + ("healthy", "not converged")
COLLAPSE = {"mode_collapse"}
EXPECTED = {"diverged": {"nonfinite"}, "stalled": set(gandiag.detect.KINDS),
            "total collapse": COLLAPSE, "partial collapse": COLLAPSE}
SHORT = {"ring ns": 500, "grid ns": 500, "digits ns": 400}   # "not converged" runs: cut short
SEEDS = {"ring ns": 3, "ring frozen G": 1, "digits conditional D": 1, "digits lr 5e-3": 1}


def corpus(only: str = "") -> list[tuple[str, int, int | None]]:
    """(setup, seed, steps override) of every run."""
    jobs = [(name, seed, None) for name in SETUPS for seed in range(SEEDS.get(name, 2))]
    jobs += [(name, 0, steps) for name, steps in SHORT.items()]
    return [job for job in jobs if only in job[0]]


def train(name: str, seed: int, steps: int | None = None) -> dict:
    """Train one run; its records, its probes, and where it went non-finite."""
    torch.set_num_threads(1)
    setup = SETUPS[name]
    steps = steps or setup.steps
    G, D, opt_g, opt_d, sample_real, z_of, probe, options = build(setup, seed)
    checks, nan_step, started = [], None, time.perf_counter()
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, **options) as monitor:
        for it in range(1, steps + 1):
            loss_d = setup.loop.step(G, D, opt_g, opt_d, sample_real, z_of, cond=setup.cond)
            if nan_step is None and not np.isfinite(loss_d):
                nan_step = it
            if it % setup.check_every == 0 or it == steps:
                found = probe(G)
                checks.append((it, found))
                if not found["finite"] and nan_step is None:
                    nan_step = it
            if nan_step is not None and it >= nan_step + 200:
                break  # a user would stop here too; the records so far are kept
    history = {key: (np.asarray(s), np.asarray(v)) for key, (s, v) in monitor.history.items()}
    return {"setup": name, "seed": seed, "steps": it, "k": probe.k, "loss": monitor.config.get("loss"),
            "checks": checks, "nan_step": nan_step, "history": history,
            "seconds": time.perf_counter() - started}


def label(run: dict) -> tuple[str, int | None]:
    """(label, step the outcome turned bad) by the rules of the module docstring."""
    k, checks = run["k"], run["checks"]
    if run["nan_step"] is not None:
        return "diverged", run["nan_step"]
    hq = np.array([c["hq"] for _, c in checks])
    steps = np.array([s for s, _ in checks])
    starved = np.array([_starved(c["per_mode"], k) for _, c in checks])
    if steps[-1] >= 2000 and (hq[steps > steps[-1] - 1000] < 0.1).all():
        low = np.flatnonzero(hq >= 0.1)
        return "stalled", int(steps[low[-1] + 1] if len(low) else steps[0])
    late = steps > 1000
    total = late & (hq >= 0.3) & (k - starved <= max(1, k // 10))
    partial = late & (hq >= 0.3) & (starved >= max(1, k // 20))
    for name, bad in (("total collapse", total), ("partial collapse", partial)):
        pair = np.flatnonzero(bad[:-1] & bad[1:])
        if len(pair):
            return name, int(steps[pair[0]])
    if len(hq) >= 2 and (hq[-2:] >= 0.5).all() and (starved[-2:] < max(1, k // 20)).all():
        return "healthy", None
    return "not converged", None


def _starved(per_mode: np.ndarray, k: int) -> int:
    return int(np.count_nonzero(4 * k * per_mode < per_mode.sum())) if per_mode.sum() else k


def scores(run: dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, score) of the probes: hq x share of modes not starved (0 when not finite)."""
    k = run["k"]
    steps = np.array([s for s, _ in run["checks"]])
    score = np.array([c["hq"] * (k - _starved(c["per_mode"], k)) / k if c["finite"] else 0.0
                      for _, c in run["checks"]])
    return steps, score


def judge(run: dict, thresholds: dict | None = None) -> dict:
    """The run's label, its alerts, and how they compare."""
    diagnosis = gandiag.detect.diagnosis_of(run["history"], thresholds=thresholds, loss=run.get("loss"))
    alerts = diagnosis.alerts
    name, bad_from = label(run)
    steps, score = scores(run)
    serious = [a for a in alerts if a.severity in ("warning", "critical")]
    hit = [a for a in serious if a.kind in EXPECTED.get(name, ())]
    rows = []
    for a in alerts:
        at = np.searchsorted(steps, a.detected_at, side="right") - 1
        now = score[at] if at >= 0 else score[0]
        after = score[(steps > a.detected_at) & (steps <= a.detected_at + 1000)]
        worse = bool(len(after) and after.min() < now - 0.05) or (a in hit)
        rows.append({"kind": a.kind, "severity": a.severity, "step": a.step, "at": a.detected_at,
                     "score": float(now), "worse": worse, "message": a.message})
    return {"setup": run["setup"], "seed": run["seed"], "steps": run["steps"], "label": name,
            "bad_from": bad_from, "detected": bool(hit),
            "delay": (hit[0].detected_at - bad_from) if hit and bad_from is not None else None,
            "false_alarms": len(serious) if name == "healthy" else 0,
            "final_score": float(score[-1]), "final_hq": float(run["checks"][-1][1].get("hq", np.nan)),
            "alerts": rows, "seconds": run["seconds"],
            "too_short": [r.kind for r in diagnosis.readiness() if r.status == "too short"]}


def _job(args: tuple) -> dict:
    name, seed, steps, cache = args
    path = os.path.join(cache, f"{name.replace(' ', '_')}-{seed}-{steps or 'full'}.pkl") if cache else None
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    run = train(name, seed, steps)
    if path:
        with open(path, "wb") as f:
            pickle.dump(run, f)
    return run


def report(results: list[dict], verbose: bool) -> None:
    print("| setup | seed | steps | label (bad from) | final hq / score | alerts, warning or worse (raised at) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        bad = f" ({r['bad_from']})" if r["bad_from"] is not None else ""
        shown = [f"{a['kind']} {a['severity'][0]} @{a['at']}{'' if a['worse'] else ' (no worse)'}"
                 for a in r["alerts"] if a["severity"] != "info"]
        infos = sum(a["severity"] == "info" for a in r["alerts"])
        short = f"; too short to judge {len(r['too_short'])} kinds" if r["too_short"] else ""
        print(f"| {r['setup']} | {r['seed']} | {r['steps']} | {r['label']}{bad} | {r['final_hq']:.2f} / "
              f"{r['final_score']:.2f} | {', '.join(shown) or '-'}{f' (+{infos} info)' if infos else ''}{short} |")
        if verbose:
            for a in r["alerts"]:
                print(f"|  | | | | | {a['severity']} {a['kind']} @{a['at']}: {a['message'][:300]} |")
    print("\n| label | runs | detected | recall | median delay (steps) |")
    print("|---|---|---|---|---|")
    for name in LABELS:
        runs = [r for r in results if r["label"] == name]
        if not runs:
            continue
        if name in FAILURES:
            hits = [r for r in runs if r["detected"]]
            delays = [r["delay"] for r in hits if r["delay"] is not None]
            median = f"{np.median(delays):.0f}" if delays else "-"
            print(f"| {name} | {len(runs)} | {len(hits)} | {len(hits) / len(runs):.2f} | {median} |")
        else:
            alarms = sum(sum(a["severity"] != "info" for a in r["alerts"]) for r in runs)
            print(f"| {name} | {len(runs)} | warning-or-worse alerts: {alarms} | | |")
    kinds = sorted({a["kind"] for r in results for a in r["alerts"]})
    print("\nConfusion: runs per label with a warning-or-worse alert of each kind")
    print("| label | " + " | ".join(kinds) + " | none |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for name in LABELS:
        runs = [r for r in results if r["label"] == name]
        if runs:
            counts = Counter(k for r in runs for k in {a["kind"] for a in r["alerts"] if a["severity"] != "info"})
            none = sum(not any(a["severity"] != "info" for a in r["alerts"]) for r in runs)
            print(f"| {name} ({len(runs)}) | " + " | ".join(str(counts[k]) for k in kinds) + f" | {none} |")
    every = [a for r in results for a in r["alerts"]]
    worse = sum(a["worse"] for a in every)
    print(f"\nAlerts after which the outcome got worse (or that detected a failure): {worse} of {len(every)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="runs whose setup name contains this")
    parser.add_argument("--cache", help="keep each run's recording here, and reuse it")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--verbose", action="store_true", help="print every alert's message")
    args = parser.parse_args()
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
    jobs = [(name, seed, steps, args.cache) for name, seed, steps in corpus(args.only)]
    print(f"# natural runs, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{len(jobs)} runs")
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        runs = pool.map(_job, jobs, chunksize=1)
    results = [judge(run) for run in runs]
    report(results, args.verbose)
    print(f"({time.perf_counter() - started:.0f} s; training {sum(r['seconds'] for r in results):.0f} s of CPU)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
