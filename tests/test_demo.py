"""`gandiag demo` at a tiny size: the table leads with the fair-share count, and every number
it prints is the one the run store and the JSON summary hold for the run's last step."""

import json

import numpy as np
import pytest
import torch

from gandiag.demo import run_demo
from gandiag.store import open_run

STEPS = 60  # flushes (and evaluations) every 12 steps: 12, 24, 36, 48, 60


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo")
    store = str(out / "runs.sqlite")
    threads = torch.get_num_threads()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            assert run_demo(steps=STEPS, out=str(out), device="cpu", seed=1, store=store) == 0
    finally:
        torch.set_num_threads(threads)  # the demo sets one thread for itself
    return printed.getvalue(), out, store


def table_rows(text):
    lines = text.splitlines()
    (header,) = [i for i, line in enumerate(lines) if line.startswith("run ")]
    assert lines[header].split()[:4] == ["run", "step", "fair", "share"]  # the lead column
    return {line.split()[0]: line.split()[1:] for line in lines[header + 1:header + 3]}


def test_the_table_leads_with_fair_share_and_prints_the_stored_final_evaluation(demo):
    text, out, store = demo
    rows = table_rows(text)
    assert sorted(rows) == ["packed", "vanilla"]
    for name, (step, fair, covered, effective, hq, reverse_kl, spread_ratio, _seconds) in rows.items():
        with open_run(name, store) as run:
            stored = {key: run.scalars(f"metric/{key}") for key in
                      ("fair_modes", "modes", "hq", "reverse_kl")}
            spreads = run.scalars("D/spread_ratio")
        with open(out / f"{name}.json") as f:
            summary = json.load(f)
        # The last stored evaluation is at the run's last step, the step the table names.
        assert int(step) == STEPS == summary["steps"]
        assert all(steps[-1] == STEPS for steps, _ in stored.values())
        last = {key: values[-1] for key, (_, values) in stored.items()}
        # Counts are integers: exact everywhere.
        assert fair == f"{int(last['fair_modes'])}/8" == f"{summary['metrics']['fair_modes']}/8"
        assert covered == f"{int(last['modes'])}/8" == f"{summary['metrics']['modes']}/8"
        # Floats as printed: within half a unit of their last printed digit.
        for printed, key, scale, tolerance in ((hq, "hq", 100, 0.05),
                                               (reverse_kl, "reverse_kl", 1, 5e-4)):
            assert float(printed) == pytest.approx(scale * last[key], abs=tolerance), key
            assert last[key] == pytest.approx(float(summary["metrics"][key]), rel=1e-12), key  # "inf" stays inf
        assert spreads[0][-1] == STEPS  # the hooks record the spread at every step
        assert float(spread_ratio) == pytest.approx(float(np.median(spreads[1][-100:])), abs=0.005)
        assert float(effective) == pytest.approx(8 * torch.exp(torch.tensor(-last["reverse_kl"])).item(),
                                                 abs=0.05)
        # The progress line's last evaluation, kept in the summary, is the stored one.
        last_step, last_evaluation = summary["evaluations"][-1]
        assert last_step == STEPS and last_evaluation == summary["metrics"]


def test_the_demo_explains_the_lead_column_and_reads_it_out(demo):
    text, _, _ = demo
    assert "fair share  modes holding at least half an even share (1/16)" in text
    rows = table_rows(text)
    vanilla, packed = (int(rows[name][1].split("/")[0]) for name in ("vanilla", "packed"))
    sentence = (f"collapsed: at step {STEPS} the modes holding their fair share are {vanilla} of 8\n("
                if vanilla < packed else
                f"No collapse shows here: the modes holding their fair share are {vanilla} of 8 ")
    assert sentence in text
