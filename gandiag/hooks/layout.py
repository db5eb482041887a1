"""Where each measurement lives in a buffer row, and how rows become `Records`.

The Monitor registers columns here and its hooks add into them; `decode` turns the rows
of one flush into named series (the keys of docs/definitions.md) on the host. Keeping both directions in
one place keeps the column names and the record keys from drifting apart.
"""

from __future__ import annotations

import numpy as np

from gandiag.hooks import leak
from gandiag.hooks.buffer import DeviceBuffer
from gandiag.hooks.gradients import ModelLayers, sum_per_layer
from gandiag.hooks.outputs import SLOTS, OutputStats, prob_key
from gandiag.core.records import Histograms, Records


class ModelColumns:
    """The columns of one model (D or G): gradient, weight and leak-check measurements,
    one column per parameter (the host sums them per layer)."""

    def __init__(self, buffer: DeviceBuffer, role: str, layers: ModelLayers, *, leak_check: bool) -> None:
        self.role, self.layers, self.matrix = role, list(layers.names), layers.matrix.copy()
        count = len(layers.parameters)
        # Identical on every rank under DDP (gradients are all-reduced), hence "mean".
        self.grad_sq = buffer.columns([f"{role}/grad_sq/{i}" for i in range(count)], reduce="mean")
        self.grad_steps = buffer.columns([f"{role}/grad_steps"], reduce="mean").start
        # weight norm after, update norm, weight norm before (squared, per parameter)
        self.weights = buffer.columns([f"{role}/weights/{k}/{i}" for k in ("after", "update", "before")
                                       for i in range(count)], reduce="mean")
        self.weight_measured = buffer.columns([f"{role}/weight_measured"], reduce="mean").start
        self.lr = buffer.columns([f"{role}/lr"], reduce="mean").start  # where weights are measured
        # where the model is idle: steps without its update, the other's updates since (`idle`)
        self.idle = buffer.columns([f"{role}/idle/steps", f"{role}/idle/other_updates"], reduce="mean")
        self.leak = (buffer.columns([f"{role}/leak/{c}" for c in leak.COLUMNS], reduce="mean")
                     if leak_check else None)

    def decode(self, steps: np.ndarray, rows: np.ndarray, out: dict) -> list[str]:
        """Adds this model's series to `out`; returns the kinds of leak found ('other'/'stale')."""
        role = self.role
        count = rows[:, self.grad_steps]
        measured = count > 0
        if measured.any():
            per_parameter = rows[measured][:, self.grad_sq] / count[measured, None]  # mean over updates
            squared = sum_per_layer(self.matrix, per_parameter)
            for i, name in enumerate(self.layers):
                out[f"{role}/grad_norm/{name}"] = (steps[measured], np.sqrt(squared[:, i]))
            out[f"{role}/grad_norm/total"] = (steps[measured], np.sqrt(squared.sum(axis=1)))
            # parameters whose gradient held a NaN or inf in one of the step's updates
            out[f"nonfinite/{role}/grad"] = (steps[measured], (~np.isfinite(per_parameter)).sum(axis=1).astype(float))
        weighed = rows[:, self.weight_measured] > 0
        # idle (see `idle`): no update since the last weight step, so its weights did not change
        idle = ~weighed & (rows[:, self.idle.start + 1] > 0)
        total = np.zeros(len(steps))  # update ratio over all parameters: 0 where idle
        if weighed.any():
            after, update, before = np.split(rows[weighed][:, self.weights], 3, axis=1)
            after, update, before = (sum_per_layer(self.matrix, x) for x in (after, update, before))
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.sqrt(update) / np.sqrt(before)
            for i, name in enumerate(self.layers):
                out[f"{role}/weight_norm/{name}"] = (steps[weighed], np.sqrt(after[:, i]))
                out[f"{role}/update_ratio/{name}"] = (steps[weighed], ratio[:, i])
            with np.errstate(invalid="ignore", divide="ignore"):
                total[weighed] = np.sqrt(update.sum(axis=1)) / np.sqrt(before.sum(axis=1))
            lr = rows[weighed, self.lr]
            if np.isfinite(lr).any():  # NaN: an update made without an optimizer
                out[f"{role}/lr"] = (steps[weighed][np.isfinite(lr)], lr[np.isfinite(lr)])
        if (weighed | idle).any():
            out[f"{role}/update_ratio/total"] = (steps[weighed | idle], total[weighed | idle])
        if idle.any():
            out[f"{role}/idle/steps"] = (steps[idle], rows[idle, self.idle.start])
            out[f"{role}/idle/other_updates"] = (steps[idle], rows[idle, self.idle.start + 1])
        found: list[str] = []
        if self.leak is not None:
            checked = rows[:, self.leak.start] > 0
            if checked.any():
                kinds = [leak.leak_kind(r[1:3], r[3:5], r[5:7], r[7:9]) for r in rows[checked][:, self.leak]]
                out[f"grad_leak/{role}"] = (steps[checked], np.array([leak.LEAK_CODES.get(k, 0.0) for k in kinds]))
                found = [k for k in kinds if k is not None]
        return found


