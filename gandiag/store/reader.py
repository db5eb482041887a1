"""Reading stored runs: `list_runs`, `open_run` and the `Run` they give.

The reader opens the store read-only, so it works while training writes to it (another
thread or process); every query sees what the writer has committed so far. A run whose
status is "running" but whose writer has not sent a heartbeat for `stale_after` seconds
(default `STALE_AFTER`, 2 minutes) reads "stale": its process most likely died. Runs
recorded by a gandiag from before heartbeats keep their stored status.

    >>> import tempfile, os, numpy as np
    >>> from gandiag.core.records import Records
    >>> from gandiag.store.writer import RunWriter
    >>> path = os.path.join(tempfile.mkdtemp(), "gandiag.sqlite")
    >>> with RunWriter(path, name="ring") as writer:
    ...     writer.write(Records(scalars={"G/loss": (np.array([2, 1]), np.array([0.9, 1.1]))}))
    >>> [(info.name, info.status, info.last_step) for info in list_runs(path)]
    [('ring', 'finished', 2)]
    >>> with open_run("ring", path) as run:
    ...     run["G/loss"], list(run), "D/loss" in run
    ((array([1, 2]), array([1.1, 0.9])), ['G/loss'], False)

A `Run` is a read-only Mapping key -> (steps, values), like the live `History`:
`run[key]` is `run.scalars(key)`, so whatever reads a history reads a stored run too.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np

from gandiag.store.schema import (DEFAULT_STORE, STALE_AFTER, RunStoreError, connect_reader,
                                  read_error, run_columns)

if TYPE_CHECKING:  # imported where used: listing runs (`gandiag runs`) needs neither torch nor scipy
    from gandiag.core.alert import Alert
    from gandiag.core.records import Histograms

_T = TypeVar("_T")
_RUN_COLUMNS = "id, name, status, started, ended, last_step, config"


@dataclass
class RunInfo:
    """One run's row: ids, status, unix times (`ended` is None while running)."""

    id: int
    name: str
    status: str
    started: float
    ended: float | None
    last_step: int | None
    config: dict[str, Any] = field(default_factory=dict)
    heartbeat: float | None = None  # the writer's last sign of life; None for older stores


def _reading(method: Callable[..., _T]) -> Callable[..., _T]:
    """Turn an SQLite error inside a Run query (a damaged page, a lost disk) into a
    RunStoreError that names the file and the fix."""
    @functools.wraps(method)
    def guarded(self: Run, *args: Any, **kwargs: Any) -> _T:
        if getattr(self, "closed", False):  # else sqlite's "closed database" reads as damage
            raise RunStoreError(f"run {self.id} of {self.path!r} was closed (its `with` block "
                                "ended or close() was called); read it inside the block, or "
                                "open it again with gandiag.open_run(...)")
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise read_error(self.path, err) from err
    return guarded


