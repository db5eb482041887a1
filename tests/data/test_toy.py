"""Known-answer tests for the toy mixtures and their mode metric (docs/definitions.md, Toy mixtures)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gandiag.data import ToyMixture, grid, ring

P_CHI2_2_LE_9 = 1 - math.exp(-4.5)  # 0.98889: HQ share of a perfect generator


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ring_and_grid_geometry() -> None:
    toy_ring, toy_grid = ring(), grid()
    assert (toy_ring.n_modes, toy_ring.std) == (8, 0.01)
    assert (toy_grid.n_modes, toy_grid.std) == (25, 0.05)
    assert toy_ring.centers.dtype == toy_grid.centers.dtype == torch.float32
    torch.testing.assert_close(toy_ring.centers.norm(dim=1), torch.ones(8))
    torch.testing.assert_close(toy_ring.centers[2], torch.tensor([0.0, 1.0]))
    # itertools.product order: x outer, y inner.
    assert toy_grid.centers[:3].tolist() == [[-4, -4], [-4, -2], [-4, 0]]
    assert toy_grid.centers[5].tolist() == [-2, -4]
    assert repr(toy_ring) == "ToyMixture(name='ring', n_modes=8, std=0.01)"


@pytest.mark.parametrize("make", [ring, grid], ids=["ring", "grid"])
def test_perfect_generator_reference_values(make) -> None:
    toy = make()
    n = 2500
    result = toy.evaluate(toy.sample(n, generator=_seeded(0)))
    assert result["modes"] == toy.n_modes and result["fair_modes"] == toy.n_modes
    assert abs(result["hq"] - P_CHI2_2_LE_9) < 0.006
    floor = (toy.n_modes - 1) / (2 * n)  # finite-sample bias of the plug-in KL
    assert 0.2 * floor < result["reverse_kl"] < 3 * floor
    assert type(result["modes"]) is int and type(result["fair_modes"]) is int
    assert type(result["hq"]) is float and type(result["reverse_kl"]) is float


@pytest.mark.parametrize("make, log_k", [(ring, 2.0794), (grid, 3.2189)], ids=["ring", "grid"])
def test_all_mass_on_one_mode_gives_log_k(make, log_k: float) -> None:
    toy = make()
    collapsed = toy.centers[3] + toy.std * torch.randn(500, 2, generator=_seeded(1)) * 0.5
    result = toy.evaluate(collapsed)
    assert result["modes"] == 1 and result["fair_modes"] == 1 and result["hq"] == 1.0
    assert result["reverse_kl"] == pytest.approx(math.log(toy.n_modes), abs=1e-6)
    assert result["reverse_kl"] == pytest.approx(log_k, abs=1e-4)


def test_uniform_on_half_the_ring_gives_log_2() -> None:
    toy = ring()
    samples = toy.centers[[0, 2, 4, 6]].repeat(25, 1)
    result = toy.evaluate(samples)
    assert result == {"modes": 4, "fair_modes": 4, "hq": 1.0,
                      "reverse_kl": pytest.approx(math.log(2), abs=1e-12)}
    assert toy.mode_histogram(samples).tolist() == [25, 0, 25, 0, 25, 0, 25, 0]


def test_fair_modes_counts_modes_with_half_an_even_share_or_more() -> None:
    toy = ring()
    # 16 HQ samples over 8 modes: an even share is 2, half of it 1 sample (2*8*1 >= 16).
    one_each = toy.centers.clone()
    piled = toy.centers[:1].repeat(8, 1)
    result = toy.evaluate(torch.cat([one_each, piled]))
    assert toy.mode_histogram(torch.cat([one_each, piled])).tolist() == [9, 1, 1, 1, 1, 1, 1, 1]
    assert (result["modes"], result["fair_modes"]) == (8, 8)  # exactly half counts
    # 17 HQ samples: a single stray sample is now under half an even share (16 < 17).
    result = toy.evaluate(torch.cat([one_each, piled, toy.centers[:1]]))
    assert (result["modes"], result["fair_modes"]) == (8, 1)
    # 3 modes hold 30 samples each, 5 modes one stray sample each: covered 8, fair 3.
    partial = torch.cat([toy.centers[[0, 3, 5]].repeat(30, 1), toy.centers[[1, 2, 4, 6, 7]]])
    result = toy.evaluate(partial)
    assert (result["modes"], result["fair_modes"]) == (8, 3)


def test_exactly_uniform_gives_zero_not_negative() -> None:
    toy = grid()
    result = toy.evaluate(toy.centers.repeat(3, 1))
    assert result["modes"] == 25 and result["fair_modes"] == 25 and result["reverse_kl"] == 0.0


def test_far_samples_are_not_hq_and_kl_is_inf() -> None:
    toy = ring()
    far = torch.full((10, 2), 5.0)
    assert toy.evaluate(far) == {"modes": 0, "fair_modes": 0, "hq": 0.0, "reverse_kl": math.inf}
    assert toy.mode_histogram(far).tolist() == [0] * 8


def test_hq_threshold_is_three_std_strict() -> None:
    toy = ring()
    center = toy.centers[0].double()
    inside = center + torch.tensor([2.99 * toy.std, 0.0], dtype=torch.float64)
    outside = center + torch.tensor([3.01 * toy.std, 0.0], dtype=torch.float64)
    assert toy.evaluate(inside[None])["hq"] == 1.0
    assert toy.evaluate(outside[None])["hq"] == 0.0


def test_nonfinite_samples_count_as_not_hq() -> None:
    toy = ring()
    samples = toy.centers.clone()  # 8 HQ samples, one per mode
    bad = torch.tensor([[math.nan, 0.0], [math.inf, math.inf], [-math.inf, 1.0], [1.0, math.nan]])
    result = toy.evaluate(torch.cat([samples, bad]))
    assert result["modes"] == 8 and result["fair_modes"] == 8
    assert result["hq"] == pytest.approx(8 / 12)  # NaN rows stay in the denominator
    assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert toy.evaluate(bad) == {"modes": 0, "fair_modes": 0, "hq": 0.0, "reverse_kl": math.inf}


def test_numpy_and_torch_inputs_agree() -> None:
    toy = grid()
    x = toy.sample(1000, generator=_seeded(2)) * 1.02  # some samples fall out of HQ
    from_torch = toy.evaluate(x)
    assert toy.evaluate(x.numpy()) == from_torch
    assert toy.evaluate(x.numpy().astype(np.float64)) == from_torch
    assert toy.evaluate(x.double().requires_grad_()) == from_torch
    np.testing.assert_array_equal(toy.mode_histogram(x.numpy()), toy.mode_histogram(x))
    assert toy.mode_histogram(x).dtype == np.int64


def test_chunked_equals_unchunked() -> None:
    toy = grid()
    x = toy.sample(200_000, generator=_seeded(3)) * 1.01
    whole = toy.evaluate(x, chunk_size=len(x))
    assert toy.evaluate(x, chunk_size=777) == whole
    np.testing.assert_array_equal(toy.mode_histogram(x, chunk_size=777), toy.mode_histogram(x))


def test_sampling_is_deterministic_and_labelled() -> None:
    toy = ring()
    a, modes_a = toy.sample_with_modes(300, generator=_seeded(4))
    b, modes_b = toy.sample_with_modes(300, generator=_seeded(4))
    assert torch.equal(a, b) and torch.equal(modes_a, modes_b)
    assert torch.equal(toy.sample(300, generator=_seeded(4)), a)
    assert not torch.equal(toy.sample(300, generator=_seeded(5)), a)
    assert a.shape == (300, 2) and a.dtype == torch.float32 and modes_a.dtype == torch.int64
    # Every sample lies within a few std of the mode it was drawn from.
    assert ((a - toy.centers[modes_a]).norm(dim=1) / toy.std).max() < 6
    assert set(modes_a.tolist()) == set(range(8))


def test_sampling_device_follows_generator() -> None:
    assert ring().sample(5, generator=_seeded(0)).device.type == "cpu"
    assert ring().sample(5, device="cpu").device.type == "cpu"
    with pytest.raises(ValueError, match="generator is on cpu but device=meta"):
        ring().sample(5, generator=_seeded(0), device="meta")


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.zeros(64, 3), ValueError, r"expected samples of shape \(n, 2\), got \(64, 3\)"),
        (torch.zeros(2), ValueError, r"expected samples of shape \(n, 2\), got \(2,\)"),
        (np.zeros((4, 2, 1)), ValueError, r"got \(4, 2, 1\); pass generator outputs"),
        (torch.zeros(0, 2), ValueError, "expected at least one sample"),
        ([[0.0, 0.0]], TypeError, "expected a torch.Tensor or numpy.ndarray .* got list"),
        (np.array([["a", "b"]]), TypeError, "expected a real-valued array"),
        (torch.zeros(3, 2, dtype=torch.bool), TypeError, "expected a real-valued tensor"),
    ],
)
def test_bad_input_errors_say_what_and_how(bad, error, message: str) -> None:
    with pytest.raises(error, match=message):
        ring().evaluate(bad)
    with pytest.raises(error, match=message):
        ring().mode_histogram(bad)


def test_bad_construction_and_arguments() -> None:
    with pytest.raises(ValueError, match=r"centers of shape \(K, 2\)"):
        ToyMixture("bad", torch.zeros(3, 3), 0.1)
    with pytest.raises(ValueError, match="finite std > 0"):
        ToyMixture("bad", torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="expected n to be an int >= 0, got -1"):
        ring().sample(-1)
    with pytest.raises(ValueError, match="chunk_size"):
        ring().evaluate(torch.zeros(3, 2), chunk_size=0)


def test_centers_are_a_private_copy() -> None:
    centers = torch.zeros(2, 2)
    toy = ToyMixture("pair", centers, 0.1)
    centers += 10
    assert toy.centers.abs().sum() == 0
    with pytest.raises(AttributeError):
        toy.std = 1.0  # frozen
