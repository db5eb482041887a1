"""A user loop's samples panel: what the monitor kept of D's inputs (no extra G call),
drawn as fakes over reals for 2-D data and as a grid for images, copied on the loop's
thread; other shapes get a note instead of a panel."""

import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import gandiag
from gandiag.widgets import controls
from gandiag.widgets.dashboard import Dashboard
from gandiag.widgets.kept import kept_snapshot, shape_note
from gandiag.widgets.samples import ImageSnapshot, PointsSnapshot


def toy_pair(shape):
    """A tiny G (4 noise numbers -> one sample of `shape`) and D (a sample -> one logit)."""
    size = int(np.prod(shape))
    G = nn.Sequential(nn.Linear(4, size), nn.Tanh(), nn.Unflatten(1, shape))
    D = nn.Sequential(nn.Flatten(), nn.Linear(size, 1))
    return G, D


def train(G, D, real, steps, stop=None):
    """A plain non-saturating GAN loop, as a user writes it (`attached` hooked its optimizers)."""
    opt_g, opt_d = G.optimizer, D.optimizer
    for _ in range(steps):
        if stop is not None and stop.is_set():
            return
        batch = real[torch.randint(len(real), (16,))]
        fake = G(torch.randn(16, 4))
        loss_d = F.softplus(-D(batch)).mean() + F.softplus(D(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()


def attached(G, D):
    G.optimizer, D.optimizer = (torch.optim.SGD(m.parameters(), lr=1e-3) for m in (G, D))
    return gandiag.attach(G, D, opt_g=G.optimizer, opt_d=D.optimizer, loss="nonsaturating",
                          coverage_every=None, log_every=10)


def ring(n=400):
    angles = torch.arange(n) % 8 * (2 * np.pi / 8)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1) + 0.01 * torch.randn(n, 2)


def titles(fig):
    return [a.text for a in fig.layout.annotations]


def test_2d_samples_are_the_recent_fakes_over_the_kept_reals():
    torch.manual_seed(0)
    G, D = toy_pair((2,))
    with attached(G, D) as monitor:
        dash = Dashboard(monitor, refresh_seconds=60)
        assert "samples: waiting for the first snapshot" in titles(dash.figure)
        train(G, D, ring(), 60)
    try:  # leaving the loop took a last picture, where it ended
        dash.refresh()
        shot = dash._controls.snapshot
        assert isinstance(shot, PointsSnapshot) and shot.step == monitor.step == 60
        real, fake = (next(t for t in dash.figure.data if t.name == name) for name in ("real", "G(z)"))
        np.testing.assert_array_equal(np.c_[real.x, real.y], monitor.reservoir.real)
        recent = monitor.reservoir.recent_fakes(500)
        assert len(fake.x) == len(recent) and np.allclose(np.c_[fake.x, fake.y], recent)
        title = next(t for t in titles(dash.figure) if t.startswith("samples at step 60"))
        assert f"the last {len(recent)} fakes D saw over {len(monitor.reservoir.real)} of the reals" in title
        samples_axis = dash.figure.layout[real.yaxis.replace("y", "yaxis")]
        assert samples_axis.scaleanchor == real.xaxis  # square: a ring looks round
    finally:
        dash.close()


def test_images_are_a_grid_of_the_recent_fakes_in_the_reals_range():
    torch.manual_seed(0)
    G, D = toy_pair((1, 8, 8))
    real = torch.rand(64, 1, 8, 8)  # in [0, 1], not [-1, 1]
    with attached(G, D) as monitor:
        train(G, D, real, 30)
        shot = kept_snapshot(monitor)
        dash = Dashboard(monitor, refresh_seconds=60)  # made mid-run: a picture at once
    try:
        assert isinstance(shot, ImageSnapshot) and shot.png[:4] == b"\x89PNG"
        assert shot.what == "the last 36 fakes D saw, kept by the monitor"
        image = next(t for t in dash.figure.data if t.type == "image")
        assert image.source.startswith("data:image/png;base64,")
        assert any(t.startswith("samples at step 30 (the last 36 fakes D saw") for t in titles(dash.figure))
    finally:
        dash.close()


def test_other_shapes_get_a_note_and_no_panel():
    assert shape_note((2,)) is None and shape_note((3, 8, 8)) is None and shape_note((1, 28, 28)) is None
    assert "shape (5,)" in shape_note((5,)) and "shape (4, 8, 8)" in shape_note((4, 8, 8))
    torch.manual_seed(0)
    G, D = toy_pair((5,))
    with attached(G, D) as monitor:
        early = Dashboard(monitor, refresh_seconds=60)  # the shape is not known yet: a panel waits
        train(G, D, torch.randn(64, 5), 20)
        late = Dashboard(monitor, refresh_seconds=60)
    try:
        early.refresh()
        assert any(t.startswith("no samples panel: D's inputs have shape (5,)") for t in titles(early.figure))
        late.refresh()
        assert not any(t.startswith(("samples", "no samples panel")) for t in titles(late.figure))
        assert "no samples panel: D&#x27;s inputs have shape (5,)" in late.status.value
    finally:
        early.close()
        late.close()


def test_the_kept_samples_are_copied_on_the_loop_thread(monkeypatch):
    """The refresher asks, the loop's own thread copies (at a flush), the refresher draws."""
    threads = []

    def recorded(monitor, **options):
        threads.append(threading.current_thread())
        return kept_snapshot(monitor, **options)

    monkeypatch.setattr(controls, "kept_snapshot", recorded)
    torch.manual_seed(0)
    G, D = toy_pair((2,))
    stop = threading.Event()
    with attached(G, D) as monitor:
        dash = Dashboard(monitor, refresh_seconds=0.05, samples_seconds=0.05)
        threads.clear()  # the constructor's first look (nothing kept yet) ran here
        loop = threading.Thread(target=train, args=(G, D, ring(), 100_000, stop))
        loop.start()
        try:
            end = time.monotonic() + 30
            while not (isinstance(dash._controls.snapshot, PointsSnapshot)
                       and any(t.startswith("samples at step") for t in titles(dash.figure))):
                assert time.monotonic() < end, "no samples picture in 30 s"
                time.sleep(0.05)
        finally:
            stop.set()
            loop.join()
    dash.close()
    assert threads and set(threads) <= {loop, threading.main_thread()}  # the last one: at removal
    assert loop in threads


def test_panels_that_appear_above_the_samples_leave_no_square_axis_behind():
    torch.manual_seed(0)
    G, D = toy_pair((2,))
    with attached(G, D) as monitor:
        train(G, D, ring(), 20)
        dash = Dashboard(monitor, refresh_seconds=60)
        try:
            before = next(t for t in dash.figure.data if t.name == "G(z)").yaxis
            monitor.record({"metric/modes": 5.0, "metric/reverse_kl": 0.3})  # a user's own metric
            dash.refresh()
            after = next(t for t in dash.figure.data if t.name == "G(z)").yaxis
            assert after != before  # the samples panel moved down, two panels were added above it
            square = [name for name in dash.figure.layout if name.startswith("yaxis")
                      and dash.figure.layout[name].scaleanchor is not None]
            assert square == [after.replace("y", "yaxis")]
            assert dash.figure.layout[before.replace("y", "yaxis")].constrain is None
        finally:
            dash.close()
