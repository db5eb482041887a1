"""gandiag: diagnostics and stability toolkit for GAN training on PyTorch.

    >>> import gandiag
    >>> G, D = gandiag.models.small_toy(pack=2)
    >>> trainer = gandiag.Trainer(G, D, gandiag.data.ring(), gandiag.TrainConfig(pack=2))
    >>> trainer.fit(3000).evaluate()
"""

from gandiag import data, models
from gandiag.train import Callback, TrainConfig, Trainer

__version__ = "0.1.0"
__all__ = ["Callback", "TrainConfig", "Trainer", "data", "models", "__version__"]
