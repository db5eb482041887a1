"""Everything written comes back: scalars (NaN/inf too), histograms, samples, alerts, runs;
a run whose writer went silent reads "stale"."""

import os
import sqlite3
import time

import numpy as np
import pytest

from gandiag.core.records import Histograms, Records
from gandiag.store import schema
from gandiag.store import Alert, RunStoreError, RunWriter, list_runs, open_run

PNG = b"\x89PNG\r\n\x1a\n" + b"fake image body"


def scalars(**series):
    return Records(scalars={key.replace("__", "/"): (np.asarray(s), np.asarray(v, float))
                            for key, (s, v) in series.items()})


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "runs" / "gandiag.sqlite")


def test_scalars_round_trip_across_writes_sorted_with_nan_and_inf(path):
    with RunWriter(path, name="dcgan") as writer:
        writer.write(scalars(D__loss=([0, 1], [0.7, np.nan])))
        writer.write(scalars(D__loss=([3, 2], [np.inf, -np.inf])))
        writer.flush()
        writer.write(scalars(D__loss=([4], [-0.0]), G__loss=([4], [1.5])))  # G/loss appears mid-run
    with open_run("dcgan", path) as run:
        steps, values = run.scalars("D/loss")
        assert steps.dtype == np.int64 and values.dtype == np.float64
        np.testing.assert_array_equal(steps, [0, 1, 2, 3, 4])
        np.testing.assert_array_equal(values, [0.7, np.nan, -np.inf, np.inf, -0.0])
        assert np.signbit(values[-1])  # -0.0 round-trips bit for bit
        assert run.keys() == ["D/loss", "G/loss"]
        np.testing.assert_array_equal(run.scalars("G/loss")[0], [4])


def test_nan_payload_bits_round_trip(path):
    odd_nan = np.frombuffer(np.uint64(0x7FF8_0000_DEAD_BEEF).tobytes(), np.float64)
    with RunWriter(path, name="bits") as writer:
        writer.write(scalars(x=([7], odd_nan)))
    with open_run("bits", path) as run:
        assert run.scalars("x")[1].tobytes() == odd_nan.tobytes()


def test_histograms_round_trip_sorted_by_step(path):
    edges = np.linspace(-1, 1, 5)
    first = Histograms([2, 3], edges, [[1, 2, 3, 4], [0, 0, 0, np.nan]])
    second = Histograms([1], edges, [[9, 9, 9, 9]])
    with RunWriter(path, name="h") as writer:
        writer.write(Records(histograms={"D/out_real": first}))
        writer.flush()
        writer.write(Records(histograms={"D/out_real": second}))
    with open_run("h", path) as run:
        assert run.histogram_keys() == ["D/out_real"] and run.keys() == []
        h = run.histograms("D/out_real")
        np.testing.assert_array_equal(h.steps, [1, 2, 3])
        np.testing.assert_array_equal(h.edges, edges)
        np.testing.assert_array_equal(h.counts, [[9, 9, 9, 9], [1, 2, 3, 4], [0, 0, 0, np.nan]])


def test_samples_alerts_config_and_status_round_trip(path):
    config = {"lr": 2e-4, "betas": [0.5, 0.999], "model": {"name": "dcgan", "ngf": 64}, "ema": None}
    with RunWriter(path, name="dcgan", config=config) as writer:
        writer.add_sample(10, PNG)
        writer.add_sample(5, PNG + b"2")
        writer.add_sample(5, PNG + b"ema", key="samples/ema")
        writer.add_alert(7, "mode_collapse", "critical", "3 of 8 modes covered",
                         details={"modes": 3, "history": [8, 5, 3]})
        writer.add_alert(9, "d_overpowering", "warning", "D(x) - D(G(z)) > 5")
        writer.set_status("paused")
        writer.flush()
        with open_run(writer.run_id, path) as live:
            assert live.status == "paused" and live.ended is None and live.last_step == 10
    with open_run("dcgan", path) as run:
        assert run.config == config and run.status == "finished"
        assert run.ended is not None and run.started <= run.ended
        assert run.samples() == [(5, PNG + b"2"), (10, PNG)]
        assert run.samples("samples/ema") == [(5, PNG + b"ema")]
        alerts = run.alerts()
        assert [a.kind for a in alerts] == ["mode_collapse", "d_overpowering"]
        assert isinstance(alerts[0], Alert)
        assert alerts[0].evidence == {"modes": 3, "history": [8, 5, 3]}
        assert alerts[1].evidence == {} and alerts[1].severity == "warning" and alerts[1].step == 9


