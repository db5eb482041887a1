"""What `attach` accepts, and the clear errors for what it does not.

    >>> from torch import nn
    >>> D = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    >>> resolve_d_output(D, "auto")[0]
    'probability'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

if TYPE_CHECKING:
    from gandiag.hooks.gradients import ModelLayers

D_OUTPUTS = ("auto", "logits", "probability")


def unwrap(role: str, model: Any) -> nn.Module:
    """The module to hook: DDP's inner module; DataParallel and torch.compile are errors."""
    if not isinstance(model, nn.Module):
        what = "a function" if callable(model) else type(model).__name__
        raise TypeError(
            f"gandiag.attach: expected {role} to be an nn.Module, got {what}; pass the module "
            "itself, not its forward or its output"
        )
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.module  # DDP calls its module, so hooks on it see every call
    if isinstance(model, nn.DataParallel):
        raise TypeError(
            f"gandiag.attach: {role} is wrapped in nn.DataParallel, which runs copies of the "
            f"module in threads that hooks cannot follow; use DistributedDataParallel, or "
            f"attach to a single-device model ({role}.module)"
        )
    if hasattr(model, "_orig_mod") and type(model).__name__ == "OptimizedModule":
        raise TypeError(
            f"gandiag.attach: {role} was compiled with torch.compile; hooks on a compiled module "
            f"break its graphs. Attach to the uncompiled model ({role}._orig_mod) and train it "
            "without torch.compile while diagnosing"
        )
    return model


def resolve_d_output(D: nn.Module, d_output: str) -> tuple[str, nn.Module | None]:
    """('logits' or 'probability', the final Sigmoid module whose input gives the logits)."""
    if d_output not in D_OUTPUTS:
        raise ValueError(
            f"gandiag.attach: d_output must be one of {', '.join(map(repr, D_OUTPUTS))}, got "
            f"{d_output!r}; use 'probability' for a D that ends in a sigmoid"
        )
    leaves = [m for m in D.modules() if not list(m.children())]
    sigmoid = leaves[-1] if leaves and isinstance(leaves[-1], nn.Sigmoid) else None
    if d_output == "logits":
        return "logits", None
    if d_output == "auto":
        return ("probability", sigmoid) if sigmoid is not None else ("logits", None)
    return "probability", sigmoid


def check_optimizer(role: str | None, optimizer: Any, layers: dict[str, "ModelLayers"],
                    warn: Callable[[str, str], None] | None = None) -> str | None:
    """The role ('D' or 'G') of the model whose parameters `optimizer` updates.

    With `role` given (an optimizer passed to attach), anything else is an error; without
    (an optimizer found through the global hooks), unrelated optimizers give None.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"gandiag.attach: expected opt_{(role or 'x').lower()} to be a torch.optim.Optimizer, "
            f"got {type(optimizer).__name__}"
        )
    params = [p for group in optimizer.param_groups for p in group["params"]]
    owners = {r for r, model in layers.items() for p in params if model.owns(p)}
    if len(owners) == 1:
        found = owners.pop()
        if role is not None and found != role:
            raise ValueError(
                f"gandiag.attach: opt_{role.lower()} updates {found}'s parameters, not {role}'s; "
                "were opt_g and opt_d swapped?"
            )
        return found
    if not owners:
        if role is not None:
            raise ValueError(
                f"gandiag.attach: opt_{role.lower()} holds parameters of neither G nor D "
                f"({len(params)} parameters); pass the optimizer built from {role}.parameters()"
            )
        return None
    message = ("gandiag: one optimizer updates parameters of both G and D, so its steps cannot "
               "be told apart; use one optimizer per model (the classic GAN setup)")
    if role is not None:
        raise ValueError(message.replace("gandiag:", "gandiag.attach:"))
    if warn is not None:
        warn("mixed optimizer", message)
    return None
