"""The checks a `Monitor` makes of what it is given, before it attaches anything.

A refused attach must leave the models untouched, so everything that can refuse runs
first and says what was expected, what came and the fix. `flush_every` is the old name
of `log_every` (the name `TrainConfig` uses for the same cadence): still taken, with a
DeprecationWarning.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from torch import nn

from gandiag.core.caller import user_stacklevel


def check_models(G: nn.Module, D: nn.Module, attached: Mapping[nn.Module, Any]) -> None:
    """G and D are two modules, neither already monitored (`attached`: the registry)."""
    if G is D:
        raise ValueError("gandiag.attach: G and D are the same module; pass the generator "
                         "and the discriminator, in that order")
    for model in (G, D):
        if model in attached:
            raise RuntimeError(
                f"gandiag.attach: {type(model).__name__} already has a monitor attached; "
                "call monitor.remove() (or leave its `with` block) before attaching again"
            )


def check_counts(**counts: tuple[Any, int]) -> None:
    """Each option given as name=(value, least) is an integer >= least (not a bool)."""
    for name, (value, least) in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(
                f"gandiag.attach: expected {name} to be an integer >= {least}, got {value!r}")


def renamed_flush_every(flush_every: int, log_every: int, default: int) -> int:
    """The `log_every` that `flush_every=` asks for, with a DeprecationWarning shown at the
    caller's line: the first frame outside gandiag (attach() forwards its options)."""
    if log_every not in (default, flush_every):
        raise TypeError(f"gandiag.attach: got log_every={log_every!r} and flush_every={flush_every!r}; "
                        "flush_every is the old name of log_every: pass log_every only")
    warnings.warn("gandiag.attach/Monitor: flush_every= is deprecated; use log_every= (the same "
                  "cadence as TrainConfig.log_every)", DeprecationWarning, stacklevel=user_stacklevel())
    return flush_every


def check_shape(sample_shape: Any) -> tuple[int, ...] | None:
    """`sample_shape` (the shape of one sample, to unpack packed D inputs) as a tuple of
    positive integers, or None."""
    if sample_shape is None:
        return None
    try:
        shape = tuple(int(n) for n in sample_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(n < 1 for n in shape) or any(isinstance(n, bool) for n in sample_shape):
        raise ValueError(f"gandiag.attach: expected sample_shape to be the shape of one sample, "
                         f"e.g. (3, 32, 32) or (2,), got {sample_shape!r}")
    return shape
