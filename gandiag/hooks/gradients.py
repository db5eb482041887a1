"""Per-layer gradient norms, weight norms and update/weight ratios of one model.

A *layer* is the module that owns a parameter directly, named by its qualified name
(`main.0`); parameters of spectral-norm or other parametrisations count for the layer
they parametrise. Norms of all parameters come from one `torch._foreach_norm` call and
are summed per layer on the device by a small 0/1 matrix product (no sync, and
deterministic, unlike `index_add_` on CUDA).

    >>> from torch import nn
    >>> D = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> ModelLayers(D).names
    ['0', '2']
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gandiag.hooks.buffer import to_device


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
        self._matrices: dict[tuple[bool, ...], Tensor] = {}

    def squared_norms(self) -> tuple[Tensor, Tensor]:
        """(per-layer squared norms, number of parameters with a non-finite gradient)."""
        present = tuple(p.grad is not None for p in self.parameters)
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if not grads:
            zeros = torch.zeros(len(self.layers.names), device=self.device, dtype=self.dtype)
            return zeros, zeros.new_zeros(())
        norms = torch.stack(torch._foreach_norm(grads)).to(self.dtype)
        return self.sum_per_layer(norms * norms, present), (~torch.isfinite(norms)).sum().to(self.dtype)

    def sum_per_layer(self, values: Tensor, present: tuple[bool, ...]) -> Tensor:
        """Non-negative per-parameter values (of the present parameters) summed per layer.

        A NaN or inf makes its own layer NaN or inf and no other (a plain matrix product
        would spread it: 0 * NaN is NaN).
        """
        matrix = self._layer_matrix(present)
        finite = torch.isfinite(values)
        summed = matrix @ torch.where(finite, values, torch.zeros_like(values))
        nonfinite = matrix @ (~finite).to(values.dtype)
        nan = matrix @ torch.isnan(values).to(values.dtype)
        worst = torch.where(nan > 0, float("nan"), float("inf"))
        return torch.where(nonfinite > 0, worst, summed)

    def _layer_matrix(self, present: tuple[bool, ...]) -> Tensor:
        matrix = self._matrices.get(present)
        if matrix is None:  # built once per pattern of missing gradients, copied without a sync
            layer_of = [self.layers.layer_of[self.layers.position[id(p)]]
                        for p, has in zip(self.parameters, present) if has]
            host = torch.zeros(len(self.layers.names), len(layer_of), dtype=self.dtype)
            host[layer_of, range(len(layer_of))] = 1.0
            matrix = to_device(host, self.device)
            self._matrices[present] = matrix
        return matrix


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
        present = tuple(True for _ in params)

        def per_layer(norms: list[Tensor]) -> Tensor:
            stacked = torch.stack(norms).to(g.dtype)
            return g.sum_per_layer(stacked * stacked, present)

        weight_sq = per_layer(torch._foreach_norm(params))
        update_sq = per_layer(torch._foreach_norm(torch._foreach_sub(params, self._before)))
        before_sq = per_layer(torch._foreach_norm(self._before))
        return weight_sq.sqrt(), update_sq.sqrt() / before_sq.sqrt()
