"""The fault-injection suite: does each detector fire on the runs built to fail, and stay
quiet on healthy ones?

Every scenario of `gandiag.scenarios` (healthy, collapse, D overpowering, vanishing
G gradients, exploding gradients, NaN, oscillation) trains with the detectors live, for
several seeds. Per detector the table gives:

    recall      share of its scenario's runs where it fired after the onset
    false       alerts on healthy runs, plus alerts raised before the onset of any run
    delay       steps from the onset to the alert (median, max), `detected_at - onset`

Other alerts raised *after* the onset of a faulty run are listed but not counted as false
(a collapse also makes G's gradients jump, a dead layer also collapses G: those alerts
are true). Targets (issue): recall >= 0.95, zero false alarms.

    python benchmarks/fault_injection.py                 # 5 seeds, ~8 minutes on one core
    python benchmarks/fault_injection.py --seeds 2 --json results.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from gandiag.detect import KINDS
from gandiag.scenarios import SCENARIOS, run_scenario

# Kinds without a scenario of their own: where they are checked instead. Their false alarms
# count all the same.
NO_SCENARIO = {"divergence": "tests/detect; it follows faults whose loss runs away",
               "gradient_leak": "tests/hooks cover the leak check",
               "frozen_model": "tests/detect; the d_overpowering scenario freezes G",
               "runaway_critic": "tests/detect",
               "stalled": "benchmarks/natural_runs.py: runs whose G never reaches the data"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--onset", type=int, default=1000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write every run's alerts here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = []
    started = time.perf_counter()
    for name in args.scenarios.split(","):
        for seed in range(args.seeds):
            run = run_scenario(name, seed, steps=args.steps, onset=args.onset)
            runs.append(run)
            found = run.found(run.scenario.expect) if run.scenario.expect else None
            delay = f"{found.detected_at - run.onset} steps" if found else "-"
            print(f"{name:<15} seed {seed}: expected {run.scenario.expect or 'nothing':<20} "
                  f"found after {delay:<11} all: {[(a.kind, a.detected_at) for a in run.alerts]}",
                  flush=True)
    print(f"\n{len(runs)} runs, {args.steps} steps each (fault at step {args.onset}), "
          f"{time.perf_counter() - started:.0f} s\n")
    print("| detector | scenario | recall | delay median | delay max | false alarms |")
    print("|---|---|---|---|---|---|")
    worst_recall, total_false = 1.0, 0
    for scenario in SCENARIOS.values():
        if scenario.expect is None:
            continue
        mine = [r for r in runs if r.scenario.name == scenario.name]
        if not mine:
            continue
        delays = [r.found(scenario.expect).detected_at - r.onset for r in mine if r.found(scenario.expect)]
        recall = len(delays) / len(mine)
        false = sum(1 for r in runs for a in r.false_alarms if a.kind == scenario.expect)
        worst_recall, total_false = min(worst_recall, recall), total_false + false
        median = f"{np.median(delays):.0f}" if delays else "-"
        print(f"| {scenario.expect} | {scenario.name} ({scenario.description}) | "
              f"{len(delays)}/{len(mine)} | {median} | {max(delays) if delays else '-'} | {false} |")
    covered = {scenario.expect for scenario in SCENARIOS.values()}
    for kind in (k for k in KINDS if k not in covered):
        false = sum(1 for r in runs for a in r.false_alarms if a.kind == kind)
        print(f"| {kind} | (no scenario: {NO_SCENARIO.get(kind, 'tests/detect')}) | - | - | - | {false} |")
        total_false += false
    print(f"\nworst recall {worst_recall:.2f} (target >= 0.95); false alarms {total_false} (target 0)")
    # Every alert after the onset, by kind and scenario: the side effects of each fault
    # (a dead layer also collapses G; D winning also makes G's loss diverge).
    names = [s.name for s in SCENARIOS.values() if any(r.scenario.name == s.name for r in runs)]
    print("\nruns with an alert of each kind after the onset:\n")
    print("| kind | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for kind in KINDS:
        cells = [sum(1 for r in runs if r.scenario.name == name and r.found(kind)) for name in names]
        totals = [sum(1 for r in runs if r.scenario.name == name) for name in names]
        print(f"| {kind} | " + " | ".join(f"{c}/{t}" for c, t in zip(cells, totals)) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"scenario": r.scenario.name, "seed": r.seed, "onset": r.onset,
                        "alerts": [a.row() for a in r.alerts]} for r in runs], f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
