"""Bad store files and paths: each refused with what was expected and the fix; a foreign
file is never modified; a damaged page is reported, not a raw SQLite error."""

import hashlib
import os
import sqlite3

import numpy as np
import pytest

from gandiag.core.records import Records
from gandiag.store import RunStoreError, RunWriter, list_runs, open_run
from gandiag.store.schema import SCHEMA_VERSION


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def refused_everywhere(path, match):
    """The writer, list_runs and open_run all refuse `path` with a message matching `match`."""
    for call in (lambda: RunWriter(path, name="x"), lambda: list_runs(path),
                 lambda: open_run(1, path)):
        with pytest.raises(RunStoreError, match=match):
            call()


def test_new_store_is_wal_and_marked_with_format_and_version(tmp_path):
    path = str(tmp_path / "a" / "b" / "gandiag.sqlite")
    RunWriter(path, name="x").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(conn.execute("SELECT key, value FROM gandiag_meta"))
    assert meta == {"format": "gandiag run store", "schema_version": str(SCHEMA_VERSION)}


def test_a_directory_is_not_a_store_file(tmp_path):
    refused_everywhere(str(tmp_path), "directory")
    with pytest.raises(RunStoreError, match="pass a file inside it, e.g. .*gandiag.sqlite"):
        RunWriter(str(tmp_path), name="x")


def test_a_parent_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(RunStoreError, match="cannot create or open .*folder you can write to"):
        RunWriter(str(tmp_path / "runs" / "gandiag.sqlite"), name="x")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RunStoreError, match="folder you can write to"):
            RunWriter(str(locked / "gandiag.sqlite"), name="x")
    finally:
        locked.chmod(0o700)


def test_a_missing_store_is_refused_by_the_reader(tmp_path):
    path = str(tmp_path / "nothing.sqlite")
    for call in (lambda: list_runs(path), lambda: open_run("x", path)):
        with pytest.raises(RunStoreError, match="expected a store file .* found nothing"):
            call()
    assert not os.path.exists(path)  # reading never creates a file


def test_random_bytes_are_refused_and_left_as_they_were(tmp_path):
    path = tmp_path / "corrupt.sqlite"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    before = digest(path)
    refused_everywhere(str(path), "not a readable SQLite file.*move it away")
    assert digest(path) == before


def test_a_foreign_sqlite_file_is_refused_and_never_modified(tmp_path):
    path = str(tmp_path / "foreign.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    before = digest(path)
    refused_everywhere(path, "not a gandiag run store.*left untouched.*different path")
    assert digest(path) == before
    assert sorted(os.listdir(tmp_path)) == ["foreign.sqlite"]  # no -wal or -shm appeared


def test_a_foreign_meta_table_is_refused(tmp_path):
    path = str(tmp_path / "other.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE gandiag_meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO gandiag_meta VALUES ('format', 'something else')")
    conn.close()
    refused_everywhere(path, "format 'something else', expected 'gandiag run store'")


def test_a_newer_schema_version_asks_for_an_upgrade(tmp_path):
    path = str(tmp_path / "future.sqlite")
    RunWriter(path, name="x").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE gandiag_meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
    conn.close()
    refused_everywhere(path, f"schema version {SCHEMA_VERSION + 1}, this gandiag reads up to "
                             f"{SCHEMA_VERSION}; upgrade gandiag")


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    RunWriter(str(path), name="x").close()
    assert [r.name for r in list_runs(str(path))] == ["x"]


def test_a_damaged_page_is_a_store_error_with_the_fix(tmp_path):
    path = tmp_path / "damaged.sqlite"
    with RunWriter(str(path), name="r") as writer:
        for start in range(0, 20_000, 100):
            steps = np.arange(start, start + 100)
            writer.write(Records(scalars={"D/loss": (steps, np.sin(steps)),
                                          "G/loss": (steps, np.cos(steps))}))
    assert not os.path.exists(f"{path}-wal")  # the last close moved everything into the file
    data, page = bytearray(path.read_bytes()), 4096
    middle = len(data) // page // 2  # a page of loss chunks, past the schema and the runs table
    data[middle * page:(middle + 1) * page] = np.random.default_rng(0).bytes(page)
    path.write_bytes(bytes(data))
    with open_run("r", str(path)) as run:
        with pytest.raises(RunStoreError, match=r"damaged \(database disk image is malformed\): "
                                                r"expected a readable SQLite file; move it "
                                                r"away.*sqlite3 .*damaged.sqlite \.recover"):
            run.scalars("D/loss"), run.scalars("G/loss")
