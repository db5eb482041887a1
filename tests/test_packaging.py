"""pyproject.toml and environment.yml declare the same dependencies, and the layout holds."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# conda names that differ from the PyPI ones
CONDA_TO_PYPI = {"pytorch": "torch"}


def _requirement(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", text)
    assert match, f"cannot parse requirement {text!r}"
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(_requirement(t) for t in texts)


def environment_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("dependencies:") + 1
    found = {}
    for line in lines[start:]:
        item = re.fullmatch(r"  - (\S[^#]*)", line)  # top-level conda entries only
        if item is None:
            continue
        name, spec = _requirement(item.group(1))
        if name in ("python", "pip"):
            continue
        found[CONDA_TO_PYPI.get(name, name)] = spec
    return found


def test_environment_yml_matches_pyproject():
    assert environment_requirements() == pyproject_requirements()


def test_runtime_dependencies_named_by_the_issue_are_declared():
    declared = pyproject_requirements()
    for name in ("torch", "numpy", "scipy", "plotly", "ipywidgets", "anywidget", "jupyterlab",
                 "scikit-learn", "tqdm", "pytest", "nbval"):
        assert name in declared, name


def test_top_level_layout():
    for name in ("gandiag", "notebooks", "tests", "environment.yml", "pyproject.toml",
                 "README.md", "benchmarks", ".ci/run", "gandiag/py.typed"):
        assert (ROOT / name).exists(), name
