"""What `monitor.log(...)` records: scalars a loop logs (losses, any others by name).

Each logged key has two buffer columns, (sum, count), so several values of one key in a
step average. A tensor on the buffer's device is added there (no sync); anything else
becomes a Python number first. Every value is checked before any is recorded, so a bad
call leaves the step as it was.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from gandiag.hooks.buffer import DeviceBuffer
from gandiag.hooks.layout import Layout

LOSS_NAMES = {"loss_d": "D/loss", "loss_g": "G/loss"}


def checked_values(values: Mapping[str, Any], stays_on_device: Callable[[Tensor], bool]
                   ) -> tuple[dict[str, Tensor], dict[str, float]]:
    """`values` by recorded name (`loss_d` -> `D/loss`), split into device tensors (0-d,
    detached) and numbers; raises before anything is recorded if one is not a scalar."""
    items = {LOSS_NAMES.get(name, name): value for name, value in values.items()}
    tensors, numbers = {}, {}
    for key, value in items.items():
        if isinstance(value, Tensor) and value.numel() != 1:
            raise ValueError(
                f"monitor.log: {key} has shape {tuple(value.shape)}; expected one "
                f"number per step (reduce it first, e.g. loss.mean())"
            )
        if isinstance(value, Tensor) and stays_on_device(value):
            tensors[key] = value.detach().reshape(())  # stays on the device: no sync
        else:
            numbers[key] = _number(key, value)
    return tensors, numbers


def add_logged(buffer: DeviceBuffer, layout: Layout, tensors: dict[str, Tensor],
               numbers: dict[str, float]) -> None:
    """Add the checked values to the staging row's (sum, count) columns."""
    if tensors:
        columns = layout.logged_columns(list(tensors))
        values = torch.stack(list(tensors.values()))
        start = columns[0]
        if columns == list(range(start, start + 2 * len(columns), 2)):
            # The usual case, the same keys every step: one block of (sum, count).
            buffer.add(slice(start, start + 2 * len(columns), 2), values)
            buffer.add(slice(start + 1, start + 2 * len(columns), 2), 1.0)
        else:
            for i, column in enumerate(columns):
                buffer.add(column, values[i])
                buffer.add(column + 1, 1.0)
    for number, column in zip(numbers.values(), layout.logged_columns(list(numbers))):
        buffer.add(column, number)  # a Python number: no copy to the device
        buffer.add(column + 1, 1.0)


def _number(name: str, value: Any) -> float:
    try:
        return float(value.detach()) if isinstance(value, Tensor) else float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"monitor.log: {name} must be a number or a one-element tensor, got "
            f"{type(value).__name__}"
        ) from None
