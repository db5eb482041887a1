"""The README's snippets run as written, and every command and option it lists exists.

The Python blocks run in order in one namespace (later blocks use what earlier ones made,
as a reader pasting them into one notebook would), in a fresh folder. Only their length
is cut: `Trainer.fit` and `Dashboard.train` run at most `STEPS_CAP` steps, so the file
runs in seconds on a CPU; everything else is executed exactly as printed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
STEPS_CAP = 60


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _gandiag_commands() -> list[list[str]]:
    """Every `gandiag ...` command line of the README's bash blocks, continuation lines
    joined, comments dropped."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "gandiag" in words:  # also `python -m gandiag` and `torchrun ... -m gandiag`
                commands.append(words[words.index("gandiag") + 1:])
    return commands


def test_the_readme_has_python_snippets_and_gandiag_commands():
    assert len(_blocks("python")) >= 5 and len(_gandiag_commands()) >= 6


def test_python_snippets_run_as_written(tmp_path, monkeypatch):
    import gandiag
    from gandiag.train.trainer import Trainer
    from gandiag.widgets.dashboard import Dashboard

    fit, train = Trainer.fit, Dashboard.train
    monkeypatch.setattr(Trainer, "fit", lambda self, steps=None: fit(
        self, min(self.config.steps if steps is None else steps, STEPS_CAP)))
    monkeypatch.setattr(Dashboard, "train", lambda self, steps=None: train(self, STEPS_CAP))
    monkeypatch.chdir(tmp_path)
    # The README is read after the quickstart: the demo's runs are in the store.
    from gandiag.cli import main

    assert main(["demo", "--steps", str(STEPS_CAP), "--device", "cpu"]) == 0
    namespace: dict = {"gandiag": gandiag}
    for number, block in enumerate(_blocks("python"), start=1):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as error:  # name the block, so a failure points at the README
            pytest.fail(f"README python block {number} failed: {error!r}\n{block}")
        dash = namespace.get("dash")
        if dash is not None:
            dash.wait()


def _help(subcommand: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gandiag", subcommand, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_listed_option_exists_with_every_listed_choice():
    helps: dict[str, str] = {}
    for words in _gandiag_commands():
        subcommand = words[0]
        if subcommand not in helps:
            helps[subcommand] = _help(subcommand)
        for word in (w.strip("[]") for w in words[1:]):
            if word.startswith("--"):
                assert word in helps[subcommand], f"gandiag {subcommand} has no option {word}"
            for choice in word.split("|") if "|" in word else ():
                assert choice in helps[subcommand], f"gandiag {subcommand}: {choice!r} not in its help"


@pytest.mark.parametrize("data, model", [("ring", "toy"), ("grid", "toy-small"),
                                         ("digits", "dcgan"), ("stacked", "mlp")])
def test_every_listed_model_trains_on_the_data_it_is_listed_for(tmp_path, data, model):
    from gandiag.cli import main

    assert main(["train", "--data", data, "--model", model, "--steps", "2", "--batch-size", "8",
                 "--log-every", "1", "--out", str(tmp_path), "--store", str(tmp_path / "s.sqlite"),
                 "--name", f"{data}-{model}"]) == 0
