"""The `gandiag` command: `gandiag demo`, `train`, `diagnose` and `report` (also
`python -m gandiag`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Sequence

from gandiag.store import RunStoreError
from gandiag.train.trainer import NonFiniteLossError

DATA_NAMES = ("ring", "grid", "digits", "stacked")
# The model each data set gets unless --model says otherwise.
DEFAULT_MODEL = {"ring": "toy-small", "grid": "toy-small", "digits": "mlp", "stacked": "mlp"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, NonFiniteLossError, RunStoreError) as error:
        print(f"gandiag {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gandiag {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stdout = open(os.devnull, "w")
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gandiag", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    demo = commands.add_parser(
        "demo", help="train a vanilla and a packed GAN on the 8-mode ring and compare them")
    demo.add_argument("--steps", type=int, default=10000, help="G updates per run (default 10000)")
    demo.add_argument("--out", default="runs/demo", help="folder for checkpoints and the summary")
    demo.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    demo.add_argument("--seed", type=int, default=1,
                      help="default 1: there the vanilla run collapses onto one mode")
    demo.add_argument("--store", default="runs/gandiag.sqlite",
                      help="run store (SQLite) that records both runs (default runs/gandiag.sqlite)")
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train one GAN on built-in data")
    train.add_argument("--name", default="run", help="run name (checkpoint file name)")
    train.add_argument("--data", choices=DATA_NAMES, default="ring")
    train.add_argument("--model", default=None,
                       help="toy | toy-small | mlp | dcgan (default: by data)")
    train.add_argument("--loss", default="nonsaturating",
                       help="minimax | nonsaturating | wgan | wgan-gp | hinge | lsgan")
    train.add_argument("--steps", type=int, default=5000)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr-g", type=float, default=2e-4)
    train.add_argument("--lr-d", type=float, default=2e-4)
    train.add_argument("--z-dim", type=int, default=None)
    train.add_argument("--stabilise", "--stabilize", action="append", default=[], metavar="NAME[=V]",
                       help="r1, gp, spectral_norm, label_smoothing, instance_noise, pack, ema, "
                            "n_critic; repeat the flag for several (e.g. --stabilise pack=2)")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    train.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    train.add_argument("--capture", choices=("none", "cuda_graph", "compile"), default="none",
                       help="run each step as one CUDA graph or through torch.compile (CUDA)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--log-every", type=int, default=500, help="steps between progress lines")
    train.add_argument("--out", default="runs", help="folder for the checkpoint and summary")
    train.add_argument("--store", default="runs/gandiag.sqlite",
                       help="run store (SQLite) that records the run (default runs/gandiag.sqlite)")
    train.set_defaults(run=_train)

    diagnose = commands.add_parser("diagnose", help="diagnose a stored run: alerts with evidence and fixes")
    diagnose.add_argument("run_name", metavar="RUN",
                          help="run name (the newest run of that name) or id (gandiag.list_runs)")
    diagnose.add_argument("--store", default="runs/gandiag.sqlite",
                          help="run store (default runs/gandiag.sqlite)")
    diagnose.add_argument("--warmup", type=int, default=500,
                          help="steps before trend detectors may fire (default 500)")
    diagnose.add_argument("--json", action="store_true", help="print the alerts as JSON")
    diagnose.set_defaults(run=_diagnose)

    report = commands.add_parser("report", help="write a self-contained HTML report of a stored run")
    report.add_argument("run_name", metavar="RUN", help="run name (the newest of that name) or id")
    report.add_argument("--store", default="runs/gandiag.sqlite", help="run store (default runs/gandiag.sqlite)")
    report.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    report.set_defaults(run=_report)
    return parser


def _report(args: argparse.Namespace) -> int:
    from gandiag.store import open_run
    from gandiag.widgets.report import write_report

    if not os.path.exists(args.store):
        raise FileNotFoundError(f"no run store at {os.path.abspath(args.store)!r}; pass --store PATH")
    name_or_id: str | int = int(args.run_name) if args.run_name.isdigit() else args.run_name
    with open_run(name_or_id, args.store) as run:
        path = write_report(run, args.out)
    print(f"Report written to {path} (open it in a browser; it works offline)")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from gandiag.detect import diagnose, format_diagnosis
    from gandiag.store import open_run

    if not os.path.exists(args.store):
        raise FileNotFoundError(f"no run store at {os.path.abspath(args.store)!r}; pass --store PATH "
                                "(gandiag demo and gandiag train write runs/gandiag.sqlite)")
    name_or_id: str | int = int(args.run_name) if args.run_name.isdigit() else args.run_name
    with open_run(name_or_id, args.store) as run:
        alerts = diagnose(run, warmup=args.warmup)
        title = f"run {run.id} ({run.name!r}, {run.status}, {run.last_step} steps)"
    if args.json:
        print(json.dumps([alert.row() for alert in alerts], indent=2))
    else:
        print(format_diagnosis(alerts, name=title))
    return 0


def _train(args: argparse.Namespace) -> int:
    from gandiag.detect import format_diagnosis
    from gandiag.train import TrainConfig, distributed, parse_stabilisers

    config = TrainConfig.from_dict({
        "loss": args.loss, "steps": args.steps, "batch_size": args.batch_size,
        "lr_g": args.lr_g, "lr_d": args.lr_d, "z_dim": args.z_dim, "device": args.device,
        "amp": args.amp, "seed": args.seed, "log_every": args.log_every,
        "capture": args.capture, **parse_stabilisers(args.stabilise),
    })
    # Under torchrun every process runs this command: join the group, train on this
    # rank's shard; rank 0 alone writes the store, the checkpoint and the report.
    several = distributed.init_from_env()
    try:
        summary = _run(args.name, args.data, args.model or DEFAULT_MODEL[args.data], config,
                       args.out, args.store)
    except BaseException:
        if several:
            distributed.leave(together=False)
        raise
    if several:
        distributed.leave(together=True)
    if summary is None:  # ranks other than 0
        return 0
    print(json.dumps(summary["metrics"], indent=2))
    print(format_diagnosis(summary["alerts"], name=f"run {args.name!r}"))
    if several:
        print(f"Trained on {summary['world_size']} ranks (data parallel), batch "
              f"{config.batch_size} per rank")
    print(f"Recorded in the run store {summary['store']} (gandiag.open_run({args.name!r}, ...)); "
          f"report: {summary['report']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import torch

    from gandiag.detect import format_diagnosis
    from gandiag.train import TrainConfig

    # Toy models are tiny: one CPU thread is as fast as two, and fixes the float summation
    # order, so the demo gives the same numbers on any machine of one kind.
    torch.set_num_threads(1)
    print("gandiag demo: the 8-mode ring. A vanilla GAN against the same models stabilised\n"
          "with PacGAN packing (D judges 2 samples at once) and an EMA of G's weights.\n")
    runs = {}
    for name, stabilisers in (("vanilla", {}), ("packed", {"pack": 2, "ema": 0.999})):
        config = TrainConfig(steps=args.steps, seed=args.seed, device=args.device,
                             log_every=max(1, args.steps // 5), **stabilisers)
        print(f"--- {name} {stabilisers or ''} ---")
        runs[name] = _run(name, "ring", "toy-small", config, args.out, args.store)
    print("\nRing metrics on 2500 samples from fixed noise. A perfect generator: 8 modes, HQ "
          "98.9 %,\nreverse KL ~0.0015. 'spread' = 8 exp(-reverse KL): how many equally "
          "filled modes\nthe samples are worth (8 is even coverage, 1 is total collapse).")
    print(f"{'run':<10}{'modes':>7}{'HQ %':>8}{'rev. KL':>9}{'spread':>8}{'time':>7}")
    for name, summary in runs.items():
        m = summary["metrics"]
        spread = 8 * math.exp(-m["reverse_kl"])
        print(f"{name:<10}{m['modes']:>5}/8{100 * m['hq']:>8.1f}{m['reverse_kl']:>9.3f}"
              f"{spread:>8.1f}{summary['seconds']:>6.0f}s")
    print()
    print(format_diagnosis(runs["vanilla"]["alerts"], name="the vanilla run"))
    print(f"(the packed run: {len(runs['packed']['alerts'])} alert(s); both diagnoses are stored "
          f"with the runs: gandiag diagnose vanilla --store {args.store})")
    print(f"The vanilla run's report (panels and diagnosis, one HTML file): {runs['vanilla']['report']}")
    print(f"\nCheckpoints and summaries are in {os.path.abspath(args.out)}")
    print(f"Both runs are recorded in the run store {runs['packed']['store']}\n"
          f"  (every flush, metrics and sample pictures; read it with "
          f"gandiag.open_run('packed', path) or gandiag.list_runs(path))")
    return 0


def _run(name: str, data_name: str, model_name: str, config: Any, out: str,
         store: str) -> dict[str, Any] | None:
    """Train one run with a progress line, recorded in `store`; returns (and writes) its
    summary, on rank 0 (None on the other ranks of a torchrun job)."""
    import torch

    from gandiag import data, models
    from gandiag.detect import DiagnosisCallback
    from gandiag.store import StoreRecorder, open_run
    from gandiag.train import ProgressPrinter, Trainer
    from gandiag.widgets.report import write_report

    dataset = {"ring": data.ring, "grid": data.grid, "digits": data.digits,
               "stacked": data.stacked_digits}[data_name]()
    sample_shape = _sample_shape(dataset)
    torch.manual_seed(config.seed)  # the models' initial weights are part of the run
    G, D = models.build_pair(model_name, sample_shape=sample_shape, pack=config.pack,
                             z_dim=config.z_dim)
    progress = ProgressPrinter(evaluate=True)
    recorder = StoreRecorder(store, evaluate=False)  # the progress line evaluates and records
    diagnosis = DiagnosisCallback(warn=False)  # alerts go to the store, printed at the end
    trainer = Trainer(G, D, dataset, config, callbacks=[progress, recorder, diagnosis], name=name)
    started = time.perf_counter()
    try:
        trainer.fit()
    finally:
        recorder.close()
    seconds = time.perf_counter() - started
    if trainer.rank != 0:
        return None
    metrics: dict[str, Any] = (trainer.evaluate() if data_name in ("ring", "grid")
                               else _sample_stats(trainer.sample(2600 if data_name == "stacked" else 512),
                                                  data_name))
    os.makedirs(out, exist_ok=True)
    trainer.save(os.path.join(out, f"{name}.pt"))
    with open_run(trainer.name, recorder.where) as run:
        report = write_report(run, os.path.join(out, f"{name}-report.html"), alerts=diagnosis.alerts)
    summary = {"name": name, "data": data_name, "model": model_name, "steps": trainer.step,
               "seconds": seconds, "device": str(trainer.device), "world_size": trainer.world_size,
               "report": report, "metrics": metrics,
               "evaluations": progress.evaluations, "config": config.to_dict(),
               "store": recorder.where, "alerts": diagnosis.alerts}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(summary | {"alerts": [a.row() for a in diagnosis.alerts]}, f, indent=2, default=float)
    return summary


def _sample_shape(dataset: Any) -> tuple[int, ...]:
    if hasattr(dataset, "tensors"):
        return tuple(dataset.tensors[0].shape[1:])
    return (2,)


def _sample_stats(samples: Any, data_name: str) -> dict[str, float]:
    """Digits: classes covered and KL to uniform from the shipped digits classifier;
    stacked digits: the 1000-mode count and KL (DESIGN.md); plus the sample range."""
    from gandiag import metrics

    if data_name == "stacked":
        coverage = metrics.mode_stats(metrics.stacked_labels(samples), 1000)
    else:
        coverage = metrics.mode_stats(metrics.classify(samples), 10)
    return {**coverage, "mean": float(samples.mean()), "std": float(samples.std()),
            "min": float(samples.min()), "max": float(samples.max())}


if __name__ == "__main__":
    raise SystemExit(main())