def test_several_runs_per_file_open_by_name_picks_newest_and_by_id(path):
    for name, value in [("ring", 1.0), ("grid", 2.0), ("ring", 3.0)]:
        with RunWriter(path, name=name, config={"value": value}) as writer:
            writer.write(scalars(x=([0], [value])))
    runs = list_runs(path)
    assert [(r.id, r.name, r.status, r.last_step) for r in runs] == [
        (1, "ring", "finished", 0), (2, "grid", "finished", 0), (3, "ring", "finished", 0)]
    assert runs[1].config == {"value": 2.0}
    with open_run("ring", path) as newest, open_run(1, path) as oldest:
        assert newest.id == 3 and newest.scalars("x")[1].tolist() == [3.0]
        assert oldest.id == 1 and oldest.scalars("x")[1].tolist() == [1.0]


def test_refresh_sees_the_writer_move_on(path):
    writer = RunWriter(path, name="live")
    writer.write(scalars(x=([0, 1], [1.0, 2.0])))
    writer.flush()
    run = open_run("live", path)
    assert (run.status, run.last_step) == ("running", 1)
    writer.write(scalars(x=([2], [3.0])))
    writer.close()
    assert run.scalars("x")[0].tolist() == [0, 1, 2]  # queries always see the latest commit
    assert run.status == "running"
    run.refresh()
    assert (run.status, run.last_step) == ("finished", 2)
    run.close()
    run.close()


def test_unknown_names_and_keys_say_what_exists(path):
    with RunWriter(path, name="ring") as writer:
        writer.write(scalars(D__grad_norm__total=([0], [1.0]), G__loss=([0], [1.0])))
    with pytest.raises(RunStoreError, match=r"no run with name 'rnig'.*\['ring'\]"):
        open_run("rnig", path)
    with pytest.raises(RunStoreError, match=r"no run with id 9.*\[1\]"):
        open_run(9, path)
    with pytest.raises(TypeError, match="name .str. or id .int."):
        open_run(1.0, path)
    with open_run("ring", path) as run:
        with pytest.raises(KeyError, match="close matches.*D/grad_norm/total"):
            run.scalars("D/grad_norm/totl")
        with pytest.raises(KeyError, match="no histogram key"):
            run.histograms("D/grad_norm/total")


def test_reader_does_not_need_the_writer_and_empty_store_lists_nothing(path):
    RunWriter(path, name="empty").close()
    assert [r.last_step for r in list_runs(path)] == [None]
    with open_run("empty", path) as run:
        assert run.keys() == [] and run.samples() == [] and run.alerts() == []


def test_a_running_run_whose_heartbeat_stopped_reads_stale(path):
    writer = RunWriter(path, name="quiet", heartbeat_every=60)  # no beat during this test
    writer.flush()
    time.sleep(0.3)
    [info] = list_runs(path, stale_after=0.1)
    assert info.status == "stale" and info.ended is None and info.heartbeat <= time.time() - 0.3
    with open_run("quiet", path, stale_after=0.1) as run:
        assert run.status == "stale"
        assert open_run("quiet", path).status == "running"  # default: 2 minutes
    writer.close()
    assert [r.status for r in list_runs(path, stale_after=0.1)] == ["finished"]


def test_an_idle_writer_keeps_beating(path):
    with RunWriter(path, name="idle", heartbeat_every=0.02) as writer:
        writer.flush()
        first = list_runs(path)[0].heartbeat
        deadline = time.monotonic() + 10
        while list_runs(path)[0].heartbeat == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list_runs(path)[0].heartbeat > first  # no write in between: the thread beats


def test_stale_after_and_heartbeat_every_must_be_positive(path):
    RunWriter(path, name="x").close()
    for bad in (0, -1.0, float("nan"), "120", True):
        with pytest.raises(ValueError, match="stale_after to be a positive number"):
            list_runs(path, stale_after=bad)
        with pytest.raises(ValueError, match="stale_after to be a positive number"):
            open_run("x", path, stale_after=bad)
        with pytest.raises(ValueError, match="heartbeat_every to be a positive number"):
            RunWriter(path, name="y", heartbeat_every=bad)


