import base64

import numpy as np
import pytest
from plotly.subplots import make_subplots

from gandiag.store.png import samples_png
from gandiag.widgets import build_figure
from gandiag.widgets.samples import ImageSnapshot, PlaneSnapshot, samples_panel_traces


def plane(step=700, outside=0):
    rng = np.random.default_rng(0)
    grid = np.linspace(-1.5, 1.5, 16, dtype=np.float32)
    fake = rng.normal(0, 0.5, (100, 2)).astype(np.float32)
    fake[:outside] = 9.0
    push = np.zeros((10, 2), np.float32)
    push[:, 0] = np.arange(1, 11)  # norms 1..10
    push[3] = np.nan
    return PlaneSnapshot(step, fake, rng.normal(0, 1, (50, 2)).astype(np.float32), grid,
                         np.outer(grid, np.ones(16, np.float32)), push)


def test_a_plane_snapshot_draws_surface_boundary_points_and_arrows():
    fig = build_figure({"G/loss": (np.arange(10), np.ones(10))}, samples=plane(outside=3))
    names = [t.name for t in fig.data]
    assert names[-5:] == ["D's logit", "D's boundary", "real", "G(z)", "G's gradient"]
    surface = fig.data[names.index("D's logit")]
    assert surface.zmid == 0 and surface.z.shape == (16, 16)
    assert len(fig.data[names.index("G(z)")].x) == 97  # 3 far away: counted in the title, not drawn
    arrows = fig.data[names.index("G's gradient")]
    assert len(arrows.x) == 27 and np.isnan(arrows.x[2::3]).all()  # 9 finite arrows, NaN-separated
    lengths = np.hypot(arrows.x[1::3] - arrows.x[0::3], arrows.y[1::3] - arrows.y[0::3])
    assert lengths.max() == pytest.approx(0.08 * 3.0, rel=1e-4)  # the longest spans 8 % of the plane
    assert np.allclose(lengths / lengths.max(), np.delete(np.arange(1, 11), 3) / 10, rtol=1e-4)  # true ratios
    title = next(a.text for a in fig.layout.annotations if a.text.startswith("samples at step 700"))
    assert "longest 10" in title and "3 samples outside" in title


def test_an_image_snapshot_is_an_inline_png_and_an_unknown_one_is_refused():
    png = samples_png(np.zeros((4, 1, 8, 8)))
    fig = build_figure({"G/loss": (np.arange(10), np.ones(10))}, samples=ImageSnapshot(40, png))
    image = fig.data[-1]
    assert image.type == "image" and base64.b64decode(image.source.split(",", 1)[1]) == png
    empty = build_figure({"G/loss": (np.arange(10), np.ones(10))}, samples_panel=True)
    assert any(a.text == "samples: waiting for the first snapshot" for a in empty.layout.annotations)
    with pytest.raises(TypeError, match="expected a PlaneSnapshot, an ImageSnapshot or a PointsSnapshot"):
        samples_panel_traces(make_subplots(rows=1, cols=1), "a picture", row=1)
