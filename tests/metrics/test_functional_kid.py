"""Known answers for KID: unbiased polynomial-kernel MMD² (Bińkowski et al. 2018)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gandiag.metrics.functional import kid


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64) + shift


def brute_force_mmd2(x: np.ndarray, y: np.ndarray, gamma: float, coef: float, degree: int) -> float:
    """The unbiased estimator written as its definition, pair by pair."""
    def k(a, b):
        return (gamma * float(a @ b) + coef) ** degree

    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i, j in itertools.product(range(m), repeat=2))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / m**2


@pytest.mark.parametrize("degree, gamma, coef", [(3, None, 1.0), (2, 0.5, 0.0), (1, 1.0, 2.0)])
def test_whole_set_subsets_equal_the_definition(degree, gamma, coef) -> None:
    # subset_size = n: every subset is the whole set (reordered), so every subset's value
    # is the U-statistic of the full sets and the std is 0.
    x, y = features(25, 5, seed=0), features(25, 5, seed=1, shift=0.3)
    result = kid(x, y, subsets=3, subset_size=25, degree=degree, gamma=gamma, coef=coef)
    expected = brute_force_mmd2(x.numpy(), y.numpy(), gamma if gamma else 1 / 5, coef, degree)
    assert result["mean"] == pytest.approx(expected, rel=1e-10)
    assert result["std"] == pytest.approx(0.0, abs=1e-10 * abs(expected))


def test_identical_distributions_give_about_zero() -> None:
    result = kid(features(1000, 16, seed=2), features(1000, 16, seed=3), subsets=50, subset_size=200)
    assert abs(result["mean"]) < 3 * result["std"]


def test_shifted_distributions_give_clearly_positive() -> None:
    result = kid(features(1000, 16, seed=2), features(1000, 16, seed=3, shift=0.5),
                 subsets=50, subset_size=200)
    assert result["mean"] > 10 * result["std"] > 0


def test_estimator_is_unbiased_where_the_v_statistic_is_not() -> None:
    # 300 independent pairs of same-distribution sets (m = 40, d = 4): the mean KID is
    # within 4 standard errors of 0 (measured 1.2), while the biased V-statistic (diagonal
    # terms kept) sits ~40 standard errors above 0.
    m, d = 40, 4
    unbiased, biased = [], []
    for seed in range(300):
        x, y = features(m, d, seed=1000 + 2 * seed), features(m, d, seed=1001 + 2 * seed)
        unbiased.append(kid(x, y, subsets=1, subset_size=m)["mean"])

        def k(a, b):
            return (a @ b.T / d + 1) ** 3

        biased.append(float((k(x, x).sum() + k(y, y).sum() - 2 * k(x, y).sum()) / m**2))
    unbiased, biased = np.array(unbiased), np.array(biased)
    standard_error = unbiased.std() / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 4 * standard_error
    assert biased.mean() > 20 * standard_error


def test_subset_size_is_clipped_to_the_smaller_set_with_a_warning() -> None:
    real, fake = features(100, 8, seed=4), features(80, 8, seed=5, shift=0.2)
    with pytest.warns(UserWarning, match=r"subset_size=1000 is more than the 100 real / 80 fake "
                                         r"samples; using subset_size=80"):
        clipped = kid(real, fake, subsets=5)
    assert clipped == kid(real, fake, subsets=5, subset_size=80)


def test_seeded_subsets_default_gamma_and_plain_floats() -> None:
    real, fake = features(300, 8, seed=6), features(300, 8, seed=7, shift=0.2)
    first = kid(real, fake, subsets=10, subset_size=100)
    assert first == kid(real.numpy(), fake.numpy(), subsets=10, subset_size=100)
    assert first == kid(real, fake, subsets=10, subset_size=100, gamma=1 / 8)
    assert first != kid(real, fake, subsets=10, subset_size=100, seed=1)
    assert all(type(value) is float for value in first.values())


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, message", [
    ({"subsets": 0}, r"expected subsets to be an int >= 1, got 0"),
    ({"subset_size": 1}, r"expected subset_size to be an int >= 2, got 1"),
    ({"degree": 0}, r"expected degree to be an int >= 1, got 0"),
    ({"gamma": -1.0}, r"expected gamma to be a finite number > 0, got -1.0"),
    ({"gamma": float("nan")}, r"expected gamma to be a finite number > 0, got nan"),
    ({"coef": float("inf")}, r"expected coef to be a finite number, got inf"),
])
def test_bad_parameters_are_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        kid(features(10, 3, seed=0), features(10, 3, seed=1), **kwargs)


def test_bad_features_are_errors() -> None:
    with pytest.raises(TypeError, match=r"expected an int seed, got str"):
        kid(features(10, 3, seed=0), features(10, 3, seed=1), seed="0")
    with pytest.raises(ValueError, match=r"kid: expected at least 2 real samples, got 1"):
        kid(features(1, 3, seed=0), features(10, 3, seed=1))
    with pytest.raises(ValueError, match=r"kid: expected real and fake features of one dimension"):
        kid(features(10, 3, seed=0), features(10, 4, seed=1))
    fake = features(10, 3, seed=1)
    fake[2:4] = float("inf")
    with pytest.raises(ValueError, match=r"kid: expected finite fake, got 2 of 10 rows"):
        kid(features(10, 3, seed=0), fake)
