"""`StoreRecorder`: the trainer callback that writes a run to the run store.

Every flush it hands the new records to a `RunWriter` (a background thread commits them);
with data that scores itself (the toy mixtures) it also stores the metrics as
`metric/<name>`, and every `samples_every` steps a PNG of samples from fixed noise.

    >>> import os, tempfile
    >>> from gandiag import TrainConfig, Trainer, data, models
    >>> from gandiag.store import open_run
    >>> path = os.path.join(tempfile.mkdtemp(), "gandiag.sqlite")
    >>> G, D = models.small_toy()
    >>> trainer = Trainer(G, D, data.ring(), TrainConfig(log_every=10),
    ...                   callbacks=[StoreRecorder(path)], name="ring")
    >>> _ = trainer.fit(20)
    >>> run = open_run("ring", path)
    >>> run.status, run.scalars("metric/modes")[0]
    ('finished', array([10, 20]))
    >>> "D/grad_norm/total" in run.keys()
    True
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from gandiag.core.records import Records
from gandiag.store.png import samples_png
from gandiag.store.schema import DEFAULT_STORE
from gandiag.store.writer import RunWriter
from gandiag.core.callback import Callback

if TYPE_CHECKING:
    from gandiag.train.trainer import Trainer


class StoreRecorder(Callback):
    """Writes the trainer's records, metrics, samples and final status to `path`."""

    rank_zero_only = True  # under torchrun, rank 0 alone writes the store

    def __init__(self, path: str | os.PathLike = DEFAULT_STORE, *, evaluate: bool = True,
                 samples_every: int | None = None, n_samples: int = 1000) -> None:
        self.path = os.fspath(path)
        self.evaluate, self.samples_every, self.n_samples = evaluate, samples_every, n_samples
        self.writer: RunWriter | None = None
        self.status = "running"
        self._pictures = True
        self._consumers: list = []  # the monitor's consumer list the writer was added to

    def on_fit_start(self, trainer: "Trainer") -> None:
        if self.writer is None:
            config = {**trainer.config.to_dict(), "G": type(trainer.G).__name__,
                      "D": type(trainer.D).__name__, "device": str(trainer.device),
                      "world_size": trainer.world_size}
            self.writer = RunWriter(self.path, name=trainer.name, config=config)
            # Everything the monitor records (flushes, metric schedules) reaches the store.
            self._consumers = trainer.monitor.consumers
            self._consumers.append(self.writer.write)
        else:
            self.writer.set_status("running")

    def on_flush(self, trainer: "Trainer", records: Records) -> None:
        if self.writer is None:
            return
        step = trainer.step
        if self.evaluate and trainer.can_evaluate:
            trainer.monitor.record({f"metric/{name}": value for name, value in trainer.evaluate().items()})
        if self._pictures and step % (self.samples_every or trainer.config.log_every) == 0:
            samples = trainer.sample(self.n_samples if trainer.can_evaluate else 64).cpu().numpy()
            try:
                self.writer.add_sample(step, samples_png(samples))
            except ValueError:
                self._pictures = False  # samples that are neither points nor images

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self.writer is None:
            return
        error = trainer.error
        if error is None:
            self.status = "stopped" if trainer.stop_requested else "finished"
        elif isinstance(error, KeyboardInterrupt):
            self.status = "interrupted"
        else:
            self.status = "failed"
            self.writer.add_alert(trainer.step, "error", "critical", f"{type(error).__name__}: {error}")
        self.writer.set_status(self.status)
        self.writer.flush()

    @property
    def where(self) -> str:
        """The store file (absolute path)."""
        return self.writer.path if self.writer is not None else os.path.abspath(self.path)

    def close(self) -> None:
        """Stop the writer thread (a later fit() starts a new run in the store)."""
        if self.writer is not None:
            if self.writer.write in self._consumers:
                self._consumers.remove(self.writer.write)
            self.writer.close(status=self.status)
            self.writer = None
