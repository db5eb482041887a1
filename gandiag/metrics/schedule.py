"""`MetricSchedule`: evaluate chosen metrics every N steps on a fixed noise set.

A trainer callback. Every `every` steps it draws `n_samples` samples from the same
noise (`trainer.sample`, the EMA generator when there is one), runs each metric on them
and records the results as `metric/<name>` through the trainer's monitor: into its
history and to its consumers (the run store). It costs the loop what the metrics cost,
nothing more: no thread, no copy of the models.

A metric is a callable `samples -> float` (recorded as `metric/<name>`) or
`samples -> {key: float}` (recorded as `metric/<key>` for each key, e.g. the toy
mixtures' modes, hq and reverse_kl).

    >>> from gandiag import TrainConfig, Trainer, data, models
    >>> ring = data.ring()
    >>> schedule = MetricSchedule({"toy": ring.evaluate}, every=10, n_samples=500)
    >>> G, D = models.small_toy()
    >>> trainer = Trainer(G, D, ring, TrainConfig(log_every=10), callbacks=[schedule]).fit(20)
    >>> trainer.history["metric/modes"][0].tolist()
    [10, 20]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping

from gandiag.core.callback import Callback

if TYPE_CHECKING:
    from gandiag.train.trainer import Trainer

MetricFn = Callable[[Any], "float | Mapping[str, float]"]


class MetricSchedule(Callback):
    """Runs `metrics` every `every` steps on `n_samples` samples from fixed noise `seed`."""

    rank_zero_only = True  # under torchrun, rank 0 alone evaluates

    def __init__(self, metrics: Mapping[str, MetricFn], *, every: int = 500, n_samples: int = 2500,
                 seed: int = 0, ema: bool = True) -> None:
        if not metrics or not all(callable(fn) for fn in metrics.values()):
            raise ValueError(
                "MetricSchedule: expected a dict of name -> callable(samples), got "
                f"{dict(metrics)!r}; e.g. {{'toy': gandiag.data.ring().evaluate}}"
            )
        for name, value in (("every", every), ("n_samples", n_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MetricSchedule: expected {name} to be an integer >= 1, got {value!r}")
        self.metrics = dict(metrics)
        self.every, self.n_samples, self.seed, self.ema = every, n_samples, seed, ema
        self.results: list[tuple[int, dict[str, float]]] = []

    def on_step_end(self, trainer: "Trainer") -> None:
        if trainer.step % self.every == 0:
            self.run(trainer)

    def run(self, trainer: "Trainer") -> dict[str, float]:
        """Evaluate now and record; returns {"metric/<name>": value}."""
        samples = trainer.sample(self.n_samples, seed=self.seed, ema=self.ema)
        values: dict[str, float] = {}
        for name, metric in self.metrics.items():
            result = metric(samples)
            items = result.items() if isinstance(result, Mapping) else [(name, result)]
            for key, value in items:
                if f"metric/{key}" in values:
                    raise ValueError(f"MetricSchedule: two metrics both give {key!r}; rename one")
                values[f"metric/{key}"] = float(value) if value is not None else math.nan
        trainer.monitor.record(values)
        self.results.append((trainer.step, values))
        return values

    def state_dict(self) -> dict[str, Any]:
        return {"results": [[step, values] for step, values in self.results]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.results = [(int(step), dict(values)) for step, values in state.get("results", [])]
