import json
import math

import pytest

from gandiag.detect import Alert
from gandiag.store import RunWriter, open_run


def make(**changes):
    fields = dict(kind="exploding_gradients", step=120, severity="critical",
                  message="D's gradient norm is exploding", evidence={"max": 512.0, "growth": math.inf},
                  explanation="the loss surface got steep", fixes=["clip the gradient norm"],
                  detected_at=150)
    return Alert(**(fields | changes))


def test_alert_round_trips_through_the_store_with_evidence_and_fixes(tmp_path):
    alert = make()
    assert alert.evidence["growth"] == "inf"   # JSON has no inf: kept readable
    json.dumps(alert.row())
    path = tmp_path / "s.sqlite"
    with RunWriter(path, name="r") as writer:
        writer.add_alert(**alert.row())
    with open_run("r", path) as run:
        (stored,) = run.alerts()
    assert stored == alert and stored.fixes == ["clip the gradient norm"] and stored.detected_at == 150


def test_rows_written_without_detector_fields_keep_their_details_as_evidence():
    alert = Alert.from_row(3, "error", "critical", "NonFiniteLossError: ...", {"where": "D/loss"})
    assert alert.evidence == {"where": "D/loss"} and alert.fixes == [] and alert.detected_at == 3


def test_str_shows_summary_why_and_fixes():
    text = str(make())
    assert text.splitlines()[0] == ("[critical] exploding_gradients at step 120 (raised at step 150): "
                                    "D's gradient norm is exploding")
    assert "  why: the loss surface got steep" in text and "  try: clip the gradient norm" in text


def test_bad_severity_is_refused():
    with pytest.raises(ValueError, match="expected severity in"):
        make(severity="fatal")
