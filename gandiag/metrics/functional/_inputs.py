"""Input checks shared by the functional metrics: tensors or arrays in, float64 tensors out.

Every metric computes in float64 on the device of its tensor inputs (a GPU tensor stays on
the GPU; numpy arrays go to that device, or to the CPU when no input is a tensor). MPS has
no float64, so MPS inputs are computed on the CPU. Metrics run off the training hot path,
so the host-device syncs of these checks (counting non-finite rows, ...) cost nothing
that matters.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

#: Largest distance block (rows x columns float64) that one chunked step may allocate.
BLOCK_BYTES = 64 * 2**20


def compute_device(*values: object, where: str) -> torch.device:
    """The device of the tensor inputs, or the CPU when none is a tensor.

    Example:
        >>> compute_device(np.zeros(2), torch.zeros(2), where="demo")
        device(type='cpu')
    """
    devices = {value.device for value in values if isinstance(value, Tensor)}
    if len(devices) > 1:
        found = ", ".join(sorted(str(device) for device in devices))
        raise ValueError(
            f"{where}: expected all tensor inputs on one device, got tensors on {found}; "
            "move them to one device first, e.g. fake.to(real.device)"
        )
    device = devices.pop() if devices else torch.device("cpu")
    return torch.device("cpu") if device.type == "mps" else device  # MPS has no float64


def as_float64(value: object, *, name: str, where: str, device: torch.device) -> Tensor:
    """``value`` (tensor or array, real-valued) as a detached float64 tensor on ``device``.

    Example:
        >>> as_float64(np.arange(3), name="x", where="demo", device=torch.device("cpu"))
        tensor([0., 1., 2.], dtype=torch.float64)
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise TypeError(
                f"{where}: expected {name} to be a real-valued array, got dtype {value.dtype}; "
                f"convert with {name}.astype(np.float64)"
            )
        return torch.from_numpy(np.asarray(value, dtype=np.float64)).to(device)
    if isinstance(value, Tensor):
        if value.dtype.is_complex or value.dtype == torch.bool:
            raise TypeError(
                f"{where}: expected {name} to be a real-valued tensor, got dtype {value.dtype}; "
                f"convert with {name}.double()"
            )
        return value.detach().to(device).to(torch.float64)  # move first: MPS has no float64
    raise TypeError(
        f"{where}: expected {name} to be a torch.Tensor or numpy.ndarray, got "
        f"{type(value).__name__}; wrap it with torch.as_tensor(...)"
    )


def check_finite_rows(x: Tensor, *, name: str, where: str) -> None:
    """Raise a ValueError naming how many rows of ``x`` hold NaN or inf.

    Example:
        >>> check_finite_rows(torch.ones(3, 2), name="x", where="demo")
    """
    bad_rows = int((~torch.isfinite(x.reshape(x.shape[0], -1))).any(dim=1).sum())
    if bad_rows:
        raise ValueError(
            f"{where}: expected finite {name}, got {bad_rows} of {x.shape[0]} rows with NaN or "
            f"inf; a metric of broken samples would be meaningless, so fix the generator or "
            f"feature extractor first (rows to drop: ~torch.isfinite({name}).all(dim=1))"
        )


def features(
    value: object, *, name: str, where: str, device: torch.device, min_rows: int = 1
) -> Tensor:
    """Validate ``(n, d)`` finite features with ``n >= min_rows``; float64 on ``device``.

    Example:
        >>> features(np.ones((4, 3)), name="real", where="demo", device=torch.device("cpu")).shape
        torch.Size([4, 3])
    """
    x = as_float64(value, name=name, where=where, device=device)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(
            f"{where}: expected {name} features of shape (n, d), got {tuple(x.shape)}; "
            f"pass one feature vector per row (flatten samples with {name}.reshape(n, -1))"
        )
    if x.shape[0] < min_rows:
        raise ValueError(
            f"{where}: expected at least {min_rows} {name} samples, got {x.shape[0]}; "
            "pass more samples"
        )
    check_finite_rows(x, name=name, where=where)
    return x


def feature_pair(
    real: object, fake: object, *, where: str, min_rows: int = 1
) -> tuple[Tensor, Tensor]:
    """Validate real and fake ``(n, d)`` features of one dimension d, on one device.

    Example:
        >>> real, fake = feature_pair(np.ones((4, 3)), torch.ones(5, 3), where="demo")
        >>> real.dtype, fake.shape
        (torch.float64, torch.Size([5, 3]))
    """
    device = compute_device(real, fake, where=where)
    real = features(real, name="real", where=where, device=device, min_rows=min_rows)
    fake = features(fake, name="fake", where=where, device=device, min_rows=min_rows)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"{where}: expected real and fake features of one dimension, got real "
            f"{tuple(real.shape)} and fake {tuple(fake.shape)}; extract both with the same "
            "feature extractor"
        )
    return real, fake


def positive_int(value: object, *, name: str, where: str, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``minimum`` (bool rejected).

    Example:
        >>> positive_int(5, name="k", where="demo")
        5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{where}: expected {name} to be an int >= {minimum}, got {value!r}; "
            f"pass an int >= {minimum}"
        )
    return int(value)


def finite_float(value: object, *, name: str, where: str, positive: bool = False) -> float:
    """``value`` as a float if it is a finite real number (and > 0 when ``positive``).

    Example:
        >>> finite_float(1, name="coef", where="demo")
        1.0
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > 0 or not positive)
    if not ok:
        wanted = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"{where}: expected {name} to be {wanted}, got {value!r}; pass {wanted}")
    return value


def chunk_rows(chunk_size: int | None, columns: int, *, where: str) -> int:
    """Rows per distance block: ``chunk_size``, or the most that keep a float64 block of
    ``columns`` columns within :data:`BLOCK_BYTES` (64 MiB).

    Example:
        >>> chunk_rows(None, 10_000, where="demo")
        838
    """
    if chunk_size is None:
        return max(1, BLOCK_BYTES // (8 * max(1, columns)))
    return positive_int(chunk_size, name="chunk_size", where=where)
