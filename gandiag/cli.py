"""The `gandiag` command: `gandiag demo`, `train`, `runs`, `diagnose` and `report` (also
`python -m gandiag`)."""

from __future__ import annotations

# Only the standard library at the top: `gandiag --help` and every argument error answer
# before torch, numpy, scipy or plotly load (seconds); each command imports what it needs.
import argparse
import datetime
import errno
import gc
import json
import os
import re
import signal
import sys
from typing import Any, Sequence

DATA_NAMES = ("ring", "grid", "digits", "stacked")
# The model each data set gets unless --model says otherwise.
DEFAULT_MODEL = {"ring": "toy-small", "grid": "toy-small", "digits": "mlp", "stacked": "mlp"}
DEFAULT_STORE = "runs/gandiag.sqlite"  # gandiag.store.DEFAULT_STORE, without importing it
INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)

# Raised by gandiag for a user's mistake; matched by module and name, so that main() can
# catch them without importing torch (a class whose module never loaded cannot be raised).
_GANDIAG_USER_ERRORS = (("gandiag.store.schema", "RunStoreError"),
                        ("gandiag.train.trainer", "NonFiniteLossError"))

_RUN_HELP = ("run name (the newest run of that name), or '#ID' for a run id, e.g. '#3' "
             "(quote it: the shell reads an unquoted # as a comment); `gandiag runs` lists both")
_RUN_EPILOG = ("A bare number is a run name: `%(prog)s 3` opens the run named '3'. The run "
               "with id 3 is `%(prog)s '#3'` or `%(prog)s --id 3`.")
