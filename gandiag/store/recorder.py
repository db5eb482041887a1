"""`StoreRecorder`: the callback that writes a run to the run store, in a Trainer or a user loop.

Whatever reaches the host (every flush, every recorded metric) goes to a `RunWriter` (a
background thread commits it), and so does every alert announced on the host. Under a
Trainer it also has the data's own metrics evaluated at each flush when the data scores
itself (the toy mixtures: `metric/<name>`, evaluated once per step however many
callbacks ask, see `Trainer.record_evaluation`), and every `samples_every` steps stores a
PNG of samples from fixed noise. `gandiag.attach(..., store=...)` adds one to a user loop.

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
import warnings
from collections.abc import Mapping
from typing import Any

from gandiag.core.alert import Alert
from gandiag.core.callback import Callback
from gandiag.core.records import Records
from gandiag.core.series import loss_name
from gandiag.store.png import samples_png
from gandiag.store.schema import DEFAULT_STORE
from gandiag.store.writer import RunWriter


class StoreRecorder(Callback):
    """Writes the host's records, alerts, samples and final status to the store `store`.

    `store`: the store file (or an open `RunWriter`); `name` and `config`: the run's name
    and config (default: a Trainer's name and its config with the models and device).
    `evaluate`: under a Trainer on self-scoring data, store the data's metrics at each
    flush. `samples_every` (steps, default the flush cadence) and `n_samples`: the sample
    pictures (under a Trainer of G on fixed noise; in a user loop of the most recent fakes
    its monitor kept). The writer opens at the first `on_fit_start`; a Monitor's
    `remove()` closes it, under a Trainer `close()` does (a later fit() goes on in the
    same run).
    """

    rank_zero_only = True  # under torchrun, rank 0 alone writes the store

    def __init__(self, store: str | os.PathLike | RunWriter = DEFAULT_STORE, *, name: str | None = None,
                 config: Mapping[str, Any] | None = None, evaluate: bool = True,
                 samples_every: int | None = None, n_samples: int = 1000, **deprecated: Any) -> None:
        if "path" in deprecated:  # the store file is `store=` everywhere; `path=` was this one's
            warnings.warn("StoreRecorder(path=...) is deprecated; pass store=... (the store file)",
                          DeprecationWarning, stacklevel=2)
            store = deprecated.pop("path")
        if deprecated:
            raise TypeError(f"StoreRecorder: unexpected arguments {sorted(deprecated)}; the options are "
                            "store, name, config, evaluate, samples_every, n_samples")
        self.writer: RunWriter | None = store if isinstance(store, RunWriter) else None
        self.store = self.writer.path if self.writer is not None else os.fspath(store)
        self.name, self.config = name, config
        self.evaluate, self.samples_every, self.n_samples = evaluate, samples_every, n_samples
        self.status = "running"
        self._pictures = True
        self._loss: str | None = None  # the loss in the config written

    @property
    def path(self) -> str:
        """Deprecated spelling of `store`."""
        return self.store

    def on_fit_start(self, host: Any) -> None:
        if self.writer is None:
            name = self.name if self.name is not None else getattr(host, "name", "run")
            self.writer = RunWriter(self.store, name=name, config=self._run_config(host))
            self._loss = loss_name(host)
        else:
            self.writer.set_status("running")

    def _run_config(self, host: Any) -> Any:
        if self.config is not None:
            return self.config
        config = getattr(host, "config", None)
        if not hasattr(config, "to_dict"):  # a user loop: attach's config, if any
            return config
        return {**config.to_dict(), "G": type(host.G).__name__, "D": type(host.D).__name__,
                "device": str(host.device), "world_size": host.world_size}

    def on_records(self, host: Any, records: Records) -> None:
        if self.writer is None:
            return
        loss = loss_name(host)
        if loss is not None and loss != self._loss:  # a user loop's loss, inferred at its first flush
            self._loss = loss
            config = self._run_config(host)
            self.writer.set_config({**config, "loss": loss} if isinstance(config, Mapping) else {"loss": loss})
        self.writer.write(records)

    def on_alert(self, host: Any, alert: Alert) -> None:
        if self.writer is not None:
            self.writer.add_alert(**alert.row())

    def records_metrics(self, host: Any) -> bool:
        return self.evaluate and bool(getattr(host, "can_evaluate", False))

    def on_flush(self, host: Any, records: Records) -> None:
        if self.writer is None:
            return
        if not hasattr(host, "sample"):  # a user loop: the fakes D saw last, no extra G call
            self._store_kept(host)
            return
        step = host.step
        if self.records_metrics(host):
            host.record_evaluation()
        if self._pictures and step % (self.samples_every or host.config.log_every) == 0:
            samples = host.sample(self.n_samples if host.can_evaluate else 64).cpu().numpy()
            try:
                self.writer.add_sample(step, samples_png(samples))
            except ValueError:
                self._pictures = False  # samples that are neither points nor images

    def _store_kept(self, host: Any) -> None:
        """A picture of the most recent fakes a user loop's monitor kept (`reservoir`), every
        `samples_every` steps (default: each flush), so its replay and report show samples."""
        reservoir = getattr(host, "reservoir", None)
        every = self.samples_every or getattr(host, "log_every", 1)
        if not self._pictures or reservoir is None or reservoir.fake is None or host.step % every:
            return
        fakes = reservoir.recent_fakes(self.n_samples if reservoir.fake.shape[1:] == (2,) else 64)
        try:
            self.writer.add_sample(host.step, samples_png(fakes))
        except ValueError:
            self._pictures = False  # samples that are neither points nor images

    def on_fit_end(self, host: Any) -> None:
        if self.writer is None:
            return
        self.status = host.end_status
        error = getattr(host, "error", None)
        if self.status == "failed" and error is not None:
            self.writer.add_alert(host.step, "error", "critical", f"{type(error).__name__}: {error}")
        self.writer.set_status(self.status)
        self.writer.flush()
        if getattr(host, "removed", False):  # a Monitor removed: this loop is over for good
            self.close()

    @property
    def where(self) -> str:
        """The store file (absolute path)."""
        return self.writer.path if self.writer is not None else os.path.abspath(self.store)

    def close(self) -> None:
        """Stop the writer thread (a later fit() starts a new run in the store)."""
        if self.writer is not None:
            self.writer.close(status=self.status)
            self.writer = None
