"""Notebook widgets: pure figure builders (plotly) and the live `Dashboard` (ipywidgets).
Only this package imports plotly and ipywidgets."""

from gandiag.widgets.dashboard import Dashboard
from gandiag.widgets.decimate import minmax
from gandiag.widgets.figures import build_figure

__all__ = ["Dashboard", "build_figure", "minmax"]
