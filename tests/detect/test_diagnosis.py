"""The engine: live equals offline, sources, thresholds, bad input, state, robustness."""

import numpy as np
import pytest
import torch

from gandiag.detect import Diagnosis, diagnose
from gandiag.core.records import Records
from tests.detect.series import healthy, retotal, set_from


def troubled():
    """One run with several problems at known steps."""
    series = healthy(seed=4)
    _, total = series["D/grad_norm/total"]
    total[[2499, 2599, 2699]] *= 60                                    # exploding at 2700
    set_from(series, "D/spread_ratio", 3500, 0.02)                      # collapse from 3500
    set_from(series, "G/grad_norm/net.2", 4000, series["G/grad_norm/net.2"][1][3999:] * 1e-5)
    retotal(series, "G")                                                # vanishing from 4000
    s, loss = series["D/loss"]
    series["D/loss"] = (s, np.where(s >= 3000, loss + 0.4 * np.sin(2 * np.pi * s / 80), loss))
    set_from(series, "nonfinite/loss", 5800, 1.0)                      # NaN at 5800
    return series


def test_live_flushes_give_the_offline_alerts_exactly():
    series = troubled()
    offline = diagnose(series)
    assert {a.kind for a in offline} == {"exploding_gradients", "mode_collapse", "vanishing_gradients",
                                         "oscillation", "nonfinite"}
    assert diagnose(series, chunk=50) == offline == diagnose(series, chunk=777)
    live = Diagnosis()
    raised = []
    for start in range(1, 6001, 50):   # as a monitor's flushes would arrive
        raised += live.update(Records(scalars={k: (s[start - 1:start + 49], v[start - 1:start + 49])
                                               for k, (s, v) in series.items()}))
    assert raised == live.alerts == offline
    assert [a.detected_at for a in offline] == sorted(a.detected_at for a in offline)


def test_state_dict_round_trips_through_a_weights_only_checkpoint(tmp_path):
    series = troubled()
    first = Diagnosis()
    half = {k: (s[:3000], v[:3000]) for k, (s, v) in series.items()}
    rest = {k: (s[3000:], v[3000:]) for k, (s, v) in series.items()}
    first.update(half)
    torch.save(first.state_dict(), tmp_path / "diagnosis.pt")
    resumed = Diagnosis()
    resumed.load_state_dict(torch.load(tmp_path / "diagnosis.pt", weights_only=True))
    first.update(rest)
    resumed.update(rest)
    assert resumed.alerts == first.alerts == diagnose(series)


def test_thresholds_are_configurable_and_checked():
    series = healthy()
    set_from(series, "D/spread_ratio", 3000, 0.5)   # between the default 0.3 and 0.6
    assert diagnose(series) == []
    (alert,) = diagnose(series, thresholds={"mode_collapse": {"spread": 0.6}})
    assert alert.kind == "mode_collapse"
    with pytest.raises(ValueError, match="unknown alert kind 'mode_colapse'.*did you mean 'mode_collapse'"):
        Diagnosis(thresholds={"mode_colapse": {}})
    with pytest.raises(ValueError, match=r"unknown names \['sprad'\].*thresholds of mode_collapse are"):
        Diagnosis(thresholds={"mode_collapse": {"sprad": 0.5}})
    with pytest.raises(ValueError, match="expected spread to be a number > 0"):
        Diagnosis(thresholds={"mode_collapse": {"spread": -1}})
    with pytest.raises(ValueError, match="warmup"):
        Diagnosis(warmup=-5)
    assert [d.kind for d in Diagnosis(kinds=["nonfinite"]).detectors] == ["nonfinite"]


def test_warmup_keeps_trend_detectors_quiet_but_not_nonfinite():
    series = troubled()
    assert [a.kind for a in diagnose(series, warmup=7000)] == ["nonfinite"]
    # A problem that lasts past the warm-up is reported when the warm-up ends.
    late = [(a.kind, a.step) for a in diagnose(series, warmup=5000)]
    assert ("mode_collapse", 5000) in late


def test_bad_input_gets_clear_errors():
    with pytest.raises(TypeError, match="diagnose: expected a stored run, a Trainer"):
        diagnose(42)
    with pytest.raises(ValueError, match="'D/loss' has 3 steps but 2 values"):
        Diagnosis().update({"D/loss": ([1, 2, 3], [0.1, 0.2])})
    with pytest.raises(ValueError, match="diagnose: 'D/loss' has 3 steps but 2 values"):
        diagnose({"D/loss": ([1, 2, 3], [0.1, 0.2])})
    with pytest.raises(TypeError, match="Diagnosis.update: expected .* Records batch"):
        Diagnosis().update(42)


def test_the_reader_is_the_ground_floors_and_still_importable_from_here():
    from gandiag.core import series_of as core_series_of
    from gandiag.detect.diagnosis import series_of

    assert series_of is core_series_of
    series, loss = series_of({"D/loss": ([2, 1], [0.2, 0.1])})
    assert series["D/loss"][0].tolist() == [1, 2] and loss is None


def test_steps_already_seen_are_not_counted_twice():
    diagnosis = Diagnosis(kinds=["nonfinite"])
    assert len(diagnosis.update({"nonfinite/loss": ([1, 2], [0.0, 1.0])})) == 1
    assert diagnosis.update({"nonfinite/loss": ([1, 2], [0.0, 1.0])}) == []


def test_a_failing_detector_is_switched_off_with_a_warning_the_others_go_on(monkeypatch):
    from gandiag.detect.collapse import ModeCollapse

    def broken(self, view, warmup):
        raise ZeroDivisionError("bug")
    monkeypatch.setattr(ModeCollapse, "scan", broken)
    diagnosis = Diagnosis()
    with pytest.warns(RuntimeWarning, match="mode_collapse detector failed.*switched off"):
        diagnosis.update({"nonfinite/loss": ([1, 2], [0.0, 0.0])})
    assert "mode_collapse" not in [d.kind for d in diagnosis.detectors]
    assert diagnosis.update({"nonfinite/loss": ([3], [1.0])})[0].kind == "nonfinite"


def test_empty_and_unrelated_series_give_no_alerts():
    assert diagnose({}) == []
    assert diagnose({"my/metric": (np.arange(10), np.ones(10))}) == []
