"""The run store's file format: tables, version check, and how connections are opened.

One SQLite file (WAL mode) holds many runs. Numbers are stored as little-endian blobs,
one row per key and written chunk, so NaN and inf round-trip bit for bit. No pickle.

Liveness: the writer thread stamps `runs.heartbeat` (unix time) with every commit and at
least every `HEARTBEAT_EVERY` seconds while its run is open. A reader reports a run whose
status is "running" but whose heartbeat is older than `STALE_AFTER` seconds as "stale":
its process most likely died (killed, out of memory, machine lost) without closing it.
The column came after schema version 1 without a version bump, since older readers select
their columns by name and never see it; a writer adds it to an older store when it opens
it, and a run without a heartbeat (written by an older gandiag) keeps its stored status.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.sqlite")
    >>> conn = connect_writer(path)
    >>> conn.execute("SELECT value FROM gandiag_meta WHERE key = 'format'").fetchone()
    ('gandiag run store',)
    >>> conn.close()
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import time
from urllib.parse import quote

DEFAULT_STORE = "runs/gandiag.sqlite"
FORMAT = "gandiag run store"
SCHEMA_VERSION = 1
HEARTBEAT_EVERY = 10.0   # seconds between a writer thread's heartbeats while its run is idle
STALE_AFTER = 120.0      # a "running" run silent this long reads "stale": a dozen missed beats

SCHEMA = """
CREATE TABLE IF NOT EXISTS gandiag_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
    config TEXT NOT NULL, status TEXT NOT NULL, started REAL NOT NULL, ended REAL,
    last_step INTEGER, heartbeat REAL);
CREATE TABLE IF NOT EXISTS scalar_keys (id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id), key TEXT NOT NULL, UNIQUE (run_id, key));
CREATE TABLE IF NOT EXISTS scalar_chunks (key_id INTEGER NOT NULL REFERENCES scalar_keys(id),
    steps BLOB NOT NULL, vals BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS scalar_chunks_by_key ON scalar_chunks (key_id);
CREATE TABLE IF NOT EXISTS histogram_keys (id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id), key TEXT NOT NULL, edges BLOB NOT NULL,
    UNIQUE (run_id, key));
CREATE TABLE IF NOT EXISTS histogram_chunks (
    key_id INTEGER NOT NULL REFERENCES histogram_keys(id),
    steps BLOB NOT NULL, counts BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS histogram_chunks_by_key ON histogram_chunks (key_id);
CREATE TABLE IF NOT EXISTS samples (run_id INTEGER NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL, step INTEGER NOT NULL, png BLOB NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_run ON samples (run_id, key);
CREATE TABLE IF NOT EXISTS alerts (run_id INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,
    details TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_by_run ON alerts (run_id);
"""

_DAMAGED_FIX = "if it is damaged, move it away and a new store will be created"
_RECOVER = ("move it away and a new store will be created; to rescue what is left, run "
            "`sqlite3 {path} .recover | sqlite3 recovered.sqlite`")


class RunStoreError(RuntimeError):
    """The run store file cannot be used as asked; the message says why and the fix."""


def connect_writer(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the store at `path` for writing; autocommit mode."""
    if os.path.isdir(path):
        raise RunStoreError(f"run store: expected a file path, got the directory {path!r}; "
                            f"pass a file inside it, e.g. {os.path.join(path, 'gandiag.sqlite')!r}")
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    except (OSError, sqlite3.Error) as err:
        raise RunStoreError(f"run store: cannot create or open {path!r} for writing ({err}); "
                            "pass a path in a folder you can write to") from err
    try:
        if not _tables(conn, path):  # a new file: create the schema in one transaction
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} INSERT OR IGNORE INTO gandiag_meta "
                               f"VALUES ('format', '{FORMAT}'), "
                               f"('schema_version', '{SCHEMA_VERSION}'); COMMIT;")
        check_store(conn, path)
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")  # in WAL: a commit survives a killed process
        _add_heartbeat_column(conn)
    except sqlite3.Error as err:
        conn.close()
        raise RunStoreError(f"run store: cannot write to {path!r} ({err}); "
                            f"check its permissions; {_DAMAGED_FIX}") from err
    except RunStoreError:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection, timeout: float = 30.0) -> None:
    """Put the file in WAL mode (it stays so). Switching needs a moment alone with the
    file, and SQLite answers "database is locked" at once instead of waiting when another
    connection is opening it too (seen with 8 writers starting together): so retry."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _add_heartbeat_column(conn: sqlite3.Connection) -> None:
    """Give a store from before heartbeats its column. Checked again inside the write lock:
    two writers may open the same old store at once."""
    if "heartbeat" in run_columns(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if "heartbeat" not in run_columns(conn):
            conn.execute("ALTER TABLE runs ADD COLUMN heartbeat REAL")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def run_columns(conn: sqlite3.Connection) -> set[str]:
    """The columns of the runs table (an older store lacks `heartbeat`)."""
    return {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def read_error(path: str, err: sqlite3.Error) -> RunStoreError:
    """A RunStoreError for an SQLite error met while reading the store at `path`."""
    if isinstance(err, sqlite3.OperationalError):  # locked, I/O error: the file may be fine
        return RunStoreError(f"run store: cannot read {path!r} ({err}); check that the file "
                             "is readable and its disk reachable, then try again")
    return RunStoreError(f"run store: {path!r} is damaged ({err}): expected a readable "
                         f"SQLite file; {_RECOVER.format(path=shlex.quote(path))}")


def connect_reader(path: str) -> sqlite3.Connection:
    """Open the store at `path` read-only; works while another process writes to it."""
    if not os.path.isfile(path):
        what = "a directory" if os.path.isdir(path) else "nothing"
        raise RunStoreError(f"run store: expected a store file at {path!r}, found {what}; "
                            "pass the path a RunWriter wrote to (default "
                            f"{DEFAULT_STORE!r}, relative to the project folder)")
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK) and not os.path.exists(
            path + "-wal"):
        uri += "&immutable=1"  # WAL needs a -shm file it cannot create here; no writer is active
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30.0)
    except sqlite3.Error as err:
        raise RunStoreError(f"run store: cannot open {path!r} ({err}); check that you may "
                            "read it") from err
    try:
        check_store(conn, path)
    except sqlite3.Error as err:
        conn.close()
        raise read_error(path, err) from err
    except RunStoreError:
        conn.close()
        raise
    return conn


def check_store(conn: sqlite3.Connection, path: str) -> None:
    """Raise RunStoreError unless `conn` holds a gandiag store this version can read."""
    if "gandiag_meta" not in _tables(conn, path):
        raise RunStoreError(f"run store: {path!r} is an SQLite file but not a gandiag run "
                            "store (no gandiag_meta table); it was left untouched; "
                            "pass a different path for the store")
    meta = dict(conn.execute("SELECT key, value FROM gandiag_meta").fetchall())
    if meta.get("format") != FORMAT:
        raise RunStoreError(f"run store: {path!r} has format {meta.get('format')!r}, expected "
                            f"{FORMAT!r}; it was left untouched; pass a different path")
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise RunStoreError(f"run store: {path!r} has schema version {version}, this gandiag "
                            f"reads up to {SCHEMA_VERSION}; upgrade gandiag to read it")


def _tables(conn: sqlite3.Connection, path: str) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.OperationalError:
        raise  # locked, unreadable: the caller words it
    except sqlite3.DatabaseError as err:  # random bytes: "file is not a database"
        raise RunStoreError(f"run store: {path!r} is not a readable SQLite file ({err}); "
                            f"{_DAMAGED_FIX}, or pass a different path") from err
    return {name for (name,) in rows}
