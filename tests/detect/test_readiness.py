"""Readiness: a run too short for a detector says so instead of "no problems found"."""

import numpy as np
import torch

from gandiag.detect import Diagnosis, diagnose, diagnosis_of, format_diagnosis
from tests.detect.series import healthy

TREND = {"mode_collapse", "d_overpowering", "vanishing_gradients", "exploding_gradients",
         "oscillation", "divergence", "runaway_critic"}


def by_kind(diagnosis):
    return {r.kind: r for r in diagnosis.readiness()}


def with_leak_check(series):
    s = series["D/loss"][0][:20]
    return series | {"grad_leak/D": (s, np.zeros(20)), "grad_leak/G": (s, np.zeros(20))}


def test_a_300_step_run_is_too_short_for_the_trend_detectors_but_judged_for_nonfinite():
    ready = by_kind(diagnosis_of(with_leak_check(healthy(n=300))))
    assert {k for k, r in ready.items() if not r.judged} == TREND | {"stalled"}
    assert ready["stalled"].status == "not recorded"  # no label-free coverage in these series
    assert {r.status for k, r in ready.items() if k in TREND} == {"too short"}
    assert ready["nonfinite"].judged and ready["gradient_leak"].judged and ready["frozen_model"].judged
    assert ready["oscillation"].reason == (
        "too short to judge oscillation: needs 3 checks (every 100 steps after the warm-up, step 500) "
        "on the last 2048 records (about step 2300); this run has 0 (last step 300)")
    assert ready["d_overpowering"].about == 699 and ready["d_overpowering"].last_step == 300


def test_a_long_enough_run_is_judged_by_every_detector():
    ready = by_kind(diagnosis_of(with_leak_check(healthy(n=2300))))
    assert ready.pop("stalled").status == "not recorded"  # it reads the label-free coverage only
    assert all(r.judged and r.status == "judged" for r in ready.values()), ready
    assert ready["oscillation"].seen == 3 and ready["oscillation"].needed == 3
    assert not by_kind(diagnosis_of(healthy(n=2299)))["oscillation"].judged   # the estimate was exact


def test_judged_means_the_rule_could_have_fired():
    """Spikes at the first steps it can judge fire exactly when readiness says judged."""
    for n, judged in ((501, False), (502, True)):
        series = healthy(n=n)
        s, total = series["D/grad_norm/total"]
        series["D/grad_norm/total"] = (s, np.where(s >= 500, total * 1000, total))
        diagnosis = diagnosis_of(series, kinds=["exploding_gradients"])
        assert bool(diagnosis.alerts) == judged == diagnosis.readiness()[0].judged


def test_not_recorded_names_the_keys_and_how_to_record_them():
    series = {k: v for k, v in healthy(n=3000).items() if "grad_norm" not in k}
    ready = by_kind(diagnosis_of(series))
    assert ready["exploding_gradients"].status == "not recorded"
    assert ready["exploding_gradients"].reason.startswith(
        "exploding_gradients not recorded: needs D/grad_norm/total or G/grad_norm/total (pass opt_d")
    assert ready["gradient_leak"].status == "not recorded"


def test_wgan_critic_makes_d_overpowering_not_applicable():
    ready = by_kind(diagnosis_of(healthy(n=3000), loss="wgan"))
    assert ready["d_overpowering"].status == "not applicable" and not ready["d_overpowering"].judged
    assert "not applicable to a WGAN critic" in ready["d_overpowering"].reason
    assert by_kind(diagnosis_of(healthy(n=3000)))["d_overpowering"].judged   # logits: judged


def coverage(evaluations):
    """Label-free coverage records: {step: (jsd ratio to its null, precision)}."""
    steps = np.array(sorted(evaluations), dtype=np.int64)
    ratio, precision = (np.array([evaluations[s][i] for s in steps], float) for i in (0, 1))
    return {"coverage/regions_jsd": (steps, 0.004 * ratio),
            "coverage/regions_jsd_null": (steps, np.full(len(steps), 0.004)),
            "coverage/precision": (steps, precision)}


def test_mode_collapse_needs_two_label_free_evaluations_after_the_warm_up():
    one = by_kind(diagnosis_of(coverage({1000: (1, 0.9)}), kinds=["mode_collapse"]))["mode_collapse"]
    assert not one.judged and one.seen == 1 and one.about == 1250
    assert one.reason == (
        "too short to judge mode_collapse: needs 2 label-free coverage evaluations with "
        "coverage/precision >= 0.2 after the warm-up (step 500) (about step 1250, one evaluation "
        "every 250 steps); this run has 1 (last step 1000)")
    three = by_kind(diagnosis_of(coverage({500: (1, 0.9), 1000: (1, 0.9), 1500: (1, 0.9)})))["mode_collapse"]
    assert three.judged and three.seen == 3
    off_data = by_kind(diagnosis_of(coverage({s: (9, 0.1) for s in (500, 1000, 1500)})))["mode_collapse"]
    assert not off_data.judged and "(3 more left out: too few of G's samples" in off_data.reason


