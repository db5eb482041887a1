"""`Alert`: one diagnosis, with its evidence, a plain-language explanation and fixes.

Detectors issue alerts; the run store keeps them (its `message` column holds the one-line
summary, its JSON `details` the rest) and gives the same objects back from `Run.alerts()`.

    >>> alert = Alert("d_overpowering", step=1200, severity="warning",
    ...               message="D is winning: r_t 0.98 for 400 steps",
    ...               evidence={"r_t": 0.98}, explanation="D tells real from fake ...",
    ...               fixes=["lower D's learning rate (TTUR)"], detected_at=1600)
    >>> Alert.from_row(**alert.row()) == alert
    True
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The alert kinds the detectors issue (the store also holds "error" from a failed run).
KINDS = ("mode_collapse", "d_overpowering", "vanishing_gradients", "exploding_gradients",
         "nonfinite", "oscillation", "divergence", "gradient_leak", "frozen_model",
         "runaway_critic", "stalled")
SEVERITIES = ("info", "warning", "critical")


@dataclass
class Alert:
    """One diagnosis.

    `step` is the first step the evidence covers (when the condition began) and
    `detected_at` the step at which the alert was raised (once the condition had held long
    enough); the difference is the detection delay. `evidence` holds the values that
    triggered it (JSON-friendly), `explanation` says what it means, `fixes` what to try.
    """

    kind: str
    step: int
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""
    fixes: list[str] = field(default_factory=list)
    detected_at: int | None = None
    time: float | None = field(default=None, compare=False)  # unix time it was raised

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Alert: expected severity in {SEVERITIES}, got {self.severity!r}")
        self.step = int(self.step)
        self.detected_at = self.step if self.detected_at is None else int(self.detected_at)
        self.evidence = {key: _plain(value) for key, value in self.evidence.items()}

    @property
    def details(self) -> dict[str, Any]:
        """What the store keeps beside the message (JSON)."""
        return {"evidence": self.evidence, "explanation": self.explanation,
                "fixes": list(self.fixes), "detected_at": self.detected_at}

    def row(self) -> dict[str, Any]:
        """Keyword arguments of `RunWriter.add_alert`."""
        return {"step": self.step, "kind": self.kind, "severity": self.severity,
                "message": self.message, "details": self.details}

    @classmethod
    def from_row(cls, step: int, kind: str, severity: str, message: str,
                 details: dict[str, Any] | None = None, time: float | None = None) -> "Alert":
        """An alert from a stored row; rows written without the detectors' fields keep
        their details as the evidence."""
        details = dict(details or {})
        if {"evidence", "explanation", "fixes"} <= details.keys():
            return cls(kind, step, severity, message, details["evidence"], details["explanation"],
                       list(details["fixes"]), details.get("detected_at"), time)
        return cls(kind, step, severity, message, details, time=time)

    def stamped(self) -> "Alert":
        """This alert with `time` set to now (when it is raised)."""
        self.time = _time.time() if self.time is None else self.time
        return self

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.kind} at step {self.step}"
                 + (f" (raised at step {self.detected_at})" if self.detected_at != self.step else "")
                 + f": {self.message}"]
        if self.explanation:
            lines.append(f"  why: {self.explanation}")
        lines += [f"  try: {fix}" for fix in self.fixes]
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain Python (JSON); non-finite floats kept as strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN
    return value
