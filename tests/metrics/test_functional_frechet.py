"""Known answers for the Fréchet distance and FID (docs/definitions.md, "FID and KID")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gandiag.metrics.functional import feature_statistics, fid, frechet_distance
from gandiag.metrics.functional.frechet import _trace_sqrt_product


def sqrtm_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """The classic implementation (pytorch-fid): scipy sqrtm of Σ₁Σ₂, real part."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal((d, 2 * d))
    return w @ w.T / d


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64) + shift


def test_unit_mean_shift_with_identity_covariance_d2048_is_exactly_d() -> None:
    d = 2048
    eye = torch.eye(d, dtype=torch.float64)
    value = frechet_distance(torch.zeros(d), eye, torch.ones(d), eye)
    assert value == pytest.approx(2048.0, rel=1e-6)
    assert type(value) is float


@pytest.mark.parametrize("a, b", [(1.0, 4.0), (2.0, 5.0), (0.3, 0.3), (7.0, 0.0)])
def test_isotropic_closed_form(a: float, b: float) -> None:
    # Σ₁ = aI, Σ₂ = bI: FID = ‖Δμ‖² + d(√a − √b)²  (b = 0: a singular Σ₂).
    d = 16
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = float(np.sum((mu1 - mu2) ** 2)) + d * (math.sqrt(a) - math.sqrt(b)) ** 2
    value = frechet_distance(mu1, a * np.eye(d), mu2, b * np.eye(d))
    assert value == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_agrees_with_scipy_sqrtm_on_random_spd_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 64
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    sigma1, sigma2 = random_spd(d, rng), random_spd(d, rng)
    expected = sqrtm_frechet(mu1, sigma1, mu2, sigma2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_cholesky_and_eigh_square_roots_agree(seed: int) -> None:
    # Positive definite inputs take the Cholesky route; the eigh route (docs/definitions.md's
    # √Σ₁ Σ₂ √Σ₁, used for singular pairs) must give the same trace.
    rng = np.random.default_rng(seed)
    sigma1, sigma2 = (torch.from_numpy(random_spd(48, rng)) for _ in range(2))
    cholesky = _trace_sqrt_product(sigma1, sigma2, where="test")
    eigh = _trace_sqrt_product(sigma1, sigma2, where="test", cholesky=False)
    assert float(cholesky) == pytest.approx(float(eigh), rel=1e-12)


def test_singular_covariances_stay_finite_with_known_answers() -> None:
    # 10 samples in 64 dimensions: rank 9. Same covariance, means 1 apart per coordinate:
    # tr √(Σ²) = tr Σ, so the distance is exactly ‖Δμ‖² = 64.
    mu, sigma = feature_statistics(features(10, 64, seed=0))
    value = frechet_distance(mu, sigma, mu + 1, sigma)
    assert math.isfinite(value)
    assert value == pytest.approx(64.0, rel=1e-6)  # √ of rounding-level eigenvalues: ~1e-7
    # Covariances on orthogonal subspaces: tr √(Σ₁Σ₂) = 0, FID = tr Σ₁ + tr Σ₂.
    assert frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 3.0])) \
        == pytest.approx(4.0, rel=1e-12)
    # Both singular, different: finite and close to the sqrtm value.
    mu2, sigma2 = feature_statistics(features(12, 64, seed=1, shift=0.5))
    value = frechet_distance(mu, sigma, mu2, sigma2)
    assert value == pytest.approx(sqrtm_frechet(*(t.numpy() for t in (mu, sigma, mu2, sigma2))),
                                  rel=1e-4)


def test_float32_rounded_singular_covariance_is_accepted() -> None:
    # A covariance accumulated in float32 (rank 99 of 256) has rounding-level negative
    # eigenvalues well above float64's; PSD_RTOL must not reject it.
    x = features(100, 256, seed=2).float()
    centred = x - x.mean(dim=0)
    sigma = centred.T @ centred / 99
    value = frechet_distance(x.mean(dim=0), sigma, x.mean(dim=0), sigma)
    assert 0.0 <= value < 1e-3 * float(sigma.trace())


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric() -> None:
    x = features(1000, 32, seed=3)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    y = features(800, 32, seed=4, shift=0.2)
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-10)
    assert fid(x.numpy(), y.float()) == pytest.approx(fid(x, y.float()), rel=1e-12)


def test_fid_equals_the_fitted_gaussians_distance() -> None:
    real, fake = features(500, 8, seed=5), features(400, 8, seed=6, shift=1.0)
    expected = sqrtm_frechet(real.mean(0).numpy(), np.cov(real.numpy(), rowvar=False),
                             fake.mean(0).numpy(), np.cov(fake.numpy(), rowvar=False))
    assert fid(real, fake) == pytest.approx(expected, rel=1e-9)


def test_feature_statistics_are_float64_mean_and_unbiased_covariance() -> None:
    x = features(50, 5, seed=7).float()
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == torch.float64 and mu.device == x.device
    np.testing.assert_allclose(mu.numpy(), x.double().numpy().mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.double().numpy(), rowvar=False, ddof=1),
                               rtol=1e-12)
    assert torch.equal(sigma, sigma.T)


# ----------------------------------------------------------------------- bad input


def test_zero_variance_features_warn_but_fid_stays_finite() -> None:
    x = features(100, 6, seed=8)
    x[:, 2] = 3.0
    with pytest.warns(UserWarning, match=r"1 of 6 features are constant \(zero variance\) over "
                                         r"100 samples; the covariance is singular"):
        value = fid(x, features(100, 6, seed=9))
    assert math.isfinite(value)


def test_fewer_than_two_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"feature_statistics: expected at least 2 features "
                                         r"samples, got 1; pass more samples"):
        feature_statistics(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"fid: expected at least 2 fake samples, got 1"):
        fid(features(10, 4, seed=0), features(1, 4, seed=1))


def test_fid_input_errors() -> None:
    with pytest.raises(ValueError, match=r"fid: expected real and fake features of one dimension"):
        fid(features(10, 4, seed=0), features(10, 5, seed=1))
    bad = features(10, 4, seed=1)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"fid: expected finite fake, got 1 of 10 rows with NaN"):
        fid(features(10, 4, seed=0), bad)


def test_frechet_distance_shape_and_value_errors() -> None:
    eye = np.eye(3)
    with pytest.raises(ValueError, match=r"expected mu1 of shape \(d,\), got \(1, 3\)"):
        frechet_distance(np.zeros((1, 3)), eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match=r"expected mu1 and mu2 of one dimension, got \(3,\) and \(4,\)"):
        frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"expected sigma2 of shape \(3, 3\) to match the means, "
                                         r"got \(4, 4\)"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match=r"expected a finite mu2, got NaN or inf"):
        frechet_distance(np.zeros(3), eye, np.array([0.0, np.inf, 0.0]), eye)
    with pytest.raises(ValueError, match=r"expected a symmetric covariance sigma1"):
        frechet_distance(np.zeros(3), np.triu(np.ones((3, 3))), np.zeros(3), eye)
    with pytest.raises(ValueError, match=r"expected sigma2 to be positive semi-definite, got an "
                                         r"eigenvalue -1"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"expected sigma1 to be positive semi-definite"):
        frechet_distance(np.zeros(3), np.diag([0.0, -1.0, 1.0]), np.zeros(3), np.diag([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match=r"expected sigma1 to be a real-valued tensor, got dtype "
                                        r"torch.complex64"):
        frechet_distance(torch.zeros(3), torch.eye(3, dtype=torch.complex64), torch.zeros(3),
                         torch.eye(3))
