"""StepRow and the row writers: D calls reach the slot of the update they served, the
counters move together (and come back whole for a captured step), and the host and
device writers put the same statistics in the same rows."""

import numpy as np
import pytest
import torch

from gandiag.hooks import buffer as buffer_module
from gandiag.hooks.buffer import DeviceBuffer
from gandiag.hooks.calls import Call, DCalls
from gandiag.hooks.gradients import ModelLayers
from gandiag.hooks.layout import Layout
from gandiag.hooks.outputs import SLOTS, OutputStats
from gandiag.hooks.rows import DeviceRows, HostRows, row_writer
from gandiag.hooks.steprow import StepRow


class Writer:
    """A row writer that notes what it was handed."""

    def __init__(self):
        self.commits = []

    def commit(self, row, calls, spreads):
        self.commits.append((row, [len(c) for c in calls], {s: len(v) for s, v in spreads.items()}))


def pending_calls(real=1, fake=2):
    calls = DCalls(d_output="logits", output_fn=None, device=torch.device("cpu"))
    for kind, n in (("real", real), ("fake", fake)):
        calls.pending.extend(Call(kind, True, False, torch.zeros(3), torch.tensor(1.0)) for _ in range(n))
    return calls


def test_pending_calls_go_to_the_slots_of_the_update_they_served():
    row, calls = StepRow(), pending_calls(real=1, fake=2)
    row.attribute("D", calls)
    assert calls.pending == []
    row.attribute("G", pending_calls(real=0, fake=1))
    assert {slot: len(held) for slot, held in row.calls.items()} == \
        {"D/out_real": 1, "D/out_fake": 2, "G/out_fake": 1, "G/out_real": 0}
    assert {slot: len(held) for slot, held in row.spreads.items()} == \
        {"D/out_real": 1, "D/out_fake": 2, "G/out_fake": 1, "G/out_real": 0}


def test_a_row_is_due_when_the_step_ends_and_counted_when_committed():
    row, writer = StepRow(), Writer()
    row.begin("D")
    row.attribute("D", pending_calls())
    row.end()
    assert (row.step, row.due, row.committed, row.unflushed) == (1, True, 0, 0)
    row.commit(writer)
    assert writer.commits == [(0, [1, 2, 0, 0], dict.fromkeys(SLOTS, 0) | {"D/out_real": 1, "D/out_fake": 2})]
    assert (row.step, row.due, row.committed, row.unflushed) == (1, False, 1, 1)
    assert not any(row.calls.values()) and not any(row.spreads.values())  # handed over
    row.replayed()
    assert (row.step, row.committed, row.unflushed) == (2, 2, 2)
    row.flushed()
    assert (row.step, row.committed, row.unflushed) == (2, 2, 0)


def test_a_g_first_loop_keeps_its_row_open_for_the_d_updates_after_g():
    row, writer = StepRow(), Writer()
    for _ in range(2):
        row.begin("G")  # the second G update ends the first iteration's row
        if row.due:
            row.commit(writer)
        row.attribute("G", pending_calls(real=0, fake=1))
        row.end()
        assert not row.due and row.open and row.partial  # G's update alone: D's is to come
        row.begin("D")
        row.attribute("D", pending_calls(real=1, fake=1))
        assert not row.due and not row.partial
    assert row.order == "G-first" and row.step == 2
    assert [c[:2] for c in writer.commits] == [(0, [1, 1, 1, 0])]


def test_what_follows_the_last_g_update_of_a_d_first_loop_is_a_partial_row():
    row = StepRow()
    row.begin("D")
    row.attribute("D", pending_calls())
    row.end()
    row.commit(Writer())
    assert not row.open
    row.begin("D")  # a trailing critic update
    row.attribute("D", pending_calls())
    assert row.open and row.partial and row.order == "D-first"


def test_restore_puts_every_counter_back_and_leaves_no_row_due():
    # A captured step runs its hooks (the step ends, its row commits) but no step happens.
    row, writer = StepRow(), Writer()
    row.end()
    row.commit(writer)
    before = row.snapshot()
    row.attribute("D", pending_calls())
    row.end()
    row.commit(writer)
    row.end()
    row.restore(before)
    assert row.snapshot() == before == (1, 1, 1) and not row.due
    row.attribute("G", pending_calls())
    row.discard()  # a failed capture: what its hooks collected never ran
    assert not any(row.calls.values()) and not any(row.spreads.values())


def writer_and_buffer():
    buffer = DeviceBuffer("cpu", capacity=4)
    stats = OutputStats(bins=4, value_range=(-2.0, 2.0))
    layers = ModelLayers(torch.nn.Linear(2, 1))
    layout = Layout(buffer, stats, layers, ModelLayers(torch.nn.Linear(1, 2)), leak_check=False)
    return row_writer(buffer, stats, layout), buffer


@pytest.mark.parametrize("fast", [True, False], ids=["cpu-fast-path", "device-path"])
def test_the_writer_is_chosen_once_from_where_the_buffer_lives(monkeypatch, fast):
    monkeypatch.setattr(buffer_module, "CPU_FAST_PATH", fast)
    rows, buffer = writer_and_buffer()
    assert type(rows) is (HostRows if fast else DeviceRows)
    assert rows.capturable is not fast and rows.stays_on_device(torch.zeros(())) is not fast
    monkeypatch.setattr(buffer_module, "CPU_FAST_PATH", not fast)
    buffer.columns(["later"])  # growing the buffer keeps the way it was built
    assert buffer.on_host is fast


def test_host_and_device_writers_fill_the_same_rows(monkeypatch):
    torch.manual_seed(0)
    steps = [[[torch.randn(5)], [torch.randn(3), torch.randn(4) * 3], [], [torch.randn(2)]],
             [[], [torch.tensor([float("nan"), 1.0])], [torch.randn(6)], []]]
    spreads = [{"D/out_real": [torch.tensor(1.5)], "D/out_fake": [torch.tensor(0.5), torch.tensor(2.0)]},
               {"D/out_fake": [torch.tensor(0.25)]}]
    read = {}
    for fast in (True, False):
        monkeypatch.setattr(buffer_module, "CPU_FAST_PATH", fast)
        rows, buffer = writer_and_buffer()
        for number in range(6):  # more rows than the ring holds: the oldest are overwritten
            k = number % 2
            rows.commit(number, steps[k], dict.fromkeys(SLOTS, []) | spreads[k])
        rows.fill(6)
        with pytest.warns(RuntimeWarning, match="2 recorded steps were overwritten"):
            read[fast] = buffer.read()
    (host_steps, host_rows), (device_steps, device_rows) = read[True], read[False]
    np.testing.assert_array_equal(host_steps, [3, 4, 5, 6])
    np.testing.assert_array_equal(host_steps, device_steps)
    np.testing.assert_allclose(host_rows, device_rows, rtol=1e-12)
