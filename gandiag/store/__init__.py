"""The run store: one SQLite file per project folder, written live, read while it grows.

    >>> import tempfile, os, numpy as np
    >>> from gandiag.core.records import Records
    >>> from gandiag.store import RunWriter
    >>> path = os.path.join(tempfile.mkdtemp(), DEFAULT_STORE)
    >>> with RunWriter(path, name="dcgan", config={"lr": 2e-4}) as writer:
    ...     losses = np.array([1.4, 1.2, float("nan")])
    ...     writer.write(Records(scalars={"D/loss": (np.arange(3), losses)}))
    ...     writer.add_alert(2, "nonfinite", "critical", "D/loss is NaN at step 2")
    >>> run = open_run("dcgan", path)
    >>> run.status, run.config, run.keys()
    ('finished', {'lr': 0.0002}, ['D/loss'])
    >>> run.scalars("D/loss")[1]
    array([1.4, 1.2, nan])
    >>> [alert.kind for alert in run.alerts()]
    ['nonfinite']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gandiag.store.reader import Run, RunInfo, list_runs, open_run
from gandiag.store.schema import DEFAULT_STORE, STALE_AFTER, RunStoreError

# Imported on first use (PEP 562): reading and listing runs (`gandiag runs`) needs only
# sqlite3 and numpy, while these three pull in torch through the hooks and the trainer.
_LAZY = {"Alert": "gandiag.core.alert", "RunWriter": "gandiag.store.writer",
         "StoreRecorder": "gandiag.store.recorder"}

if TYPE_CHECKING:
    from gandiag.core.alert import Alert
    from gandiag.store.recorder import StoreRecorder
    from gandiag.store.writer import RunWriter


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gandiag.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["DEFAULT_STORE", "STALE_AFTER", "Alert", "Run", "RunInfo", "RunStoreError",
           "RunWriter", "StoreRecorder", "list_runs", "open_run"]