class Layout:
    """All columns of the Monitor's buffer."""

    def __init__(self, buffer: DeviceBuffer, stats: OutputStats, d_layers: ModelLayers,
                 g_layers: ModelLayers, *, leak_check: bool) -> None:
        self.buffer, self.stats = buffer, stats
        # The four slots, one after the other: one add per step fills them all.
        self.all_slots = buffer.columns([f"{slot}:{i}" for slot in SLOTS for i in range(stats.width)])
        self.slots = {slot: slice(self.all_slots.start + k * stats.width,
                                  self.all_slots.start + (k + 1) * stats.width)
                      for k, slot in enumerate(SLOTS)}
        # Spread of D's inputs per slot: sum and count (see calls.spread)
        self.spreads = {slot: buffer.columns([f"{slot}:spread_sum", f"{slot}:spread_count"]).start
                        for slot in SLOTS}
        self.models = {"D": ModelColumns(buffer, "D", d_layers, leak_check=leak_check),
                       "G": ModelColumns(buffer, "G", g_layers, leak_check=leak_check)}
        self.logged: dict[str, int] = {}  # key -> its sum column; the count column follows
        self.partial = buffer.columns(["row/partial"])  # 1 on a partial last row (see steprow)

    def logged_columns(self, keys: list[str]) -> list[int]:
        """The sum column of each key (its count column follows); new keys get new columns,
        side by side, so keys logged together each step form one block."""
        new = [key for key in dict.fromkeys(keys) if key not in self.logged]
        if new:
            start = self.buffer.columns([f"{key}:{part}" for key in new for part in ("sum", "count")]).start
            self.logged.update({key: start + 2 * i for i, key in enumerate(new)})
        return [self.logged[key] for key in keys]

    def _decode_spreads(self, steps: np.ndarray, rows: np.ndarray, out: dict) -> None:
        """`D/in_real/spread`, `D/in_fake/spread`, ... and `D/spread_ratio` (fake / real at
        the D update: about 1 while G covers the data, towards 0 as it collapses)."""
        means = {}
        for slot, column in self.spreads.items():
            count = rows[:, column + 1]
            seen = count > 0
            if seen.any():
                model, kind = slot.split("/")
                means[slot] = np.where(seen, rows[:, column] / np.maximum(count, 1), np.nan)
                out[f"{model}/in_{kind[len('out_'):]}/spread"] = (steps[seen], means[slot][seen])
        if "D/out_real" in means and "D/out_fake" in means:
            both = np.isfinite(means["D/out_real"]) & np.isfinite(means["D/out_fake"]) & (means["D/out_real"] > 0)
            if both.any():
                out["D/spread_ratio"] = (steps[both], means["D/out_fake"][both] / means["D/out_real"][both])

    def decode(self, steps: np.ndarray, rows: np.ndarray) -> tuple[Records, dict[str, list[str]]]:
        """One flush's rows -> Records, plus the leaks found per model."""
        scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        histograms: dict[str, Histograms] = {}
        for slot, columns in self.slots.items():
            stats = self.stats.decode(rows[:, columns], real=slot.endswith("real"))
            seen = (stats["n"] + stats["nonfinite"]) > 0
            if not seen.any():
                continue
            at = steps[seen]
            critic = self.stats.family.center is None  # no threshold: no sign, acc or prob
            for name in ("mean", "std") if critic else ("mean", "std", "sign", "acc"):
                scalars[f"{slot}/{name}"] = (at, stats[name][seen])
            if not critic:
                scalars[prob_key(slot)] = (at, stats["prob"][seen])
            scalars[f"nonfinite/{slot}"] = (at, stats["nonfinite"][seen])
            histograms[f"{slot}/hist"] = Histograms(at, self.stats.edges, stats["hist"][seen])
        self._decode_spreads(steps, rows, scalars)
        any_logged = np.zeros(len(steps), dtype=bool)
        nonfinite = np.zeros(len(steps))
        for key, column in self.logged.items():
            count = rows[:, column + 1]
            logged = count > 0
            any_logged |= logged
            nonfinite += logged & ~np.isfinite(rows[:, column])  # a NaN or inf stays in the sum
            if logged.any():
                scalars[key] = (steps[logged], rows[logged, column] / count[logged])
        if any_logged.any():  # how many logged values (losses and others) were not finite
            scalars["nonfinite/loss"] = (steps[any_logged], nonfinite[any_logged])
        partial = rows[:, self.partial.start] > 0
        if partial.any():
            scalars["row/partial"] = (steps[partial], np.ones(int(partial.sum())))
        leaks = {role: columns.decode(steps, rows, scalars) for role, columns in self.models.items()}
        return Records(scalars=scalars, histograms=histograms), leaks
