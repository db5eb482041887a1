"""`gandiag.attach`: the one line a user adds to an existing training loop.

    with gandiag.attach(netG, netD, store="runs/gandiag.sqlite", run="dcgan") as monitor:
        my_own_training_loop()          # unchanged
    monitor.history["D/out_real/mean"]  # still readable after the hooks are gone
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from gandiag.core.family import known_family
from gandiag.detect.live import watch
from gandiag.hooks.monitor import Monitor
from gandiag.metrics.coverage import LabelFreeCoverage
from gandiag.store.recorder import StoreRecorder


def attach(G: nn.Module, D: nn.Module, *, store: Any = None, run: str = "run",
           config: Mapping[str, Any] | None = None, diagnose: bool | Mapping[str, Any] = False,
           loss: str | None = None, coverage_every: int | None = 250, **options: Any) -> Monitor:
    """Attach a `Monitor` to G, D and (optionally) their optimizers; see `Monitor`.

    `loss`: the loss D is trained with, which says how to read its outputs ('nonsaturating'
    or 'bce' for logits, 'lsgan' or 'lsgan:<fake>,<real>' for other targets, 'hinge',
    'wgan', 'wgan-gp'); `config={"loss": ...}` says it too. Without it the loss is
    inferred from the loop at the first flush and written into `monitor.config`.

    With `store` (a path such as "runs/gandiag.sqlite", or a `gandiag.store.RunWriter`),
    every flush is also written to the run store as run `run` with `config`; leaving the
    `with` block closes the run as finished, failed or interrupted. Under DDP, attach on
    every rank: flushes reduce across ranks and rank 0 alone writes.

    With `diagnose=True` (or a dict of `gandiag.detect.watch` options such as
    `{"warmup": 1000, "thresholds": {...}}`) the detectors run at every flush:
    `monitor.diagnosis.alerts` lists what they found, each new alert is shown as a
    `GANAlertWarning` and written to the store.

    Every `coverage_every` steps (None: never) the real and fake samples the monitor kept
    are compared without labels (`gandiag.metrics.LabelFreeCoverage`: `coverage/*` keys);
    250 by default: a G that starves modes for a few hundred steps at a time is seen by two
    evaluations in a row, which `mode_collapse` asks for;
    `sample_shape=` unpacks a packed D's inputs, `keep_samples=0` keeps none.

    These are `gandiag.Callback`s driven by the monitor (`monitor.callbacks`); add your
    own with `monitor.add_callback(...)`, the same objects a `Trainer` takes.

    >>> from torch import nn
    >>> G, D = nn.Linear(4, 2), nn.Linear(2, 1)
    >>> with attach(G, D) as monitor:
    ...     pass
    >>> monitor
    <gandiag.Monitor removed, step 0, 0 series>
    """
    config = dict(config) if isinstance(config, Mapping) else config
    if loss is None and isinstance(config, Mapping) and known_family(config.get("loss")):
        loss = config["loss"]
    monitor = Monitor(G, D, loss=loss, **options)
    if monitor.family.decided_at is not None:  # given, or read through D's Sigmoid
        config = {} if config is None else config
        config.setdefault("loss", monitor.family.current.spec if loss is None else loss)
    monitor.config = config
    try:
        if coverage_every is not None and monitor.reservoir is not None:
            monitor.coverage = monitor.add_callback(LabelFreeCoverage(every=coverage_every))
        if diagnose:
            monitor.diagnosis = watch(monitor, **(dict(diagnose) if isinstance(diagnose, Mapping) else {}))
        if store is not None:
            recorder = monitor.add_callback(StoreRecorder(store, name=run))  # monitor.config
            monitor.writer = recorder.writer  # None on ranks other than 0: rank 0 alone writes
    except BaseException:
        monitor.remove()
        raise
    return monitor
