"""Gradient norms, weight norms and update/weight ratios of one model, per layer.

A *layer* is the module that owns a parameter directly, named by its qualified name
(`main.0`); parameters of spectral-norm or other parametrisations count for the layer
they parametrise. On the device each update costs one `torch._foreach_norm` over all
parameters and one add of their squared norms into the buffer (no sync); the host sums
them per layer at flush time, where a NaN or inf stays in its own layer.

    >>> from torch import nn
    >>> D = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> layers = ModelLayers(D)
    >>> layers.names, layers.per_layer(np.array([[1.0, 2.0, 3.0, 4.0]])).tolist()  # sync ok: numpy
    (['0', '2'], [[3.0, 7.0]])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from gandiag.hooks import buffer


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
        layer_of: list[int] = []
        self.position: dict[int, int] = {}     # id(parameter) -> index in self.parameters
        for name, parameter in model.named_parameters():
            layer = layer_name(name)
            if layer not in self.names:
                self.names.append(layer)
            self.position[id(parameter)] = len(self.parameters)
            self.parameters.append(parameter)
            layer_of.append(self.names.index(layer))
        # (layers, parameters) 0/1 matrix: per-parameter values -> per-layer sums.
        self.matrix = np.zeros((len(self.names), len(self.parameters)))
        self.matrix[layer_of, np.arange(len(self.parameters))] = 1.0

    def owns(self, parameter: Tensor) -> bool:
        return id(parameter) in self.position

    def per_layer(self, per_parameter: np.ndarray) -> np.ndarray:
        return sum_per_layer(self.matrix, per_parameter)


def sum_per_layer(matrix: np.ndarray, per_parameter: np.ndarray) -> np.ndarray:
    """Rows of per-parameter values (n, parameters) -> per-layer sums (n, layers), with the
    (layers, parameters) 0/1 `matrix`. A NaN or inf makes its own layer NaN or inf and no
    other (a plain matrix product would spread it: 0 * NaN is NaN)."""
    finite = np.isfinite(per_parameter)
    summed = np.where(finite, per_parameter, 0.0) @ matrix.T
    has_nan = np.isnan(per_parameter) @ matrix.T > 0
    has_inf = (np.isinf(per_parameter) @ matrix.T > 0) & ~has_nan
    summed[has_inf] = np.inf
    summed[has_nan] = np.nan
    return summed


class GradientRecorder:
    """Squared gradient norms of all of a model's parameters, for one optimizer's updates.

    Parameters the optimizer does not update, or without a gradient, count as 0, so the
    result always has one entry per parameter of the model, in the model's order.
    """

    def __init__(self, layers: ModelLayers, parameters: list[Tensor], device: torch.device,
                 dtype: torch.dtype) -> None:
        self.layers = layers
        updated = {id(p) for p in parameters}
        self.parameters = [p if id(p) in updated else None for p in layers.parameters]
        self.dtype = dtype
        self._zero = torch.zeros(1, device=device)  # stands in for a missing gradient

    def squared_norms(self) -> Tensor | np.ndarray:
        """(parameters,) squared gradient norms: on the device (no sync), or for CPU
        models as numpy (reading a CPU tensor is no sync, and skips three torch ops)."""
        grads = [p.grad if p is not None and p.grad is not None else self._zero for p in self.parameters]
        norms = torch._foreach_norm(grads)
        if self._zero.device.type == "cpu" and buffer.CPU_FAST_PATH:
            values = np.array([n.item() for n in norms])  # sync ok: CPU; float64 squares stay finite
            return values * values
        stacked = torch.stack(norms).to(self.dtype)
        return stacked * stacked


class WeightRecorder:
    """Squared norms of the weights before and after one optimizer step, and of the step."""

    def __init__(self, gradients: GradientRecorder) -> None:
        self.gradients = gradients
        self._before: list[Tensor] | None = None

    def _params(self) -> list[Tensor]:
        zero = self.gradients._zero
        return [p.detach() if p is not None else zero for p in self.gradients.parameters]

    def before_step(self) -> None:
        params = self._params()
        if self._before is None or len(self._before) != len(params):
            self._before = [p.clone() for p in params]  # one copy, reused every k steps
        else:
            torch._foreach_copy_(self._before, params)

    def after_step(self) -> Tensor:
        """(3, parameters): squared norms of the weights after, of the update, and before."""
        if self._before is None:
            raise RuntimeError("WeightRecorder.after_step called without before_step")
        params = self._params()
        norms = [torch._foreach_norm(params), torch._foreach_norm(torch._foreach_sub(params, self._before)),
                 torch._foreach_norm(self._before)]
        stacked = torch.stack([torch.stack(n) for n in norms]).to(self.gradients.dtype)
        return stacked * stacked
