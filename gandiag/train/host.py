"""The Trainer as a callback host (the protocol in `gandiag.core.callback`): its callbacks
are one list with its monitor's, which hands them each batch of records and each alert;
the trainer drives the other hooks.

It also offers what label-free coverage (`gandiag.metrics.LabelFreeCoverage`) reads from
a host: `reservoir.real`, a uniform sample of the real batches (kept by the trainer, not
by its monitor: D's inputs may be packed or noised, the batches are the data), and
`coverage_fakes(n)`, G's samples on fixed noise (the trainer's convention for metrics).
Coverage keeps no state in checkpoints: a resumed run refills the reservoir from its
batches and refits the k-means bins at its first evaluation, due as soon as enough reals
are kept again.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from gandiag.core.alert import Alert
from gandiag.core.callback import Callback
from gandiag.core.records import Records
from gandiag.hooks.reservoir import SampleReservoir
from gandiag.metrics.coverage import LabelFreeCoverage

KEEP_REALS = 2000  # real samples kept for coverage: a uniform sample of every batch offered
# The fixed noise of coverage's fakes: another draw than evaluate()'s and the pictures'
# seed 0, so that the toy metric and the label-free numbers do not share one sample's luck.
COVERAGE_SEED = 1


class CallbackHost:
    """What a Trainer offers its callbacks besides its models (needs `monitor`, `config`,
    `sample`)."""

    monitor: Any
    config: Any
    reservoir: SampleReservoir
    coverage: LabelFreeCoverage | None
    sample: Any
    _keep_reals: bool  # whether train_step offers real rows to the reservoir
    _made_coverage: bool  # whether `coverage` was made by this trainer (not the user's)

    def _active_callbacks(self) -> list[Callback]:
        """The callbacks this rank runs (the monitor's rule: under torchrun, ranks other
        than 0 skip the `rank_zero_only` ones, so that one process writes)."""
        return self.monitor.active_callbacks()

    @property
    def callbacks(self) -> list[Callback]:
        """The callbacks this trainer (and its monitor) drive; append to add one."""
        return self.monitor.callbacks

    @callbacks.setter
    def callbacks(self, callbacks: Iterable[Callback]) -> None:
        self.monitor.callbacks = list(callbacks)

    def record(self, values: dict[str, float], *, step: int | None = None,
               histograms: dict[str, Any] | None = None) -> Records:
        """Record host-measured values (e.g. metric/<name>) at `step` (default: now)."""
        return self.monitor.record(values, step=step, histograms=histograms)

    def alert(self, alert: Alert) -> None:
        """Announce a detector's alert to every callback (`on_alert`); kept in `alerts`."""
        self.monitor.alert(alert)

    @property
    def alerts(self) -> list[Alert]:
        """Every alert announced so far (by a DiagnosisCallback)."""
        return self.monitor.alerts

    # ---- label-free coverage -------------------------------------------------------
    def coverage_fakes(self, n: int) -> np.ndarray:
        """`n` samples of G (the EMA G when there is one) on fixed noise (seed
        `COVERAGE_SEED`), float32 on the CPU: what `LabelFreeCoverage` compares with
        `reservoir.real`. Called at a flush, on the training thread."""
        return self.sample(n, seed=COVERAGE_SEED, ema=True).cpu().numpy()

    def _setup_coverage(self) -> None:
        """`coverage`: the user's own LabelFreeCoverage if the callbacks hold one, else
        one every `config.coverage_every` steps (appended last, so that a checkpoint's
        callback states keep the user's order), else None; and the `reservoir` it reads."""
        self.coverage = next((c for c in self.callbacks if isinstance(c, LabelFreeCoverage)), None)
        self._made_coverage = self.coverage is None and self.config.coverage_every > 0
        if self._made_coverage:
            self.coverage = LabelFreeCoverage(every=self.config.coverage_every)
            self.callbacks.append(self.coverage)
        self.reservoir = _real_reservoir(self.config, self.coverage)
        self._keep_reals = self.coverage is not None

    def _refresh_coverage(self) -> None:
        """At fit(): keep real rows only where this rank runs a LabelFreeCoverage (one
        added since counts; under torchrun only rank 0 runs it: the others copy nothing)."""
        self._keep_reals = any(isinstance(c, LabelFreeCoverage) for c in self._active_callbacks())

    def _restart_coverage(self) -> None:
        """After a checkpoint loads: the coverage this trainer made starts afresh. It keeps
        no state in checkpoints; its bins are refitted at its next evaluation, due as soon
        as the reservoir holds enough reals. A user's own LabelFreeCoverage is left alone."""
        if self._made_coverage and self.coverage in self.callbacks:
            fresh = LabelFreeCoverage(every=self.coverage.every)
            self.callbacks[self.callbacks.index(self.coverage)] = fresh
            self.coverage = fresh


def _real_reservoir(config: Any, coverage: LabelFreeCoverage | None) -> SampleReservoir:
    """A reservoir that holds what `coverage` needs (`min_real` reals, and 2 n: n to
    compare with n fakes, n more for the real-vs-real null) by its first evaluation:
    `per_flush` rows a flush (at least the monitor's 128; they wait on the device until
    the flush), the first `take` rows of each real batch. Without a coverage (one may be
    added before fit()), the monitor's pace."""
    keep, per_flush = KEEP_REALS, 128
    if coverage is not None:
        keep = max(KEEP_REALS, coverage.min_real, 2 * coverage.n)  # n compared, n more for the null
        per_flush = min(keep, max(128, math.ceil(keep * config.log_every / coverage.every)))
    take = math.ceil(per_flush / (config.log_every * config.n_critic))
    return SampleReservoir(keep=keep, per_flush=per_flush, take=take, seed=config.seed)
