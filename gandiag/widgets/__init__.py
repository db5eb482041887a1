"""Notebook widgets: pure figure builders (plotly) now; the live dashboard is issue 6's
next part. Only this package imports plotly and ipywidgets."""

from gandiag.widgets.decimate import minmax
from gandiag.widgets.figures import build_figure

__all__ = ["build_figure", "minmax"]
