"""Hooks that attach to any G and D and record what matters without syncing the device.

    >>> import gandiag
    >>> gandiag.attach is attach
    True
"""

from gandiag.hooks.attach import attach, attached_monitor
from gandiag.hooks.health import GradientLeakWarning
from gandiag.hooks.monitor import Monitor
from gandiag.hooks.records import Histograms, Records

__all__ = ["GradientLeakWarning", "Histograms", "Monitor", "Records", "attach", "attached_monitor"]
