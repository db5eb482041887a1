import numpy as np
import pytest

from gandiag.widgets.decimate import minmax


@pytest.mark.parametrize("n", [1, 1999, 2000, 2001, 10_007, 1_000_000])
def test_never_more_than_max_points_and_float32(n):
    x, y = minmax(np.arange(n), np.random.default_rng(0).standard_normal(n))
    assert len(x) == len(y) <= 2000 and x.dtype == y.dtype == np.float32
    assert np.all(np.diff(x) > 0)  # step order kept


def test_spikes_both_ways_survive():
    values = np.zeros(100_000)
    values[12_345], values[77_777] = 50.0, -30.0
    x, y = minmax(np.arange(100_000), values, max_points=200)
    assert y.max() == 50 and y.min() == -30
    assert x[np.argmax(y)] == 12_345 and x[np.argmin(y)] == 77_777


def test_a_nan_stays_visible_as_a_gap():
    values = np.ones(50_000)
    values[30_000] = np.nan
    x, y = minmax(np.arange(50_000), values, max_points=100)
    assert np.isnan(y).sum() == 1 and x[np.isnan(y)][0] == 30_000


def test_short_series_are_unchanged_and_bad_input_is_refused():
    x, y = minmax([1, 2, 3], [0.5, np.nan, 2.0])
    assert x.tolist() == [1, 2, 3] and np.isnan(y[1])
    with pytest.raises(ValueError, match="3 steps but 2 values"):
        minmax([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="max_points >= 4"):
        minmax([1], [1], max_points=3)


@pytest.mark.parametrize("n", [10, 100_000])
def test_infinities_and_float32_overflow_become_gaps(n):
    # one infinity in a trace breaks plotly's autorange for the whole figure
    values = np.ones(n)
    values[3], values[5] = np.inf, -1e300
    x, y = minmax(np.arange(n), values, max_points=100)
    gaps = set(x[np.isnan(y)].tolist())
    assert np.isfinite(y[~np.isnan(y)]).all() and (gaps >= {3.0, 5.0} if n <= 100 else 3.0 in gaps)


@pytest.mark.parametrize("n", [2001, 6000, 999_999])
def test_the_first_and_last_steps_are_always_kept(n):
    # a live view must end at the latest step, whatever the bucket's min and max are
    x, y = minmax(np.arange(1, n + 1), np.sin(np.arange(n)), max_points=2000)
    assert x[0] == 1 and x[-1] == n and len(x) <= 2000
