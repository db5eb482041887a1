import pytest

from gandiag.hooks import buffer


@pytest.fixture(params=["cpu-fast-path", "device-path"])
def code_path(request, monkeypatch):
    """Run a test on both code paths: the CPU shortcuts (numpy) and the device code that
    a GPU runs (torch ops, no sync), here on the CPU."""
    monkeypatch.setattr(buffer, "CPU_FAST_PATH", request.param == "cpu-fast-path")
    return request.param
