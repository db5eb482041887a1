"""RunWriter: queues without blocking, batches commits, refuses bad input, and reports its
thread's errors."""

import dataclasses
import sqlite3
import threading

import numpy as np
import pytest

import gandiag.store.writer as writer_module
from gandiag.core.records import Histograms, Records
from gandiag.store import RunStoreError, RunWriter, open_run


def batch(steps, key="D/loss"):
    steps = np.asarray(steps)
    return Records(scalars={key: (steps, steps * 0.5)})


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "gandiag.sqlite")


@pytest.fixture
def blocked_commits(monkeypatch):
    """Hold the writer thread inside its next commit until the event is set."""
    release = threading.Event()
    entered = threading.Event()
    commit = writer_module._commit

    def slow_commit(*args):
        entered.set()
        assert release.wait(10)
        commit(*args)

    monkeypatch.setattr(writer_module, "_commit", slow_commit)
    return entered, release


def chunk_rows(path, key):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM scalar_chunks JOIN scalar_keys ON key_id = "
                            "scalar_keys.id WHERE key = ?", (key,)).fetchone()[0]


def test_write_returns_while_the_disk_is_busy_then_commits_the_backlog_at_once(
        path, blocked_commits):
    entered, release = blocked_commits
    writer = RunWriter(path, name="batched")
    writer.write(batch([0]))
    assert entered.wait(10)              # the thread is stuck committing step 0 ...
    for step in range(1, 11):
        writer.write(batch([step]))      # ... and write() still returns at once
    with pytest.raises(TimeoutError, match="not committed"):
        writer.flush(timeout=0.05)
    release.set()
    writer.flush()
    assert chunk_rows(path, "D/loss") == 2  # step 0, then steps 1..10 in one transaction
    writer.close()
    with open_run("batched", path) as run:
        np.testing.assert_array_equal(run.scalars("D/loss")[0], np.arange(11))


def test_many_writes_without_flush_are_all_kept(path):
    with RunWriter(path, name="many") as writer:
        for start in range(0, 5000, 10):
            writer.write(batch(np.arange(start, start + 10)))
    with open_run("many", path) as run:
        steps, values = run.scalars("D/loss")
    np.testing.assert_array_equal(steps, np.arange(5000))
    np.testing.assert_array_equal(values, np.arange(5000) * 0.5)


def test_writer_copies_the_batch_and_takes_a_plain_dict(path):
    steps, values = np.array([1, 2]), np.array([1.0, 2.0])
    with RunWriter(path, name="copy") as writer:
        write = writer.write                 # the consumer to hand to a producer
        write({"D/loss": (steps, values)})   # as Callback.on_flush receives rows
        values[:] = -1                       # the caller reuses its buffer
        write(Records())                     # an empty batch is fine
    with open_run("copy", path) as run:
        assert run.scalars("D/loss")[1].tolist() == [1.0, 2.0]


def test_context_manager_marks_failed_runs_and_close_is_idempotent(path):
    with pytest.raises(ZeroDivisionError):
        with RunWriter(path, name="boom") as writer:
            writer.write(batch([0, 1]))
            1 / 0
    writer.close()
    with open_run("boom", path) as run:
        assert run.status == "failed" and run.last_step == 1
    assert writer.path == path and writer.run_id == 1 and "boom" in repr(writer)


def test_writers_racing_to_create_one_store_all_get_runs(path):
    writers, errors = [], []

    def start(i):
        try:
            writers.append(RunWriter(path, name=f"racer{i}"))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(w.run_id for w in writers) == list(range(1, 9))
    for writer in writers:
        writer.close()


def test_writing_after_close_is_refused(path):
    writer = RunWriter(path, name="closed")
    writer.close(status="stopped")
    calls = (lambda: writer.write(batch([0])), lambda: writer.add_sample(0, b"\x89PNG\r\n\x1a\n"),
             lambda: writer.add_alert(0, "k", "info", "m"), lambda: writer.set_status("running"))
    for call in calls:
        with pytest.raises(RunStoreError, match=r"run 1 \('closed'\) is closed; open a new"):
            call()
    with open_run(1, path) as run:
        assert run.status == "stopped"


def test_a_writer_thread_error_is_raised_by_the_next_call_with_its_cause(path, monkeypatch):
    writer = RunWriter(path, name="full")
    writer.write(batch([0]))
    writer.flush()

    def disk_full(*args):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(writer_module, "_commit", disk_full)
    writer.write(batch([1]))
    with pytest.raises(RunStoreError, match="thread failed.*disk is full.*free disk space") as info:
        writer.flush()
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(RunStoreError, match="disk is full"):
        writer.write(batch([2]))
    with pytest.raises(RunStoreError, match="disk is full"):
        writer.close()
    writer.close()  # idempotent, also after an error
    with open_run("full", path) as run:  # what was committed before the error is there
        assert run.scalars("D/loss")[0].tolist() == [0] and run.status == "running"


