"""The smoothing math (TensorBoard's debiased EMA) on known answers."""

import numpy as np
import pytest

from gandiag.widgets.smoothing import DEFAULT_SMOOTHING, ema


def tensorboard(values, weight):
    """TensorBoard's scalar-dashboard smoothing, transcribed as a plain loop."""
    last, seen, out = 0.0, 0, []
    constant = all(v == values[0] for v in values)
    for value in values:
        if constant or not np.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        seen += 1
        out.append(last / (1 - weight ** seen))
    return np.array(out)


def test_weight_zero_is_the_identity_and_a_constant_stays_constant():
    values = np.random.default_rng(0).normal(size=500)
    assert np.array_equal(ema(values, 0.0), values)
    assert np.array_equal(ema(np.full(1000, 1.3), 0.99), np.full(1000, 1.3))  # exact, no creep


def test_debiasing_keeps_the_first_value_and_matches_the_hand_computed_average():
    # w = 0.5 on [1, 2, 3]: s = 0.5, 1.25, 2.125; debiased by 1 - 0.5^n: 1, 5/3, 17/7
    assert np.allclose(ema(np.array([1.0, 2.0, 3.0]), 0.5), [1.0, 5 / 3, 17 / 7], rtol=1e-12)
    values = np.random.default_rng(1).normal(3.0, 1.0, size=2000)
    assert ema(values, 0.9)[0] == pytest.approx(values[0], rel=1e-12)
    assert np.allclose(ema(values, 0.9), tensorboard(values, 0.9), rtol=1e-9)
    assert DEFAULT_SMOOTHING == 0.6


def test_a_nonfinite_point_stays_visible_and_does_not_poison_later_values():
    values = np.array([1.0, 2.0, np.nan, 3.0, np.inf, 4.0])
    smoothed = ema(values, 0.5)
    assert np.isnan(smoothed[2]) and np.isinf(smoothed[4])  # kept as they are: a gap, as raw
    finite = np.isfinite(values)
    assert np.allclose(smoothed[finite], ema(values[finite], 0.5))  # skipped by the average
    assert np.allclose(smoothed, tensorboard(values, 0.5), equal_nan=True)
    assert np.isnan(ema(np.full(3, np.nan), 0.6)).all()


def test_smoothing_lowers_the_noise_and_bad_weights_say_what_to_pass():
    noise = np.random.default_rng(2).normal(size=10_000)
    assert ema(noise, 0.9).std() < 0.4 * noise.std()  # ~sqrt((1-w)/(1+w)) = 0.23 of it
    for bad in (1.0, -0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match=r"expected a smoothing weight in \[0, 1\)"):
            ema(noise, bad)
