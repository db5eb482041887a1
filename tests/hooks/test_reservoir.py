"""The sample reservoir: a few of D's real and fake inputs, as D saw them, kept for
label-free coverage; penalty inputs left out, packed inputs unpacked, memory bounded."""

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag.hooks.reservoir import SampleReservoir

pytestmark = pytest.mark.usefixtures("code_path")


def ring_loop(steps, *, pack=1, penalty=False, log_every=10, **options):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    D = nn.Sequential(nn.Linear(2 * pack, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    ring, fakes = gandiag.data.ring(), []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=log_every, **options) as monitor:
        for _ in range(steps):
            real, fake = ring.sample(64), G(torch.randn(64, 2))
            fakes.append(fake.detach().clone())
            opt_d.zero_grad()
            loss = D(fake.detach().reshape(-1, 2 * pack)).mean() - D(real.reshape(-1, 2 * pack)).mean()
            if penalty:
                mixed = (0.5 * real + 0.5 * fake.detach() + 5.0).requires_grad_(True)  # far off the ring
                grad, = torch.autograd.grad(D(mixed.reshape(-1, 2 * pack)).sum(), mixed, create_graph=True)
                loss = loss + ((grad.norm(dim=1) - 1) ** 2).mean()
            loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            fake = G(torch.randn(64, 2))
            fakes.append(fake.detach().clone())
            (-D(fake.reshape(-1, 2 * pack)).mean()).backward()
            opt_g.step()
    return monitor, torch.cat(fakes).numpy()


def test_real_and_fake_samples_are_kept_as_d_saw_them():
    monitor, fakes = ring_loop(60)
    reservoir = monitor.reservoir
    assert reservoir.real.shape[1:] == reservoir.fake.shape[1:] == (2,)
    radius = np.linalg.norm(reservoir.real, axis=1)
    assert np.all(np.abs(radius - 1) < 0.1)  # ring data: radius 1, std 0.01
    # every kept fake is one of G's outputs (of the D or the G update), bit for bit
    assert all((np.abs(fakes - row).max(axis=1) == 0).any() for row in reservoir.fake)
    # about 128 of each kind per flush of 10 steps: 6 flushes
    assert reservoir.seen["real"] <= 6 * 128 and reservoir.seen["fake"] <= 6 * 128
    assert reservoir.seen["real"] >= 6 * 64  # 64 per batch, 13 rows from each call


def test_penalty_inputs_are_not_kept_and_packed_inputs_are_unpacked():
    monitor, _ = ring_loop(20, pack=2, penalty=True, sample_shape=(2,))
    real = monitor.reservoir.real
    assert real.shape[1:] == (2,) and np.all(np.abs(np.linalg.norm(real, axis=1) - 1) < 0.1)
    assert monitor.calls.seen["penalty"] == 20


def test_the_reservoir_is_bounded_and_can_be_switched_off():
    monitor, _ = ring_loop(40, keep_samples=100)
    assert len(monitor.reservoir.real) == len(monitor.reservoir.fake) == 100
    monitor, _ = ring_loop(3, keep_samples=0)
    assert monitor.reservoir is None
    with pytest.raises(ValueError, match=r"sample_shape to be the shape of one sample.*got \(0, 2\)"):
        ring_loop(1, sample_shape=(0, 2))


def test_large_samples_are_kept_within_the_byte_budget():
    reservoir = SampleReservoir(keep=2000, per_flush=64, take=64, max_bytes=10 * 3 * 8 * 8 * 4)
    reservoir.offer("real", torch.randn(64, 3, 8, 8))
    reservoir.absorb()
    assert reservoir.real.shape == (10, 3, 8, 8)


def test_recent_fakes_stay_in_order_after_the_samples_change_shape():
    from gandiag.hooks.reservoir import SampleReservoir

    reservoir = SampleReservoir(keep=3, per_flush=100, take=100)
    for start in (0, 3, 6):  # the ring wraps
        reservoir.offer("fake", torch.arange(start, start + 3.0).reshape(3, 1))
        reservoir.absorb()
    reservoir.offer("fake", torch.arange(10.0).reshape(5, 2))  # another shape: a new ring
    reservoir.absorb()
    assert reservoir.recent_fakes(3)[:, 0].tolist() == [4.0, 6.0, 8.0]
    assert reservoir.skipped["shape_changes"] == 1
