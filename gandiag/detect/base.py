"""What every detector shares: the recent series it reads, episodes, the base class.

A detector is causal: what it decides at a step depends only on records up to that step,
through trailing windows of at most `Diagnosis.context` rows. So feeding the records
flush by flush (live) or all at once (a stored run) gives the same alerts.

A condition (say "r_t >= 0.9") becomes an alert through an `Episode`: it must hold on
`persist` consecutive records, and then fires once; it re-arms after it has been false on
`clear` consecutive records. So a lasting problem is one alert, not one per flush.

    >>> episode = Episode(persist=3, clear=2)
    >>> episode.feed(np.arange(1, 9), np.array([0, 1, 1, 1, 1, 0, 0, 1], bool))
    [(2, 3)]
    >>> episode.feed(np.arange(9, 12), np.array([1, 1, 1], bool))   # re-armed at step 7
    [(8, 1)]
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from gandiag.core.alert import Alert


class Episode:
    """Turns a per-record condition into (first step, index of the confirming record)."""

    def __init__(self, *, persist: int, clear: int) -> None:
        self.persist, self.clear = max(int(persist), 1), max(int(clear), 1)
        self.start: int | None = None  # first step of the current run of True
        self.run = 0                   # length of that run (records)
        self.quiet = 0                 # records False since the alert fired
        self.active = False            # an alert fired and has not re-armed

    def feed(self, steps: np.ndarray, condition: np.ndarray) -> list[tuple[int, int]]:
        """(start step, index into `steps` where it was confirmed) for each new alert."""
        fired: list[tuple[int, int]] = []
        condition = np.asarray(condition, dtype=bool)
        if not len(condition):
            return fired
        # Runs of equal values: the Python loop is over runs, not records.
        edges = np.flatnonzero(np.diff(condition)) + 1
        for begin, end in zip(np.r_[0, edges], np.r_[edges, len(condition)]):
            length = int(end - begin)
            if condition[begin]:
                if self.run == 0:
                    self.start = int(steps[begin])
                self.quiet = 0
                if not self.active and self.run + length >= self.persist:
                    fired.append((int(self.start), int(begin + self.persist - self.run - 1)))
                    self.active = True
                self.run += length
            else:
                self.run = 0
                if self.active:
                    self.quiet += length
                    self.active = self.quiet < self.clear
        return fired

    def state_dict(self) -> dict[str, Any]:
        return {"start": self.start, "run": self.run, "quiet": self.quiet, "active": self.active}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.start, self.run = state["start"], state["run"]
        self.quiet, self.active = state["quiet"], state["active"]


class View:
    """The recent records of every key, and how many of them are new since the last scan."""

    def __init__(self, series: dict[str, tuple[np.ndarray, np.ndarray]], new: dict[str, int],
                 meta: dict[str, Any]) -> None:
        self.series, self.new_rows, self.meta = series, new, meta

    def __contains__(self, key: str) -> bool:
        return key in self.series

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self.series if key.startswith(prefix))

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of every buffered record of `key`."""
        return self.series[key]

    def upto(self, key: str, step: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The last `rows` records of `key` at or before `step` (evidence reads only these,
        so that it does not depend on how the records were fed)."""
        steps, values = self.series[key]
        end = int(np.searchsorted(steps, step, side="right"))
        return steps[max(end - rows, 0):end], values[max(end - rows, 0):end]

    def new(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of the records of `key` that are new since the last scan."""
        steps, values = self.series.get(key, (np.zeros(0, np.int64), np.zeros(0)))
        n = self.new_rows.get(key, 0)
        return steps[len(steps) - n:], values[len(values) - n:]


@dataclasses.dataclass
class Detector:
    """Base class: dataclass fields are the thresholds; `scan` issues alerts.

    Subclasses set `kind` and implement `scan(view, warmup) -> list[Alert]`. Runtime state
    (episodes, reference levels) lives in `self.state`, so `state_dict` round-trips it.
    """

    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{type(self).__name__}: expected {f.name} to be a number > 0, "
                                 f"got {value!r}")
        self.reset()

    def reset(self) -> None:
        self.episodes: dict[str, Episode] = {}
        self.state: dict[str, Any] = {}

    def episode(self, subject: str, *, persist: int, clear: int | None = None) -> Episode:
        episode = self.episodes.setdefault(subject, Episode(persist=1, clear=1))
        episode.persist = max(int(persist), 1)
        episode.clear = episode.persist if clear is None else max(int(clear), 1)
        return episode

    def scan(self, view: View, warmup: int) -> list[Alert]:
        """The alerts raised by the new records in `view`; trend detectors stay quiet
        before step `warmup`."""
        raise NotImplementedError

    def lookback(self) -> int:
        """How many records before the new ones `scan` reads (the engine keeps them)."""
        return 1

    def thresholds(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": {k: e.state_dict() for k, e in self.episodes.items()},
                "state": dict(self.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        for subject, episode_state in state["episodes"].items():
            episode = self.episodes[subject] = Episode(persist=1, clear=1)
            episode.load_state_dict(episode_state)
        self.state.update(state["state"])
