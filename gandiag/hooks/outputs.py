"""Statistics of D's outputs (logits), accumulated per call on the device and read per step.

One D call adds a fixed-width vector of sums to an accumulator (no sync); the host turns
the sums into the recorded series. Everything is computed on **logits** (higher = more
real); a D that outputs probabilities is read through its logits (see `Monitor`).

Per slot (`D/out_real`, `D/out_fake` at the D update, `G/out_fake`, `G/out_real` at the
G update), over the finite outputs of all calls in the step:
    mean, std          of the logits (population std)
    sign               mean of sign(logit); for real data this is r_t of StyleGAN2-ADA
    acc                share classified correctly at 0 (real: logit > 0, fake: logit < 0)
    prob mean          mean sigmoid(logit), the DCGAN tutorial's D(x) / D(G(z))
    hist               fixed-range histogram; values outside the range land in the edge bins
    nonfinite          count of NaN/inf outputs (not in the other statistics, never hidden)

    >>> import torch
    >>> stats = OutputStats(bins=4, value_range=(-2.0, 2.0))
    >>> sums = stats.sums(torch.tensor([1.0, 3.0, float("nan")]), real=True)
    >>> series = stats.decode(sums[None].numpy())
    >>> series["mean"], series["acc"], series["nonfinite"], series["hist"].tolist()
    (array([2.]), array([1.]), array([1.]), [[0.0, 0.0, 0.0, 2.0]])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Column order of one slot's accumulator (the histogram follows).
SUMS = ("n", "sum", "sumsq", "sign", "correct", "prob", "nonfinite")
SLOTS = ("D/out_real", "D/out_fake", "G/out_fake", "G/out_real")


def prob_key(slot: str) -> str:
    """'D/out_real' -> 'D/prob_real/mean' (mean sigmoid, as the trainer always named it)."""
    model, kind = slot.split("/")
    return f"{model}/prob_{kind[len('out_'):]}/mean"


class OutputStats:
    """Turns a batch of logits into sums (device) and sums into statistics (host)."""

    def __init__(self, *, bins: int = 40, value_range: tuple[float, float] = (-10.0, 10.0)) -> None:
        low, high = float(value_range[0]), float(value_range[1])
        if not bins >= 1 or not low < high:
            raise ValueError(
                f"OutputStats: expected bins >= 1 and a range low < high, got bins={bins}, "
                f"range={value_range}"
            )
        self.bins, self.low, self.high = int(bins), low, high
        self.width = len(SUMS) + self.bins

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.bins + 1)

    def sums(self, logits: Tensor, *, real: bool) -> Tensor:
        """The accumulator vector of one call (float64 on logits' device). No sync."""
        x = logits.detach().reshape(-1).double()
        finite = torch.isfinite(x)
        x = torch.where(finite, x, torch.zeros((), dtype=x.dtype, device=x.device))
        correct = x > 0 if real else x < 0
        columns = torch.stack([
            finite.double(), x, x * x, torch.sign(x), (correct & finite).double(),
            torch.sigmoid(x) * finite, (~finite).double(),
        ], dim=1).sum(0)
        return torch.cat([columns, self.histogram(x, finite)])

    def histogram(self, x: Tensor, finite: Tensor) -> Tensor:
        """Counts per bin of the finite values, values outside the range in the edge bins.

        Bins as torch.histc draws them, but by comparing bin numbers with a row of bin
        indices: deterministic on CUDA (histc uses atomics and fails under
        torch.use_deterministic_algorithms) and without a sync.
        """
        index = ((x - self.low) * (self.bins / (self.high - self.low))).floor().clamp(0, self.bins - 1)
        bins = torch.arange(self.bins, device=x.device, dtype=x.dtype)
        return ((index[:, None] == bins[None, :]) & finite[:, None]).sum(0).to(x.dtype)

    def decode(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """Rows of accumulated sums (n, width) -> statistics per row (NaN where n == 0)."""
        n = sums[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums[:, 1] / n
            variance = np.maximum(sums[:, 2] / n - mean * mean, 0.0)
            return {
                "n": n, "mean": mean, "std": np.sqrt(variance), "sign": sums[:, 3] / n,
                "acc": sums[:, 4] / n, "prob": sums[:, 5] / n, "nonfinite": sums[:, 6],
                "hist": sums[:, len(SUMS):],
            }
