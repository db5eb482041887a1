"""`stalled` on coverage records with known answers: G's samples never reach the data."""

import numpy as np

from gandiag import diagnose


def precision_series(values, every=250, first=250):
    steps = np.arange(first, first + every * len(values), every)
    return {"coverage/precision": (steps, np.asarray(values, float))}


def stalled(series, **kwargs):
    return [a for a in diagnose(series, **kwargs) if a.kind == "stalled"]


def test_a_g_off_the_data_for_1500_steps_after_the_warm_up_is_stalled():
    (alert,) = stalled(precision_series([0.0, 0.01, 0.0, 0.02, 0.01, 0.0, 0.01, 0.0, 0.01, 0.0, 0.0]))
    assert (alert.step, alert.detected_at, alert.severity) == (750, 2000, "warning")
    assert alert.evidence["evaluations"] == 6 and "G is not reaching the data" in alert.message


def test_a_slow_g_that_reaches_the_data_in_time_is_not_stalled():
    # the slowest healthy natural run: under 0.05 until step 1 250, then rising
    assert stalled(precision_series([0.01, 0.01, 0.0, 0.0, 0.01, 0.08, 0.14, 0.17, 0.37, 0.43])) == []


def test_too_few_evaluations_or_a_short_run_say_nothing():
    assert stalled(precision_series([0.0] * 6)) == []             # steps 250..1500: 1 000 after warm-up
    assert stalled(precision_series([0.0] * 4, every=1000)) == []  # 4 evaluations, but 1 500 steps need more
