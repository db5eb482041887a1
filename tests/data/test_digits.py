"""Tests for the sklearn digits and the 1000-mode stacked digits."""

from __future__ import annotations

import pytest
import torch

from gandiag.data import digits, stacked_digits


def test_digits_shapes_range_and_labels() -> None:
    images, labels = digits().tensors
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert images.min().item() == -1.0 and images.max().item() == 1.0
    assert sorted(labels.unique().tolist()) == list(range(10))
    # x / 8 - 1 maps the 0..16 integer grey levels onto multiples of 1/8.
    assert torch.equal((images + 1) * 8, ((images + 1) * 8).round())


def test_digits_returns_fresh_tensors() -> None:
    first = digits().tensors[0]
    first.fill_(0.0)
    assert digits().tensors[0].min().item() == -1.0


def test_stacked_digits_shapes_and_range() -> None:
    images, labels = stacked_digits(2000, seed=0).tensors
    assert images.shape == (2000, 3, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (2000,) and labels.dtype == torch.int64
    assert images.min().item() >= -1.0 and images.max().item() <= 1.0
    assert 0 <= labels.min().item() and labels.max().item() <= 999
    # Uniform over 1000 modes: 2000 draws cover most of them (expected ~865).
    assert labels.unique().numel() > 800


def test_stacked_label_matches_each_channel_digit() -> None:
    base_images, base_labels = digits().tensors
    flat_base = base_images.flatten(1)  # (1797, 64)
    images, labels = stacked_digits(50, seed=3).tensors
    for image, label in zip(images, labels.tolist()):
        digits_of_label = (label // 100, label // 10 % 10, label % 10)
        for channel, expected in zip(image, digits_of_label):
            matches = (flat_base == channel.flatten()).all(dim=1)
            # Duplicate images could exist, so the label must be among those matched.
            assert expected in base_labels[matches].tolist()


def test_stacked_digits_deterministic_by_seed() -> None:
    a = stacked_digits(100, seed=7).tensors
    b = stacked_digits(100, seed=7).tensors
    c = stacked_digits(100, seed=8).tensors
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("n", [0, -5, 2.5, True])
def test_stacked_digits_rejects_bad_n(n) -> None:
    with pytest.raises(ValueError, match="expected n to be an int >= 1"):
        stacked_digits(n)
