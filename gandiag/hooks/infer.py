"""`FamilyInference`: which loss a user's loop trains D with, read from the gradients.

The gradient of D's loss with respect to D's outputs o has a shape that names the loss,
whichever way the loop writes it (a loss module, a functional call, a plain mean):

    BCEWithLogits (target y)     dL/do = c (sigmoid(o) - y)      affine in sigmoid(o)
    least squares (target y)     dL/do = c (o - y)               affine in o: LSGAN, y = o - g/c
    Wasserstein critic           dL/do = +-c                     the same for every sample
    hinge                        dL/do in {0, +-c}               0 where the margin is met

with c > 0 the loss's weight over the batch size (AMP's loss scale only changes c). So
for each real and fake call of the first D updates the monitor keeps the outputs and the
gradient its backward pass left (a tensor hook, cloned on the device: no sync), and at
the first flush, a sync point anyway, fits both affine models by least squares. A call
is *affine in o* (or in sigmoid(o)) when that fit leaves a residual below 1e-3 of the
gradient's spread and ten times below the other model's. Outputs that barely spread (D
at initialisation) fit both, so they decide nothing and the next steps are read.

D ending in a Sigmoid is read through its logits whatever the loss, so nothing is
inferred there; a loss given to `attach(..., loss=...)` is never second-guessed.

    >>> import numpy as np
    >>> o = np.linspace(-1, 1, 16)
    >>> shape, target = call_shape(o, 0.5 * (o - 1.0))   # MSELoss towards 1
    >>> shape, round(target, 6), call_shape(o, np.full(16, -1 / 16))[0]
    ('affine', 1.0, 'constant')
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from torch import Tensor

from gandiag.core.family import LossFamily, family_of

FIT = 1e-3       # a fit's residual, relative to the gradient's spread, that counts as exact
MARGIN = 10.0    # how much better than the other model a fit must be
EQUAL = 1e-6     # relative spread of gradients that counts as all equal


def call_shape(outputs: np.ndarray, gradients: np.ndarray) -> tuple[str, float]:
    """('constant' | 'hinge' | 'affine' | 'sigmoid' | 'unclear', target) of one call."""
    o, g = np.asarray(outputs, np.float64).ravel(), np.asarray(gradients, np.float64).ravel()
    finite = np.isfinite(o) & np.isfinite(g)
    o, g = o[finite], g[finite]
    scale = float(np.abs(g).max()) if len(g) else 0.0
    if len(g) < 4 or scale == 0.0:
        return "unclear", np.nan
    if np.ptp(g) <= EQUAL * scale:
        return "constant", np.nan
    moving = g != 0.0
    if not moving.all() and np.ptp(g[moving]) <= EQUAL * scale:
        return "hinge", np.nan
    linear, target = _affine(o, g)
    logistic, target_p = _affine(1.0 / (1.0 + np.exp(-np.clip(o, -60, 60))), g)
    if linear <= FIT and linear * MARGIN <= logistic:
        return "affine", target
    if logistic <= FIT and logistic * MARGIN <= linear:
        return "sigmoid", target_p
    return "unclear", np.nan


def _affine(x: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(relative residual, x where the fit crosses 0) of g ~ slope * x + intercept; the
    residual is inf unless the slope is positive (a loss that pulls towards a target)."""
    spread = np.linalg.norm(g - g.mean())
    if np.ptp(x) == 0.0 or spread == 0.0:
        return np.inf, np.nan
    slope, intercept = np.polyfit(x, g, 1)
    if not slope > 0:
        return np.inf, np.nan
    residual = np.linalg.norm(g - (slope * x + intercept)) / spread
    return float(residual), float(-intercept / slope)


