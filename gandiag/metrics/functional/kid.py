"""Kernel Inception Distance: unbiased MMD² with a polynomial kernel (Bińkowski et al. 2018).

k(x, y) = (γ x·y + coef)^degree, by default γ = 1/d, coef = 1, degree = 3. For a subset of
m real features x and m fake features y,

    MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1))
             − 2 Σ_{i,j} k(x_i, y_j) / m²,

an unbiased estimate of the squared MMD: 0 in expectation when real and fake follow one
distribution, so single values may be negative. KID is its mean over ``subsets`` random
subsets (drawn without replacement within a subset), reported with the population std
over subsets (ddof = 0), as torch-fidelity and torchmetrics do. Computed in float64: the
estimate is a small difference of large kernel sums.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from gandiag.metrics.functional import _inputs

__all__ = ["kid"]


def kid(
    real_features: Tensor | np.ndarray,
    fake_features: Tensor | np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """KID of fake against real ``(n, d)`` features: mean and std of MMD² over subsets.

    Args:
        real_features, fake_features: ``(n, d)`` and ``(m, d)``, n, m >= 2.
        subsets: Number of random subset pairs.
        subset_size: Samples per subset and side; clipped (with a warning) to min(n, m).
        degree, gamma, coef: The kernel (γ x·y + coef)^degree; ``gamma=None`` is 1/d.
        seed: Seed of the subset draws (a CPU generator, so any device gives the same
            subsets).

    Returns:
        ``{"mean": float, "std": float}``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(400, 16, generator=g)
        >>> fake = torch.randn(400, 16, generator=g) + 1.0
        >>> kid(real, fake, subsets=10, subset_size=200)["mean"] > 0.1
        True
    """
    where = "kid"
    real, fake = _inputs.feature_pair(real_features, fake_features, where=where, min_rows=2)
    subsets = _inputs.positive_int(subsets, name="subsets", where=where)
    size = _inputs.positive_int(subset_size, name="subset_size", where=where, minimum=2)
    degree = _inputs.positive_int(degree, name="degree", where=where)
    if gamma is None:
        gamma = 1.0 / real.shape[1]
    gamma = _inputs.finite_float(gamma, name="gamma", where=where, positive=True)
    coef = _inputs.finite_float(coef, name="coef", where=where)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(
            f"{where}: expected an int seed, got {type(seed).__name__}; pass e.g. seed=0"
        )

    n_real, n_fake = real.shape[0], fake.shape[0]
    if size > min(n_real, n_fake):
        warnings.warn(
            f"{where}: subset_size={size} is more than the {n_real} real / {n_fake} fake "
            f"samples; using subset_size={min(n_real, n_fake)} (pass more samples for the "
            "usual 1000, or a smaller subset_size to silence this)",
            UserWarning,
            stacklevel=2,
        )
        size = min(n_real, n_fake)

    generator = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64, device=real.device)
    for i in range(subsets):
        # Real then fake from one generator, as torch-fidelity: the same seed, the same pairs.
        real_rows = torch.randperm(n_real, generator=generator)[:size].to(real.device)
        fake_rows = torch.randperm(n_fake, generator=generator)[:size].to(real.device)
        values[i] = _unbiased_mmd2(real[real_rows], fake[fake_rows], degree, gamma, coef)
    return {"mean": float(values.mean()), "std": float(values.std(correction=0))}


def _unbiased_mmd2(x: Tensor, y: Tensor, degree: int, gamma: float, coef: float) -> Tensor:
    """MMD²_u of two equal-size samples under the polynomial kernel."""
    m = x.shape[0]

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return (gamma * (a @ b.T) + coef) ** degree

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)
