"""gandiag: diagnostics and stability toolkit for GAN training on PyTorch.

    >>> import gandiag
    >>> G, D = gandiag.models.small_toy(pack=2)
    >>> config = gandiag.TrainConfig(pack=2, ema=0.999, steps=10_000)
    >>> trainer = gandiag.Trainer(G, D, gandiag.data.ring(), config)
    >>> sorted(trainer.fit(20).evaluate())   # fit() alone runs config.steps
    ['hq', 'modes', 'reverse_kl']
    >>> steps, d_real = trainer.history["D/out_real/mean"]   # recorded by gandiag.attach's hooks
"""

from gandiag import data, detect, metrics, models
from gandiag.detect import Alert, diagnose
from gandiag.hooks import Monitor, attach
from gandiag.store import list_runs, open_run
from gandiag.train import Callback, TrainConfig, Trainer, capture_step

__version__ = "0.1.0"


def __getattr__(name: str):  # gandiag.Dashboard without importing plotly at `import gandiag`
    if name == "Dashboard":
        from gandiag.widgets.dashboard import Dashboard

        return Dashboard
    raise AttributeError(f"module 'gandiag' has no attribute {name!r}")


__all__ = ["Alert", "Callback", "Dashboard", "Monitor", "TrainConfig", "Trainer", "attach", "capture_step", "data",
           "detect", "diagnose", "list_runs", "metrics", "models", "open_run", "__version__"]
