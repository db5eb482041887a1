"""The `gandiag` command: demo and train end to end at tiny sizes, and bad flags."""

import json
import subprocess
import sys

import gandiag
from gandiag.cli import main


def test_demo_prints_progress_and_both_runs_metrics(tmp_path, capsys):
    store = tmp_path / "runs" / "gandiag.sqlite"
    assert main(["demo", "--steps", "60", "--out", str(tmp_path), "--device", "cpu",
                 "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "Loss_D:" in out and "D(x):" in out and "D(G(z)):" in out
    table = out[out.index("Ring metrics"):]
    assert "vanilla" in table and "packed" in table and "/8" in table
    summary = json.loads((tmp_path / "packed.json").read_text())
    assert summary["steps"] == 60 and summary["config"]["pack"] == 2
    assert (tmp_path / "vanilla.pt").exists()
    assert f"recorded in the run store {store}" in out
    runs = gandiag.list_runs(store)
    assert [(r.name, r.status, r.last_step) for r in runs] == [("vanilla", "finished", 60), ("packed", "finished", 60)]
    assert gandiag.open_run("packed", store).scalars("metric/modes")[0][-1] == 60
    assert "Diagnosis of the vanilla run: " in out and "gandiag diagnose vanilla" in out
    assert (tmp_path / "vanilla-report.html").exists() and "vanilla-report.html" in out


def test_train_with_stabilisers_and_loss(tmp_path, capsys):
    argv = ["train", "--data", "grid", "--loss", "hinge", "--steps", "20", "--stabilise",
            "pack=2", "--stabilise", "spectral_norm", "--out", str(tmp_path), "--name", "g", "--store", str(tmp_path / "s.sqlite")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "g.json").read_text())["metrics"]
    assert set(metrics) == {"modes", "fair_modes", "hq", "reverse_kl"}
    assert f'"modes": {metrics["modes"]}' in printed


def test_train_on_digits(tmp_path):
    assert main(["train", "--data", "digits", "--steps", "5", "--batch-size", "16",
                 "--out", str(tmp_path), "--name", "d", "--store", str(tmp_path / "s.sqlite")]) == 0
    summary = json.loads((tmp_path / "d.json").read_text())
    assert summary["model"] == "mlp" and -1.0 <= summary["metrics"]["min"] <= summary["metrics"]["max"] <= 1.0
    assert 1 <= summary["metrics"]["modes"] <= 10 and summary["metrics"]["kl"] >= 0  # classes covered


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--loss", "wgan_gp", "--out", str(tmp_path)]) == 2
    assert "did you mean 'wgan-gp'" in capsys.readouterr().err
    assert main(["train", "--stabilise", "spectral", "--out", str(tmp_path)]) == 2
    assert "unknown stabiliser 'spectral'" in capsys.readouterr().err
    # points are no images: a model that fits not the data is refused before training
    assert main(["train", "--data", "ring", "--model", "dcgan", "--out", str(tmp_path),
                 "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "build_pair('dcgan'): expected sample_shape" in capsys.readouterr().err


def test_python_dash_m_gandiag():
    done = subprocess.run([sys.executable, "-m", "gandiag", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "demo" in done.stdout


def test_same_seed_same_run(tmp_path):
    for name in ("a", "b"):
        assert main(["train", "--steps", "30", "--out", str(tmp_path), "--name", name,
                     "--store", str(tmp_path / "s.sqlite")]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    assert a["metrics"] == b["metrics"] and a["evaluations"] == b["evaluations"]


def test_diagnose_a_stored_run(tmp_path, capsys):
    import numpy as np

    from gandiag.core.records import Records
    from gandiag.store import RunWriter
    from gandiag.store.png import samples_png

    store = tmp_path / "s.sqlite"
    steps = np.arange(1, 101)
    with RunWriter(store, name="broken") as writer:
        writer.write(Records(scalars={"D/loss": (steps, np.where(steps >= 70, np.nan, 1.3)),
                                      "nonfinite/loss": (steps, (steps >= 70).astype(float))}))
        for step in (10, 50, 90):
            writer.add_sample(step, samples_png(np.random.default_rng(step).normal(size=(100, 2))))
    assert main(["diagnose", "broken", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Diagnosis of run 1 ('broken', finished, 100 steps): 1 alert(s) (nonfinite)")
    assert "[critical] nonfinite at step 70" in out and "  try: " in out
    assert main(["diagnose", "#1", "--store", str(store), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["kind"] == "nonfinite" and row["step"] == 70 and row["details"]["fixes"]


def test_diagnose_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["diagnose", "x", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no run store at" in capsys.readouterr().err
    main(["train", "--steps", "5", "--out", str(tmp_path), "--store", str(tmp_path / "s.sqlite")])
    capsys.readouterr()
    assert main(["diagnose", "nope", "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "no run with name 'nope'" in capsys.readouterr().err


def test_report_is_one_offline_html_file_with_escaped_strings(tmp_path, capsys):
    import numpy as np

    from gandiag.core.records import Records
    from gandiag.store import RunWriter
    from gandiag.store.png import samples_png

    store = tmp_path / "s.sqlite"
    steps = np.arange(1, 101)
    with RunWriter(store, name="<script>alert(1)</script>", config={"note": "<b>mine</b>"}) as writer:
        writer.write(Records(scalars={"D/loss": (steps, np.where(steps >= 70, np.nan, 1.3)),
                                      "nonfinite/loss": (steps, (steps >= 70).astype(float))}))
        for step in (10, 50, 90):
            writer.add_sample(step, samples_png(np.random.default_rng(step).normal(size=(100, 2))))
    out = tmp_path / "r" / "report.html"
    assert main(["report", "--id", "1", "--store", str(store), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    text = out.read_text()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;mine&lt;/b&gt;" in text and "nonfinite" in text and "set_detect_anomaly" in text
    # plotly.js is inlined (no script loaded from the network): works offline
    assert 'src="http' not in text and "src='http" not in text and len(text) > 1_000_000
    # the stored samples: the last in the samples panel, all three in the gallery
    assert "samples at step 90" in text and text.count("<figcaption>step ") == 3
