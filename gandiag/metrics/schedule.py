"""`MetricSchedule`: evaluate chosen metrics every N steps on a fixed noise set.

A `gandiag.core.Callback`, for a Trainer or a user loop. Every `every` steps it draws
`n_samples` samples from the same noise (a Trainer's `sample`, the EMA generator when
there is one; in a user loop the `sample` function you give), runs each metric on them
and records the results as `metric/<name>` on the host (`host.record`): into its history
and to every callback's `on_records` (the run store). It costs the loop what the metrics
cost, nothing more: no thread, no copy of the models.

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
from typing import Any, Callable, Mapping

from gandiag.core.callback import Callback

MetricFn = Callable[[Any], "float | Mapping[str, float]"]


class MetricSchedule(Callback):
    """Runs `metrics` every `every` steps on `n_samples` samples from fixed noise `seed`.

    `sample(n, seed)`: how to draw them in a user loop (a Monitor host), e.g.
    `lambda n, seed: netG(torch.randn(n, 100, generator=torch.Generator().manual_seed(seed)))`
    in `torch.no_grad()`; under a Trainer its `sample(n, seed=..., ema=...)` is used.
    """

    rank_zero_only = True  # under torchrun, rank 0 alone evaluates

    def __init__(self, metrics: Mapping[str, MetricFn], *, every: int = 500, n_samples: int = 2500,
                 seed: int = 0, ema: bool = True,
                 sample: Callable[[int, int], Any] | None = None) -> None:
        if not metrics or not all(callable(fn) for fn in metrics.values()):
            raise ValueError(
                "MetricSchedule: expected a dict of name -> callable(samples), got "
                f"{dict(metrics)!r}; e.g. {{'toy': gandiag.data.ring().evaluate}}"
            )
        for name, value in (("every", every), ("n_samples", n_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MetricSchedule: expected {name} to be an integer >= 1, got {value!r}")
        self.metrics = dict(metrics)
        if sample is not None and not callable(sample):
            raise TypeError(f"MetricSchedule: expected sample to be a function (n, seed) -> samples, "
                            f"got {type(sample).__name__}")
        self.every, self.n_samples, self.seed, self.ema = every, n_samples, seed, ema
        self.sample = sample
        self.results: list[tuple[int, dict[str, float]]] = []

    def records_metrics(self, host: Any) -> bool:
        return True

    def on_step_end(self, host: Any) -> None:
        if host.step % self.every == 0:
            self.run(host)

    def run(self, host: Any) -> dict[str, float]:
        """Evaluate now and record on `host`; returns {"metric/<name>": value}."""
        if self.sample is not None:
            samples = self.sample(self.n_samples, self.seed)
        elif hasattr(host, "sample"):
            samples = host.sample(self.n_samples, seed=self.seed, ema=self.ema)
        else:
            raise TypeError("MetricSchedule: in your own loop it needs sample=(n, seed) -> samples "
                            "to draw from G; e.g. MetricSchedule(metrics, sample=lambda n, seed: "
                            "my_sampler(n, seed))")
        values: dict[str, float] = {}
        for name, metric in self.metrics.items():
            result = metric(samples)
            items = result.items() if isinstance(result, Mapping) else [(name, result)]
            for key, value in items:
                if f"metric/{key}" in values:
                    raise ValueError(f"MetricSchedule: two metrics both give {key!r}; rename one")
                values[f"metric/{key}"] = float(value) if value is not None else math.nan
        host.record(values)
        self.results.append((host.step, values))
        return values

    def state_dict(self) -> dict[str, Any]:
        return {"results": [[step, values] for step, values in self.results]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.results = [(int(step), dict(values)) for step, values in state.get("results", [])]
