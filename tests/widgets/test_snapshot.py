"""take_snapshot: G and D seen between steps, without disturbing the training it watches."""

import numpy as np
import pytest
import torch

import gandiag
from gandiag import data, models
from gandiag.store.png import PNG_SIGNATURE
from gandiag.widgets.samples import ImageSnapshot, PlaneSnapshot
from gandiag.widgets.snapshot import take_snapshot


def ring_trainer(pack=1, loss="nonsaturating", seed=0):
    torch.manual_seed(seed)
    G, D = models.small_toy(pack=pack)
    return gandiag.Trainer(G, D, data.ring(), gandiag.TrainConfig(steps=10_000, pack=pack, loss=loss, log_every=10))


def test_a_plane_snapshot_holds_the_surface_the_samples_and_gs_gradient():
    t = ring_trainer()
    t.fit(30)
    shot = take_snapshot(t, n=200, arrows=50, resolution=32)
    assert isinstance(shot, PlaneSnapshot) and shot.step == 30
    assert shot.fake.shape == (200, 2) and shot.real.shape == (200, 2) and shot.push.shape == (50, 2)
    assert shot.logits.shape == (32, 32) and shot.grid.shape == (32,)
    # the surface is D's logit at (grid[col], grid[row])
    with torch.no_grad():
        point = torch.tensor([[shot.grid[5], shot.grid[20]]])
        assert float(t.D(point)) == pytest.approx(float(shot.logits[20, 5]), rel=1e-5, abs=1e-6)
    # non-saturating G loss -log sigmoid(D(x)): -dL/dx = sigmoid(-D(x)) * dD/dx per sample
    x = torch.from_numpy(shot.fake[:50].copy()).requires_grad_(True)
    out = t.D(x).reshape(-1)
    (grad_d,) = torch.autograd.grad(out.sum(), x)
    expected = torch.sigmoid(-out).detach()[:, None] * grad_d
    assert np.allclose(shot.push, expected.numpy(), rtol=1e-4, atol=1e-7)
    # G's samples come from fixed noise: the same snapshot twice is the same picture
    again = take_snapshot(t, n=200, arrows=50, resolution=32)
    assert np.array_equal(shot.fake, again.fake) and np.array_equal(shot.real, again.real)


def test_a_packed_d_gets_its_packs_and_the_wgan_loss_its_own_gradient():
    t = ring_trainer(pack=2, loss="wgan")
    t.fit(5)
    shot = take_snapshot(t, n=100, arrows=51, resolution=8)  # 51 -> 50: whole packs only
    assert shot.push.shape == (50, 2)
    x = torch.from_numpy(shot.fake[:50].copy()).requires_grad_(True)
    (grad_d,) = torch.autograd.grad(t.D(x.reshape(25, 4)).sum(), x)
    assert np.allclose(shot.push, grad_d.numpy(), rtol=1e-4, atol=1e-7)  # wgan: -dL/dx = dD/dx
    with torch.no_grad():  # the surface: D on two copies of each point
        point = torch.tensor([[shot.grid[1], shot.grid[6]] * 2])
        assert float(t.D(point)) == pytest.approx(float(shot.logits[6, 1]), rel=1e-5, abs=1e-6)


def test_snapshots_between_steps_leave_training_bit_identical():
    watched, alone = ring_trainer(seed=3), ring_trainer(seed=3)
    for _ in range(4):
        watched.fit(25)
        take_snapshot(watched)
        alone.fit(25)
    for a, b in zip(watched.G.parameters(), alone.G.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(watched.D.parameters(), alone.D.parameters()):
        assert torch.equal(a, b)
    # nothing the snapshot ran was recorded as a training call
    steps_w, out_w = watched.history["D/out_real/mean"]
    steps_a, out_a = alone.history["D/out_real/mean"]
    assert np.array_equal(steps_w, steps_a) and np.array_equal(out_w, out_a)


def test_images_give_a_png_grid_and_other_data_no_snapshot():
    torch.manual_seed(0)
    digits = data.digits()
    G = torch.nn.Sequential(torch.nn.Linear(100, 64), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 8, 8)))
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1))
    t = gandiag.Trainer(G, D, digits, gandiag.TrainConfig(steps=10))
    shot = take_snapshot(t, images=16)
    assert isinstance(shot, ImageSnapshot) and shot.png.startswith(PNG_SIGNATURE)
    points3 = torch.randn(256, 3)
    G3 = torch.nn.Linear(100, 3)
    D3 = torch.nn.Linear(3, 1)
    assert take_snapshot(gandiag.Trainer(G3, D3, points3, gandiag.TrainConfig(steps=1))) is None
