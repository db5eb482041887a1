"""A subset of the natural-run corpus (`benchmarks/natural_runs.py`): runs with nothing
injected, labelled from ground truth by the benchmark's own rules, against the alerts.

Each run is one of the corpus's (at its full length, or cut where its label is already
settled), chosen among those whose outcome does not hang on float rounding: a long
vanilla run on the ring ends healthy on one CPU and partially collapsed on another
(`ATEN_CPU_CAPABILITY=default`), so none is used here. The labels hold as in the table of
benchmarks/README.md: a healthy run raises no warning or critical alert, a run that
fails on its own is detected by an alert of the kind that names its failure, and a run
too short to judge says so instead of "no problems found".
"""

import importlib.util
import pathlib
import sys

import pytest

import gandiag

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def corpus():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("natural_runs", BENCHMARKS / "natural_runs.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.mark.parametrize("setup, seed, steps, label", [
    ("digits conditional D", 0, 1500, "healthy"),  # a sure D (info) while G covers all ten classes
    ("ring fast D", 0, 1500, "total collapse"),    # lr_d 20x lr_g, 5 D steps per G step
    ("ring frozen G", 0, None, "stalled"),         # the loop never steps G's optimizer
])
def test_a_natural_run_gets_the_alerts_its_outcome_calls_for(corpus, setup, seed, steps, label):
    run = corpus.train(setup, seed, steps)
    result = corpus.judge(run)
    assert result["label"] == label, result
    serious = [(a["kind"], a["severity"], a["at"]) for a in result["alerts"] if a["severity"] != "info"]
    if label == "healthy":
        assert serious == [], serious
    else:
        assert result["detected"], (label, serious)


def test_a_short_run_says_what_it_could_not_judge(corpus):
    run = corpus.train("ring ns", 0, steps=500)
    assert corpus.label(run)[0] == "not converged"
    diagnosis = gandiag.detect.diagnosis_of(run["history"], loss=run["loss"])
    unjudged = {r.kind for r in diagnosis.readiness() if not r.judged}
    assert {"mode_collapse", "oscillation", "divergence"} <= unjudged
    text = diagnosis.summary("a 500-step run")
    assert "too short to judge mode_collapse" in text and "no problems found." not in text
