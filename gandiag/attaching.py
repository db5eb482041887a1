"""`gandiag.attach`: the one line a user adds to an existing training loop.

    with gandiag.attach(netG, netD, store="runs/gandiag.sqlite", run="dcgan") as monitor:
        my_own_training_loop()          # unchanged
    monitor.history["D/out_real/mean"]  # still readable after the hooks are gone
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from gandiag.hooks.monitor import Monitor, _rank


def attach(G: nn.Module, D: nn.Module, *, store: Any = None, run: str = "run",
           config: Mapping[str, Any] | None = None, diagnose: bool | Mapping[str, Any] = False,
           **options: Any) -> Monitor:
    """Attach a `Monitor` to G, D and (optionally) their optimizers; see `Monitor`.

    With `store` (a path such as "runs/gandiag.sqlite", or a `gandiag.store.RunWriter`),
    every flush is also written to the run store as run `run` with `config`; leaving the
    `with` block closes the run as finished, failed or interrupted. Under DDP, attach on
    every rank: flushes reduce across ranks and rank 0 alone writes.

    With `diagnose=True` (or a dict of `gandiag.detect.watch` options such as
    `{"warmup": 1000, "thresholds": {...}}`) the detectors run at every flush:
    `monitor.diagnosis.alerts` lists what they found, each new alert is shown as a
    `GANAlertWarning` and written to the store.

    >>> from torch import nn
    >>> G, D = nn.Linear(4, 2), nn.Linear(2, 1)
    >>> with attach(G, D) as monitor:
    ...     pass
    >>> monitor
    <gandiag.Monitor removed, step 0, 0 series>
    """
    monitor = Monitor(G, D, **options)
    if diagnose:
        from gandiag.detect.live import watch  # detectors consume records; optional here

        try:
            loss = (config or {}).get("loss") if isinstance(config, Mapping) else None
            monitor.diagnosis = watch(monitor, **({"loss": loss} | (
                dict(diagnose) if isinstance(diagnose, Mapping) else {})))
        except BaseException:
            monitor.remove()
            raise
    if store is None or _rank() != 0:  # under DDP rank 0 alone writes (it alone gets records)
        return monitor
    from gandiag.store import RunWriter  # hooks produce records; the store is optional

    try:
        writer = store if isinstance(store, RunWriter) else RunWriter(store, name=run, config=config)
    except BaseException:
        monitor.remove()
        raise
    monitor.writer = writer
    monitor.consumers.append(writer.write)
    return monitor
