"""Train one run on built-in data the way `gandiag train` and `gandiag demo` do: progress
line, run store, live diagnosis, then checkpoint, JSON summary (with the last label-free
`coverage/*` values) and HTML report."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any


def train_one(name: str, data_name: str, model_name: str, config: Any, out: str,
         store: str) -> dict[str, Any] | None:
    """Train one run with a progress line, recorded in `store`; returns (and writes) its
    summary, on rank 0 (None on the other ranks of a torchrun job).

    The name, the data and the output folder are checked (and the folder made) before
    anything trains: a bad path fails in a second, not after the run with its weights lost.
    """
    import torch

    from gandiag import data, models
    from gandiag.detect import DiagnosisCallback
    from gandiag.store import StoreRecorder, open_run
    from gandiag.train import ProgressPrinter, Trainer
    from gandiag.widgets.report import write_report

    builders = {"ring": data.ring, "grid": data.grid, "digits": data.digits,
                "stacked": data.stacked_digits}
    if data_name not in builders:
        raise ValueError(f"train_one: expected data one of {', '.join(builders)}, got {data_name!r}")
    _prepare_output(name, out)
    dataset = builders[data_name]()
    sample_shape = _sample_shape(dataset)
    torch.manual_seed(config.seed)  # the models' initial weights are part of the run
    G, D = models.build_pair(model_name, sample_shape=sample_shape, pack=config.pack,
                             z_dim=config.z_dim)
    progress = ProgressPrinter(evaluate=True)
    # Both ask for the data's metrics at each flush; the trainer evaluates once per step.
    recorder = StoreRecorder(store)
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
    trainer.save(os.path.join(out, f"{name}.pt"))
    with open_run(trainer.name, recorder.where) as run:
        # The live diagnosis saw every flush: a second pass over the stored run would only
        # cost time and place the same episodes at other steps.
        report = write_report(run, os.path.join(out, f"{name}-report.html"), alerts=diagnosis.alerts,
                              rediagnose=False, readiness=diagnosis.readiness())
    summary = {"name": name, "data": data_name, "model": model_name, "steps": trainer.step,
               "seconds": seconds, "device": str(trainer.device), "world_size": trainer.world_size,
               "report": report, "metrics": metrics, "coverage": last_coverage(trainer.history),
               "evaluations": progress.evaluations, "config": config.to_dict(),
               "store": recorder.where, "alerts": diagnosis.alerts, "readiness": diagnosis.readiness()}
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(json_safe(summary | {"alerts": [a.row() for a in diagnosis.alerts],
                                       "readiness": [r.row() for r in summary["readiness"]]}), f, indent=2,
                  default=float, allow_nan=False)
    return summary


def last_coverage(history: Any) -> dict[str, float]:
    """The last value of each `coverage/*` series (label-free coverage, recorded every
    `coverage_every` steps), by its short name, and "step": the last evaluation's step;
    {} when none ran (coverage_every=0, or a run too short to keep enough real samples).

    >>> import numpy as np
    >>> last_coverage({"coverage/ndb": (np.array([500, 1000]), np.array([0.4, 0.1])), "D/loss": ()})
    {'ndb': 0.1, 'step': 1000}
    """
    out: dict[str, Any] = {}
    step = None
    for key in history:
        if key.startswith("coverage/"):
            steps, values = history[key]
            if len(steps):
                out[key.partition("/")[2]] = float(values[-1])
                step = int(steps[-1]) if step is None else max(step, int(steps[-1]))
    return out if step is None else {**out, "step": step}


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as the strings "inf", "-inf" and "nan": JSON has no
    such numbers, and Python's `Infinity` breaks other readers (a reverse KL is inf while
    G makes no high-quality sample).

    >>> json_safe({"reverse_kl": float("inf"), "modes": [1, float("nan")]})
    {'reverse_kl': 'inf', 'modes': [1, 'nan']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def _prepare_output(name: str, out: str) -> None:
    """Check the run name and make the output folder, or raise ValueError with the fix."""
    from gandiag.train import paths

    paths.check_run_name(name, what="run name (--name)")
    out = paths.check_folder_path(out, what="output folder (--out)")
    paths.check_not_folders(out, (f"{name}.pt", f"{name}.json", f"{name}-report.html"),
                            what="output folder (--out)")
    try:
        os.makedirs(out, exist_ok=True)  # made now: a folder that cannot be made fails before training
    except OSError as error:
        raise ValueError(f"output folder (--out): cannot create {out!r} ({error.strerror}); "
                         "pass a folder you may write in") from None


def _sample_shape(dataset: Any) -> tuple[int, ...]:
    if hasattr(dataset, "tensors"):
        return tuple(dataset.tensors[0].shape[1:])
    return (2,)


def _sample_stats(samples: Any, data_name: str) -> dict[str, float]:
    """Digits: classes covered and KL to uniform from the shipped digits classifier;
    stacked digits: the 1000-mode count and KL (docs/definitions.md); plus the sample range."""
    from gandiag import metrics

    if data_name == "stacked":
        coverage = metrics.mode_stats(metrics.stacked_labels(samples), 1000)
    else:
        coverage = metrics.mode_stats(metrics.classify(samples), 10)
    return {**coverage, "mean": float(samples.mean()), "std": float(samples.std()),
            "min": float(samples.min()), "max": float(samples.max())}
