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
is *affine in o* (or in sigmoid(o)) when that fit's residual is within 1e-3 of the
gradient's spread and the other model's is ten times over both that fit's and the
gradient's rounding (which AMP's half-precision gradients make coarse). Outputs that barely spread (D at initialisation) fit
both, so they decide nothing and the next steps are read.

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
import torch
from torch import Tensor

from gandiag.core.family import LossFamily, family_of

FIT = 1e-3       # a fit's residual, relative to the gradient's spread, that counts as exact
MARGIN = 10.0    # how much better than the other model a fit must be
EQUAL = 1e-6     # relative spread of gradients that counts as all equal (or their rounding)
SPREAD = 0.05    # outputs must spread this much for equal gradients to mean a critic: over
                 # it, BCE's and least squares' gradients vary by >= 2.5 %, 6x bfloat16's rounding


def call_shape(outputs: np.ndarray, gradients: np.ndarray, eps: float = 2.0 ** -23) -> tuple[str, float]:
    """('constant' | 'hinge' | 'affine' | 'sigmoid' | 'unclear', target) of one call;
    `eps`: the gradient's rounding (its dtype's machine epsilon: AMP's float16 and
    bfloat16 gradients fit less exactly, so they need outputs that spread more)."""
    o, g = np.asarray(outputs, np.float64).ravel(), np.asarray(gradients, np.float64).ravel()
    finite = np.isfinite(o) & np.isfinite(g)
    o, g = o[finite], g[finite]
    scale = float(np.abs(g).max()) if len(g) else 0.0
    if len(g) < 4 or scale == 0.0:
        return "unclear", np.nan
    moving, equal = g != 0.0, max(EQUAL, eps) * scale
    if np.ptp(g[moving]) <= equal:
        if np.ptp(o) < SPREAD:
            return "unclear", np.nan
        return ("constant" if moving.all() else "hinge"), np.nan
    # An exact fit leaves FIT of the gradient's spread, or 3x its rounding (`noise`: the
    # RMS error of rounding to nearest, eps / 2 relative, uniform) at most; the other
    # model must be MARGIN times worse than the fit, and worse than the rounding (a fit
    # far below the rounding means the arithmetic was exact: the model is the loss).
    noise = eps / (2 * np.sqrt(3)) * np.linalg.norm(g)
    tolerance = max(FIT * np.linalg.norm(g - g.mean()), 3 * noise)
    linear, target = _affine(o, g)
    logistic, target_p = _affine(1.0 / (1.0 + np.exp(-np.clip(o, -60, 60))), g)
    if linear <= tolerance and logistic >= max(MARGIN * linear, noise):
        return "affine", target
    if logistic <= tolerance and linear >= max(MARGIN * logistic, noise):
        return "sigmoid", target_p
    return "unclear", np.nan


def _affine(x: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(residual norm, x where the fit crosses 0) of g ~ slope * x + intercept; the
    residual is inf unless the slope is positive (a loss that pulls towards a target)."""
    if np.ptp(x) == 0.0:
        return np.inf, np.nan
    slope, intercept = np.polyfit(x, g, 1)
    if not slope > 0:
        return np.inf, np.nan
    return float(np.linalg.norm(g - (slope * x + intercept))), float(-intercept / slope)


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
        """Read the evidence (a sync: call it where the monitor syncs anyway). Calls are
        read one by one, then, if that told nothing, pooled by kind and size: the same
        loss at the same batch size has the same target and weight in every update, and
        the outputs of many updates spread more than one call's (AMP's coarse gradients
        need that)."""
        calls: dict[tuple[str, int, float], list[tuple[np.ndarray, np.ndarray]]] = {}
        for kind, outputs, gradients in self.evidence:
            if gradients and gradients[0].shape == outputs.shape:
                total = sum(gradients[1:], gradients[0])
                eps = torch.finfo(total.dtype).eps if total.is_floating_point() else 2.0 ** -23
                calls.setdefault((kind, outputs.numel(), eps), []).append(
                    (outputs.float().cpu().numpy().ravel(), total.float().cpu().numpy().ravel()))  # sync ok: flush
        self.evidence = []  # read: calls are added at D's step, after their backward
        shapes = [(kind, *call_shape(o, g, eps)) for (kind, _, eps), pairs in calls.items() for o, g in pairs]
        found = decide(s for s in shapes if s[1] != "unclear")
        if found is None:
            pooled = [(kind, *call_shape(*map(np.concatenate, zip(*pairs)), eps))
                      for (kind, _, eps), pairs in calls.items() if len(pairs) > 1]
            found = decide(s for s in pooled if s[1] != "unclear")
        return found


GIVE_UP = 200  # steps after which an undecided family stays 'logits'
HINGE_WATCH = 1000  # steps a critic is watched for hinge margins (see FamilyState.settle)


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
        # While inferring, rows wait for the flush (on a GPU too) and are read by the family
        # decided then: host and device rows agree on where a late decision takes effect.
        rows.defer = self.inference is not None
        self.flushed_step = 0  # the rows up to this step were read at an earlier flush

    @property
    def inferring(self) -> bool:
        return self.inference is not None

    def add(self, calls: Iterable) -> None:
        """The D update's filed calls, as evidence while the family is not known."""
        if self.inference is not None:
            self.inference.add(calls)

    def settle(self, monitor: Any, *, flushing: bool = True, final: bool = False) -> None:
        """At a flush, before rows are filled: decide from the evidence, if any is new.

        A hinge D whose outputs all lie inside its margins (+-1, as at the start) leaves
        the gradients of a WGAN critic, so a critic is read as one but watched for margins
        met until step `HINGE_WATCH`; an undecided loop is read as logits from `GIVE_UP`
        on, with a warning. `final`: decide now for good (a step about to be captured in
        a CUDA graph, where the inference's hooks cannot run)."""
        if self.inference is None:
            return
        found, step = self.inference.decide(), monitor.step
        try:
            self._settle(found, GIVE_UP if final else step, monitor)
            if final:
                self._stop()
        finally:
            if flushing:
                self.flushed_step = step

    def _settle(self, found: LossFamily | None, step: int, monitor: Any) -> None:
        if found is None:
            if self.decided_at is None and step >= GIVE_UP:
                monitor._warn_once("loss unknown", (
                    f"gandiag: the loss D is trained with could not be told from its gradients "
                    f"in {monitor.step} steps, so D's outputs are read as logits (threshold 0). If D is "
                    "an LSGAN, hinge or WGAN critic, pass attach(..., loss='lsgan' | 'hinge' | 'wgan')"))
                self._apply(self.current, monitor)
            if self.decided_at is not None and step >= HINGE_WATCH:
                self._stop()
            return
        if found != self.current and self.flushed_step > 0:
            monitor._warn_once("loss late", (
                f"gandiag: D's loss was recognised as {found.spec} only at step {step}; the "
                f"records up to step {self.flushed_step} read D's outputs as {self.current.spec}. "
                f"Pass attach(..., loss={found.spec!r}) to read them so from the start"))
        self._apply(found, monitor)
        if found.name != "wgan" or step >= HINGE_WATCH:
            self._stop()

    def _apply(self, family: LossFamily, monitor: Any) -> None:
        if family != self.current or self.decided_at is None:
            self.decided_at = monitor.step  # where the reading took its present form
        self.current = family
        self.stats.family = family
        if not isinstance(monitor.config, dict):
            monitor.config = {} if monitor.config is None else dict(monitor.config)
        monitor.config["loss"] = family.spec

    def _stop(self) -> None:
        self.inference, self.calls.inferring, self.rows.defer = None, False, False
