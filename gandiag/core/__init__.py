"""The ground floor: what every other part of gandiag exchanges, importing none of them.

- `Records`, `Histograms`: what one flush brings to the host.
- `History`: the recorded series in memory, under a fixed budget.
- `Alert`: one diagnosis with its evidence, explanation and fixes.
- `Callback`: the one extension protocol, driven by a `Trainer` and by an attached
  `Monitor` alike.
- `series_of`, `read_series`, `loss_name`: one way to read recorded series from a
  History, a stored Run, a dict or a Records batch, so every reader takes any of them.

Nothing here imports another gandiag package, so importing `Alert` or `Records` loads
neither the trainer nor the hooks (the README's Layout section has the whole order).
"""

from gandiag.core.alert import KINDS, SEVERITIES, Alert
from gandiag.core.callback import Callback
from gandiag.core.history import History
from gandiag.core.records import Histograms, Records
from gandiag.core.series import loss_name, read_series, series_of

__all__ = ["KINDS", "SEVERITIES", "Alert", "Callback", "Histograms", "History", "Records",
           "loss_name", "read_series", "series_of"]
