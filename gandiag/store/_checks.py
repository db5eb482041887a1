"""Checks on what callers hand the run store: JSON-able dicts, series, steps, PNG bytes.

Each returns the value in the form the store keeps, or raises a ValueError that says what
was expected, what was given and the fix.

    >>> check_series("D/loss", [1, 2], [0.5, float("nan")])
    (array([1, 2]), array([0.5, nan]))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(png: Any) -> bytes:
    """`png` as bytes, if it starts with the PNG signature."""
    if isinstance(png, (bytes, bytearray, memoryview)) and bytes(png[:8]) == PNG_SIGNATURE:
        return bytes(png)
    got = (f"{type(png).__name__} starting {bytes(png[:8])!r}"
           if isinstance(png, (bytes, bytearray, memoryview)) else type(png).__name__)
    raise ValueError(f"RunWriter.add_sample: expected PNG bytes (starting {PNG_SIGNATURE!r}), "
                     f"got {got}; encode the image as PNG first (e.g. PIL Image.save(buf, 'PNG'))")


def as_dict(obj: Any, what: str) -> dict[str, Any]:
    """A run's config or an alert's details as a dict: from a dict, a dataclass or None.

    >>> as_dict(None, "config"), as_dict({"lr": 1e-4}, "config")
    ({}, {'lr': 0.0001})
    """
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise ValueError(f"RunWriter: expected {what} to be a dict or a dataclass instance, got "
                     f"{type(obj).__name__}; pass e.g. dict(lr=2e-4, batch=64)")


def to_json(obj: dict[str, Any], what: str) -> str:
    """`obj` as JSON text, or a ValueError naming the first entry JSON cannot hold.

    >>> to_json({"lr": 1e-4, "betas": [0.5, 0.999]}, "config")
    '{"lr": 0.0001, "betas": [0.5, 0.999]}'
    """
    bad = _first_bad(obj, what)
    if bad is not None:
        path, value = bad
        raise ValueError(f"RunWriter: {path} has type {type(value).__name__}, expected {what} to "
                         "hold only JSON values (dict with str keys, list, str, int, float, "
                         "bool, None); convert it, e.g. str(path) or .item() for numpy scalars")
    return json.dumps(obj)


def _first_bad(obj: Any, path: str) -> tuple[str, Any] | None:
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return None
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                return f"{path} key {key!r}", key
            found = _first_bad(value, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(obj, (list, tuple)):
        return next(filter(None, (_first_bad(v, f"{path}[{i}]") for i, v in enumerate(obj))), None)
    return path, obj


def check_series(key: str, steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        s = np.array(steps, dtype=np.int64).reshape(-1)
        v = np.array(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"RunWriter.write: expected scalar {key!r} as (int steps, float "
                         f"values) arrays, got what numpy cannot convert ({err})") from err
    if s.shape != v.shape:
        raise ValueError(f"RunWriter.write: scalar {key!r} has {len(s)} steps but {len(v)} "
                         "values; pass one value per step")
    return s, v


def check_step(step: Any) -> int:
    try:
        return int(step.__index__())
    except AttributeError:
        raise ValueError(f"RunWriter: expected step to be an int, got {step!r}; "
                         "pass the count of G updates") from None


def check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"RunWriter: expected {what} to be a non-empty string, got {value!r}")
    return value
