"""Input handling shared by every functional metric: types, dtypes, devices, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gandiag.metrics import functional as F
from gandiag.metrics.functional import _inputs


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_every_public_function_is_exported() -> None:
    assert sorted(F.__all__) == [
        "Bins", "bin_of", "binned_coverage", "feature_statistics", "fid", "fit_bins",
        "fixed_noise_drift", "frechet_distance", "kid", "mean_pairwise_distance", "mode_stats",
        "near_duplicate_rate", "null_ndb", "prdc",
        "relative_diversity", "toy_coverage",
    ]


def test_tensors_on_different_devices_are_an_error() -> None:
    # The meta device stands in for a GPU: the check runs before any computation.
    on_meta = torch.zeros(10, 3, device="meta")
    with pytest.raises(ValueError, match=r"prdc: expected all tensor inputs on one device, got "
                                         r"tensors on cpu, meta; move them to one device first"):
        F.prdc(features(10, 3, seed=0), on_meta)
    with pytest.raises(ValueError, match=r"frechet_distance: expected all tensor inputs on one device"):
        F.frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(3, device="meta"), np.eye(3))


def test_numpy_arrays_join_the_tensor_device_and_ints_are_accepted() -> None:
    real = np.arange(40, dtype=np.int64).reshape(20, 2)
    fake = torch.arange(40).reshape(20, 2) + 0.5
    assert F.prdc(real, fake, k=2) == F.prdc(real.astype(np.float64), fake.double(), k=2)
    assert _inputs.compute_device(real, where="x") == torch.device("cpu")


def test_grad_tensors_are_detached_and_dtypes_do_not_matter() -> None:
    real = features(50, 4, seed=0).requires_grad_()
    fake = features(50, 4, seed=1, shift=0.5)
    assert F.fid(real, fake) == pytest.approx(F.fid(real.detach().double(), fake), rel=1e-12)
    assert F.prdc(real, fake.half()) == F.prdc(real.detach(), fake.half().float())


@pytest.mark.parametrize("bad, error, message", [
    (np.array([["a", "b"]] * 4), TypeError, r"expected real to be a real-valued array, got dtype <U1; "
                                            r"convert with real.astype\(np.float64\)"),
    (torch.ones(4, 2, dtype=torch.bool), TypeError, r"expected real to be a real-valued tensor, got "
                                                    r"dtype torch.bool"),
    ([[1.0, 2.0]] * 4, TypeError, r"expected real to be a torch.Tensor or numpy.ndarray, got list"),
    (torch.zeros(4, 0), ValueError, r"expected real features of shape \(n, d\), got \(4, 0\)"),
    (torch.zeros(0, 2), ValueError, r"expected at least 1 real samples, got 0"),
    (torch.zeros(4, 2, 1), ValueError, r"expected real features of shape \(n, d\), got \(4, 2, 1\); "
                                       r"pass one feature vector per row"),
])
def test_bad_feature_inputs(bad, error, message) -> None:
    with pytest.raises(error, match=message):
        F.prdc(bad, features(4, 2, seed=0), k=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_compute_on_the_gpu_and_match_the_cpu() -> None:
    real, fake = features(400, 16, seed=0), features(300, 16, seed=1, shift=0.3)
    cuda_real, cuda_fake = real.cuda(), fake.cuda()
    assert F.prdc(cuda_real, cuda_fake) == F.prdc(real, fake)
    assert F.fid(cuda_real, cuda_fake) == pytest.approx(F.fid(real, fake), rel=1e-9)
    assert F.kid(cuda_real, cuda_fake, subsets=5, subset_size=100) == pytest.approx(
        F.kid(real, fake, subsets=5, subset_size=100), rel=1e-9)
    mu, sigma = F.feature_statistics(cuda_real)
    assert mu.device.type == sigma.device.type == "cuda"
    assert F.near_duplicate_rate(cuda_fake) == F.near_duplicate_rate(fake)
    assert F.relative_diversity(cuda_fake, cuda_real) == pytest.approx(
        F.relative_diversity(fake, real), rel=1e-9)
