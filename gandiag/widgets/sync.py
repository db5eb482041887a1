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
                for field in ("x", "y", "z", "text", "source"):
                    if field in fresh and fresh[field] is not None:
                        trace[field] = fresh[field]
                if "marker" in fresh and fresh.marker.size is not None:
                    trace.marker.size = fresh.marker.size
        for part in ("shapes", "annotations"):  # assigned only when they changed: shapes
            fresh = [item.to_plotly_json() for item in new.layout[part]]  # are validated one by one
            if fresh != [item.to_plotly_json() for item in widget.layout[part]]:
                widget.layout[part] = fresh
        for name in new.layout:  # the samples panel (the square one) follows its data
            anchor = getattr(new.layout[name], "scaleanchor", None) if name.startswith("yaxis") else None
            if anchor:
                for axis in (name, anchor.replace("x", "xaxis", 1)):
                    widget.layout[axis].range = new.layout[axis].range
    # batch_update gathers property edits only: deleting the traces, add_traces and
    # update_layout each send a message of their own, so this runs only when traces change.
    if not same:
        widget.data = []
        widget.add_traces(list(new.data))
        widget.update_layout(new.layout)

