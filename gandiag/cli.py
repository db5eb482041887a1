"""The `gandiag` command: `gandiag demo`, `train`, `diagnose` and `report` (also
`python -m gandiag`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

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


def _demo(args: argparse.Namespace) -> int:
    from gandiag.demo import run_demo

    return run_demo(steps=args.steps, out=args.out, device=args.device, seed=args.seed,
                    store=args.store)


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
    from gandiag.runner import train_one
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
        summary = train_one(args.name, args.data, args.model or DEFAULT_MODEL[args.data], config,
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


if __name__ == "__main__":
    raise SystemExit(main())
