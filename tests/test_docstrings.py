"""Every example in gandiag's docstrings runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import gandiag

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(gandiag.__path__, prefix="gandiag.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", ["gandiag"] + MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
