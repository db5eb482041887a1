"""Another process reads while training writes; a SIGKILLed writer leaves a readable store
that holds everything `flush()` confirmed.

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

from gandiag.hooks.records import Histograms, Records
from gandiag.store import RunWriter, list_runs, open_run

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs fork and SIGKILL (POSIX)")

WRITE = 10          # steps per write
WRITES_PER_FLUSH = 3
EDGES = np.linspace(-1.0, 1.0, 9)


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


def start_writer(path, name):
    read_fd, write_fd = os.pipe()
    child = multiprocessing.get_context("fork").Process(
        target=write_until_killed, args=(path, name, write_fd), daemon=True)
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
        for _ in range(5):
            confirmed = int(pipe.readline())
            with open_run("live", path) as run:
                steps = run.scalars("D/loss")[0]
                assert run.status == "running" and len(steps) > confirmed
                seen.append(len(steps))
        assert seen == sorted(seen) and seen[-1] > seen[0]
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
