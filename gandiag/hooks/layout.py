"""Where each measurement lives in a buffer row, and how rows become `Records`.

The Monitor registers columns here and its hooks add into them; `decode` turns the rows
of one flush into named series (DESIGN.md keys) on the host. Keeping both directions in
one place keeps the column names and the record keys from drifting apart.
"""

from __future__ import annotations

import numpy as np

from gandiag.hooks import leak
from gandiag.hooks.buffer import DeviceBuffer
from gandiag.hooks.outputs import SLOTS, OutputStats, prob_key
from gandiag.hooks.records import Histograms, Records


class ModelColumns:
    """The columns of one model (D or G): gradient, weight and leak-check measurements."""

    def __init__(self, buffer: DeviceBuffer, role: str, layers: list[str], *, leak_check: bool) -> None:
        self.role, self.layers = role, layers
        # Identical on every rank under DDP (gradients are all-reduced), hence "mean".
        self.grad_sq = buffer.columns([f"{role}/grad_sq/{name}" for name in layers], reduce="mean")
        self.grad_steps, self.grad_nonfinite = _pair(buffer.columns(
            [f"{role}/grad_steps", f"nonfinite/{role}/grad"], reduce="mean"))
        self.weight_norm = buffer.columns([f"{role}/weight_norm/{n}" for n in layers], reduce="mean")
        self.update_ratio = buffer.columns([f"{role}/update_ratio/{n}" for n in layers], reduce="mean")
        self.weight_measured = buffer.columns([f"{role}/weight_measured"], reduce="mean").start
        self.leak = (buffer.columns([f"{role}/leak/{c}" for c in leak.COLUMNS], reduce="mean")
                     if leak_check else None)

    def decode(self, steps: np.ndarray, rows: np.ndarray, out: dict) -> list[str]:
        """Adds this model's series to `out`; returns the kinds of leak found ('other'/'stale')."""
        role = self.role
        count = rows[:, self.grad_steps]
        measured = count > 0
        if measured.any():
            squared = rows[measured][:, self.grad_sq] / count[measured, None]  # mean over the steps
            for i, name in enumerate(self.layers):
                out[f"{role}/grad_norm/{name}"] = (steps[measured], np.sqrt(squared[:, i]))
            out[f"{role}/grad_norm/total"] = (steps[measured], np.sqrt(squared.sum(axis=1)))
            out[f"nonfinite/{role}/grad"] = (steps[measured], rows[measured, self.grad_nonfinite])
        weighed = rows[:, self.weight_measured] > 0
        if weighed.any():
            for i, name in enumerate(self.layers):
                out[f"{role}/weight_norm/{name}"] = (steps[weighed], rows[weighed, self.weight_norm.start + i])
                out[f"{role}/update_ratio/{name}"] = (steps[weighed], rows[weighed, self.update_ratio.start + i])
        found: list[str] = []
        if self.leak is not None:
            checked = rows[:, self.leak.start] > 0
            if checked.any():
                kinds = [leak.leak_kind(r[1:3], r[3:5], r[5:7], r[7:9]) for r in rows[checked][:, self.leak]]
                out[f"grad_leak/{role}"] = (steps[checked], np.array([k is not None for k in kinds], float))
                found = [k for k in kinds if k is not None]
        return found


class Layout:
    """All columns of the Monitor's buffer."""

    def __init__(self, buffer: DeviceBuffer, stats: OutputStats, d_layers: list[str],
                 g_layers: list[str], *, leak_check: bool) -> None:
        self.buffer, self.stats = buffer, stats
        self.slots = {slot: buffer.columns([f"{slot}:{i}" for i in range(stats.width)]) for slot in SLOTS}
        self.models = {"D": ModelColumns(buffer, "D", d_layers, leak_check=leak_check),
                       "G": ModelColumns(buffer, "G", g_layers, leak_check=leak_check)}
        self.loss_nonfinite = buffer.columns(["nonfinite/loss"]).start
        self.logged: dict[str, int] = {}  # key -> its sum column; the count column follows

    def logged_column(self, key: str) -> int:
        column = self.logged.get(key)
        if column is None:
            column = self.buffer.columns([f"{key}:sum", f"{key}:count"]).start
            self.logged[key] = column
        return column

    def decode(self, steps: np.ndarray, rows: np.ndarray) -> tuple[Records, dict[str, list[str]]]:
        """One flush's rows -> Records, plus the leaks found per model."""
        scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        histograms: dict[str, Histograms] = {}
        for slot, columns in self.slots.items():
            stats = self.stats.decode(rows[:, columns])
            seen = (stats["n"] + stats["nonfinite"]) > 0
            if not seen.any():
                continue
            at = steps[seen]
            for name in ("mean", "std", "sign", "acc"):
                scalars[f"{slot}/{name}"] = (at, stats[name][seen])
            scalars[prob_key(slot)] = (at, stats["prob"][seen])
            scalars[f"nonfinite/{slot}"] = (at, stats["nonfinite"][seen])
            histograms[f"{slot}/hist"] = Histograms(at, self.stats.edges, stats["hist"][seen])
        any_logged = np.zeros(len(steps), dtype=bool)
        for key, column in self.logged.items():
            count = rows[:, column + 1]
            logged = count > 0
            any_logged |= logged
            if logged.any():
                scalars[key] = (steps[logged], rows[logged, column] / count[logged])
        if any_logged.any():
            scalars["nonfinite/loss"] = (steps[any_logged], rows[any_logged, self.loss_nonfinite])
        leaks = {role: columns.decode(steps, rows, scalars) for role, columns in self.models.items()}
        return Records(scalars=scalars, histograms=histograms), leaks


def _pair(columns: slice) -> tuple[int, int]:
    return columns.start, columns.start + 1
