"""`UpdateMeasures`: what the monitor measures around each optimizer update.

Which model an optimizer updates: one passed to attach has its role ('D' or 'G') from
the start; one found through torch's global optimizer hooks is classified at its first
step by the parameters it holds (`check_optimizer`), once.

What an update measures, written to the step's staging row (no sync): per-layer squared
gradient norms before it; every `weight_every` steps weight norms around it (for the
update/weight ratios) and the optimizer's learning rate; during the first
`leak_check_steps` steps the gradient-leak probes (`leak`). The weights after an update
are measured at the next hook event rather than in the optimizer's post-step hook, so
that edits the loop makes right after the step (WGAN's weight clipping, a projection)
count as part of the update. Each optimizer gets its own recorders over the parameters it updates,
rebuilt when its parameter groups change (`add_param_group`); an update made without a
torch.optim optimizer (`monitor.update_done`) measures all of the model's parameters.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
from torch import nn

from gandiag.hooks.buffer import DeviceBuffer
from gandiag.hooks.checks import check_optimizer
from gandiag.hooks.gradients import GradientRecorder, ModelLayers, WeightRecorder
from gandiag.hooks.layout import Layout
from gandiag.hooks.leak import LeakProbe, probe_parameter

Recorders = tuple[GradientRecorder, WeightRecorder]


class UpdateMeasures:
    """Roles of optimizers, the recorders of their updates and the leak probes (see the
    module doc); `layers` are G's and D's `ModelLayers` by role."""

    def __init__(self, layers: dict[str, ModelLayers], buffer: DeviceBuffer, layout: Layout) -> None:
        self.layers, self.buffer, self.layout = layers, buffer, layout
        self.probes: dict[str, LeakProbe] = {}  # by role, while the leak check runs
        self._recorders: dict[Any, tuple] = {}  # per optimizer (and per role for update_done)
        self._roles: "weakref.WeakKeyDictionary[torch.optim.Optimizer, str | None]" = weakref.WeakKeyDictionary()
        self._unweighed: list[tuple[torch.optim.Optimizer, str]] = []  # updates whose weights are due

    # ---- which model an optimizer updates -------------------------------------------
    def given(self, opt_g: Any, opt_d: Any) -> dict[str, torch.optim.Optimizer]:
        """The optimizers passed to attach, checked (both or neither), by role."""
        if opt_g is None and opt_d is None:
            return {}
        for role, optimizer in (("G", opt_g), ("D", opt_d)):
            if optimizer is None:
                raise ValueError(
                    f"gandiag.attach: got opt_{'d' if role == 'G' else 'g'} but opt_{role.lower()}=None; "
                    "pass both optimizers, or neither to have them found from their steps"
                )
            check_optimizer(role, optimizer, self.layers)
        return {"G": opt_g, "D": opt_d}

    def assign(self, optimizer: torch.optim.Optimizer, role: str) -> None:
        """`optimizer` (passed to attach) updates `role`'s model."""
        self._roles[optimizer] = role

    def role(self, optimizer: torch.optim.Optimizer, warn: Callable[[str, str], None]) -> str | None:
        """'D', 'G', or None for an optimizer of neither model (then ignored)."""
        if optimizer not in self._roles:
            self._roles[optimizer] = check_optimizer(None, optimizer, self.layers, warn=warn)
        return self._roles[optimizer]

    # ---- recorders --------------------------------------------------------------------
    def of_optimizer(self, optimizer: torch.optim.Optimizer, role: str) -> Recorders:
        """The recorders of `optimizer`'s updates of `role`'s model."""
        # Rebuilt when the optimizer's parameter groups change (add_param_group); a cheap
        # check, as it runs at every update.
        groups = optimizer.param_groups
        signature = (len(groups), id(groups[-1]["params"]), len(groups[-1]["params"]))
        entry = self._recorders.get(id(optimizer))
        if entry is None or entry[2] != signature:
            layers = self.layers[role]
            params = [p for group in optimizer.param_groups for p in group["params"] if layers.owns(p)]
            gradients = GradientRecorder(layers, params, self.buffer.device, self.buffer.dtype)
            entry = (*_recorders(gradients), signature)
            self._recorders[id(optimizer)] = entry
        return entry[0], entry[1]

    def of_model(self, role: str) -> Recorders:
        """The recorders of an update made without an optimizer: all of the model's parameters."""
        if role not in self._recorders:  # built once: a recorder allocates its device columns
            layers = self.layers[role]
            self._recorders[role] = _recorders(
                GradientRecorder(layers, layers.parameters, self.buffer.device, self.buffer.dtype))
        return self._recorders[role]

    # ---- measuring --------------------------------------------------------------------
    def before(self, role: str, recorders: Recorders, *, weights_due: bool, leak_check: bool,
               lr: Any = None) -> None:
        """Right before `role`'s update: gradient norms, and weights, the learning rate `lr`
        and leak probes when due."""
        columns = self.layout.models[role]
        gradients, weights = recorders
        self.buffer.add(columns.grad_sq, gradients.squared_norms())
        self.buffer.add(columns.grad_steps, 1.0)
        if weights_due:
            weights.before_step()
            known = isinstance(lr, (float, int, torch.Tensor)) and not isinstance(lr, bool)
            self.buffer.put(columns.lr, lr if known else float("nan"))
        if leak_check and role in self.probes:
            self.buffer.put(columns.leak, self.probes[role].own_step())
            other = "G" if role == "D" else "D"
            if other in self.probes:
                self.probes[other].other_step()

    def weigh_later(self, optimizer: torch.optim.Optimizer, role: str) -> None:
        """An update that measures weights just ended: measure them at the next event."""
        self._unweighed.append((optimizer, role))

    def weigh_pending(self) -> None:
        """At a hook event: measure the weights of the updates that ended since the last."""
        while self._unweighed:
            self.after(*self._unweighed.pop(0))

    def after(self, optimizer: torch.optim.Optimizer, role: str) -> None:
        """After an update that measures weights: their norms, and that they were measured."""
        _, weights = self.of_optimizer(optimizer, role)
        columns = self.layout.models[role]
        self.buffer.put(columns.weights, weights.after_step().reshape(-1))
        self.buffer.put(columns.weight_measured, 1.0)

    # ---- the leak check's lifetime -----------------------------------------------------
    def start_leak_check(self, D: nn.Module, G: nn.Module) -> None:
        """Put a probe on one small parameter of each model (a tensor hook on it)."""
        for role, model in (("D", D), ("G", G)):
            parameter = probe_parameter(model)
            if parameter is not None:
                self.probes[role] = LeakProbe(parameter)

    def stop_leak_check(self) -> None:
        for probe in self.probes.values():
            probe.remove()
        self.probes = {}

    def clear(self) -> None:
        """Take the probes off and forget recorders and layers: they hold parameters, and a
        removed monitor keeps no model alive."""
        self.stop_leak_check()
        self._unweighed.clear()
        self._recorders.clear()
        self.layers = {}


def _recorders(gradients: GradientRecorder) -> Recorders:
    return gradients, WeightRecorder(gradients)