def test_batch_diversity_judges_mode_collapse_while_coverage_is_still_short():
    series = healthy(n=800) | coverage({500: (1, 0.9)})
    ready = by_kind(diagnosis_of(series))["mode_collapse"]
    assert ready.judged and ready.partial.startswith("too short to judge by coverage: needs 2 label-free")
    assert "Judged in part:\n  - mode_collapse: too short to judge by coverage" in diagnosis_of(series).summary()


def test_counters_round_trip_a_weights_only_checkpoint_and_old_states_still_load(tmp_path):
    series = with_leak_check(healthy(n=3000)) | coverage({500: (1, 0.9), 1000: (1, 0.9)})
    half = {k: (s[s <= 1500], v[s <= 1500]) for k, (s, v) in series.items()}
    rest = {k: (s[s > 1500], v[s > 1500]) for k, (s, v) in series.items()}
    first = Diagnosis()
    first.update(half)
    torch.save(first.state_dict(), tmp_path / "diagnosis.pt")
    resumed = Diagnosis()
    resumed.load_state_dict(torch.load(tmp_path / "diagnosis.pt", weights_only=True))
    assert resumed.readiness() == first.readiness()
    first.update(rest)
    resumed.update(rest)
    assert resumed.readiness() == first.readiness() == diagnosis_of(series).readiness()
    old = {k: v for k, v in first.state_dict().items() if k not in ("seen", "points")}
    old_run = Diagnosis()
    old_run.load_state_dict(old)   # a checkpoint from before the counters
    assert by_kind(old_run)["nonfinite"].judged   # counted again from the kept records


def test_format_diagnosis_never_says_a_bare_no_problems_found_when_some_could_not_judge():
    short = diagnosis_of(healthy(n=300))
    text = format_diagnosis(short.alerts, name="run 'x'", readiness=short.readiness())
    first, *rest = text.splitlines()
    assert first == ("Diagnosis of run 'x': no problems found by the 2 detectors that could judge it "
                     "(nonfinite, frozen_model); 9 could not judge it yet.")
    assert rest[0] == "Could not judge (9 of 11 detectors):"
    assert "  - too short to judge mode_collapse: needs 200 records of D/spread_ratio" in text
    assert format_diagnosis([], name="run 'x'") == "Diagnosis of run 'x': no problems found."   # as before
    evaluations = np.arange(500, 2300, 250)
    precision = {"coverage/precision": (evaluations, np.full(len(evaluations), 0.5))}
    full = diagnosis_of(with_leak_check(healthy(n=2300)) | precision)
    assert full.summary() == "Diagnosis of this run: no problems found."
    nothing = diagnosis_of({"coverage/regions_jsd": (np.array([100]), np.array([0.1]))}, kinds=["divergence"])
    assert "no detector could judge it yet" in nothing.summary()


def test_alerts_come_first_and_what_could_not_judge_follows():
    series = healthy(n=300)
    series["nonfinite/loss"] = (series["nonfinite/loss"][0], (series["nonfinite/loss"][0] >= 200).astype(float))
    diagnosis = diagnosis_of(series)
    text = diagnosis.summary()
    assert text.startswith("Diagnosis of this run: 1 alert(s) (nonfinite)")
    assert text.index("[critical] nonfinite") < text.index("Could not judge (9 of 11 detectors):")
    assert diagnose(series) == diagnosis.alerts


def test_the_cli_does_not_call_a_short_run_healthy(tmp_path, capsys):
    from gandiag.cli import main
    from gandiag.core.records import Records
    from gandiag.store import RunWriter

    store = tmp_path / "s.sqlite"
    with RunWriter(store, name="short") as writer:
        writer.write(Records(scalars={k: v for k, v in healthy(n=500).items()}))
    assert main(["diagnose", "short", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "no problems found." not in out and "no problems found by the 2 detectors that could judge it" in out
    assert "too short to judge oscillation" in out and "(last step 500)" in out


def test_the_report_says_what_could_not_judge():
    from gandiag.widgets.report_tables import alerts_html

    short = diagnosis_of(healthy(n=300))
    page = alerts_html([], readiness=short.readiness())
    assert page.startswith("<p>No problems found by the 2 detector(s) that could judge it (nonfinite, frozen_model).</p>")
    assert "<b>Could not judge</b> (9 of 11 detectors)" in page and "too short to judge oscillation" in page
    assert alerts_html([]) == ("<p>No problems found: no alert was stored with the run and a fresh "
                               "diagnosis finds none.</p>")   # without readiness, as before
