"""DeviceBuffer: rows committed on the device, read in one copy, never silently lost."""

import numpy as np
import pytest
import torch

from gandiag.hooks.buffer import DeviceBuffer


def test_rows_come_back_in_order_with_their_steps_across_wraps():
    buffer = DeviceBuffer("cpu", capacity=4)
    value = buffer.columns(["x"])
    seen = []
    for step in range(1, 11):
        buffer.staging[value] += step * 10
        buffer.commit()
        if step % 3 == 0:
            seen.append(buffer.read())
    seen.append(buffer.read())
    steps = np.concatenate([s for s, _ in seen])
    rows = np.concatenate([r for _, r in seen])
    np.testing.assert_array_equal(steps, np.arange(1, 11))
    np.testing.assert_array_equal(rows[:, 0], np.arange(1, 11) * 10)


def test_columns_added_later_keep_the_rows_already_committed():
    buffer = DeviceBuffer("cpu", capacity=4)
    a = buffer.columns(["a"])
    buffer.staging[a] += 1
    buffer.commit()
    b = buffer.columns(["b"])
    buffer.staging[b] += 2
    buffer.commit()
    steps, rows = buffer.read()
    np.testing.assert_array_equal(rows, [[1, 0], [0, 2]])


def test_overwritten_rows_are_reported_not_silently_dropped():
    buffer = DeviceBuffer("cpu", capacity=2)
    buffer.columns(["x"])
    for step in range(1, 6):
        buffer.commit()
    with pytest.warns(RuntimeWarning, match="3 recorded steps were overwritten"):
        steps, _ = buffer.read()
    assert steps.tolist() == [4, 5]


def test_steps_continue_from_a_set_step():
    buffer = DeviceBuffer("cpu", capacity=3)
    buffer.columns(["x"])
    buffer.set_step(41)
    buffer.commit()
    buffer.commit()
    assert buffer.read()[0].tolist() == [42, 43]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_commits_replay_inside_a_captured_cuda_graph():
    buffer = DeviceBuffer("cuda", capacity=8)
    value = buffer.columns(["x"])
    source = torch.ones(1, device="cuda", dtype=buffer.dtype)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up on a side stream, as torch.cuda.graphs asks
        buffer.staging[value] += source
        buffer.commit()
    torch.cuda.current_stream().wait_stream(stream)
    buffer.read()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        buffer.staging[value] += source
        buffer.commit()
    for i in range(5):
        source.fill_(i + 2.0)
        graph.replay()
    steps, rows = buffer.read()
    assert steps.tolist() == [2, 3, 4, 5, 6]  # capture itself committed nothing
    assert rows[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_addresses_change_when_a_new_column_reallocates_the_buffer_only():
    # capture_step recaptures its graphs when they change: a graph writes fixed memory.
    buffer = DeviceBuffer("cpu", capacity=4)
    x = buffer.columns(["x"])
    before = buffer.addresses
    buffer.add(x, 1.0)
    buffer.commit()
    buffer.read()
    assert buffer.addresses == before
    buffer.columns(["y"])
    assert buffer.addresses != before
