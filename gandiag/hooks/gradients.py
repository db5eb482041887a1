"""Per-layer gradient norms, weight norms and update/weight ratios of one model.

A *layer* is the module that owns a parameter directly, named by its qualified name
(`main.0`); parameters of spectral-norm or other parametrisations count for the layer
they parametrise. Norms of all parameters come from one `torch._foreach_norm` call and
are summed per layer on the device with `index_add_` (no sync).

    >>> from torch import nn
    >>> D = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> ModelLayers(D).names
    ['0', '2']
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def layer_name(parameter_name: str) -> str:
    """'main.0.weight' -> 'main.0'; 'main.0.parametrizations.weight.original' -> 'main.0'."""
    module = parameter_name.rpartition(".")[0]
    if ".parametrizations." in f".{module}.":
        module = f".{module}".split(".parametrizations.")[0].lstrip(".")
    return module or "(root)"


class ModelLayers:
    """The parameters of one model, grouped into layers, in registration order."""

    def __init__(self, model: nn.Module) -> None:
        self.names: list[str] = []
        self.parameters: list[nn.Parameter] = []
        self.layer_of: list[int] = []          # layer index of each parameter
        self.position: dict[int, int] = {}     # id(parameter) -> index in self.parameters
        for name, parameter in model.named_parameters():
            layer = layer_name(name)
            if layer not in self.names:
                self.names.append(layer)
            self.position[id(parameter)] = len(self.parameters)
            self.parameters.append(parameter)
            self.layer_of.append(self.names.index(layer))

    def owns(self, parameter: Tensor) -> bool:
        return id(parameter) in self.position


class GradientRecorder:
    """Squared gradient norms per layer of the parameters one optimizer updates."""

    def __init__(self, layers: ModelLayers, parameters: list[Tensor], device: torch.device,
                 dtype: torch.dtype) -> None:
        self.layers = layers
        self.parameters = parameters
        self.device, self.dtype = device, dtype
        self._index: dict[tuple[bool, ...], Tensor] = {}

    def squared_norms(self) -> tuple[Tensor, Tensor]:
        """(per-layer squared norms, number of parameters with a non-finite gradient)."""
        present = tuple(p.grad is not None for p in self.parameters)
        grads = [p.grad for p in self.parameters if p.grad is not None]
        per_layer = torch.zeros(len(self.layers.names), device=self.device, dtype=self.dtype)
        if not grads:
            return per_layer, per_layer.new_zeros(())
        norms = torch.stack(torch._foreach_norm(grads)).to(self.dtype)
        per_layer.index_add_(0, self._layer_index(present), norms * norms)
        return per_layer, (~torch.isfinite(norms)).sum().to(self.dtype)

    def _layer_index(self, present: tuple[bool, ...]) -> Tensor:
        index = self._index.get(present)
        if index is None:  # one host-to-device copy per pattern of missing gradients
            layer_of = [self.layers.layer_of[self.layers.position[id(p)]]
                        for p, has in zip(self.parameters, present) if has]
            index = torch.tensor(layer_of, device=self.device, dtype=torch.long)
            self._index[present] = index
        return index


class WeightRecorder:
    """Weight norms and ‖Δw‖/‖w‖ per layer across one optimizer step (every k steps)."""

    def __init__(self, gradients: GradientRecorder) -> None:
        self.gradients = gradients
        self._before: list[Tensor] | None = None

    def before_step(self) -> None:
        params = [p.detach() for p in self.gradients.parameters]
        if self._before is None or len(self._before) != len(params):
            self._before = [p.clone() for p in params]  # one copy, reused every k steps
        else:
            torch._foreach_copy_(self._before, params)

    def after_step(self) -> tuple[Tensor, Tensor]:
        """(per-layer weight norms after the step, per-layer update/weight ratios)."""
        if self._before is None:
            raise RuntimeError("WeightRecorder.after_step called without before_step")
        g = self.gradients
        params = [p.detach() for p in g.parameters]
        all_present = tuple(True for _ in params)
        index = g._layer_index(all_present)
        weight_sq = self._per_layer(torch._foreach_norm(params), index)
        delta = torch._foreach_sub(params, self._before)
        update_sq = self._per_layer(torch._foreach_norm(delta), index)
        before_sq = self._per_layer(torch._foreach_norm(self._before), index)
        return weight_sq.sqrt(), update_sq.sqrt() / before_sq.sqrt()

    def _per_layer(self, norms: list[Tensor], index: Tensor) -> Tensor:
        g = self.gradients
        squared = torch.stack(norms).to(g.dtype) ** 2
        return torch.zeros(len(g.layers.names), device=g.device, dtype=g.dtype).index_add_(0, index, squared)
