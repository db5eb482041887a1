"""Known answers for mode coverage: toy mixtures (PacGAN) and class labels (stacked digits)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandiag.data import grid, ring
from gandiag.metrics.functional import mode_stats, toy_coverage

P_CHI2_2_LE_9 = 1 - math.exp(-4.5)  # 0.98889: HQ share of a perfect generator


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------- toy mixtures


@pytest.mark.parametrize("make", [ring, grid], ids=["ring", "grid"])
def test_true_samples_cover_every_mode(make) -> None:
    toy = make()
    n = 2500
    samples = toy.sample(n, generator=seeded(0))
    result = toy_coverage(samples, toy)
    assert result["modes"] == toy.n_modes
    assert result["hq"] == pytest.approx(P_CHI2_2_LE_9, abs=0.006)
    floor = (toy.n_modes - 1) / (2 * n)  # plug-in KL bias of a perfect generator
    assert 0.2 * floor < result["reverse_kl"] < 3 * floor
    assert sum(result["histogram"]) == round(result["hq"] * n)
    assert result["fair_modes"] == toy.n_modes
    assert {key: value for key, value in result.items() if key != "histogram"} == toy.evaluate(samples)


@pytest.mark.parametrize("make, log_k", [(ring, 2.0794), (grid, 3.2189)], ids=["ring", "grid"])
def test_all_samples_on_one_mode_give_log_k(make, log_k: float) -> None:
    toy = make()
    collapsed = toy.centers[3] + 0.5 * toy.std * torch.randn(500, 2, generator=seeded(1))
    result = toy_coverage(collapsed, toy)
    assert result["modes"] == 1 and result["hq"] == 1.0
    assert result["reverse_kl"] == pytest.approx(log_k, abs=1e-4)
    assert result["histogram"][3] == 500 and sum(result["histogram"]) == 500


def test_uniform_on_four_of_eight_ring_modes_gives_log_2() -> None:
    toy = ring()
    samples = toy.centers[[1, 3, 5, 7]].repeat(50, 1) + 0.5 * toy.std * torch.randn(200, 2, generator=seeded(2))
    result = toy_coverage(samples.numpy(), toy)
    assert result["modes"] == 4
    assert result["reverse_kl"] == pytest.approx(math.log(2), abs=1e-12)
    assert result["histogram"] == [0, 50, 0, 50, 0, 50, 0, 50]
    assert all(type(count) is int for count in result["histogram"])


def test_toy_coverage_needs_a_mixture() -> None:
    with pytest.raises(TypeError, match=r"expected mixture to be a gandiag.data.ToyMixture, got "
                                        r"function; pass e.g. gandiag.data.ring\(\)"):
        toy_coverage(torch.zeros(4, 2), ring)
    with pytest.raises(ValueError, match=r"expected samples of shape \(n, 2\)"):
        toy_coverage(torch.zeros(4, 3), ring())


# ------------------------------------------------------------------- class labels


def test_uniform_stacked_digit_labels_give_the_kl_floor() -> None:
    # 2n·KL(p̂ ‖ uniform) is the G-test statistic, ≈ χ² with K − 1 degrees of freedom, so
    # KL ≈ (K − 1) / (2n) = 0.0192 with sd √(2(K − 1)) / (2n) = 0.00086; 4 sd tolerance.
    n, k = 26_000, 1000
    labels = np.random.default_rng(0).integers(0, k, size=n)
    result = mode_stats(labels, k)
    assert result["modes"] == k
    mean, sd = (k - 1) / (2 * n), math.sqrt(2 * (k - 1)) / (2 * n)
    assert mean == pytest.approx(0.019, abs=5e-4)
    assert result["kl"] == pytest.approx(mean, abs=4 * sd)


def test_a_hundred_equally_used_modes_of_a_thousand_give_log_10() -> None:
    labels = np.repeat(np.arange(100) * 10, 260)
    result = mode_stats(labels, 1000)
    assert result == {"modes": 100, "kl": pytest.approx(math.log(10), abs=1e-12)}
    assert type(result["modes"]) is int and type(result["kl"]) is float


def test_uniform_labels_give_exactly_zero_and_tensors_work() -> None:
    labels = torch.arange(10).repeat(7)
    assert mode_stats(labels, 10) == {"modes": 10, "kl": 0.0}
    assert mode_stats(labels.numpy().astype(np.uint8), 10) == {"modes": 10, "kl": 0.0}
    assert mode_stats(torch.tensor([4]), 10) == {"modes": 1, "kl": pytest.approx(math.log(10))}


@pytest.mark.parametrize("labels, error, message", [
    (np.array([0.0, 1.0]), TypeError, r"expected integer labels, got an array of dtype float64"),
    (torch.tensor([0.0, 1.0]), TypeError, r"expected integer labels, got a tensor of dtype "
                                          r"torch.float32; pass class indices"),
    (torch.tensor([True]), TypeError, r"expected integer labels, got a tensor of dtype torch.bool"),
    ([0, 1], TypeError, r"expected labels as a torch.Tensor or numpy.ndarray, got list"),
    (np.array([0, 3, 10, 12]), ValueError, r"expected labels in \[0, 10\), got 2 of 4 outside it "
                                           r"\(range \[0, 12\]\)"),
    (np.array([-1, 3]), ValueError, r"expected labels in \[0, 10\), got 1 of 2 outside it"),
    (np.zeros((2, 3), dtype=int), ValueError, r"expected a non-empty 1-D array of labels, got "
                                              r"shape \(2, 3\)"),
    (np.zeros(0, dtype=int), ValueError, r"expected a non-empty 1-D array of labels, got shape \(0,\)"),
])
def test_bad_labels_are_errors(labels, error, message) -> None:
    with pytest.raises(error, match=message):
        mode_stats(labels, 10)


def test_n_modes_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError, match=r"mode_stats: expected n_modes to be an int >= 1, got 0"):
        mode_stats(np.array([0]), 0)
