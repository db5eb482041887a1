"""Statistics of D's outputs (logits): a few sums per step on the device, read on the host.

The Monitor keeps the logits of every D call of a step and, when the step is committed,
turns all of them into sums in one batched computation (a couple of dozen small tensor
ops per step, whatever the number of calls; no sync). The host turns sums into the
recorded series. Outputs are read by the loss family (`gandiag.core.family`): logits
(higher = more real; a D that outputs probabilities is read through its logits, see
`Monitor`), LSGAN outputs, hinge or critic values.

Per slot (`D/out_real`, `D/out_fake` at the D update, `G/out_fake`, `G/out_real` at the
G update), over the finite outputs of all calls in the step, with c the family's decision
threshold (0 for logits and hinge, (a + b) / 2 for LSGAN targets a, b):
    mean, std          of the outputs (population std)
    sign               mean of sign(output - c); for real data this is r_t of StyleGAN2-ADA
    acc                share classified correctly at c (real: output > c, fake: output < c)
    prob               the DCGAN tutorial's D(x) / D(G(z)): mean sigmoid(logit); for LSGAN
                       the output as a share of the way from a to b, clipped to [0, 1]
    hist               fixed-range histogram; values outside the range land in the edge bins
    nonfinite          count of NaN/inf outputs (not in the other statistics, never hidden)
A critic (WGAN) has no threshold: `decode` leaves out sign, acc and prob for it.

    >>> import torch
    >>> stats = OutputStats(bins=4, value_range=(-2.0, 2.0))
    >>> sums = stats.sums([[torch.tensor([1.0, 3.0, float("nan")])], [], [], []])
    >>> series = stats.decode(sums[:1], real=True)
    >>> series["mean"], series["acc"], series["nonfinite"], series["hist"].tolist()  # sync ok: numpy
    (array([2.]), array([1.]), array([1.]), [[0.0, 0.0, 0.0, 2.0]])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gandiag.core.family import LossFamily
from gandiag.hooks import buffer

# Columns of one slot's sums (the histogram follows). Non-finite outputs count as 0 in
# sum, sign, positive, negative, prob and the histogram; decode takes them out again.
SUMS = ("finite", "nonfinite", "sum", "sumsq", "sign", "positive", "negative", "prob")
SLOTS = ("D/out_real", "D/out_fake", "G/out_fake", "G/out_real")


def prob_key(slot: str) -> str:
    """'D/out_real' -> 'D/prob_real/mean' (mean sigmoid, as the trainer always named it)."""
    model, kind = slot.split("/")
    return f"{model}/prob_{kind[len('out_'):]}/mean"


class OutputStats:
    """Turns the logits of a step into sums (device) and sums into statistics (host)."""

    def __init__(self, *, bins: int = 40, value_range: tuple[float, float] = (-10.0, 10.0)) -> None:
        low, high = float(value_range[0]), float(value_range[1])
        if not bins >= 1 or not low < high:
            raise ValueError(
                f"OutputStats: expected bins >= 1 and a range low < high, got bins={bins}, "
                f"range={value_range}"
            )
        self.bins, self.low, self.high = int(bins), low, high
        self.width = len(SUMS) + self.bins
        self.family = LossFamily("logits")  # the monitor sets it once the loss is known
        self._bin_numbers: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.bins + 1)

    def bin_of(self, value: float) -> int:
        """The bin a value falls in (values outside the range: the edge bins)."""
        return int(min(max(np.floor((value - self.low) * self.bins / (self.high - self.low)), 0), self.bins - 1))

    def sums(self, slots: list[list[Tensor]], dtype: torch.dtype = torch.float64) -> Tensor | np.ndarray:
        """The sums (len(slots), width) of the logits of each slot's calls. No sync.

        CPU logits are summed with numpy (the same memory, a fifth of torch's per-op
        cost at these sizes), others with torch on their device; a test checks that both
        give the same sums.
        """
        if buffer.CPU_FAST_PATH and all(t.device.type == "cpu" for calls in slots for t in calls):
            return self.sums_numpy(slots)
        return self.sums_torch(slots, dtype)

    def sums_numpy(self, slots: list[list[Tensor]]) -> np.ndarray:
        """`sums` for CPU tensors, with numpy; any number of slots in one vectorised pass."""
        tensors = [t.reshape(-1) for calls in slots for t in calls]
        lengths = np.array([sum(t.numel() for t in calls) for calls in slots], dtype=np.intp)
        out = np.zeros((len(slots), self.width))
        if not tensors:
            return out
        x = torch.cat(tensors).double().numpy()  # one torch op (bf16 logits too), then numpy
        columns = np.empty((len(x), len(SUMS)))
        finite = np.isfinite(x)
        c = self.center
        x0 = np.where(finite, x, 0.0)
        xc = np.where(finite, x, c) - c  # non-finite outputs sit at the threshold: no side
        columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3] = finite, ~finite, x0, x0 * x0
        columns[:, 4], columns[:, 5], columns[:, 6] = np.sign(xc), xc > 0, xc < 0
        if self.family.name == "lsgan":
            columns[:, 7] = np.clip(0.5 + xc / (self.family.real - self.family.fake), 0.0, 1.0)
        else:
            columns[:, 7] = 0.5 + 0.5 * np.tanh(0.5 * xc)  # sigmoid, without exp's overflow
        # Sums per slot: reduceat over the starts of the non-empty slots (empty ones own
        # no elements, so the non-empty starts alone delimit the segments).
        starts = np.cumsum(lengths) - lengths
        filled = lengths > 0
        out[filled, :len(SUMS)] = np.add.reduceat(columns, starts[filled], axis=0)
        index = np.floor((x0 - self.low) * (self.bins / (self.high - self.low)))
        index = np.minimum(np.maximum(index, 0), self.bins - 1).astype(np.intp)
        slot_of = np.repeat(np.arange(len(slots)), lengths)
        out[:, len(SUMS):] = np.bincount(slot_of * self.bins + index, minlength=len(slots) * self.bins
                                         ).reshape(len(slots), self.bins)
        return out

    def sums_torch(self, slots: list[list[Tensor]], dtype: torch.dtype = torch.float64) -> Tensor:
        lengths = [sum(t.numel() for t in calls) for calls in slots]
        x = torch.cat([t.reshape(-1) for calls in slots for t in calls]).to(dtype)
        finite = torch.isfinite(x)
        x0 = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        xc = x0 - self.center
        xc = torch.where(finite, xc, torch.zeros_like(xc))  # non-finite: at the threshold
        if self.family.name == "lsgan":
            prob = (0.5 + xc / (self.family.real - self.family.fake)).clamp(0.0, 1.0)
        else:
            prob = torch.sigmoid(xc)
        # Bins as torch.histc draws them, by comparing bin numbers: deterministic on CUDA
        # (histc uses atomics and fails under torch.use_deterministic_algorithms).
        index = x0.mul(self.bins / (self.high - self.low)).sub_(self.low * self.bins / (self.high - self.low))
        index = index.floor_().clamp_(0, self.bins - 1)
        columns = torch.cat([
            torch.stack([finite, ~finite], dim=1),
            torch.stack([x0, x0 * x0, torch.sign(xc), xc > 0, xc < 0, prob], dim=1),
            index[:, None] == self._bin_numbers_on(x),
        ], dim=1).to(dtype)
        return torch.stack([part.sum(0) for part in columns.split(lengths)])

    def _bin_numbers_on(self, x: Tensor) -> Tensor:
        key = (x.device, x.dtype)
        numbers = self._bin_numbers.get(key)
        if numbers is None:
            numbers = torch.arange(self.bins, device=x.device, dtype=x.dtype)[None, :]
            self._bin_numbers[key] = numbers
        return numbers

    @property
    def center(self) -> float:
        """The decision threshold the sums use (0 for a critic, whose sign is not decoded)."""
        center = self.family.center
        return 0.0 if center is None else center

    def decode(self, sums: np.ndarray, *, real: bool) -> dict[str, np.ndarray]:
        """Rows of sums (n, width) -> statistics per row (NaN where no finite output)."""
        column = {name: sums[:, i] for i, name in enumerate(SUMS)}
        n, nonfinite = column["finite"], column["nonfinite"]
        hist = sums[:, len(SUMS):].copy()
        hist[:, self.bin_of(0.0)] -= nonfinite  # non-finite outputs were binned as 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = column["sum"] / n
            variance = np.maximum(column["sumsq"] / n - mean * mean, 0.0)
            return {
                "n": n, "mean": mean, "std": np.sqrt(variance), "sign": column["sign"] / n,
                "acc": (column["positive"] if real else column["negative"]) / n,
                "prob": (column["prob"] - 0.5 * nonfinite) / n,  # each read as 0.5 at the threshold
                "nonfinite": nonfinite, "hist": hist,
            }
