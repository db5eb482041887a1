"""Exponential moving average of the generator's weights (Karras et al.; Yazici et al. 2019)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """Keeps `model`'s averaged copy: p_ema <- decay * p_ema + (1 - decay) * p.

    Buffers (BatchNorm statistics) are copied, not averaged. The copy never receives
    gradients. Example:
        >>> G = torch.nn.Linear(4, 2)
        >>> ema = EMA(G, decay=0.999)
        >>> ema.update(G)          # after every optimizer step of G
        >>> ema.model(torch.randn(8, 4)).shape
        torch.Size([8, 2])
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA: expected a decay in (0, 1), got {decay!r}; 0.999 is typical")
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        # lerp(a, b, w) = a + w (b - a): one fused kernel per group, no host sync.
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for ema_buffer, buffer in zip(self.model.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.model.load_state_dict(state["model"])
