import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: the many tiny forwards of the metric tests crawl when OpenMP
    threads share a busy core (70x slower measured on a shared 2-core box); results do
    not depend on it (the classifier runs in fixed chunks)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
