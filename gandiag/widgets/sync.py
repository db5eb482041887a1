"""How a live FigureWidget follows a freshly built figure, in as few messages as possible."""

from __future__ import annotations

import plotly.graph_objects as go


def sync_figure(widget: go.FigureWidget, new: go.Figure) -> None:
    """Make `widget` show `new` in one message: when the traces are the same kinds, assign
    their full arrays (a reloaded page recovers from any one refresh); else replace them.
    The layout parts that change with the data (alert lines, titles, the samples panel's
    axes) follow; the time axes keep the user's zoom."""
    same = [(t.type, t.name) for t in widget.data] == [(t.type, t.name) for t in new.data]
    with widget.batch_update():
        if same:
            for trace, fresh in zip(widget.data, new.data):
                for field in ("x", "y", "z", "text", "source", "customdata"):
                    if field in fresh and fresh[field] is not None:
                        trace[field] = fresh[field]
                size = getattr(fresh.marker, "size", None) if "marker" in fresh else None  # (bars: none)
                if size is not None:
                    trace.marker.size = size
        for part in ("shapes", "annotations"):  # assigned only when they changed: shapes
            fresh = [item.to_plotly_json() for item in new.layout[part]]  # are validated one by one
            if fresh != [item.to_plotly_json() for item in widget.layout[part]]:
                widget.layout[part] = fresh
        for name in new.layout if same else ():  # the samples panel (the square one) follows
            anchor = getattr(new.layout[name], "scaleanchor", None) if name.startswith("yaxis") else None
            if anchor:  # its data (new traces: update_layout below brings every axis)
                for axis in (name, anchor.replace("x", "xaxis", 1)):
                    widget.layout[axis].range = new.layout[axis].range
    # batch_update gathers property edits only: deleting the traces, add_traces and
    # update_layout each send a message of their own, so this runs only when traces change.
    if not same:
        widget.data = []
        widget.add_traces(list(new.data))
        stale = _stale_axis_properties(widget.layout, new.layout)
        widget.update_layout(new.layout)
        if stale:  # e.g. a panel inserted above the samples panel: its old axes lose their
            widget.update_layout(stale)  # square aspect (scaleanchor) and image settings


def _stale_axis_properties(old: go.Layout, new: go.Layout) -> dict:
    """{"yaxis8.scaleanchor": None, ...}: on each axis whose panel changed kind (a time
    panel, the coverage bins, the square samples panel), what it held that the new layout
    does not set. update_layout merges, so without this a panel that moved down keeps the
    settings of the panel that was in its place (a time panel squeezed square); axes that
    keep their kind keep the user's zoom."""
    def kind(props: dict) -> tuple:
        return props.get("scaleanchor"), props.get("matches")

    fresh = new.to_plotly_json()
    stale = {}
    for name, props in old.to_plotly_json().items():
        # (an axis the new layout lacks keeps its domain: an empty panel, not one over all)
        if name.startswith(("xaxis", "yaxis")) and isinstance(props, dict) and name in fresh:
            kept = fresh[name]
            if kind(props) != kind(kept):
                stale.update({f"{name}.{prop}": None for prop in props if prop not in kept})
    return stale
