"""The CI subset of the fault-injection suite (benchmarks/fault_injection.py runs them all,
over several seeds): each run built to fail raises its alert after the fault, nothing
fires before it, and the healthy run stays quiet."""

import pytest

from gandiag.scenarios import SCENARIOS, run_scenario


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_raises_its_alert_after_the_fault_and_nothing_before(name):
    run = run_scenario(name, seed=0)
    assert run.false_alarms == [], [str(a) for a in run.false_alarms]
    if run.scenario.expect is None:
        assert run.alerts == []
        return
    found = run.found(run.scenario.expect)
    assert found is not None, f"{name}: no {run.scenario.expect} alert; got {[a.kind for a in run.alerts]}"
    assert found.explanation and found.fixes and found.evidence
    assert found.detected_at - run.onset <= 1500  # detection delay, in steps (measured: 1 to 1300)


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario 'colapse'"):
        run_scenario("colapse")
