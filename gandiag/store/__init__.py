"""The run store: one SQLite file per project folder, written live, read while it grows.

    >>> import tempfile, os, numpy as np
    >>> from gandiag.hooks.records import Records
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

from gandiag.store.reader import Alert, Run, RunInfo, list_runs, open_run
from gandiag.store.schema import DEFAULT_STORE, RunStoreError
from gandiag.store.recorder import StoreRecorder
from gandiag.store.writer import RunWriter

__all__ = ["DEFAULT_STORE", "Alert", "Run", "RunInfo", "RunStoreError", "RunWriter",
           "StoreRecorder", "list_runs", "open_run"]
