"""Argument checks shared by the reference models.

Constructors reject bad sizes with a clear message instead of failing deep inside
``nn.Linear``; forwards check input shapes (reading a shape never syncs the GPU).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch


def _positive_int(value: object, *, name: str, owner: str) -> int:
    """Return ``value`` as an int if it is an integer >= 1, else raise ValueError."""
    # bool is an Integral too; `hidden=True` is a mistake, not a width of 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"{owner}: expected {name} to be a positive int, got {value!r}; "
            f"pass an int >= 1"
        )
    return int(value)


def _positive_int_tuple(value: object, *, name: str, owner: str) -> tuple[int, ...]:
    """Return ``value`` as a non-empty tuple of positive ints, else raise ValueError."""
    # A str is a Sequence too, but never a shape.
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(
            f"{owner}: expected {name} to be a non-empty tuple of positive ints, "
            f"got {value!r}; pass e.g. (1, 28, 28)"
        )
    return tuple(_positive_int(v, name=f"{name}[{i}]", owner=owner) for i, v in enumerate(value))


def _check_noise(z: torch.Tensor, z_dim: int, owner: str) -> None:
    """Raise a ValueError unless ``z`` has shape (B, z_dim); shape reads never sync."""
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise ValueError(
            f"{owner}: expected noise of shape (B, {z_dim}), got {tuple(z.shape)}; "
            f"draw it with torch.randn(B, {z_dim})"
        )


def _check_packed_features(x: torch.Tensor, in_dim: int, pack: int, owner: str) -> None:
    """Raise a ValueError unless ``x`` is (B // pack, in_dim * pack): a packed flat batch."""
    if x.dim() != 2 or x.shape[1] != in_dim * pack:
        hint = (
            f"pack it with x.reshape(B // {pack}, {pack} * {in_dim})"
            if pack > 1
            else f"pass samples of {in_dim} features"
        )
        raise ValueError(
            f"{owner}: expected input of shape (N, {in_dim * pack}) "
            f"({in_dim} features x pack {pack}), got {tuple(x.shape)}; {hint}"
        )
