"""Streaming metrics equal the one-shot functions, whatever the batch sizes."""

import numpy as np
import pytest
import torch

from gandiag import data
from gandiag.metrics.functional import fid, mode_stats, prdc
from gandiag.metrics.streaming import FID, PRDC, ModeCoverage, ToyCoverage


def features(n, d=8, shift=0.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator, dtype=torch.float64) + shift


@pytest.mark.parametrize("batch", [7, 100, 1000])
def test_fid_streamed_in_any_batches_equals_the_one_shot_value(batch):
    real, fake = features(600, seed=1), features(500, shift=0.5, seed=2)
    metric = FID()
    for chunk in real.split(batch):
        metric.update(chunk, real=True)
    for chunk in fake.split(batch):
        metric.update(chunk.numpy(), real=False)  # numpy works too
    assert metric.compute() == pytest.approx(fid(real, fake), rel=1e-9)


def test_fid_state_round_trips_and_reset_clears():
    metric = FID()
    metric.update(features(50, seed=1), real=True)
    metric.update(features(50, shift=1.0, seed=2), real=False)
    copy = FID()
    copy.load_state_dict(metric.state_dict())
    assert copy.compute() == metric.compute()
    metric.reset()
    with pytest.raises(ValueError, match="need at least 2 real samples"):
        metric.compute()
    with pytest.raises(ValueError, match="features of dimension 3, but earlier real features had 8"):
        copy.update(torch.zeros(4, 3), real=True)


def test_prdc_streamed_equals_one_shot_and_stays_bounded():
    real, fake = features(300, seed=1), features(300, shift=0.3, seed=2)
    metric = PRDC(k=5)
    for chunk in real.split(64):
        metric.update(chunk, real=True)
    for chunk in fake.split(50):
        metric.update(chunk, real=False)
    assert metric.compute() == prdc(real, fake, k=5)
    bounded = PRDC(max_samples=100)
    with pytest.warns(UserWarning, match="keeping the first 100 samples"):
        bounded.update(real, real=True)
    assert bounded.real.shape[0] == 100


def test_mode_coverage_counts_labels_or_labels_samples():
    labels = np.random.default_rng(0).integers(0, 10, size=1000)
    metric = ModeCoverage(10)
    for chunk in np.array_split(labels, 7):
        metric.update(chunk)
    assert metric.compute() == mode_stats(labels, 10)
    labelled = ModeCoverage(10, labeller=lambda samples: np.asarray(samples) % 10)
    labelled.update(np.arange(25))
    assert labelled.compute()["modes"] == 10
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        metric.update(np.array([10]))


def test_toy_coverage_streamed_equals_evaluate_on_all_samples():
    ring = data.ring()
    samples = ring.sample(2500, generator=torch.Generator().manual_seed(3))
    samples[:100] = float("nan")  # never HQ, still counted
    metric = ToyCoverage(ring)
    for chunk in samples.split(333):
        metric.update(chunk)
    expected = ring.evaluate(samples)
    result = metric.compute()
    assert result["modes"] == expected["modes"] and result["hq"] == pytest.approx(expected["hq"])
    assert result["reverse_kl"] == pytest.approx(expected["reverse_kl"], abs=1e-12)
