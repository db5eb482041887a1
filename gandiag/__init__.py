"""gandiag: diagnostics and stability toolkit for GAN training on PyTorch.

    >>> import gandiag
    >>> G, D = gandiag.models.small_toy(pack=2)
    >>> config = gandiag.TrainConfig(pack=2, ema=0.999, steps=10_000)
    >>> trainer = gandiag.Trainer(G, D, gandiag.data.ring(), config)
    >>> sorted(trainer.fit(20).evaluate())   # fit() alone runs config.steps
    ['fair_modes', 'hq', 'modes', 'reverse_kl']
    >>> steps, d_real = trainer.history["D/out_real/mean"]   # recorded by gandiag.attach's hooks
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Every name below is imported on first use (PEP 562), not at `import gandiag`: the
# `gandiag` command parses its arguments (and answers --help) before torch, numpy, scipy
# or plotly load, which takes seconds. `from gandiag import Trainer` works as before.
_SUBMODULES = frozenset({"core", "data", "detect", "hooks", "metrics", "models", "store", "train",
                         "widgets"})
_NAMES = {
    "Alert": "gandiag.core", "diagnose": "gandiag.detect",
    "Monitor": "gandiag.hooks", "attach": "gandiag.attaching",
    "list_runs": "gandiag.store", "open_run": "gandiag.store",
    "Callback": "gandiag.core", "TrainConfig": "gandiag.train", "Trainer": "gandiag.train",
    "capture_step": "gandiag.train",
    "Dashboard": "gandiag.widgets.dashboard",
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these
    from gandiag import core, data, detect, hooks, metrics, models, store, train, widgets
    from gandiag.attaching import attach
    from gandiag.core import Alert, Callback
    from gandiag.detect import diagnose
    from gandiag.hooks import Monitor
    from gandiag.store import list_runs, open_run
    from gandiag.train import TrainConfig, Trainer, capture_step
    from gandiag.widgets.dashboard import Dashboard


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"gandiag.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'gandiag' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_NAMES))


__all__ = ["Alert", "Callback", "Dashboard", "Monitor", "TrainConfig", "Trainer", "attach", "capture_step", "data",
           "detect", "diagnose", "list_runs", "metrics", "models", "open_run", "__version__"]
