"""`DCalls`: each D call read as real, fake or a penalty input, kept until an update claims it.

The Monitor's forward hooks feed it: G's outputs (their storage marks later D inputs as
fake), D's inputs (their *spread*, the mean pairwise distance of up to 32 samples, on
the device), D's outputs (read before a final Sigmoid when D has one). Each call waits
in `pending` until the next optimizer step says which update it served; `file` then
sorts the update's calls (see `phase`):

- a call declared with `monitor.phase(...)` is what it says;
- an input that shares storage with one of G's last outputs is **fake**;
- an input that *requires grad*, in an update that also has a plain real call (one whose
  input does not require grad), is a **penalty input** (WGAN-GP's interpolates, DRAGAN's
  perturbed reals): not recorded. R1's real batch (`real.requires_grad_()`) is the
  update's only real call, so it stays **real**;
- anything else is **real**. Where that guess is shaky (a D update without any fake call,
  a G update whose D calls are not on G's outputs, several grad-requiring inputs and no
  plain real; no fake call at all) the monitor says so once, with the `phase` line that
  fixes it.

    >>> import torch
    >>> calls = DCalls(d_output="logits", output_fn=None, device=torch.device("cpu"))
    >>> fake = torch.randn(4, 2)
    >>> calls.g_output(fake)
    >>> for x in (torch.randn(4, 2), fake.detach(), torch.randn(4, 2).requires_grad_()):
    ...     calls.d_input((x,), {})
    ...     calls.d_output(torch.zeros(4, 1))
    >>> {kind: len(logits) for kind, (logits, _) in calls.file("D").items()}
    {'real': 1, 'fake': 1}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from gandiag.hooks.phase import Provenance, first_tensor

Warn = Callable[[str, str], None]


@dataclass
class Call:
    """One D call waiting for its update: what it was read as and what it left."""

    kind: str | None          # 'real' or 'fake'; None: a penalty input, not recorded
    declared: bool            # kind came from monitor.phase(...), not from a guess
    grad_input: bool          # D's input required grad (a penalty input, or R1's real batch)
    logits: Tensor | None = None
    spread: Tensor | None = None
    gradients: list[Tensor] = field(default_factory=list)  # d loss / d output, while inferring
    samples: Tensor | None = None  # a few of its input rows, for the sample reservoir


class DCalls:
    """Real/fake/penalty filing and pending outputs of D's calls."""

    def __init__(self, *, d_output: str, output_fn: Callable[[Any], Tensor] | None,
                 device: torch.device, warn: Warn | None = None, reservoir: Any = None) -> None:
        self.output_kind, self.output_fn, self.device = d_output, output_fn, device
        self.reservoir = reservoir  # a hooks.reservoir.SampleReservoir, or None
        self.warn: Warn = warn or (lambda topic, message: None)
        self.pending: list[Call] = []
        self.provenance = Provenance()
        self.phase: str | None = None   # monitor.phase(...) override
        self.seen = {"D calls": 0, "real": 0, "fake": 0, "penalty": 0}
        self.inferring = False          # keep d loss / d output for the loss family's inference
        self.filed_calls: list[Call] = []  # the calls of the last update filed
        self._call: Call | None = None  # the D call in progress
        self._captured: Tensor | None = None

    def g_output(self, output: Any) -> None:
        self.provenance.remember(output)

    def d_input(self, args: tuple, kwargs: dict) -> None:
        self._captured = None
        # A call without autograd trains nothing (evaluation, sampling): not recorded.
        if not torch.is_grad_enabled() or self.phase == "ignore":
            self._call = None
            return
        x = first_tensor(args, kwargs)
        grad_input = x is not None and x.requires_grad
        if self.phase is not None:
            call = Call(self.phase, True, grad_input)
        else:
            call = Call("fake" if x is not None and self.provenance.is_fake(x) else "real", False, grad_input)
        if x is not None and x.dim() >= 1 and x.shape[0] >= 2:
            call.spread = spread(x)
        if x is not None and self.reservoir is not None:
            call.samples = self.reservoir.copy(call.kind, x)
        self._call = call

    def sigmoid_input(self, args: tuple) -> None:
        if self._call is not None and args and isinstance(args[0], Tensor):
            self._captured = args[0]

    def d_output(self, output: Any) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        logits = self.logits(output)
        if logits.device != self.device:
            raise RuntimeError(
                f"gandiag: D's outputs are on {logits.device} but the monitor was attached "
                f"on {self.device}; attach after moving the models to their device"
            )
        # A copy: the statistics are computed later, and the loop may change its tensors
        # in place until then.
        call.logits = logits.detach().clone()
        self.seen["D calls"] += 1
        if self.inferring and logits.requires_grad:
            logits.register_hook(_keep_gradient(call.gradients))
        self.pending.append(call)

    def logits(self, output: Any) -> Tensor:
        if self.output_fn is not None:
            output = self.output_fn(output)
        elif isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
            self.warn("tuple output", (
                f"gandiag: D returned a {type(output).__name__} of {len(output)}; its first "
                "element is read as D's real/fake output (an auxiliary classifier's logits "
                "usually follow it). If another element is, pass attach(..., output_fn=lambda "
                "out: out[1])"))
            output = output[0]
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

    def file(self, role: str) -> dict[str, tuple[list[Tensor], list[Tensor]]]:
        """Sort the pending calls, which served `role`'s update (see the module doc):
        {kind: (outputs, input spreads)}; the calls are no longer pending. Counts go to
        `seen`; shaky guesses are reported once through `warn`."""
        calls, self.pending = self.pending, []
        grad_real = [c for c in calls if c.grad_input and c.kind == "real" and not c.declared]
        if grad_real:  # penalty inputs, or R1's real batch
            if any(c.kind == "real" and not c.grad_input and not c.declared for c in calls):
                for call in grad_real:
                    call.kind = None  # a penalty input beside the real batch
            elif len(grad_real) > 1:
                self.warn("penalty unsure", (
                    f"gandiag: {role}'s update had {len(grad_real)} D calls on inputs that "
                    "require grad and no plain real batch, so it cannot tell R1's real batch "
                    "from penalty inputs; all were filed as real. Wrap the penalty's D call in "
                    "`with monitor.phase('ignore'):`"))
        if role == "G":
            self._warn_unsure(calls)
        filed: dict[str, tuple[list[Tensor], list[Tensor]]] = {"real": ([], []), "fake": ([], [])}
        for call in calls:
            self.seen[call.kind or "penalty"] += 1
            if call.kind is not None:
                filed[call.kind][0].append(call.logits)
                if call.spread is not None:
                    filed[call.kind][1].append(call.spread)
                if call.samples is not None:
                    self.reservoir.add(call.kind, call.samples)
        self.filed_calls = calls  # the loss family's inference reads the D update's calls
        return filed

    def _warn_unsure(self, calls: list[Call]) -> None:
        """A G update whose D calls are all guessed real. (A D update without a fake call
        can be a loop's real-only update: the monitor warns at a flush if no fake call
        was seen at all, see `health`.)"""
        kinds = [c.kind for c in calls if c.kind is not None and not c.declared]
        if kinds and "fake" not in kinds:
            self.warn("G update without fake", (
                "gandiag: G's update had no D call on G's outputs (its D calls were filed as "
                "real). If the loop transforms G's samples before D, wrap that call in "
                "`with monitor.phase('fake'):`; a relativistic loss's D(real) is fine as it is"))

    def clear(self) -> None:
        """Forget everything held (G's outputs, pending calls): a removed monitor."""
        self.provenance.clear()
        self._captured = None
        self._call = None
        self.pending = []
        self.filed_calls = []


def _keep_gradient(store: list[Tensor]) -> Callable[[Tensor], None]:
    def hook(gradient: Tensor) -> None:
        # A penalty's autograd.grad(create_graph=True) runs with grad mode on and asks for
        # d output / d input, not the loss's gradient: only plain backward passes count.
        if not torch.is_grad_enabled():
            store.append(gradient.detach().clone())
    return hook


def spread(x: Tensor, rows: int = 32) -> Tensor:
    """Mean pairwise L2 distance of the first `rows` samples of a batch (0-d, float32,
    on x's device; no sync). Packed or augmented batches are measured as D sees them."""
    flat = x.detach()[:rows].reshape(min(rows, x.shape[0]), -1).float()
    return torch.pdist(flat).mean()
