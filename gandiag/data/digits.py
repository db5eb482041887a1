"""8x8 handwritten digits (scikit-learn's bundled copy) and the 1000-mode stacked variant.

No downloads: ``sklearn.datasets.load_digits`` ships with scikit-learn. Images are scaled
from 0..16 to [-1, 1] (``x / 8 - 1``) to match a tanh generator output.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = ["digits", "stacked_digits"]


@functools.lru_cache(maxsize=1)
def _load_raw() -> tuple[np.ndarray, np.ndarray]:
    """Load once per process; arrays are read-only so the cache cannot be corrupted."""
    from sklearn.datasets import load_digits  # deferred: sklearn import takes ~1 s

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (1797, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _digit_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _load_raw()
    # torch.tensor copies, so callers get fresh tensors they may modify freely.
    scaled = torch.tensor(images).unsqueeze(1) / 8 - 1
    return scaled, torch.tensor(labels)


def digits() -> TensorDataset:
    """All 1797 digits as ``TensorDataset(images, labels)``.

    Images are float32 ``(1797, 1, 8, 8)`` in [-1, 1]; labels int64 in 0..9.

    Example:
        >>> images, labels = digits().tensors
        >>> tuple(images.shape), int(labels.max())
        ((1797, 1, 8, 8), 9)
    """
    return TensorDataset(*_digit_tensors())


def stacked_digits(n: int = 50_000, *, seed: int = 0) -> TensorDataset:
    """``n`` samples of three independent, uniformly drawn digits stacked as channels.

    The mode of a sample is its label triple, so there are 1000 modes; the label is
    ``100 * label_ch0 + 10 * label_ch1 + label_ch2`` (0..999). Same ``seed``, same data.

    Returns:
        ``TensorDataset(images, labels)``: float32 ``(n, 3, 8, 8)`` in [-1, 1], int64 ``(n,)``.

    Example:
        >>> images, labels = stacked_digits(4, seed=0).tensors
        >>> tuple(images.shape), labels.dtype
        ((4, 3, 8, 8), torch.int64)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"stacked_digits: expected n to be an int >= 1, got {n!r}; "
            "pass the number of stacked samples, e.g. stacked_digits(50_000)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"stacked_digits: expected an int seed, got {type(seed).__name__}")
    images, labels = _digit_tensors()
    generator = torch.Generator().manual_seed(seed)
    # One index per channel, drawn independently with replacement: modes are uniform.
    picks = torch.randint(len(labels), (n, 3), generator=generator)
    stacked = images[:, 0][picks]  # (n, 3, 8, 8)
    triple = labels[picks]  # (n, 3)
    mode = 100 * triple[:, 0] + 10 * triple[:, 1] + triple[:, 2]
    return TensorDataset(stacked, mode)
