"""History: bounded memory however long the run, full resolution for recent steps."""

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag.core.history import History
from gandiag.core.records import Histograms, Records


def flush_of(first, n=50, keys=("D/loss", "G/loss", "D/out_real/mean"), bins=40):
    steps = np.arange(first, first + n)
    return Records(
        scalars={key: (steps, np.sin(steps / 100.0) + i) for i, key in enumerate(keys)},
        histograms={"D/out_real/hist": Histograms(steps, np.linspace(-10, 10, bins + 1), np.ones((n, bins)))},
    )


def test_memory_is_flat_over_100_000_recorded_steps():
    history = History(recent=10_000, overview=2_000, histogram_recent=1_000)
    sizes = {}
    for first in range(1, 100_001, 50):
        history.append(flush_of(first))
        if first - 1 in (20_000, 50_000, 99_950):
            sizes[first - 1] = history.nbytes
    budget = 3 * (10_000 + 2_000 + 64) * 16 + (1_000 + 2_000 + 64) * (40 * 8 + 8)
    assert max(sizes.values()) <= budget
    assert sizes[99_950] <= 1.05 * sizes[50_000]  # flat: twice the steps, the same memory
    steps, values = history["D/loss"]
    assert steps[0] <= 64 and steps[-1] == 100_000  # the overview still spans the run
    np.testing.assert_array_equal(steps[-10_000:], np.arange(90_001, 100_001))  # recent: every step
    assert np.all(np.diff(steps) > 0)


def test_overview_points_are_block_means_and_keep_nan_visible():
    history = History(recent=4, overview=4)
    values = np.arange(1.0, 21.0)
    values[2] = np.nan
    history.append(Records(scalars={"x": (np.arange(1, 21), values)}))
    steps, kept = history["x"]
    np.testing.assert_array_equal(steps[-4:], [17, 18, 19, 20])
    assert np.isnan(kept[0])  # the block holding the NaN shows it


def test_state_dict_round_trips():
    history = History(recent=100)
    history.append(flush_of(1))
    restored = History(recent=100)
    restored.load_state_dict(history.state_dict())
    for key in history:
        np.testing.assert_array_equal(restored[key][1], history[key][1])
    np.testing.assert_array_equal(restored.histograms["D/out_real/hist"].counts,
                                  history.histograms["D/out_real/hist"].counts)
    with pytest.raises(KeyError, match="no recorded series 'D/los'"):
        history["D/los"]


def test_a_monitor_over_thousands_of_steps_stays_within_its_budget():
    torch.manual_seed(0)
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=1e-3), torch.optim.SGD(D.parameters(), lr=1e-3)
    sizes = []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, recent=200, overview=50, log_every=25) as monitor:
        for step in range(1, 2001):
            fake = G(torch.randn(4, 2))
            opt_d.zero_grad()
            (D(fake.detach()).mean() - D(torch.randn(4, 2)).mean()).backward()
            opt_d.step()
            opt_g.zero_grad()
            (-D(fake).mean()).backward()
            opt_g.step()
            if step % 500 == 0:
                monitor.flush()
                sizes.append(monitor.history.nbytes)
    assert sizes[-1] <= sizes[1] * 1.1  # flat once the recent window is full
    assert monitor.history["D/out_real/mean"][0][-1] == 2000


def test_rows_held_stay_within_the_budget_however_long_the_run():
    # One value per flush (weight norms are measured every 50 steps) over a very long run:
    # the stride reaches thousands of rows, yet the rows held stay recent + overview + 1
    # (the block being filled is a running sum), in a few merged chunks.
    history = History(recent=100, overview=20)
    most = 0
    for step in range(1, 200_001):
        history.append(Records(scalars={"D/weight_norm/total": (np.array([step]), np.array([1.0]))}))
        if step % 997 == 0:
            most = max(most, len(history["D/weight_norm/total"][0]))
    series = history._scalars["D/weight_norm/total"]
    assert series.stride >= 4096 and most <= 100 + 20 + 1
    assert len(series._chunks) <= 2
    steps, values = history["D/weight_norm/total"]
    assert steps[-1] == 200_000 and np.all(np.diff(steps) > 0) and np.all(values == 1.0)


def test_a_partly_filled_block_is_shown_as_its_mean_so_far():
    history = History(recent=2, overview=100)
    history.append(Records(scalars={"x": (np.arange(1, 6), np.array([1.0, 3.0, 5.0, 7.0, 9.0]))}))
    steps, values = history["x"]  # stride 1 here: every evicted row is a block of its own
    np.testing.assert_array_equal(steps, [1, 2, 3, 4, 5])
    series = history._scalars["x"]
    series.stride = 4  # as after a long run
    history.append(Records(scalars={"x": (np.arange(6, 9), np.array([11.0, 13.0, 15.0]))}))
    steps, values = history["x"]  # rows 6 (and 4, 5) left the window: one block of 3 rows so far
    np.testing.assert_array_equal(steps, [1, 2, 3, 6, 7, 8])
    np.testing.assert_allclose(values, [1.0, 3.0, 5.0, (7.0 + 9.0 + 11.0) / 3, 13.0, 15.0])
