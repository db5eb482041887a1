"""Hooks that record what matters on any G and D, without syncing the device.

`Monitor` holds the hooks and what they recorded; `gandiag.attach` (one level up, as it
also opens a run store and a live diagnosis) is how a user's loop gets one.
"""

from gandiag.core.records import Histograms, Records
from gandiag.hooks.health import GradientLeakWarning
from gandiag.hooks.monitor import Monitor, attached_monitor

__all__ = ["GradientLeakWarning", "Histograms", "Monitor", "Records", "attached_monitor"]
