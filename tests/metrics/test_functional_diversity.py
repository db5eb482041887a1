"""Known answers for the cheap collapse signals: spread, near duplicates, fixed-noise drift."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandiag.metrics.functional import (
    fixed_noise_drift,
    mean_pairwise_distance,
    near_duplicate_rate,
    relative_diversity,
)
from gandiag.metrics.functional import _inputs


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_collapsed_batch_has_no_diversity_and_is_all_duplicates() -> None:
    real = images(256, seed=0)
    collapsed = real[5:6].repeat(256, 1, 1, 1)  # one point, repeated
    assert relative_diversity(collapsed, real) == pytest.approx(0.0, abs=1e-6)
    assert near_duplicate_rate(collapsed) == 1.0


def test_healthy_batch_of_the_real_distribution_is_as_diverse_with_no_duplicates() -> None:
    real, fake = images(256, seed=0), images(256, seed=1)
    assert relative_diversity(fake, real) == pytest.approx(1.0, abs=0.02)
    assert near_duplicate_rate(fake) == 0.0
    assert relative_diversity(fake.numpy(), real) == relative_diversity(fake, real)


def test_mean_pairwise_distance_known_answers() -> None:
    # Distinct pairs only: (5 + 5 + 0) / 3, the zero distance of the copy included.
    assert mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]])) \
        == pytest.approx(10 / 3, rel=1e-12)
    # Unbiased for E‖X − X'‖ = 2Γ((d+1)/2)/Γ(d/2) = √π for 2-D standard normals.
    x = torch.randn(2000, 2, generator=torch.Generator().manual_seed(2))
    assert mean_pairwise_distance(x) == pytest.approx(math.sqrt(math.pi), rel=0.03)


def test_block_size_does_not_change_the_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    x = images(300, seed=3)
    whole = mean_pairwise_distance(x)
    monkeypatch.setattr(_inputs, "BLOCK_BYTES", 8 * 300 * 7)  # blocks of 7 rows
    assert mean_pairwise_distance(x) == pytest.approx(whole, rel=1e-12)
    assert near_duplicate_rate(torch.cat([x, x[:30]])) == 60 / 330


def test_near_duplicate_rate_counts_copies_and_near_copies() -> None:
    x = images(100, seed=4).reshape(100, -1).double()  # float64: 1e-9 steps survive
    copies = x[:10] + 1e-9 * torch.randn(10, 192, generator=torch.Generator().manual_seed(5))
    batch = torch.cat([x, x[10:20], copies])  # 10 exact copies and 10 near copies, in pairs
    assert near_duplicate_rate(batch) == 40 / 120
    assert near_duplicate_rate(batch, threshold=0.0) == 20 / 120  # exact copies only
    assert near_duplicate_rate(batch * 1000.0) == near_duplicate_rate(batch)  # scale-free
    assert near_duplicate_rate(batch, threshold=1e9) == 1.0


def test_near_duplicate_default_is_robust_to_outliers_and_majority_collapse() -> None:
    healthy = images(100, seed=6)
    outlier = torch.full((1, 3, 8, 8), 1e6)  # a diverging sample does not inflate the scale
    assert near_duplicate_rate(torch.cat([healthy, outlier])) == 0.0
    # 80 % one exact point: the median radius is 0 and exact copies are what counts.
    batch = torch.cat([healthy[:1].repeat(80, 1, 1, 1), healthy[1:21]])
    assert near_duplicate_rate(batch) == 0.8


def test_fixed_noise_drift_known_answers() -> None:
    previous = np.array([[3.0, 4.0], [0.0, 5.0]])  # mean norm 5
    assert fixed_noise_drift(previous, previous) == 0.0
    assert fixed_noise_drift(previous, previous + [0.0, 0.5]) == pytest.approx(0.1, rel=1e-12)
    assert fixed_noise_drift(previous, -previous) == pytest.approx(2.0, rel=1e-12)
    x = images(16, seed=7)
    assert fixed_noise_drift(x, x + 0.0) == 0.0


# ----------------------------------------------------------------------- bad input


def test_batch_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"mean_pairwise_distance: expected x as a batch of shape "
                                         r"\(n, ...\), got \(5,\); for scalar samples pass x\[:, None\]"):
        mean_pairwise_distance(torch.zeros(5))
    with pytest.raises(ValueError, match=r"near_duplicate_rate: expected at least 2 x samples, got 1"):
        near_duplicate_rate(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"expected at least 1 previous samples, got 0"):
        fixed_noise_drift(torch.zeros(0, 4), torch.zeros(0, 4))
    with pytest.raises(ValueError, match=r"expected x as a batch of shape \(n, ...\), got \(3, 0\)"):
        mean_pairwise_distance(np.zeros((3, 0)))
    with pytest.raises(ValueError, match=r"relative_diversity: expected fake and real samples of one "
                                         r"size, got 192 and 64 values per sample"):
        relative_diversity(images(4, seed=0), torch.zeros(4, 64))
    with pytest.raises(ValueError, match=r"fixed_noise_drift: expected previous and current of one "
                                         r"shape \(the same fixed noise\), got \(4, 192\) and \(5, 192\)"):
        fixed_noise_drift(images(4, seed=0), images(5, seed=0))


def test_value_errors() -> None:
    with pytest.raises(ValueError, match=r"expected a real batch with some spread, got 8 identical "
                                         r"real samples"):
        relative_diversity(images(8, seed=0), torch.ones(8, 3, 8, 8))
    with pytest.raises(ValueError, match=r"expected previous samples with a non-zero norm"):
        fixed_noise_drift(torch.zeros(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"expected threshold >= 0, got -1.0"):
        near_duplicate_rate(images(4, seed=0), threshold=-1.0)
    with pytest.raises(ValueError, match=r"expected threshold to be a finite number, got nan"):
        near_duplicate_rate(images(4, seed=0), threshold=float("nan"))
    broken = images(10, seed=0)
    broken[[1, 4], 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"relative_diversity: expected finite fake, got 2 of 10 rows"):
        relative_diversity(broken, images(10, seed=1))
