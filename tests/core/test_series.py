"""One way to read series: a stored run, a history and a dict give the same series, to
the reader, to `diagnose` and to `build_figure`; the reader stays on the ground floor."""

import ast
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gandiag.core import History, Records, read_series, series_of
from gandiag.detect import diagnose
from gandiag.store import RunWriter, open_run
from gandiag.widgets import build_figure
from tests.detect.series import healthy, set_from

CORE = Path(__file__).resolve().parents[2] / "gandiag" / "core"


def troubled() -> dict:
    """A healthy run that collapses at step 3500 and turns NaN at 5800."""
    series = healthy(seed=2)
    set_from(series, "D/spread_ratio", 3500, 0.02)
    set_from(series, "nonfinite/loss", 5800, 1.0)
    return series


@pytest.fixture
def sources(tmp_path):
    """The same records as a dict, a History and a stored Run (written in three pieces)."""
    series = troubled()
    history = History()
    history.append(Records(scalars=series))
    path = str(tmp_path / "gandiag.sqlite")
    with RunWriter(path, name="troubled") as writer:
        for lo, hi in ((0, 2000), (2000, 4500), (4500, 6000)):
            writer.write(Records(scalars={k: (s[lo:hi], v[lo:hi]) for k, (s, v) in series.items()}))
    with open_run("troubled", path) as run:
        yield {"dict": series, "history": history, "run": run}


def assert_same_series(got, expected):
    assert sorted(got) == sorted(expected)
    for key, (steps, values) in expected.items():
        np.testing.assert_array_equal(got[key][0], steps)
        np.testing.assert_array_equal(got[key][1], values)
        assert got[key][0].dtype == np.int64 and got[key][1].dtype == np.float64


def test_a_run_a_history_and_a_dict_read_alike(sources):
    expected = sources["dict"]
    for name, source in sources.items():
        series, loss = series_of(source)
        assert_same_series(series, expected)
        assert_same_series(read_series(source), expected)
        assert loss is None, name


def test_a_run_a_history_and_a_dict_get_the_same_diagnosis(sources):
    alerts = {name: diagnose(source) for name, source in sources.items()}
    assert {a.kind for a in alerts["dict"]} >= {"mode_collapse", "nonfinite"}
    assert alerts["run"] == alerts["history"] == alerts["dict"]


def test_a_run_a_history_and_a_dict_draw_the_same_figure(sources):
    figures = {name: build_figure(source, title="troubled").to_json() for name, source in sources.items()}
    assert figures["run"] == figures["history"] == figures["dict"]


def test_trainers_monitors_and_records_batches_are_read_through_what_they_hold(sources):
    history = sources["history"]
    trainer = SimpleNamespace(history=history, config=SimpleNamespace(loss="wgan"))
    series, loss = series_of(trainer)
    assert loss == "wgan" and sorted(series) == sorted(history)
    monitor = SimpleNamespace(history=history, config={"loss": "hinge"})  # attach's config
    assert series_of(monitor)[1] == "hinge"
    batch = Records(scalars={"D/loss": ([2, 1], [0.2, 0.1])})
    assert series_of(batch)[0]["D/loss"][0].tolist() == [1, 2]


def test_series_are_sorted_by_step_stably_and_copied():
    steps, values = np.array([3, 1, 1, 2]), np.array([3.0, 1.0, 1.5, 2.0])
    series, _ = series_of({"x": (steps, values)})
    assert series["x"][0].tolist() == [1, 1, 2, 3] and series["x"][1].tolist() == [1.0, 1.5, 2.0, 3.0]
    in_order = (np.arange(4), np.ones(4))
    copied, _ = series_of({"x": in_order})
    assert not np.shares_memory(copied["x"][0], in_order[0])  # the caller's own arrays


def test_reading_is_lazy_one_key_when_asked():
    class Counting(Mapping):
        def __init__(self, series):
            self.series, self.reads = series, []

        def __getitem__(self, key):
            self.reads.append(key)
            return self.series[key]

        def __contains__(self, key):  # as a stored run's: no reading
            return key in self.series

        def __iter__(self):
            return iter(self.series)

        def __len__(self):
            return len(self.series)

    source = Counting(healthy(n=100) | {"my/own": (np.arange(3), np.ones(3))})
    view = read_series(source)
    assert "my/own" in view and len(view) == len(source.series) and source.reads == []
    build_figure(view)
    assert "my/own" not in source.reads  # no panel draws it, so it is never read


def test_bad_sources_and_series_say_what_was_expected():
    with pytest.raises(TypeError, match=r"build_figure: expected a stored run, a Trainer.*got int"):
        build_figure(42)
    with pytest.raises(TypeError, match=r"series_of: expected .*got list"):
        series_of([1, 2])
    with pytest.raises(ValueError, match=r"series_of: 'D/loss' has 3 steps but 2 values"):
        series_of({"D/loss": ([1, 2, 3], [0.1, 0.2])})


def test_the_reader_imports_only_numpy_and_the_ground_floor():
    tree = ast.parse((CORE / "series.py").read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    outside = {m for m in modules if m.startswith("gandiag") and not m.startswith("gandiag.core")}
    third_party = {m.split(".")[0] for m in modules} - {"__future__", "collections", "typing", "numpy",
                                                        "gandiag"}
    assert not outside and not third_party, (outside, third_party)