# The 2 minutes are gandiag.store.STALE_AFTER, written out to keep --help free of imports.
_STATUS_EPILOG = ("Status: running, finished, failed, interrupted, stopped, or stale: the run "
                  "says running but its writer has sent no heartbeat for 2 minutes, so its "
                  "process most likely died (killed, out of memory).")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` (default: the command line); returns the exit status."""
    try:
        return _main(argv)
    finally:
        if argv is None:  # the process ends next: a Ctrl-C during its shutdown is quiet too
            _exit_quietly_on_interrupt()


def _main(argv: Sequence[str] | None) -> int:
    prog = "gandiag"
    try:  # Ctrl-C at any moment, importing torch included, ends with one line
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        prog = f"gandiag {args.command}"
        return args.run(args)
    except KeyboardInterrupt:
        if argv is None:  # a second Ctrl-C while this line prints ends the process quietly
            _exit_quietly_on_interrupt()
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as error:  # noqa: BLE001 - a bug in gandiag still shows its traceback
        if not _is_user_error(error):
            raise
        print(f"{prog}: error: {_describe(error, prog)}", file=sys.stderr)
        return 2


def _is_user_error(error: Exception) -> bool:
    """Bad input and bad files: ValueError/TypeError from the checks, an OSError on a path
    the user gave, a run store that cannot be used, a loss that went NaN."""
    if isinstance(error, (ValueError, TypeError, OSError)):
        return True
    for module_name, class_name in _GANDIAG_USER_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(error, getattr(module, class_name)):
            return True
    return False


def _describe(error: Exception, prog: str) -> str:
    """The error as one line; an OSError on a path gets what was expected and the fix."""
    if not isinstance(error, OSError) or error.filename is None:
        return str(error).replace("\n", " ")
    path = os.fspath(error.filename)
    if isinstance(error, IsADirectoryError):
        example = os.path.join(path, "report.html" if prog == "gandiag report" else "FILE")
        return (f"expected a file path, got the folder {path!r}; pass a file path, "
                f"e.g. {example!r}")
    if isinstance(error, FileExistsError):  # os.makedirs meeting a file on the way
        return (f"expected a folder at {path!r}, found a file; pass a path whose parent "
                "folders are folders, or move that file away")
    if isinstance(error, NotADirectoryError):
        return (f"expected folders along the path {path!r}, but a part of it is a file; "
                "pass a path whose parent folders are folders, or move that file away")
    if isinstance(error, PermissionError):
        return (f"no permission to use {path!r}; pass a path you may write to, "
                "or change its permissions")
    if isinstance(error, FileNotFoundError):
        return f"expected {path!r} to exist, found nothing; check the path"
    return f"{error.strerror or error} at {path!r}; check the path and the free disk space"


def _exit_quietly_on_interrupt() -> None:
    """From here on a Ctrl-C ends the process at once, without the traceback that an
    interrupted atexit hook or thread join would print."""
    def exit_now(signum: int, frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(INTERRUPTED)

    try:
        signal.signal(signal.SIGINT, exit_now)
    except ValueError:  # not the main thread: nothing to guard
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gandiag", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    _add_demo(commands)
    _add_train(commands)
    _add_runs(commands)
    _add_diagnose(commands)
    _add_report(commands)
    return parser


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="train a vanilla and a packed GAN on the 8-mode ring and compare them")
    demo.add_argument("--steps", type=int, default=10000, help="G updates per run (default 10000)")
    demo.add_argument("--out", default="runs/demo", help="folder for checkpoints and the summary")
    demo.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    demo.add_argument("--seed", type=int, default=1, help="seed of both runs (default 1; for seeds 0-4, measured, the vanilla run ends "
                           "with 0 or 1 of the 8 modes holding their fair share, the packed run with 8)")
    demo.add_argument("--store", default=DEFAULT_STORE,
                      help=f"run store (SQLite) that records both runs (default {DEFAULT_STORE})")
    demo.set_defaults(run=_demo)


def _add_train(commands: Any) -> None:
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
    train.add_argument("--coverage-every", type=int, default=500,
                       help="steps between label-free coverage evaluations (coverage/*: G's samples "
                            "against kept real samples, no labels; 0: off; default 500)")
    train.add_argument("--out", default="runs", help="folder for the checkpoint and summary")
    train.add_argument("--store", default=DEFAULT_STORE,
                       help=f"run store (SQLite) that records the run (default {DEFAULT_STORE})")
    train.set_defaults(run=_train)


def _add_runs(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list the runs in a store: id, name, status, "
                               "last step, start time", epilog=_STATUS_EPILOG)
    runs.add_argument("--store", default=DEFAULT_STORE, help=f"run store (default {DEFAULT_STORE})")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    runs.set_defaults(run=_runs)


def _add_diagnose(commands: Any) -> None:
    diagnose = commands.add_parser("diagnose", epilog=_RUN_EPILOG,
                                   help="diagnose a stored run: alerts with evidence and fixes")
    _add_run_arguments(diagnose)
    diagnose.add_argument("--warmup", type=int, default=500,
                          help="steps before trend detectors may fire (default 500)")
    diagnose.add_argument("--json", action="store_true", help="print the alerts as JSON")
    diagnose.set_defaults(run=_diagnose)


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", epilog=_RUN_EPILOG,
                                 help="write a self-contained HTML report of a stored run")
    _add_run_arguments(report)
    report.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    report.set_defaults(run=_report)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_name", metavar="RUN", nargs="?", help=_RUN_HELP)
    parser.add_argument("--id", type=int, metavar="ID", dest="run_id",
                        help="the run's id instead of RUN (see `gandiag runs`)")
    parser.add_argument("--store", default=DEFAULT_STORE, help=f"run store (default {DEFAULT_STORE})")


# --- the commands ----------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from gandiag.demo import run_demo

    return run_demo(steps=args.steps, out=args.out, device=args.device, seed=args.seed,
                    store=args.store)


def _runs(args: argparse.Namespace) -> int:
    from gandiag.store import STALE_AFTER, list_runs

    _require_store(args.store)
    runs = list_runs(args.store)
    if args.json:
        print(json.dumps([{"id": run.id, "name": run.name, "status": run.status,
                           "last_step": run.last_step, "started": _iso_time(run.started),
                           "ended": _iso_time(run.ended)} for run in runs], indent=2))
    elif not runs:
        print(f"No runs in {args.store} yet (gandiag train and gandiag.attach add them)")
    else:
        print(_runs_table(runs))
        if any(run.status == "stale" for run in runs):
            print(f"\nstale: marked running, but its writer has sent no heartbeat for more "
                  f"than {STALE_AFTER:.0f} s; the process most likely died (killed, out of memory) "
                  "without closing the run")
    return 0


def _runs_table(runs: Sequence[Any]) -> str:
    """One aligned row per run: id, name, status, last step, start time (local)."""
    rows = [("id", "name", "status", "last step", "started")]
    rows += [(f"#{run.id}", _printable(run.name), run.status,
              "-" if run.last_step is None else str(run.last_step),
              datetime.datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M:%S"))
             for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join([row[0].rjust(widths[0]), row[1].ljust(widths[1]),
                        row[2].ljust(widths[2]), row[3].rjust(widths[3]), row[4]])
             for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _printable(name: str) -> str:
    return name if name.isprintable() else repr(name)  # a newline would break the table


def _iso_time(unix: float | None) -> str | None:
    if unix is None:
        return None
    return datetime.datetime.fromtimestamp(unix).astimezone().isoformat(timespec="seconds")


def _report(args: argparse.Namespace) -> int:
    if os.path.isdir(args.out):  # say so now, not after reading the run and drawing its figures
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), args.out)
    from gandiag.widgets.report import write_report

    with _open_run(args) as run:
        path = write_report(run, args.out)
    print(f"Report written to {path} (open it in a browser; it works offline)")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from gandiag.detect import diagnosis_of, format_diagnosis

    with _open_run(args) as run:
        diagnosis = diagnosis_of(run, warmup=args.warmup)
        title = f"run {run.id} ({run.name!r}, {run.status}, {run.last_step} steps)"
    if args.json:
        print(json.dumps([alert.row() for alert in diagnosis.alerts], indent=2))
    else:
        # With what could not be judged: a short run's "no problems" is not a verdict.
        print(format_diagnosis(diagnosis.alerts, name=title, readiness=diagnosis.readiness()))
    return 0


def _open_run(args: argparse.Namespace) -> Any:
    """The run that RUN or --id names in --store."""
    from gandiag.store import list_runs, open_run

    ref = run_reference(args.run_name, args.run_id)
    _require_store(args.store)
    if isinstance(ref, str) and ref.isdigit() and ref not in {r.name for r in list_runs(args.store)}:
        raise ValueError(f"no run named {ref!r} in {args.store!r}; a bare number is a run name: "
                         f"for the run with id {ref}, write '#{ref}' or --id {ref}")
    return open_run(ref, args.store)


def run_reference(run: str | None, run_id: int | None) -> str | int:
    """A run's name, or its id when written as an id: '#3' or --id 3.

    >>> run_reference("ring", None), run_reference("#3", None), run_reference(None, 3)
    ('ring', 3, 3)
    >>> run_reference("3", None)   # a run named "3"
    '3'
    """
    if run is not None and run_id is not None:
        raise ValueError(f"expected RUN or --id, got both ({run!r} and --id {run_id}); pass one")
    if run_id is not None:
        return run_id
    if run is None:
        raise ValueError("expected a run: a name, '#ID' or --id ID, got none; `gandiag runs` "
                         "lists them (an unquoted #3 is a shell comment: write '#3')")
    return int(run[1:]) if re.fullmatch(r"#[0-9]+", run) else run


def _require_store(store: str) -> None:
    if not os.path.exists(store):
        raise FileNotFoundError(f"no run store at {os.path.abspath(store)!r}; pass --store PATH "
                                "(gandiag demo and gandiag train write runs/gandiag.sqlite)")


def _train(args: argparse.Namespace) -> int:
    from gandiag.detect import format_diagnosis
    from gandiag.runner import json_safe, train_one
    from gandiag.train import TrainConfig, distributed, parse_stabilisers

    config = TrainConfig.from_dict({
        "loss": args.loss, "steps": args.steps, "batch_size": args.batch_size,
        "lr_g": args.lr_g, "lr_d": args.lr_d, "z_dim": args.z_dim, "device": args.device,
        "amp": args.amp, "seed": args.seed, "log_every": args.log_every,
        "coverage_every": args.coverage_every, "capture": args.capture,
        **parse_stabilisers(args.stabilise),
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
        # Collect the run's cyclic garbage (label-free coverage leaves some on rank 0) on
        # every rank before the barrier: a rank still busy in the interpreter's final
        # collection while the others exit can make gloo abort one of them at exit
        # ("terminate called without an active exception"; measured: 1 torchrun run in 16
        # with coverage every 20 steps, none in 30 with this line).
        gc.collect()
        distributed.leave(together=True)
    if summary is None:  # ranks other than 0
        return 0
    print(json.dumps(json_safe(summary["metrics"]), indent=2, allow_nan=False))
    print(format_diagnosis(summary["alerts"], name=f"run {args.name!r}", readiness=summary["readiness"]))
    if several:
        print(f"Trained on {summary['world_size']} ranks (data parallel), batch "
              f"{config.batch_size} per rank")
    print(f"Recorded in the run store {summary['store']} (gandiag.open_run({args.name!r}, ...)); "
          f"report: {summary['report']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
