"""The `gandiag` command for a new user: --help without torch, one-line errors for bad
files and paths, run ids only when written as ids, `gandiag runs`, and a quiet Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from gandiag.cli import main
from gandiag.core.records import Records
from gandiag.store import RunWriter

HEAVY = ("torch", "numpy", "scipy", "plotly")


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_loads_no_heavy_module_and_the_package_names_still_work():
    loaded = python(f"""
import contextlib, io, json, sys
import gandiag.cli
for argv in (["--help"], ["demo", "--help"], ["train", "--help"], ["runs", "--help"],
             ["diagnose", "--help"], ["report", "--help"], ["train", "--loss"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            gandiag.cli.main(argv)
        except SystemExit:
            pass
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
""")
    assert json.loads(loaded) == []
    names = python("""
import gandiag
from gandiag import attach, Trainer, TrainConfig, data, open_run
print(gandiag.Trainer is Trainer, gandiag.data.ring is data.ring, callable(attach),
      gandiag.hooks.Monitor is gandiag.Monitor, sorted(set(gandiag.__all__) - set(dir(gandiag))))
try:
    gandiag.nothing
except AttributeError as error:
    print(error)
""")
    assert names.splitlines() == ["True True True True []",
                                  "module 'gandiag' has no attribute 'nothing'"]


@pytest.fixture
def store(tmp_path):
    """Run 1 is named 'x', run 2 is named '1'; both finished, 3 steps each."""
    path = str(tmp_path / "s.sqlite")
    for name in ("x", "1"):
        with RunWriter(path, name=name) as writer:
            writer.write(Records(scalars={"D/loss": (np.arange(1, 4), np.ones(3))}))
    return path


def one_line_error(capsys, prefix: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(prefix) and "Traceback" not in err, err
    return err


def title(capsys) -> str:
    return capsys.readouterr().out.splitlines()[0]


def test_a_bare_number_is_a_name_and_ids_are_written_as_ids(store, capsys):
    assert main(["diagnose", "1", "--store", store]) == 0
    assert "run 2 ('1', finished" in title(capsys)
    assert main(["diagnose", "#1", "--store", store]) == 0
    assert "run 1 ('x', finished" in title(capsys)
    assert main(["diagnose", "--id", "2", "--store", store]) == 0
    assert "run 2 ('1', finished" in title(capsys)
    assert main(["diagnose", "7", "--store", store]) == 2
    assert "write '#7' or --id 7" in one_line_error(capsys, "gandiag diagnose: error: no run named '7'")
    assert main(["report", "x", "--id", "1", "--store", store]) == 2
    one_line_error(capsys, "gandiag report: error: expected RUN or --id, got both")
    assert main(["report", "--store", store]) == 2
    assert "write '#3'" in one_line_error(capsys, "gandiag report: error: expected a run")


def test_runs_lists_every_run_with_its_status(store, capsys):
    with sqlite3.connect(store) as conn:  # run 1's process died long ago without closing it
        conn.execute("UPDATE runs SET status = 'running', ended = NULL, heartbeat = 0 WHERE id = 1")
    conn.close()
    assert main(["runs", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "name", "status", "last", "step", "started"]
    assert [line.split()[:4] for line in lines[1:3]] == [["#1", "x", "stale", "3"],
                                                         ["#2", "1", "finished", "3"]]
    assert lines[-1].startswith("stale: marked running, but its writer has sent no heartbeat")
    assert main(["runs", "--store", store, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["name"], r["status"], r["last_step"]) for r in rows] == [
        (1, "x", "stale", 3), (2, "1", "finished", 3)]
    assert rows[0]["ended"] is None and rows[1]["started"][:2] == "20"
    assert main(["runs", "--store", store + ".missing"]) == 2
    one_line_error(capsys, "gandiag runs: error: no run store at")


def damage(path: str) -> None:
    data, page = bytearray(open(path, "rb").read()), 4096
    middle = len(data) // page // 2
    data[middle * page:(middle + 1) * page] = np.random.default_rng(0).bytes(page)
    open(path, "wb").write(bytes(data))


def test_damaged_and_foreign_files_are_one_line_errors(tmp_path, capsys):
    damaged = str(tmp_path / "damaged.sqlite")
    with RunWriter(damaged, name="r") as writer:
        for start in range(0, 20_000, 100):
            steps = np.arange(start, start + 100)
            writer.write(Records(scalars={"D/loss": (steps, np.sin(steps)),
                                          "G/loss": (steps, np.cos(steps))}))
    damage(damaged)
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, not a database\n")
    for command in ("diagnose", "report"):
        out = ["--out", str(tmp_path / "r.html")] if command == "report" else []
        assert main([command, "r", "--store", damaged, *out]) == 2
        assert ".recover" in one_line_error(capsys, f"gandiag {command}: error: run store: ")
        assert main([command, "r", "--store", str(text), *out]) == 2
        assert "not a readable SQLite file" in one_line_error(capsys, f"gandiag {command}: error: ")
    assert main(["runs", "--store", str(text)]) == 2
    one_line_error(capsys, "gandiag runs: error: run store: ")


def test_bad_output_paths_are_one_line_errors_with_the_fix(store, tmp_path, capsys):
    assert main(["report", "x", "--store", store, "--out", str(tmp_path)]) == 2
    err = one_line_error(capsys, "gandiag report: error: expected a file path, got the folder")
    assert os.path.join(str(tmp_path), "report.html") in err
    (tmp_path / "file").write_text("")
    assert main(["report", "x", "--store", store, "--out", str(tmp_path / "file" / "r.html")]) == 2
    one_line_error(capsys, "gandiag report: error: expected a folder at")  # os.makedirs' error
    assert main(["runs", "--store", str(tmp_path / "file" / "s.sqlite")]) == 2
    one_line_error(capsys, "gandiag runs: error: no run store at")


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.5])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path, delay):
    """Early delays land in the imports (torch takes seconds), later ones in training."""
    child = subprocess.Popen(
        [sys.executable, "-m", "gandiag", "train", "--steps", "1000000", "--out", str(tmp_path),
         "--store", str(tmp_path / "s.sqlite")], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        # a background job's children start with Ctrl-C ignored; a terminal's do not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=120)[1]
    # 130, or killed by SIGINT (which a shell also shows as 130): Python ends so when the
    # interrupt landed in code that an extension module ran through PyRun_*.
    assert child.returncode in (130, -signal.SIGINT)
    assert err.splitlines() == ["gandiag train: interrupted"], err
