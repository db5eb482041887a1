"""Known answers for binned coverage: NDB and JSD over k-means bins (Richardson & Weiss 2018)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from gandiag.metrics.functional import Bins, bin_of, binned_coverage, fit_bins, null_ndb
from gandiag.metrics.functional import binned

LOG_2 = math.log(2)
ANGLES = torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8
RING = torch.stack([ANGLES.cos(), ANGLES.sin()], dim=1)  # 8 modes on the unit circle


def ring(n: int, seed: int, modes: tuple[int, ...] = tuple(range(8))) -> torch.Tensor:
    """n samples of the 8-mode ring, std 0.05, drawn evenly from ``modes`` only."""
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.tensor(modes)[torch.randint(len(modes), (n,), generator=generator)]
    return RING[chosen] + 0.05 * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def missing_mass_jsd(s: float) -> float:
    """JSD of real P and fake P restricted to a set of real mass s (renormalised): with
    m = P(1 + 1/s)/2 on the set and P/2 off it, ½ KL(P‖m) + ½ KL(fake‖m) =
    log 2 − ½ [(1 + s) log(1 + s) − s log s] (0 at s = 1, → log 2 as s → 0)."""
    return LOG_2 - 0.5 * ((1 + s) * math.log(1 + s) - s * math.log(s))


@pytest.fixture(scope="module")
def ring_bins() -> tuple[torch.Tensor, Bins]:
    real = ring(2000, seed=0)
    return real, fit_bins(real, k=50)


# ------------------------------------------------------------------- known answers


def test_identical_sets_give_no_difference_at_all(ring_bins) -> None:
    real, bins = ring_bins
    result = binned_coverage(bins, real, real.clone())
    assert (result["ndb"], result["ndb_k"], result["jsd"], result["bins_covered"]) == (0, 0.0, 0.0, 1.0)
    assert (result["k"], result["n_real"], result["n_fake"]) == (50, 2000, 2000)
    assert result["real_shares"] == result["fake_shares"] == list(bins.real_shares)
    assert result["z_scores"] == [0.0] * 50
    # The same histogram at twice the size is the same distribution: exactly 0 again.
    assert binned_coverage(bins, real, torch.cat([real, real]))["jsd"] == 0.0


def test_two_samples_of_one_distribution_sit_at_the_null_level(ring_bins) -> None:
    # Each bin is "different" with probability ≈ alpha, and jsd ≈ (k − 1)/8 · (1/n_r + 1/n_f)
    # = 0.006125 with sd √(2(k − 1))/8 · (1/n_r + 1/n_f) = 0.0012 (χ² approximation). Six
    # seeds gave ndb_k 0-0.06, jsd 0.0045-0.0073, bins_covered 1.0 here.
    real, bins = ring_bins
    result = binned_coverage(bins, real, ring(2000, seed=1))
    expected_jsd, sd_jsd = 49 / 8 * (2 / 2000), math.sqrt(2 * 49) / 8 * (2 / 2000)
    assert result["ndb_k"] <= 0.2
    assert result["jsd"] == pytest.approx(expected_jsd, abs=3 * sd_jsd)
    assert result["bins_covered"] == 1.0

    # The null level, measured on a real pool of 2 000 + 2 000: the mean of ndb_k over 200
    # draws is alpha within 0.01 (sd of the mean ≈ 0.002), its jsd the χ² mean within 15 %,
    # and the independent pair above lies within 3 sd of the draws' mean jsd.
    level = null_ndb(bins, torch.cat([real, ring(2000, seed=2)]), 2000)
    assert (level["n_real"], level["n_fake"], level["draws"], level["k"]) == (2000, 2000, 200, 50)
    assert level["ndb_k_mean"] == pytest.approx(0.05, abs=0.01)
    assert level["jsd_mean"] == pytest.approx(expected_jsd, rel=0.15)
    assert result["jsd"] == pytest.approx(level["jsd_mean"], abs=3 * sd_jsd)
    assert result["ndb_k"] <= level["ndb_k_quantile"] + 0.05
    assert level["jsd_mean"] < level["jsd_quantile"] < 2 * level["jsd_mean"]


def test_a_generator_on_half_the_modes(ring_bins) -> None:
    # Fake spread like the data over 4 of the 8 modes (s = ½ of the real mass), nothing on
    # the others: jsd = log 2 − ½ (1.5 log 1.5 − ½ log ½) = 0.21576, plus the sampling level
    # (≈ 0.003 for the 25 or so bins in play); six seeds gave 0.215-0.226.
    real, bins = ring_bins
    result = binned_coverage(bins, real, ring(2000, seed=3, modes=(0, 2, 4, 6)))
    assert missing_mass_jsd(0.5) == pytest.approx(0.215762, abs=1e-6)
    assert result["jsd"] == pytest.approx(missing_mass_jsd(0.5), abs=0.015)
    assert result["bins_covered"] == pytest.approx(0.5, abs=0.1)
    assert result["ndb_k"] >= 0.4
    # The bins the fake misses are exactly the real mass it leaves out.
    missed = sum(r for r, f in zip(result["real_shares"], result["fake_shares"]) if f == 0)
    assert missed == pytest.approx(0.5, abs=0.05)


def test_all_fake_mass_on_one_point(ring_bins) -> None:
    # The fake is a point mass in one bin b of real share s: jsd = log 2 − ½ [(1 + s) log(1 + s)
    # − s log s] exactly (no sampling noise left), near log 2; one bin covered of k.
    real, bins = ring_bins
    result = binned_coverage(bins, real, real[:1].repeat(2000, 1))
    b = int(bin_of(bins, real[:1])[0])
    s = result["real_shares"][b]
    assert result["fake_shares"][b] == 1.0 and sum(result["fake_shares"]) == 1.0
    assert result["jsd"] == pytest.approx(missing_mass_jsd(s), abs=1e-12)
    assert result["jsd"] > 0.6
    assert result["bins_covered"] == 1 / 50
    assert result["ndb_k"] >= 0.9  # every bin with a few real samples differs


def test_the_z_test_by_hand() -> None:
    # Three clusters at x = 0, 10, 20 with real counts 40, 30, 30 and fake counts 40, 42, 18:
    # bin 10: p = 0.36, se = √(0.36·0.64·0.02), z = 0.12 / se = 1.7678;
    # bin 20: p = 0.24, se = √(0.24·0.76·0.02), z = −0.12 / se = −1.9868; bin 0: z = 0.
    def points(counts: tuple[int, int, int]) -> np.ndarray:
        return np.repeat([[0.0], [10.0], [20.0]], counts, axis=0)

    bins = fit_bins(points((40, 30, 30)), k=3)
    order = bin_of(bins, np.array([[0.0], [10.0], [20.0]])).tolist()
    assert sorted(order) == [0, 1, 2]
    z_10 = 0.12 / math.sqrt(0.36 * 0.64 * 0.02)
    z_20 = -0.12 / math.sqrt(0.24 * 0.76 * 0.02)
    assert (round(z_10, 4), round(z_20, 4)) == (1.7678, -1.9868)

    result = binned_coverage(bins, points((40, 30, 30)), points((40, 42, 18)))
    z = [result["z_scores"][i] for i in order]
    assert z == pytest.approx([0.0, z_10, z_20], abs=1e-12)
    assert result["ndb"] == 1  # |z| > 1.95996 only for the bin at 20
    assert binned_coverage(bins, points((40, 30, 30)), points((40, 42, 18)), alpha=0.04)["ndb"] == 0
    assert binned_coverage(bins, points((40, 30, 30)), points((40, 42, 18)), alpha=0.1)["ndb"] == 2
    # JSD by its definition, and bins_covered: 0.05 < 0.3 / 4 misses the bin at 20.
    p, q = np.array([0.4, 0.3, 0.3]), np.array([0.4, 0.42, 0.18])
    m = (p + q) / 2
    assert result["jsd"] == pytest.approx(0.5 * np.sum(p * np.log(p / m) + q * np.log(q / m)), abs=1e-15)
    assert result["bins_covered"] == 1.0
    assert binned_coverage(bins, points((40, 30, 30)), points((40, 55, 5)))["bins_covered"] == 2 / 3


def test_critical_values_match_scipy() -> None:
    for alpha in (0.01, 0.04, 0.05, 0.1, 0.5):
        assert binned._critical_z(alpha, "test") == pytest.approx(norm.ppf(1 - alpha / 2), abs=1e-12)


def test_a_bin_empty_in_both_samples_is_not_different() -> None:
    bins = Bins(np.array([[0.0], [10.0], [100.0]]), (5, 5, 1))
    result = binned_coverage(bins, np.repeat([[0.0], [10.0]], [60, 40], axis=0),
                             np.repeat([[0.0], [10.0]], [20, 80], axis=0))
    assert result["z_scores"][2] == 0.0 and result["ndb"] == 2
    assert result["bins_covered"] == 1.0  # over the 2 bins that hold real samples


# ------------------------------------------------------------------- k-means


def test_k_means_is_deterministic_for_a_seed(ring_bins) -> None:
    real, bins = ring_bins
    again = fit_bins(real, k=50)
    assert np.array_equal(again.centres, bins.centres) and again.real_counts == bins.real_counts
    assert again.inertia == bins.inertia
    assert bins.n_real == 2000 and bins.k == 50 and min(bins.real_counts) > 0
    # bin_of reproduces the fitting counts, in any block size.
    assert np.bincount(bin_of(bins, real), minlength=50).tolist() == list(bins.real_counts)
    assert np.array_equal(bin_of(bins, real, chunk_size=7), bin_of(bins, real))
    # One restart can only be as good as the best of three (the first run is the same).
    assert fit_bins(real, k=50, restarts=1).inertia >= bins.inertia


def test_well_separated_clusters_are_found_exactly() -> None:
    # k = 8 on the ring: one bin per mode, each centre within 3 std/√250 of its mode.
    real = ring(2000, seed=4)
    bins = fit_bins(real, k=8, seed=5)
    distances = torch.cdist(torch.tensor(bins.centres), RING)
    assert sorted(distances.argmin(dim=1).tolist()) == list(range(8))
    assert float(distances.min(dim=1).values.max()) < 0.02


def test_an_empty_bin_is_reseeded_at_the_farthest_sample() -> None:
    # Seeds at 0, 10 and 1000: nothing is nearest to 1000, so it moves to a sample at 20 (the
    # farthest from its centre), and the next steps settle on 0, 10, 20 with inertia 0.
    x = torch.tensor([[0.0]] * 3 + [[10.0]] * 3 + [[20.0]] * 2, dtype=torch.float64)
    seeds = torch.tensor([[0.0], [10.0], [1000.0]], dtype=torch.float64)
    centres, inertia = binned._lloyd(x, seeds, 100, rows=5)
    assert centres.flatten().tolist() == [0.0, 10.0, 20.0] and inertia == 0.0


def test_fewer_distinct_points_than_bins_drops_the_empty_ones() -> None:
    real = np.repeat(np.arange(5.0)[:, None], 20, axis=0)
    with pytest.warns(UserWarning, match=r"fit_bins: dropped 3 of 8 bins that stayed empty .* k=5"):
        bins = fit_bins(real, k=8)
    assert bins.k == 5 and bins.real_counts == (20,) * 5
    assert sorted(bins.centres.flatten().tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_numpy_and_torch_inputs_give_the_same_result(ring_bins) -> None:
    real, bins = ring_bins
    fake = ring(1000, seed=6, modes=(0, 1, 2))
    assert np.array_equal(fit_bins(real.numpy(), k=50).centres, bins.centres)
    result = binned_coverage(bins, real.numpy(), fake.numpy())
    assert result == binned_coverage(bins, real, fake)
    assert result == binned_coverage(bins, real.float(), fake.numpy().astype(np.float32))
    assert null_ndb(bins, real.numpy(), 500, draws=20) == null_ndb(bins, real, 500, draws=20)
    assert [type(result[key]) for key in ("ndb", "ndb_k", "jsd", "bins_covered", "k")] == \
        [int, float, float, float, int]


def test_samples_of_any_shape_are_flattened() -> None:
    images = torch.randn(400, 1, 2, 3, generator=torch.Generator().manual_seed(7))
    bins = fit_bins(images, k=5)
    assert bins.centres.shape == (5, 6)
    assert np.array_equal(bin_of(bins, images), bin_of(bins, images.reshape(400, 6)))


# ------------------------------------------------------------------- bad input


def test_bad_samples_are_errors_that_say_what_was_expected(ring_bins) -> None:
    real, bins = ring_bins
    broken = real.clone()
    broken[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"fit_bins: expected finite real, got 1 of 2000 rows with NaN"):
        fit_bins(broken)
    with pytest.raises(ValueError, match=r"binned_coverage: expected finite fake, got 1 of 2000 rows"):
        binned_coverage(bins, real, broken)
    with pytest.raises(ValueError, match=r"fit_bins: expected at least k=50 real samples \(one per "
                                         r"bin, 2k or more recommended\), got 30; pass more"):
        fit_bins(real[:30])
    with pytest.warns(UserWarning, match=r"fit_bins: 60 real samples for k=50 bins leave the z-tests"):
        fit_bins(real[:60])
    with pytest.raises(ValueError, match=r"fit_bins: expected k to be an int >= 2, got 1"):
        fit_bins(real, k=1)
    with pytest.raises(ValueError, match=r"expected real as a non-empty batch of shape \(n, \.\.\.\), "
                                         r"got \(2000,\); for scalar samples pass real\[:, None\]"):
        fit_bins(real[:, 0])
    with pytest.raises(ValueError, match=r"binned_coverage: expected fake samples of 2 values \(the "
                                         r"bins' centres\), got \(10, 3\) after flattening"):
        binned_coverage(bins, real, torch.zeros(10, 3))
    with pytest.raises(ValueError, match=r"bin_of: expected x samples of 2 values"):
        bin_of(bins, torch.zeros(10, 1, 3))
    with pytest.raises(ValueError, match=r"binned_coverage: expected all tensor inputs on one device"):
        binned_coverage(bins, real, torch.zeros(10, 2, device="meta"))


def test_bad_options_are_errors(ring_bins) -> None:
    real, bins = ring_bins
    with pytest.raises(TypeError, match=r"binned_coverage: expected bins from fit_bins \(a Bins\), "
                                        r"got ndarray; call bins = fit_bins\(real, k\) first"):
        binned_coverage(bins.centres, real, real)
    with pytest.raises(ValueError, match=r"expected alpha in \(0, 1\), got 1.5"):
        binned_coverage(bins, real, real, alpha=1.5)
    with pytest.raises(ValueError, match=r"null_ndb: expected n_fake \+ n_real <= the 2000 real "
                                         r"samples .* got n_fake=1500, n_real=1000"):
        null_ndb(bins, real, 1500, n_real=1000)
    with pytest.raises(ValueError, match=r"null_ndb: expected n_fake \+ n_real <= the 2000 real"):
        null_ndb(bins, real, 2000)
    with pytest.raises(ValueError, match=r"null_ndb: expected quantile in \(0, 1\), got 95.0"):
        null_ndb(bins, real, 500, quantile=95)
    with pytest.raises(ValueError, match=r"fit_bins: expected seed to be an int >= 0, got -1"):
        fit_bins(real, seed=-1)
    with pytest.raises(ValueError, match=r"Bins: expected finite centres \(k, d\) and k real counts"):
        Bins(np.zeros((3, 2)), (1, 2))
