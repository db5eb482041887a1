"""`RunWriter`: records in, one background thread commits them to the run store.

`write`, `add_sample`, `add_alert` and `set_status` only queue; the writer thread commits
everything queued since its last commit in one transaction. `flush()` waits for that, so
whatever it confirmed survives a killed process. The same thread stamps the run's
heartbeat with each commit, and every `heartbeat_every` seconds when nothing comes, so
readers can tell a live run from one whose process died ("stale").

    >>> import tempfile, os, numpy as np
    >>> from gandiag.core.records import Records
    >>> path = os.path.join(tempfile.mkdtemp(), "runs", "gandiag.sqlite")
    >>> with RunWriter(path, name="ring", config={"lr": 1e-4}) as writer:
    ...     writer.write(Records(scalars={"D/loss": (np.array([1, 2]), np.array([0.7, 0.6]))}))
    ...     writer.flush()
    >>> writer.run_id
    1
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import numpy as np

from gandiag.core.records import Histograms, Records
from gandiag.store._checks import (as_dict, check_png, check_series, check_step, check_text,
                                   to_json)
from gandiag.store.schema import DEFAULT_STORE, HEARTBEAT_EVERY, RunStoreError, connect_writer

SEVERITIES = ("info", "warning", "critical")
_STOP = "stop"


class RunWriter:
    """Writes one run (records, samples, alerts, status) to the store file `store`
    (`writer.path` is its absolute path).

    `writer.write` takes each `Records` batch (what `StoreRecorder.on_records` hands it),
    or a plain `{key: (steps, values)}` dict.
    Use as a context manager: leaving by an exception marks the run "failed".
    `heartbeat_every` (seconds) is how often an idle writer tells readers it is alive.
    """

    def __init__(self, store: str | os.PathLike = DEFAULT_STORE, *, name: str,
                 config: Any = None, heartbeat_every: float = HEARTBEAT_EVERY,
                 path: str | os.PathLike | None = None) -> None:
        if path is not None:  # the store file is `store=` across the API
            warnings.warn("RunWriter(path=...) is deprecated; pass the store file as store=...",
                          DeprecationWarning, stacklevel=2)
            store = path
        if not isinstance(name, str) or not name:
            raise ValueError(f"RunWriter: expected name to be a non-empty string, got {name!r}; "
                             "pass e.g. name='dcgan'")
        if (isinstance(heartbeat_every, bool) or not isinstance(heartbeat_every, (int, float))
                or not 0 < heartbeat_every < float("inf")):
            raise ValueError(f"RunWriter: expected heartbeat_every to be a positive number of "
                             f"seconds, got {heartbeat_every!r}; pass e.g. {HEARTBEAT_EVERY}")
        self.heartbeat_every = float(heartbeat_every)
        self.path = os.path.abspath(os.fspath(store))  # the store file, absolute
        self.name = name
        self.run_id: int = -1
        self._config = to_json(as_dict(config, "config"), "config")
        self._edges: dict[str, np.ndarray] = {}  # histogram edges per key, fixed by the first write
        self._queue: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        self._lock = threading.Lock()          # orders sequence numbers with queue order
        self._done = threading.Condition()     # signals commits and errors to flush()
        self._queued = self._committed = 0
        self._error: BaseException | None = None
        self._closed = False
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f"gandiag-store-{name}")
        self._thread.start()
        ready.wait()
        if self._error is not None:
            self._thread.join()
            self._closed = True
            raise self._error
        atexit.register(self._flush_at_exit)  # a script that ends without close() loses nothing

    # --- the caller's side: validate, copy, queue ----------------------------------------

    def write(self, records: Records | Mapping[str, tuple[Any, Any]]) -> None:
        """Queue a batch of scalar and histogram records; returns at once."""
        if isinstance(records, Mapping):
            records = Records(scalars=dict(records))
        if not isinstance(records, Records):
            raise TypeError(f"RunWriter.write: expected a gandiag Records batch, got "
                            f"{type(records).__name__}; wrap scalars as Records(scalars=...)")
        scalars = {key: check_series(key, steps, values)
                   for key, (steps, values) in records.scalars.items()}
        histograms = {key: self._histograms(key, h) for key, h in records.histograms.items()}
        if scalars or histograms:
            self._put("records", (scalars, histograms))

    def add_sample(self, step: int, png: bytes, key: str = "samples") -> None:
        """Queue a sample snapshot: the PNG bytes of an image grid at `step`."""
        self._put("sample", (check_step(step), check_text(key, "key"), check_png(png), time.time()))

    def add_alert(self, step: int, kind: str, severity: str, message: str,
                  details: Mapping[str, Any] | None = None) -> None:
        """Queue an alert; `severity` is "info", "warning" or "critical"."""
        if severity not in SEVERITIES:
            raise ValueError(f"RunWriter.add_alert: expected severity in {SEVERITIES}, "
                             f"got {severity!r}; pick one of those")
        details_json = to_json(as_dict(details, "details"), "details")
        row = (check_step(step), check_text(kind, "kind"), severity,
               check_text(message, "message"), details_json, time.time())
        self._put("alert", row)

    def set_config(self, config: Any) -> None:
        """Queue a new config for the run (e.g. once a user loop's loss became known)."""
        self._put("config", to_json(as_dict(config, "config"), "config"))

    def set_status(self, status: str) -> None:
        """Queue a status change, e.g. "paused" or "running"."""
        self._put("status", (check_text(status, "status"), None))

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued so far is committed; raise a writer-thread error."""
        with self._lock:
            target = self._queued
        with self._done:
            finished = self._done.wait_for(
                lambda: self._committed >= target or self._error is not None
                or not self._thread.is_alive(), timeout)
        self._raise_error()
        if not finished:
            raise TimeoutError(f"RunWriter.flush: {target - self._committed} queued item(s) not "
                               f"committed after {timeout} s; the disk may be slow, flush again "
                               "or pass a larger timeout")

    def close(self, status: str = "finished") -> None:
        """Flush, set the final status and end time, stop the thread. Idempotent."""
        if self._closed:
            return
        final = (check_text(status, "status"), time.time())
        with self._lock:
            self._closed = True
        atexit.unregister(self._flush_at_exit)
        self._put("status", final, closing=True)  # a thread that failed never reads these
        self._put(_STOP, None, closing=True)
        self._thread.join()
        self._raise_error()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close("finished")
            return
        try:
            self.close("failed")
        except RunStoreError as err:  # keep the training error in front; still say this one
            warnings.warn(str(err), RuntimeWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"RunWriter(store={self.path!r}, name={self.name!r}, run_id={self.run_id})"

    def _put(self, kind: str, payload: Any, *, closing: bool = False) -> None:
        with self._lock:  # the check and the put are one step: nothing slips in after close
            if not closing:
                if self._closed:
                    raise RunStoreError(f"RunWriter: run {self.run_id} ({self.name!r}) is "
                                        "closed; open a new RunWriter to record more")
                self._raise_error()
            self._queued += 1
            self._queue.put((self._queued, kind, payload))

    def _flush_at_exit(self) -> None:
        if not self._closed and self._thread.is_alive():
            self.flush(timeout=30.0)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RunStoreError(f"RunWriter: the store writer thread failed ({self._error!r}); "
                                "nothing after its last commit was stored; fix the cause "
                                "(e.g. free disk space) and open a new RunWriter") from self._error

    def _histograms(self, key: str, h: Histograms) -> Histograms:
        if not isinstance(h, Histograms):
            raise TypeError(f"RunWriter.write: expected histograms[{key!r}] to be a Histograms, "
                            f"got {type(h).__name__}")
        known = self._edges.setdefault(key, h.edges.copy())
        if not np.array_equal(known, h.edges):
            raise ValueError(f"RunWriter.write: histogram {key!r} changed its edges from "
                             f"{len(known)} edges [{known[0]}, {known[-1]}] to {len(h.edges)} "
                             f"[{h.edges[0]}, {h.edges[-1]}]; keep the edges fixed per key "
                             "or write the new range under a new key")
        return Histograms(h.steps.copy(), known, h.counts.copy())

    # --- the writer thread: owns the connection -------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        try:
            conn = connect_writer(self.path)
            now = time.time()
            self.run_id = conn.execute(
                "INSERT INTO runs (name, config, status, started, heartbeat) "
                "VALUES (?, ?, 'running', ?, ?)", (self.name, self._config, now, now)).lastrowid
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self._error = err
            if not isinstance(err, RunStoreError):
                self._error = RunStoreError(f"RunWriter: cannot start a run in {self.path!r} "
                                            f"({err}); check the file's permissions and free "
                                            "disk space")
                self._error.__cause__ = err
            ready.set()
            return
        ready.set()
        key_ids: dict[tuple[str, str], int] = {}
        try:
            stop = False
            while not stop:
                try:
                    batch = [self._queue.get(timeout=self.heartbeat_every)]
                except queue.Empty:  # nothing to write: still say this process is alive
                    _beat(conn, self.run_id)
                    continue
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(kind == _STOP for _, kind, _ in batch)
                conn.execute("BEGIN")
                try:
                    _commit(conn, self.run_id, batch, key_ids)
                    _beat(conn, self.run_id)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                with self._done:
                    self._committed = batch[-1][0]
                    self._done.notify_all()
        except BaseException as err:  # noqa: BLE001 - kept and raised by the next call
            with self._done:
                self._error = err
                self._done.notify_all()
        finally:
            conn.close()


def _beat(conn: Any, run_id: int) -> None:
    """Stamp the run's heartbeat (inside the caller's transaction, or as its own)."""
    conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))


def _commit(conn: Any, run_id: int, batch: list[tuple[int, str, Any]],
            key_ids: dict[tuple[str, str], int]) -> None:
    """Write one batch of queued items; the caller holds the transaction."""
    scalars: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    histograms: dict[str, list[Histograms]] = {}
    steps: list[int] = []
    for _, kind, payload in batch:
        if kind == "records":
            for key, series in payload[0].items():
                scalars.setdefault(key, []).append(series)
            for key, h in payload[1].items():
                histograms.setdefault(key, []).append(h)
        elif kind == "sample":
            conn.execute("INSERT INTO samples (run_id, step, key, png, time) "
                         "VALUES (?, ?, ?, ?, ?)", (run_id, *payload))
            steps.append(payload[0])
        elif kind == "alert":
            conn.execute("INSERT INTO alerts (run_id, step, kind, severity, message, details, "
                         "time) VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, *payload))
            steps.append(payload[0])
        elif kind == "config":
            conn.execute("UPDATE runs SET config = ? WHERE id = ?", (payload, run_id))
        elif kind == "status":
            status, ended = payload
            conn.execute("UPDATE runs SET status = ?, ended = coalesce(?, ended) WHERE id = ?",
                         (status, ended, run_id))
    for key, parts in scalars.items():  # one row per key per transaction
        s = np.concatenate([p[0] for p in parts]).astype("<i8")
        v = np.concatenate([p[1] for p in parts]).astype("<f8")
        key_id = _key_id(conn, key_ids, "scalar", run_id, key, None)
        conn.execute("INSERT INTO scalar_chunks VALUES (?, ?, ?)",
                     (key_id, s.tobytes(), v.tobytes()))
        steps.extend([int(s.max())] if len(s) else [])
    for key, hs in histograms.items():
        s = np.concatenate([h.steps for h in hs]).astype("<i8")
        c = np.concatenate([h.counts for h in hs]).astype("<f8")
        key_id = _key_id(conn, key_ids, "histogram", run_id, key, hs[0].edges)
        conn.execute("INSERT INTO histogram_chunks VALUES (?, ?, ?)",
                     (key_id, s.tobytes(), c.tobytes()))
        steps.extend([int(s.max())] if len(s) else [])
    if steps:
        conn.execute("UPDATE runs SET last_step = max(coalesce(last_step, ?), ?) WHERE id = ?",
                     (max(steps), max(steps), run_id))


def _key_id(conn: Any, key_ids: dict[tuple[str, str], int], kind: str, run_id: int, key: str,
            edges: np.ndarray | None) -> int:
    if (kind, key) not in key_ids:
        if kind == "scalar":
            sql, args = "INSERT INTO scalar_keys (run_id, key) VALUES (?, ?)", (run_id, key)
        else:
            sql = "INSERT INTO histogram_keys (run_id, key, edges) VALUES (?, ?, ?)"
            args = (run_id, key, np.asarray(edges, "<f8").tobytes())
        key_ids[kind, key] = conn.execute(sql, args).lastrowid
    return key_ids[kind, key]
