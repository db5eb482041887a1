"""The hooks on CUDA (skipped without a GPU): whole training steps without one host-device
sync between flushes, checked by torch.cuda.set_sync_debug_mode("error")."""

import contextlib

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag import TrainConfig, Trainer, data, models
from tests.hooks.test_monitor import NZ, layer_norms, tutorial_pair

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@contextlib.contextmanager
def no_sync_allowed():
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def cuda_tutorial_steps(G, D, opt_g, opt_d, monitor, steps, batch=16):
    criterion = nn.BCELoss()
    ones = torch.ones(batch, device="cuda")
    zeros = torch.zeros(batch, device="cuda")
    for _ in range(steps):
        real = torch.rand(batch, 1, 8, 8, device="cuda") * 2 - 1
        D.zero_grad()
        err_real = criterion(D(real).view(-1), ones)
        err_real.backward()
        fake = G(torch.randn(batch, NZ, 1, 1, device="cuda"))
        err_fake = criterion(D(fake.detach()).view(-1), zeros)
        err_fake.backward()
        opt_d.step()
        G.zero_grad()
        err_g = criterion(D(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()
        monitor.log(loss_d=err_real + err_fake, loss_g=err_g)


@pytest.mark.parametrize("found", [False, True], ids=["explicit-optimizers", "found-optimizers"])
def test_a_user_loop_records_without_syncing(found):
    torch.manual_seed(0)
    G, D = (m.cuda() for m in tutorial_pair())
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    options = {} if found else {"opt_g": opt_g, "opt_d": opt_d}
    with gandiag.attach(G, D, log_every=50, weight_every=5, **options) as monitor:
        cuda_tutorial_steps(G, D, opt_g, opt_d, monitor, 3)  # warm-up: allocations, caches
        with no_sync_allowed():
            cuda_tutorial_steps(G, D, opt_g, opt_d, monitor, 40)  # leak check, weights: all in
        records = monitor.flush()
    assert records.scalars["D/loss"][0].tolist() == list(range(1, 44))
    assert np.isfinite(monitor.history["D/grad_norm/total"][1]).all()
    assert monitor.history["D/update_ratio/0"][0].tolist() == [5, 10, 15, 20, 25, 30, 35, 40]


def test_the_trainer_trains_without_syncing_between_flushes():
    G, D = models.small_toy(pack=2)
    trainer = Trainer(G, D, data.ring(), TrainConfig(pack=2, ema=0.999, log_every=100, device="cuda"))
    trainer.fit(5)
    with no_sync_allowed():
        for _ in range(60):
            trainer.train_step()
    records = trainer.monitor.flush()
    assert len(records.scalars["D/loss"][0]) == 60
    assert np.isfinite(records.scalars["D/out_real/mean"][1]).all()


def test_cuda_values_equal_hand_computed_ones():
    torch.manual_seed(0)
    G, D = (m.cuda() for m in tutorial_pair())
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    criterion = nn.BCELoss()
    hand = []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d) as monitor:
        for _ in range(3):
            real = torch.rand(16, 1, 8, 8, device="cuda")
            D.zero_grad()
            out = D(real).view(-1)
            criterion(out, torch.ones_like(out)).backward()
            hand.append((float(torch.logit(out.detach().double()).mean()), layer_norms(D)["0"]))
            opt_d.step()
            G.zero_grad()
            out = D(G(torch.randn(16, NZ, 1, 1, device="cuda"))).view(-1)
            criterion(out, torch.ones_like(out)).backward()
            opt_g.step()
    np.testing.assert_allclose(monitor.history["D/out_real/mean"][1], [h[0] for h in hand], rtol=1e-4)
    np.testing.assert_allclose(monitor.history["D/grad_norm/0"][1], [h[1] for h in hand], rtol=1e-4)
