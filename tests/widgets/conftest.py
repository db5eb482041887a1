import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train fastest, and steadily on a shared CPU, with one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
