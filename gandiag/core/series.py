"""Reading recorded series: one way for a live history, a stored run and a plain dict.

Every recorded source is, or holds, a Mapping key -> (steps, values): a `History` in
memory, a stored `Run` (`gandiag.open_run`), a dict built by hand, a `Records` batch (its
`.scalars`), a `Trainer` or a `Monitor` (its `.history`). The detectors, the figures, the
report and the comparison of runs read through this module, so they take any of them
alike, and a stored run gives what the live run showed.

    >>> series, loss = series_of({"D/loss": ([2, 1], [0.6, 0.7])})
    >>> series["D/loss"], loss
    ((array([1, 2]), array([0.7, 0.6])), None)

`read_series` reads lazily, one key when it is asked for, so drawing a 1M-step stored run
holds one key's full resolution in memory at a time, not all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

Pair = tuple[np.ndarray, np.ndarray]  # (steps int64, values float64), sorted by step


def series_mapping(source: Any, *, caller: str = "series_of") -> Mapping[str, tuple[Any, Any]]:
    """The Mapping key -> (steps, values) that `source` is or holds, as it holds it
    (neither copied nor sorted). `caller` names the entry point in the error."""
    if isinstance(source, Mapping):  # a History, a stored Run, a dict
        return source
    history = getattr(source, "history", None)
    if isinstance(history, Mapping):  # a Trainer or a Monitor
        return history
    scalars = getattr(source, "scalars", None)
    if isinstance(scalars, Mapping):  # a Records batch
        return scalars
    raise TypeError(f"{caller}: expected a stored run, a Trainer, a Monitor, a History, a "
                    f"Records batch or {{key: (steps, values)}}, got {type(source).__name__}; "
                    f"e.g. {caller}(gandiag.open_run('my-run'))")


def loss_name(source: Any) -> str | None:
    """The loss the source was trained with, where its config says: a stored run's or an
    attached monitor's config dict ("loss"), a Trainer's `TrainConfig` (`.loss`)."""
    config = getattr(source, "config", None)
    if isinstance(config, Mapping):
        return config.get("loss")
    return getattr(config, "loss", None) if config is not None else None


def by_step(steps: Any, values: Any, *, key: str = "series", copy: bool = True,
            caller: str = "by_step") -> Pair:
    """(steps int64, values float64), 1-D and sorted by step (a stable sort: rows of one
    step keep their order). With `copy=False`, arrays already in that form come back as
    they are (a History's are read-only) instead of as copies."""
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(steps) != len(values):
        raise ValueError(f"{caller}: {key!r} has {len(steps)} steps but {len(values)} values; pass "
                         "(steps, values) of equal length")
    if len(steps) > 1 and (steps[1:] < steps[:-1]).any():
        order = np.argsort(steps, kind="stable")
        return steps[order], values[order]
    return (steps.copy(), values.copy()) if copy else (steps, values)


class SeriesView(Mapping):
    """A source's series as a read-only Mapping key -> (steps int64, values float64)
    sorted by step, each read from the source when asked for (see `read_series`)."""

    def __init__(self, source: Any, *, caller: str = "read_series") -> None:
        self.source, self.caller = series_mapping(source, caller=caller), caller

    def __getitem__(self, key: str) -> Pair:
        return by_step(*self.source[key], key=key, copy=False, caller=self.caller)

    def __contains__(self, key: object) -> bool:
        return key in self.source  # a stored run answers without reading the series

    def __iter__(self) -> Iterator[str]:
        return iter(self.source)

    def __len__(self) -> int:
        return len(self.source)


def read_series(source: Any, *, caller: str = "read_series") -> SeriesView:
    """The series of anything recorded (see the module doc), read lazily: for drawing,
    where a panel reads only its keys and one at a time.

        >>> view = read_series({"G/loss": ([3, 1, 2], [0.3, 0.1, 0.2])})
        >>> "G/loss" in view, view["G/loss"][0]
        (True, array([1, 2, 3]))
    """
    return SeriesView(source, caller=caller)


def series_of(source: Any, *, caller: str = "series_of") -> tuple[dict[str, Pair], str | None]:
    """{key: (steps int64, values float64)} sorted by step, every key read now (the arrays
    are the caller's own), and the loss name when the source's config says it."""
    pairs = series_mapping(source, caller=caller)
    return {key: by_step(*pairs[key], key=key, caller=caller) for key in pairs}, loss_name(source)
