"""Another process reads while training writes; a SIGKILLed writer leaves a readable store
that holds everything `flush()` confirmed, and a run that reads "stale" once its heartbeat
is older than the timeout, while a live writer's run reads "running".

Writers run in forked children: a fresh interpreter would spend ~2 s importing torch (via
the gandiag package) before its first write, and the store does not care how the process
started. Each child reports every confirmed step on a pipe; the parent kills it with
SIGKILL and then reads the store.
"""

import multiprocessing
import os
import random
import signal
import time

import numpy as np
import pytest

from gandiag.core.records import Histograms, Records
from gandiag.store import RunWriter, list_runs, open_run

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs fork and SIGKILL (POSIX)")

WRITE = 10          # steps per write
WRITES_PER_FLUSH = 3
EDGES = np.linspace(-1.0, 1.0, 9)
BEAT, STALE = 0.05, 2.0  # seconds: heartbeat interval and stale timeout, small for the test


def loss(steps):
    """What the child records at `steps`: NaN and inf included, as real records."""
    values = np.sin(steps * 0.1)
    values[steps % 7 == 3] = np.nan
    values[steps % 11 == 5] = np.inf
    return values


def write_until_killed(path, name, report_fd):
    """Child: write records forever, report each step that flush() confirmed."""
    writer = RunWriter(path, name=name, config={"child": name})
    start, deadline = 0, time.monotonic() + 60  # never outlive a crashed parent for long
    while time.monotonic() < deadline:
        for _ in range(WRITES_PER_FLUSH):
            steps = np.arange(start, start + WRITE)
            counts = np.outer(steps, np.ones(len(EDGES) - 1))
            writer.write(Records(scalars={"D/loss": (steps, loss(steps))},
                                 histograms={"D/out_real": Histograms(steps, EDGES, counts)}))
            if start % 50 == 0:
                writer.add_sample(start, b"\x89PNG\r\n\x1a\n" + str(start).encode())
                writer.add_alert(start, "heartbeat", "info", f"at step {start}", {"step": start})
            start += WRITE
        writer.flush()
        os.write(report_fd, f"{start - 1}\n".encode())
    os._exit(0)


def beat_until_killed(path, name, report_fd):
    """Child: open a run, write nothing, keep it open (its writer thread beats)."""
    writer = RunWriter(path, name=name, heartbeat_every=BEAT)
    writer.flush()
    os.write(report_fd, b"0\n")
    time.sleep(60)  # never outlive a crashed parent for long
    os._exit(0)


def start_writer(path, name, target=write_until_killed):
    read_fd, write_fd = os.pipe()
    child = multiprocessing.get_context("fork").Process(
        target=target, args=(path, name, write_fd), daemon=True)
    child.start()
    os.close(write_fd)  # the child holds the only write end, so its death ends the pipe
    return child, os.fdopen(read_fd, "rb", buffering=0)


def check_store_holds(path, name, confirmed):
    """The store opens, lists the run as running, and holds every confirmed step intact."""
    [info] = list_runs(path)
    assert (info.name, info.status, info.ended) == (name, "running", None)
    with open_run(name, path) as run:
        steps, values = run.scalars("D/loss")
        assert len(steps) > confirmed, f"{name}: lost confirmed steps ({len(steps)} <= {confirmed})"
        assert len(steps) % WRITE == 0  # a transaction is all or nothing
        np.testing.assert_array_equal(steps, np.arange(len(steps)))
        np.testing.assert_array_equal(values, loss(steps))
        hist = run.histograms("D/out_real")
        np.testing.assert_array_equal(hist.steps, np.arange(len(hist.steps)))
        assert len(hist.steps) > confirmed and hist.counts[confirmed, 0] == confirmed
        samples = run.samples()
        assert [step for step, _ in samples] == list(range(0, samples[-1][0] + 1, 50))
        assert [a.evidence["step"] for a in run.alerts()] == [step for step, _ in samples]
        assert run.config == {"child": name}


def test_another_process_reads_while_the_writer_runs(tmp_path):
    path = str(tmp_path / "gandiag.sqlite")
    child, pipe = start_writer(path, "live")
    try:
        seen = []
        confirmed = int(pipe.readline())
        for _ in range(5):
            with open_run("live", path) as run:
                steps = run.scalars("D/loss")[0]
                assert run.status == "running" and len(steps) > confirmed
                seen.append(len(steps))
            # Wait for the child to confirm more than this read saw: on a busy machine the
            # pipe can hold several lines already while the child has not run since.
            while confirmed < seen[-1]:
                confirmed = int(pipe.readline())
        assert seen == sorted(set(seen))  # every read saw more than the one before
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        pipe.close()


def test_sigkill_at_random_points_leaves_readable_stores_with_every_confirmed_step(tmp_path):
    rng = random.Random(20240613)
    kills = 0
    for group in range(4):
        children = []
        for i in range(5):
            name = f"killed-{group}-{i}"
            path = str(tmp_path / f"{name}.sqlite")
            child, pipe = start_writer(path, name)
            children.append((name, path, child, pipe, rng.uniform(0.0, 0.3)))
        first = {name: int(pipe.readline()) for name, _, _, pipe, _ in children}  # all writing
        started = time.monotonic()
        for name, path, child, pipe, delay in sorted(children, key=lambda c: c[-1]):
            time.sleep(max(0.0, started + delay - time.monotonic()))
            os.kill(child.pid, signal.SIGKILL)
        for name, path, child, pipe, delay in children:
            child.join()
            assert child.exitcode == -signal.SIGKILL
            confirmed = max([first[name]] + [int(line) for line in pipe.read().split()])
            pipe.close()
            check_store_holds(path, name, confirmed)
            kills += 1
    assert kills == 20


def test_a_killed_writer_leaves_a_stale_run_while_a_live_one_reads_running(tmp_path):
    path = str(tmp_path / "gandiag.sqlite")
    started = [start_writer(path, name, beat_until_killed) for name in ("killed", "live")]
    try:
        for _, pipe in started:
            assert pipe.readline() == b"0\n"  # both runs are open
        (killed, _), (live, _) = started
        os.kill(killed.pid, signal.SIGKILL)
        killed.join()
        assert {r.name: r.status for r in list_runs(path, stale_after=STALE)} == {
            "killed": "running", "live": "running"}  # the last beat is still fresh
        time.sleep(STALE + 0.5)
        assert {r.name: r.status for r in list_runs(path, stale_after=STALE)} == {
            "killed": "stale", "live": "running"}
        with open_run("killed", path, stale_after=STALE) as run:
            assert (run.status, run.ended) == ("stale", None)
        with open_run("live", path, stale_after=STALE) as run:
            assert run.status == "running"
        assert [r.status for r in list_runs(path)] == ["running", "running"]  # default: 2 min
    finally:
        for child, pipe in started:
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
            child.join()
            pipe.close()