def list_runs(store: str | os.PathLike = DEFAULT_STORE, *, stale_after: float = STALE_AFTER,
              path: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run in the store file `store`, oldest first; see the module doc for "stale"."""
    path = os.fspath(_store_file(store, path, "list_runs"))
    _check_stale_after(stale_after, "list_runs")
    conn = connect_reader(path)
    try:
        rows = conn.execute(f"SELECT {_columns(conn)} FROM runs ORDER BY id").fetchall()
    except sqlite3.Error as err:
        raise read_error(path, err) from err
    finally:
        conn.close()
    now = time.time()
    return [_info(row, now, stale_after) for row in rows]


def open_run(name_or_id: str | int, store: str | os.PathLike = DEFAULT_STORE, *,
             stale_after: float = STALE_AFTER, path: str | os.PathLike | None = None) -> Run:
    """Open one run of the store file `store` for reading: by id (int), or by name (the
    newest run of that name)."""
    return Run(name_or_id, _store_file(store, path, "open_run"), stale_after=stale_after)


def _store_file(store: str | os.PathLike, path: str | os.PathLike | None, where: str) -> str | os.PathLike:
    """The store file is `store=` across the API; `path=` is its old spelling here."""
    if path is None:
        return store
    warnings.warn(f"{where}(path=...) is deprecated; pass the store file as store=... (or "
                  "positionally)", DeprecationWarning, stacklevel=3)
    return path


class Run(Mapping):
    """Read access to one stored run; a context manager. See `open_run`.

    A read-only Mapping of its scalar keys to (steps, values), as `History` is: `run[key]`
    reads that key's series, iterating and `len` list the keys without reading any values.
    Two Run objects are equal only when they are the same object (a Mapping's equality
    would read every series of both).
    """

    # Identity, not Mapping's item by item comparison; hashable again (Mapping unsets it).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(self, name_or_id: str | int, store: str | os.PathLike = DEFAULT_STORE, *,
                 stale_after: float = STALE_AFTER) -> None:
        self.path = os.path.abspath(os.fspath(store))  # the store file, absolute
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, (str, int)):
            raise TypeError(f"open_run: expected a run name (str) or id (int), got "
                            f"{name_or_id!r}; see list_runs(path) for both")
        self.stale_after = _check_stale_after(stale_after, "open_run")
        self._conn = connect_reader(self.path)
        try:
            self.id: int = self._find(name_or_id)
            self.refresh()
        except BaseException:
            self._conn.close()
            raise

    @_reading
    def _find(self, name_or_id: str | int) -> int:
        self._run_columns = _columns(self._conn)
        column = "name" if isinstance(name_or_id, str) else "id"
        row = self._conn.execute(f"SELECT id FROM runs WHERE {column} = ? ORDER BY id DESC",
                                 (name_or_id,)).fetchone()
        if row is None:
            known = self._conn.execute(f"SELECT DISTINCT {column} FROM runs ORDER BY id").fetchall()
            raise RunStoreError(f"open_run: no run with {column} {name_or_id!r} in {self.path!r}; "
                                f"known {column}s: {[k for (k,) in known]}; pass one of those")
        return row[0]

    @_reading
    def refresh(self) -> None:
        """Re-read the run's status, end time and last step (the writer may have moved on)."""
        row = self._conn.execute(f"SELECT {self._run_columns} FROM runs WHERE id = ?",
                                 (self.id,)).fetchone()
        self.info: RunInfo = _info(row, time.time(), self.stale_after)
        self.name, self.config = self.info.name, self.info.config
        self.status, self.started, self.ended = self.info.status, self.info.started, self.info.ended
        self.last_step = self.info.last_step

    @_reading
    def keys(self) -> list[str]:  # type: ignore[override]
        """The scalar keys recorded so far, sorted: a list (not a KeysView), so it slices
        and compares with a list as it did before a Run was a Mapping."""
        return self._keys("scalar_keys")

    def __getitem__(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        return self.scalars(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @_reading
    def __len__(self) -> int:
        (count,) = self._conn.execute("SELECT COUNT(*) FROM scalar_keys WHERE run_id = ?",
                                      (self.id,)).fetchone()
        return int(count)

    @_reading
    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._conn.execute("SELECT 1 FROM scalar_keys WHERE run_id = ? AND key = ?",
                                  (self.id, key)).fetchone() is not None

    @_reading
    def histogram_keys(self) -> list[str]:
        """The histogram keys recorded so far, sorted."""
        return self._keys("histogram_keys")

    @_reading
    def scalars(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps int64, values float64) of `key` over all writes, sorted by step."""
        rows = self._chunks("scalar", key, "steps, vals")
        steps = np.concatenate([np.frombuffer(s, "<i8") for s, _ in rows] or [np.zeros(0, "<i8")])
        values = np.concatenate([np.frombuffer(v, "<f8") for _, v in rows] or [np.zeros(0, "<f8")])
        order = np.argsort(steps, kind="stable")
        return steps[order].astype(np.int64), values[order].astype(np.float64)

    @_reading
    def histograms(self, key: str) -> Histograms:
        """The histograms of `key` over all writes, sorted by step."""
        from gandiag.core.records import Histograms

        rows = self._chunks("histogram", key, "steps, counts")
        (edge_blob,) = self._conn.execute("SELECT edges FROM histogram_keys WHERE run_id = ? AND "
                                          "key = ?", (self.id, key)).fetchone()
        edges = np.frombuffer(edge_blob, "<f8").astype(np.float64)
        bins = len(edges) - 1
        steps = np.concatenate([np.frombuffer(s, "<i8") for s, _ in rows] or [np.zeros(0, "<i8")])
        counts = np.concatenate([np.frombuffer(c, "<f8").reshape(-1, bins) for _, c in rows]
                                or [np.zeros((0, bins))])
        order = np.argsort(steps, kind="stable")
        return Histograms(steps[order], edges, counts[order])

    @_reading
    def samples(self, key: str = "samples") -> list[tuple[int, bytes]]:
        """(step, PNG bytes) of every sample snapshot under `key`, sorted by step."""
        rows = self._conn.execute("SELECT step, png FROM samples WHERE run_id = ? AND key = ? "
                                  "ORDER BY step, rowid", (self.id, key)).fetchall()
        return [(int(step), bytes(png)) for step, png in rows]

    @_reading
    def alerts(self) -> list[Alert]:
        """Every alert of this run, in the order raised (`gandiag.detect.Alert`)."""
        from gandiag.core.alert import Alert

        rows = self._conn.execute("SELECT step, kind, severity, message, details, time FROM alerts "
                                  "WHERE run_id = ? ORDER BY rowid", (self.id,)).fetchall()
        return [Alert.from_row(step, kind, severity, message, json.loads(details), time)
                for step, kind, severity, message, details, time in rows]

    def close(self) -> None:
        """Close the read connection. Idempotent."""
        self._conn.close()
        self.closed = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Run(id={self.id}, name={self.name!r}, status={self.status!r}, "
                f"last_step={self.last_step})")

    def _keys(self, table: str) -> list[str]:
        rows = self._conn.execute(f"SELECT key FROM {table} WHERE run_id = ? ORDER BY key",
                                  (self.id,))
        return [key for (key,) in rows]

    def _chunks(self, kind: str, key: str, columns: str) -> list[tuple[bytes, bytes]]:
        row = self._conn.execute(f"SELECT id FROM {kind}_keys WHERE run_id = ? AND key = ?",
                                 (self.id, key)).fetchone()
        if row is None:
            known = self._keys(f"{kind}_keys")
            close = difflib.get_close_matches(str(key), known, n=5, cutoff=0.5)
            listing = "run.keys()" if kind == "scalar" else "run.histogram_keys()"
            if close:
                hint = f"close matches: {close}; {listing} lists all {len(known)}"
            elif known:
                more = f" ... ({len(known)} in all: {listing})" if len(known) > 20 else ""
                hint = f"known keys: {known[:20]}{more}"
            else:
                hint = f"it has no {kind} keys yet (nothing recorded so far)"
            raise KeyError(f"run {self.id} ({self.name!r}) has no {kind} key {key!r}; {hint}")
        return self._conn.execute(f"SELECT {columns} FROM {kind}_chunks WHERE key_id = ? "
                                  "ORDER BY rowid", (row[0],)).fetchall()


def _columns(conn: sqlite3.Connection) -> str:
    """The runs columns to select; a store from before heartbeats has none to read."""
    heartbeat = "heartbeat" if "heartbeat" in run_columns(conn) else "NULL AS heartbeat"
    return f"{_RUN_COLUMNS}, {heartbeat}"


def _info(row: tuple[Any, ...], now: float, stale_after: float) -> RunInfo:
    run_id, name, status, started, ended, last_step, config, heartbeat = row
    if status == "running" and heartbeat is not None and now - heartbeat > stale_after:
        status = "stale"  # nobody has written for too long: the writing process is gone
    return RunInfo(run_id, name, status, started, ended, last_step, json.loads(config), heartbeat)


def _check_stale_after(stale_after: Any, caller: str) -> float:
    if (isinstance(stale_after, bool) or not isinstance(stale_after, (int, float))
            or not math.isfinite(stale_after) or stale_after <= 0):
        raise ValueError(f"{caller}: expected stale_after to be a positive number of seconds, "
                         f"got {stale_after!r}; pass e.g. stale_after={STALE_AFTER}")
    return float(stale_after)