def old_store(path):
    """A store written by a gandiag from before heartbeats, with one run left running."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(schema.SCHEMA.replace(", heartbeat REAL", ""))
        conn.execute("INSERT INTO gandiag_meta VALUES ('format', ?), ('schema_version', '1')",
                     (schema.FORMAT,))
        conn.execute("INSERT INTO runs (name, config, status, started) VALUES "
                     "('old', '{}', 'running', 0.0)")
    conn.close()


def test_an_old_store_without_heartbeats_opens_and_keeps_its_status(path):
    old_store(path)
    [info] = list_runs(path, stale_after=0.1)
    assert (info.name, info.status, info.heartbeat) == ("old", "running", None)
    with open_run("old", path, stale_after=0.1) as run:
        assert run.status == "running"
    with RunWriter(path, name="new", heartbeat_every=60):  # the writer adds the column
        pass
    with sqlite3.connect(path) as conn:
        assert "heartbeat" in schema.run_columns(conn)
        assert conn.execute("SELECT value FROM gandiag_meta WHERE key = 'schema_version'"
                            ).fetchone() == ("1",)
    conn.close()
    assert [(r.name, r.status) for r in list_runs(path, stale_after=0.1)] == [
        ("old", "running"), ("new", "finished")]


def test_a_run_is_a_mapping_of_its_scalar_keys(path):
    from collections.abc import Mapping

    with RunWriter(path, name="ring") as writer:
        writer.write(scalars(G__loss=([2, 1], [0.2, 0.1]), D__loss=([1], [0.7])))
        writer.write(Records(histograms={"D/out_real": Histograms([1], np.linspace(-1, 1, 3), [[1, 2]])}))
    with open_run("ring", path) as run:
        assert isinstance(run, Mapping)
        assert len(run) == 2 and list(run) == ["D/loss", "G/loss"] == run.keys()
        assert "G/loss" in run and "D/out_real" not in run and 3 not in run  # histograms are not scalars
        for key in run:
            np.testing.assert_array_equal(run[key][0], run.scalars(key)[0])
            np.testing.assert_array_equal(run[key][1], run.scalars(key)[1])
        assert run["G/loss"][1].tolist() == [0.1, 0.2] and run.get("G/los") is None
        assert dict(run).keys() == {"D/loss", "G/loss"}
        assert run.keys()[:1] == ["D/loss"]  # still a list: it slices
        with pytest.raises(KeyError, match=r"no scalar key 'G/los'; close matches: \['G/loss', 'D/loss'\]; "
                                           r"run.keys\(\) lists all 2"):
            run["G/los"]


def test_runs_compare_and_hash_by_identity_without_reading_series(path, monkeypatch):
    with RunWriter(path, name="ring") as writer:
        writer.write(scalars(x=([0], [1.0])))
    with open_run("ring", path) as run, open_run("ring", path) as again:
        monkeypatch.setattr(type(run), "scalars", lambda self, key: pytest.fail("read a series"))
        assert run == run and run != again and len({run, again, run}) == 2
        assert run != {"x": (np.array([0]), np.array([1.0]))}


def test_a_missing_key_of_an_empty_run_says_nothing_is_recorded(path):
    RunWriter(path, name="empty").close()
    with open_run("empty", path) as run:
        assert len(run) == 0 and list(run) == [] and "x" not in run
        with pytest.raises(KeyError, match="has no scalar key 'x'; it has no scalar keys yet"):
            run["x"]


def test_the_store_file_is_store_and_the_old_path_keyword_still_works(tmp_path):
    path = tmp_path / "s.sqlite"
    RunWriter(store=path, name="kw").close()
    assert [info.name for info in list_runs(store=path)] == ["kw"]
    with pytest.warns(DeprecationWarning, match="store="):
        assert [info.name for info in list_runs(path=path)] == ["kw"]
    with pytest.warns(DeprecationWarning, match="store="):
        run = open_run("kw", path=path)
    run.close()
    with pytest.raises(RunStoreError, match="was closed .*open it again"):
        run.scalars("D/loss")
