"""`DCalls`: each D call read as real or fake, and its logits kept until an update claims them.

The Monitor's forward hooks feed it: G's outputs (their storage marks later D inputs as
fake), D's inputs (real or fake, or not recorded; their *spread*, the mean pairwise
distance of up to 32 samples, on the device), D's outputs (the logits, read before a
final Sigmoid when D has one). Logits and spreads wait in `pending` until the next
optimizer step says which update they served (see `phase`). A fake batch whose spread
falls far below the real one's is a collapsing generator, seen in an unchanged loop.

    >>> import torch
    >>> calls = DCalls(d_output="logits", output_fn=None, device=torch.device("cpu"))
    >>> fake = torch.randn(4, 2)
    >>> calls.g_output(fake)
    >>> calls.d_input((fake.detach(),), {})
    >>> calls.d_output(torch.zeros(4, 1))
    >>> {kind: len(logits) for kind, logits in calls.pending.items()}
    {'real': 0, 'fake': 1}
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from gandiag.hooks.phase import Provenance, first_tensor


class DCalls:
    """Real/fake classification and pending logits of D's calls."""

    def __init__(self, *, d_output: str, output_fn: Callable[[Any], Tensor] | None,
                 device: torch.device) -> None:
        self.output_kind, self.output_fn, self.device = d_output, output_fn, device
        self.pending: dict[str, list[Tensor]] = {"real": [], "fake": []}
        self.spreads: dict[str, list[Tensor]] = {"real": [], "fake": []}
        self.provenance = Provenance()
        self.phase: str | None = None   # monitor.phase(...) override
        self.seen = {"D calls": 0, "real": 0, "fake": 0}
        self._call: str | None = None   # the kind of the D call in progress
        self._spread: Tensor | None = None
        self._captured: Tensor | None = None

    def g_output(self, output: Any) -> None:
        self.provenance.remember(output)

    def d_input(self, args: tuple, kwargs: dict) -> None:
        self._captured = None
        # A call without autograd trains nothing (evaluation, sampling): not recorded.
        if not torch.is_grad_enabled() or self.phase == "ignore":
            self._call = None
        else:
            x = first_tensor(args, kwargs)
            if self.phase is not None:
                self._call = self.phase
            else:
                self._call = "fake" if x is not None and self.provenance.is_fake(x) else "real"
            self._spread = spread(x) if x is not None and x.dim() >= 1 and x.shape[0] >= 2 else None

    def sigmoid_input(self, args: tuple) -> None:
        if self._call is not None and args and isinstance(args[0], Tensor):
            self._captured = args[0]

    def d_output(self, output: Any) -> None:
        if self._call is None:
            return
        kind, self._call = self._call, None
        logits = self.logits(output)
        if logits.device != self.device:
            raise RuntimeError(
                f"gandiag: D's outputs are on {logits.device} but the monitor was attached "
                f"on {self.device}; attach after moving the models to their device"
            )
        # A copy: the statistics are computed later, and the loop may change its tensors
        # in place until then.
        self.pending[kind].append(logits.detach().clone())
        if self._spread is not None:
            self.spreads[kind].append(self._spread)
            self._spread = None
        self.seen["D calls"] += 1
        self.seen[kind] += 1

    def logits(self, output: Any) -> Tensor:
        if self.output_fn is not None:
            output = self.output_fn(output)
        if not isinstance(output, Tensor):
            raise TypeError(
                f"gandiag: D returned a {type(output).__name__}, expected a tensor of logits; "
                "pass attach(..., output_fn=lambda out: out[0]) (or out['logits']) to pick them"
            )
        captured, self._captured = self._captured, None
        if captured is not None and captured.numel() == output.numel():
            return captured  # the exact logits, read before D's final Sigmoid
        if self.output_kind == "probability":
            return torch.logit(output.detach().float(), eps=1e-7)
        return output

    def clear(self) -> None:
        """Forget everything held (G's outputs, pending logits): a removed monitor."""
        self.provenance.clear()
        self._captured = None
        for held in (*self.pending.values(), *self.spreads.values()):
            held.clear()


def spread(x: Tensor, rows: int = 32) -> Tensor:
    """Mean pairwise L2 distance of the first `rows` samples of a batch (0-d, float32,
    on x's device; no sync). Packed or augmented batches are measured as D sees them."""
    flat = x.detach()[:rows].reshape(min(rows, x.shape[0]), -1).float()
    return torch.pdist(flat).mean()