def test_a_store_that_refuses_the_first_insert_fails_in_the_constructor(path, monkeypatch):
    RunWriter(path, name="first").close()
    read_only = lambda p: sqlite3.connect(f"file:{p}?mode=ro", uri=True, isolation_level=None)
    monkeypatch.setattr(writer_module, "connect_writer", read_only)  # as for a chmod 444 file
    with pytest.raises(RunStoreError, match="cannot start a run.*readonly.*permissions") as info:
        RunWriter(path, name="second")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


def test_exit_by_exception_keeps_the_training_error_in_front_of_a_store_error(path, monkeypatch):
    monkeypatch.setattr(writer_module, "_commit", lambda *a: 1 / 0)
    with pytest.warns(RuntimeWarning, match="writer thread failed"):
        with pytest.raises(KeyError):
            with RunWriter(path, name="both") as writer:
                writer.write(batch([0]))
                raise KeyError("training failed")


@dataclasses.dataclass
class Config:
    lr: float = 2e-4
    betas: tuple = (0.5, 0.999)


def test_config_may_be_a_dataclass(path):
    RunWriter(path, name="dc", config=Config()).close()
    with open_run("dc", path) as run:
        assert run.config == {"lr": 2e-4, "betas": [0.5, 0.999]}  # tuples come back as lists


def test_non_json_config_names_the_key(path):
    with pytest.raises(ValueError, match="expected config to be a dict or a dataclass instance, "
                                         "got list"):
        RunWriter(path, name="x", config=[("lr", 1e-4)])
    with pytest.raises(ValueError, match=r"config\['optim'\]\['betas'\]\[1\].*int64.*\.item\(\)"):
        RunWriter(path, name="x", config={"lr": 1e-4, "optim": {"betas": [0.5, np.int64(1)]}})
    with pytest.raises(ValueError, match=r"config key 3"):
        RunWriter(path, name="x", config={3: "three"})
    with pytest.raises(ValueError, match=r"expected details to be a dict .*got list"):
        with RunWriter(path, name="x") as writer:
            writer.add_alert(0, "k", "info", "m", details=[1, 2])
    with pytest.raises(ValueError, match=r"details\[.where.\] has type object"):
        with RunWriter(path, name="x") as writer:
            writer.add_alert(0, "k", "info", "m", details={"where": object()})


@pytest.mark.parametrize("png, got", [(b"GIF89a....", "bytes starting b'GIF89a"),
                                      ("\x89PNG\r\n\x1a\n", "got str"),
                                      (np.zeros((8, 8, 3)), "got ndarray")])
def test_a_sample_must_be_png_bytes(path, png, got):
    with RunWriter(path, name="x") as writer:
        with pytest.raises(ValueError, match=f"expected PNG bytes.*{got}.*encode the image as PNG"):
            writer.add_sample(0, png)
        writer.add_sample(np.int64(3), bytearray(b"\x89PNG\r\n\x1a\nbody"))  # numpy step, bytearray
    with open_run("x", path) as run:
        assert run.samples() == [(3, b"\x89PNG\r\n\x1a\nbody")]


def test_other_bad_input_says_what_was_expected(path):
    with pytest.raises(ValueError, match="expected name to be a non-empty string"):
        RunWriter(path, name="")
    with RunWriter(path, name="x") as writer:
        with pytest.raises(ValueError, match=r"\('info', 'warning', 'critical'\), got 'fatal'"):
            writer.add_alert(0, "k", "fatal", "m")
        with pytest.raises(ValueError, match="expected step to be an int, got 1.5"):
            writer.add_alert(1.5, "k", "info", "m")
        with pytest.raises(ValueError, match="3 steps but 2 values"):
            writer.write(Records(scalars={"x": (np.arange(3), np.zeros(2))}))
        with pytest.raises(ValueError, match="numpy cannot convert"):
            writer.write(Records(scalars={"x": (np.arange(2), ["a", "b"])}))
        with pytest.raises(TypeError, match="expected a gandiag Records batch, got list"):
            writer.write([1, 2])
        with pytest.raises(ValueError, match="expected status to be a non-empty string"):
            writer.set_status(None)
        writer.write(Records(histograms={"h": Histograms([0], [0, 1, 2], [[1, 2]])}))
        with pytest.raises(ValueError, match="histogram 'h' changed its edges.*new key"):
            writer.write(Records(histograms={"h": Histograms([1], [0, 1, 3], [[1, 2]])}))
