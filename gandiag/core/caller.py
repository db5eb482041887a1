"""`user_stacklevel`: where a gandiag warning should point, the user's own line.

A warning raised deep in a flush (an alert) or in an option check reached through
`gandiag.attach` would otherwise name gandiag's internals. Python 3.12's
`skip_file_prefixes` does this for `warnings.warn`; gandiag supports 3.10, so it counts
the frames itself.
"""

from __future__ import annotations

import sys


def user_stacklevel() -> int:
    """The `stacklevel` that makes a warning issued by the caller of this function name the
    first frame outside gandiag and torch (the user's `fit()`, `optimizer.step()` or
    `attach(...)` line)."""
    frame, level = sys._getframe(1), 1  # the caller, where stacklevel 1 points
    while frame is not None:
        if frame.f_globals.get("__name__", "").split(".")[0] not in ("gandiag", "torch"):
            return level
        frame, level = frame.f_back, level + 1
    return 1
