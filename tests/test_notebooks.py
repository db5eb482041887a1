"""Committed tutorials stay small and carry no error output (nbval executes them separately)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_small_and_has_no_error_output(path):
    assert path.stat().st_size < 2 * 1024 * 1024, f"{path.name}: strip widget state / big outputs"
    notebook = json.loads(path.read_text())
    assert "widgets" not in notebook.get("metadata", {}), f"{path.name}: strip metadata.widgets"
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name} stores an error output"
