"""What the timing benchmarks share: the device from `--device` and the cases from `--cases`.

The scripts run as `python benchmarks/NAME.py`, so this module is importable beside them.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import torch

CaseT = TypeVar("CaseT")


def resolve_device(name: str, prog: str) -> torch.device:
    """`auto` is CUDA when torch sees it; `cuda` without it is a clear exit."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"{prog}: --device cuda, but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def pick_cases(cases: Sequence[CaseT], names: str | None, device: torch.device, prog: str) -> list[CaseT]:
    """The cases named (comma-separated; run even where slow), or by default all but the
    `cuda_only` ones on a CPU (seconds a step there)."""
    by_name = {case.name: case for case in cases}
    if names is None:
        return [c for c in cases if device.type == "cuda" or not c.cuda_only]
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        raise SystemExit(f"{prog}: unknown case(s) {unknown}; expected names from {list(by_name)}")
    return [by_name[n] for n in chosen]
