"""DeviceBuffer: rows committed on the device, read in one copy, never silently lost."""

import numpy as np
import pytest

from gandiag.hooks.buffer import DeviceBuffer


def test_rows_come_back_in_order_with_their_steps_across_wraps():
    buffer = DeviceBuffer("cpu", capacity=4)
    value = buffer.columns(["x"])
    seen = []
    for step in range(1, 11):
        buffer.staging[value] += step * 10
        buffer.commit(step)
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
    buffer.commit(1)
    b = buffer.columns(["b"])
    buffer.staging[b] += 2
    buffer.commit(2)
    steps, rows = buffer.read()
    np.testing.assert_array_equal(rows, [[1, 0], [0, 2]])


def test_overwritten_rows_are_reported_not_silently_dropped():
    buffer = DeviceBuffer("cpu", capacity=2)
    buffer.columns(["x"])
    for step in range(1, 6):
        buffer.commit(step)
    with pytest.warns(RuntimeWarning, match="3 recorded steps were overwritten"):
        steps, _ = buffer.read()
    assert steps.tolist() == [4, 5]
