"""Known answers for precision, recall, density and coverage (docs/definitions.md, Naeem et al. 2020)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from gandiag.metrics.functional import prdc


def normal(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The authors' reference code (clovaai/generative-evaluation-prdc), full matrices,
    with scipy's direct (not matrix-product) distances."""
    real_radii = np.partition(cdist(real, real), k, axis=1)[:, k]  # k+1-th incl. self = 0
    fake_radii = np.partition(cdist(fake, fake), k, axis=1)[:, k]
    real_fake = cdist(real, fake)
    inside = real_fake < real_radii[:, None]
    return {
        "precision": inside.any(axis=0).mean(),
        "recall": (real_fake < fake_radii[None, :]).any(axis=1).mean(),
        "density": inside.sum(axis=0).mean() / k,
        "coverage": (real_fake.min(axis=1) < real_radii).mean(),
    }


def test_identical_sets_give_exactly_one_everywhere() -> None:
    real = normal(500, 16, seed=0)
    assert prdc(real, real.clone(), k=5) == {
        "precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0
    }
    assert prdc(real, real, k=3, chunk_size=37) == {
        "precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0
    }


def test_published_reference_values_d1000_10k_vs_10k() -> None:
    # Naeem et al.'s README: d = 1000, 10k vs 10k standard normals, k = 5 gives
    # P 0.4772, R 0.4705, D 1.0555, C 0.9735 (one draw; docs/definitions.md: ±0.02, D ±0.08).
    # The heaviest test of the folder: 3 passes of 1e11 float64 multiply-adds (~25 s on
    # 2 shared cores), in 64 MiB blocks.
    real, fake = normal(10_000, 1000, seed=0), normal(10_000, 1000, seed=1)
    result = prdc(real, fake, k=5)
    assert result["precision"] == pytest.approx(0.477, abs=0.02)
    assert result["recall"] == pytest.approx(0.471, abs=0.02)
    assert result["density"] == pytest.approx(1.06, abs=0.08)
    assert result["coverage"] == pytest.approx(0.974, abs=0.02)


def test_matches_the_authors_reference_implementation_exactly() -> None:
    real, fake = normal(300, 12, seed=2), normal(250, 12, seed=3, shift=0.4)
    expected = reference_prdc(real.double().numpy(), fake.double().numpy(), k=4)
    assert prdc(real, fake, k=4) == pytest.approx(expected, abs=1e-12)


def test_collapsed_generator_gives_high_precision_low_recall_low_coverage() -> None:
    real = normal(1000, 8, seed=4)
    collapsed = real[0] + 0.01 * normal(1000, 8, seed=5)  # all fakes near one real point
    result = prdc(real=real, fake=collapsed)
    assert result["precision"] == 1.0
    assert result["recall"] < 0.01 and result["coverage"] < 0.02
    # Swapped arguments read the other way round: the order (real, fake) matters.
    swapped = prdc(collapsed, real)
    assert swapped["precision"] < 0.01 and swapped["recall"] == 1.0


@pytest.mark.parametrize("chunk_size", [1, 7, 256])
def test_chunk_size_does_not_change_the_result(chunk_size: int) -> None:
    real, fake = normal(600, 10, seed=6), normal(500, 10, seed=7, shift=0.2)
    assert prdc(real, fake, chunk_size=chunk_size) == prdc(real, fake)  # exact equality


def test_two_samples_of_one_distribution_density_one_coverage_one_minus_two_to_minus_k() -> None:
    # E[density] = 1 exactly, E[coverage] = 1 − C(N−1, k) / C(N−1+M, k) ≈ 1 − 2⁻ᵏ for
    # N = M, in any dimension (exchangeability; Naeem et al. 2020, section 4). Ten seeds
    # gave density 0.93-1.06 and coverage 0.962-0.980 here: tolerances 0.1 and 0.015.
    n, k = 2000, 5
    result = prdc(normal(n, 32, seed=8), normal(n, 32, seed=9), k=k)
    expected_coverage = 1 - math.comb(n - 1, k) / math.comb(2 * n - 1, k)
    assert expected_coverage == pytest.approx(1 - 2**-k, abs=2e-4)
    assert result["density"] == pytest.approx(1.0, abs=0.1)
    assert result["coverage"] == pytest.approx(expected_coverage, abs=0.015)


def test_numpy_and_torch_inputs_agree_and_results_are_floats() -> None:
    real, fake = normal(200, 6, seed=10), normal(150, 6, seed=11, shift=0.3)
    result = prdc(real.numpy(), fake.numpy())
    assert result == prdc(real, fake)
    assert list(result) == ["precision", "recall", "density", "coverage"]
    assert all(type(value) is float for value in result.values())


def test_duplicate_points_are_neighbours_and_self_is_excluded() -> None:
    # Each real point appears twice: its nearest neighbour is its copy (distance 0), so
    # with k = 1 every real ball has radius 0 and contains nothing, not even a copy.
    real = normal(100, 4, seed=12).repeat(2, 1)
    result = prdc(real, real.clone(), k=1)
    assert result == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


# ----------------------------------------------------------------------- bad input


def test_k_must_be_less_than_each_set_size() -> None:
    with pytest.raises(ValueError, match=r"expected k < the number of fake samples .* got k=5 "
                                         r"with 5 fake samples; pass more samples or a smaller k"):
        prdc(normal(20, 3, seed=0), normal(5, 3, seed=1), k=5)
    with pytest.raises(ValueError, match="expected k < the number of real samples"):
        prdc(normal(3, 3, seed=0), normal(20, 3, seed=1), k=3)
    with pytest.raises(ValueError, match=r"expected k to be an int >= 1, got True"):
        prdc(normal(20, 3, seed=0), normal(20, 3, seed=1), k=True)
    with pytest.raises(ValueError, match=r"expected chunk_size to be an int >= 1, got 0"):
        prdc(normal(20, 3, seed=0), normal(20, 3, seed=1), chunk_size=0)


def test_dimension_mismatch_and_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"expected real and fake features of one dimension, got "
                                         r"real \(20, 3\) and fake \(20, 4\); extract both"):
        prdc(normal(20, 3, seed=0), normal(20, 4, seed=1))
    with pytest.raises(ValueError, match=r"expected real features of shape \(n, d\), got \(20,\)"):
        prdc(torch.zeros(20), normal(20, 3, seed=1))
    with pytest.raises(TypeError, match=r"expected fake to be a torch.Tensor or numpy.ndarray, got list"):
        prdc(normal(20, 3, seed=0), [[0.0] * 3] * 20)


def test_non_finite_features_are_an_error_that_counts_rows() -> None:
    fake = normal(50, 3, seed=1)
    fake[3, 0], fake[7] = float("nan"), float("inf")
    fake[9, 1] = float("-inf")
    with pytest.raises(ValueError, match=r"expected finite fake, got 3 of 50 rows with NaN or inf"):
        prdc(normal(50, 3, seed=0), fake)


def test_the_device_can_be_named_and_does_not_change_the_result():
    generator = torch.Generator().manual_seed(5)
    real = torch.randn(300, 6, generator=generator)
    fake = torch.randn(300, 6, generator=generator) + 0.3
    assert prdc(real, fake, device="cpu") == prdc(real.numpy(), fake.numpy())
    if torch.cuda.is_available():
        on_gpu = prdc(real, fake, device="cuda")
        for key, value in prdc(real, fake, device="cpu").items():
            assert on_gpu[key] == pytest.approx(value, abs=2 / 300)  # a borderline point may flip
