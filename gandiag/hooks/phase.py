"""Phase tracking: is a D call on real or on fake data, and which update does it serve?

*Real or fake* comes from provenance: G's forward hook remembers the storage of G's
outputs, and a D call whose input shares that storage (also after `.detach()`, slicing
or a view) is a fake call; anything else is real. Loops that transform samples before D
(augmentation, packing, mixing) say it explicitly with `monitor.phase("real"|"fake")`,
and calls that are neither (a gradient penalty on interpolates) with
`monitor.phase("ignore")`.

*Which update* is decided afterwards: calls accumulate as pending, and the next
optimizer step says whose they were (D's step: the D update; G's step: the G update).
So the split is exact whatever the order of the loop, with any number of D steps.

    >>> import torch
    >>> tracker = Provenance()
    >>> fake = torch.randn(4, 2)
    >>> tracker.remember(fake)
    >>> tracker.is_fake(fake.detach()[:2]), tracker.is_fake(torch.randn(4, 2))
    (True, False)
"""

from __future__ import annotations

from collections import deque
from typing import Any

from torch import Tensor

PHASES = ("real", "fake", "ignore")


class Provenance:
    """The storages of G's last few outputs.

    It holds a detached reference to each (the data, not the autograd graph), so a freed
    fake batch cannot hand its address to a real batch and be mistaken for it. Memory:
    at most `keep` batches of G's output.
    """

    def __init__(self, keep: int = 4) -> None:
        self._outputs: deque[Tensor] = deque(maxlen=keep)

    def remember(self, output: Any) -> None:
        for tensor in _tensors(output):
            self._outputs.append(tensor.detach())

    def is_fake(self, x: Tensor) -> bool:
        pointer = x.untyped_storage().data_ptr()
        return any(t.untyped_storage().data_ptr() == pointer for t in self._outputs)

    def clear(self) -> None:
        self._outputs.clear()


def first_tensor(args: tuple, kwargs: dict) -> Tensor | None:
    """D's sample input: the first tensor argument (conditional Ds take labels after it)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            return value
    return None


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _tensors(item)]
    return []


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(
            f"monitor.phase: expected one of {', '.join(map(repr, PHASES))}, got {phase!r}; "
            "use 'real' or 'fake' for D calls on transformed samples and 'ignore' for calls "
            "that are neither (e.g. a gradient penalty on interpolates)"
        )
    return phase