def decide(shapes: Iterable[tuple[str, str, float]]) -> LossFamily | None:
    """The family told by the (kind, shape, target) of the D update's calls, or None."""
    shapes = list(shapes)
    found = {shape for _, shape, _ in shapes}
    if "hinge" in found:
        return LossFamily("hinge")
    if "constant" in found:
        return LossFamily("wgan")
    if "affine" in found and "sigmoid" not in found:
        targets = {kind: np.median([t for k, s, t in shapes if k == kind and s == "affine"] or [np.nan])
                   for kind in ("fake", "real")}
        fake, real = (float(np.round(targets[k], 3)) for k in ("fake", "real"))
        return LossFamily("lsgan", fake, real) if fake < real else None
    if "sigmoid" in found and "affine" not in found:
        return LossFamily("logits")
    return None


class FamilyInference:
    """The evidence of the D updates seen so far (at most `keep` calls), and the decision."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self.evidence: list[tuple[str, Tensor, list[Tensor]]] = []

    def add(self, calls: Iterable) -> None:
        """The calls the D update just filed (`hooks.calls.Call`s)."""
        for call in calls:
            if call.kind is not None and len(self.evidence) < self.keep:
                self.evidence.append((call.kind, call.logits, call.gradients))

    def decide(self) -> LossFamily | None:
        """Read the evidence (a sync: call it where the monitor syncs anyway)."""
        shapes = []
        for kind, outputs, gradients in self.evidence:
            if gradients and gradients[0].shape == outputs.shape:
                total = sum(gradients[1:], gradients[0])
                shapes.append((kind, *call_shape(outputs.float().cpu().numpy(),  # sync ok: flush
                                                 total.float().cpu().numpy())))  # sync ok: flush
        self.evidence = [e for e in self.evidence if not e[2]]  # keep calls whose backward is to come
        return decide(s for s in shapes if s[1] != "unclear")


GIVE_UP = 200  # steps of D updates after which an undecided family stays 'logits'


def resolve_loss(loss: str | None, d_output: str) -> LossFamily | None:
    """The family given to attach (checked), 'logits' for a D read through a Sigmoid, or
    None: to be inferred."""
    if loss is not None:
        try:
            return family_of(loss)
        except ValueError as error:
            raise ValueError(f"gandiag.attach(loss=...): {error}") from None
    return LossFamily("logits") if d_output == "probability" else None


class FamilyState:
    """The family a monitor reads D's outputs by (`current`), given or being inferred."""

    def __init__(self, given: LossFamily | None, calls: Any, stats: Any, rows: Any) -> None:
        self.calls, self.stats, self.rows = calls, stats, rows
        self.given = given
        self.inference = FamilyInference() if given is None else None
        self.decided_at: int | None = 0 if given is not None else None
        self.current = given or LossFamily("logits")
        stats.family = self.current
        calls.inferring = self.inference is not None
        rows.defer = self.inference is not None  # the first flush's rows wait for the decision

    @property
    def inferring(self) -> bool:
        return self.inference is not None

    def add(self, calls: Iterable) -> None:
        """The D update's filed calls, as evidence while the family is not known."""
        if self.inference is not None:
            self.inference.add(calls)

    def settle(self, monitor: Any) -> None:
        """At a flush, before rows are filled: decide from the evidence, if any is new."""
        self.rows.defer = False
        if self.inference is None:
            return
        found = self.inference.decide()
        if found is None and monitor.step < GIVE_UP:
            return
        self.inference, self.calls.inferring = None, False
        if found is None:
            monitor._warn_once("loss unknown", (
                f"gandiag: the loss D is trained with could not be told from its gradients in "
                f"{monitor.step} steps, so D's outputs are read as logits (threshold 0). If D is "
                "an LSGAN, hinge or WGAN critic, pass attach(..., loss='lsgan' | 'hinge' | 'wgan')"))
            found = self.current
        elif found != self.current and monitor.history:
            monitor._warn_once("loss late", (
                f"gandiag: D's loss was recognised as {found.spec} only at step {monitor.step}; "
                f"the records before it read D's outputs as logits. Pass attach(..., "
                f"loss={found.spec!r}) to read them so from the start"))
        self.current, self.decided_at = found, monitor.step
        self.stats.family = found
        if not isinstance(monitor.config, dict):
            monitor.config = {} if monitor.config is None else dict(monitor.config)
        monitor.config["loss"] = found.spec
