"""Detectors: recorded series in, explained alerts out.

    alerts = gandiag.diagnose(gandiag.open_run("vanilla"))   # a stored run, a trainer, a history
    for alert in alerts:
        print(alert)          # kind, step, severity, evidence, explanation and fixes

Live: `DiagnosisCallback` in a Trainer (optionally stopping on chosen kinds), or
`attach(..., diagnose=True)` in a user loop. Alert kinds: mode_collapse, d_overpowering,
vanishing_gradients, exploding_gradients, nonfinite, oscillation, divergence,
gradient_leak, frozen_model, runaway_critic, stalled. Thresholds are the fields of each detector
class; override them with `thresholds={kind: {name: value}}`. `diagnosis_of(run)` also says
which detectors saw enough of the run to judge it (`readiness()`, `summary()`).
"""

from gandiag.core.alert import KINDS, Alert
from gandiag.detect.base import Detector, Episode
from gandiag.detect.collapse import ModeCollapse
from gandiag.detect.diagnosis import DETECTORS, Diagnosis, diagnose, diagnosis_of, format_diagnosis
from gandiag.detect.divergence import Divergence
from gandiag.detect.exploding import ExplodingGradients
from gandiag.detect.frozen import FrozenModel
from gandiag.detect.leak import GradientLeak
from gandiag.detect.live import DiagnosisCallback, GANAlertWarning, watch
from gandiag.detect.nonfinite import NonFinite
from gandiag.detect.oscillation import Oscillation
from gandiag.detect.overpowering import DOverpowering
from gandiag.detect.readiness import Readiness
from gandiag.detect.runaway import RunawayCritic
from gandiag.detect.stalled import Stalled
from gandiag.detect.vanishing import VanishingGradients

__all__ = ["DETECTORS", "KINDS", "Alert", "DOverpowering", "Detector", "Diagnosis",
           "DiagnosisCallback", "Divergence", "Episode", "ExplodingGradients", "FrozenModel",
           "GANAlertWarning", "GradientLeak", "ModeCollapse", "NonFinite", "Oscillation", "Readiness",
           "RunawayCritic", "Stalled", "VanishingGradients", "diagnose", "diagnosis_of", "format_diagnosis", "watch"]
