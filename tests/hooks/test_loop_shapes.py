"""attach() on the loop shapes people write, each recorded value compared with the same
value computed by hand in the loop: D-first and G-first, n_critic with trailing critic
updates, WGAN with clipping, WGAN-GP's interpolates, R1 on real inputs, LSGAN with 0/1
and -1/1 targets, a conditional D with labels."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gandiag

pytestmark = pytest.mark.usefixtures("code_path")  # every test on both code paths
NZ, BATCH = 4, 16


def pair(seed=0, conditional=False):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(NZ, 16), nn.ReLU(), nn.Linear(16, 2))
    D = (CondD() if conditional else nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)))
    return G, D


class CondD(nn.Module):
    """D(x, labels): the label embedding joins the sample, as in a conditional GAN."""

    def __init__(self):
        super().__init__()
        self.embed, self.net = nn.Embedding(3, 2), nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, x, labels):
        return self.net(torch.cat([x, self.embed(labels)], dim=1))


def real_batch(generator):
    return torch.randn(BATCH, 2, generator=generator) * 0.5 + 1.0


def adam(model, lr=1e-3):
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))


class Hand:
    """Values a user computes in the loop, per row (a row: the iteration of one G update)."""

    def __init__(self):
        self.rows, self.row = [], {}

    def add(self, key, tensor):
        self.row.setdefault(key, []).append(tensor.detach().reshape(-1).double())

    def end_row(self):
        self.rows.append(self.row)
        self.row = {}

    def series(self, key, stat=torch.mean):
        return np.array([float(stat(torch.cat(row[key]))) for row in self.rows if key in row])


def close(monitor, key, expected, rtol=1e-5):
    np.testing.assert_allclose(monitor.history[key][1], expected, rtol=rtol, atol=1e-7)


# ---- loop order -------------------------------------------------------------------------
def test_d_first_with_n_critic_and_trailing_critic_updates_commits_a_partial_row():
    """WGAN as the most-starred collection writes it: D every batch, G every 5th, clipping."""
    G, D = pair()
    opt_g, opt_d = torch.optim.RMSprop(G.parameters(), lr=5e-4), torch.optim.RMSprop(D.parameters(), lr=5e-4)
    gen, hand = torch.Generator().manual_seed(1), Hand()
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=4) as monitor:
        for i in range(23):  # 5 G updates (i = 0, 5, 10, 15, 20), then 2 trailing critic updates
            real, fake = real_batch(gen), G(torch.randn(BATCH, NZ, generator=gen)).detach()
            opt_d.zero_grad()
            out_real, out_fake = D(real), D(fake)
            loss_d = out_fake.mean() - out_real.mean()
            loss_d.backward()
            opt_d.step()
            for p in D.parameters():
                p.data.clamp_(-0.05, 0.05)
            hand.add("real", out_real), hand.add("fake", out_fake)
            if i % 5 == 0:
                opt_g.zero_grad()
                out_g = D(G(torch.randn(BATCH, NZ, generator=gen)))
                loss_g = -out_g.mean()
                loss_g.backward()
                opt_g.step()
                hand.add("g", out_g)
            monitor.log(loss_d=loss_d)
            hand.add("loss_d", loss_d)
            if i % 5 == 0:
                hand.end_row()
        hand.end_row()  # the trailing critic updates
    assert monitor.config["loss"] == "wgan"  # inferred from the gradients of a plain mean
    steps = monitor.history["D/out_real/mean"][0]
    assert steps.tolist() == [1, 2, 3, 4, 5, 6] and monitor.step == 5
    close(monitor, "D/out_real/mean", hand.series("real"))
    close(monitor, "D/out_fake/mean", hand.series("fake"))
    close(monitor, "G/out_fake/mean", hand.series("g"))
    close(monitor, "D/loss", hand.series("loss_d"))
    assert monitor.history["row/partial"][0].tolist() == [6]  # marked, not dropped
    assert "D/out_real/acc" not in monitor.history  # a critic has no threshold


def test_g_first_rows_hold_each_iterations_updates_and_its_logged_losses():
    """The collection's vanilla GAN: G's update first, then D's, losses printed at the end."""
    G, D = pair()
    opt_g, opt_d = adam(G), adam(D)
    bce, gen, hand = nn.BCEWithLogitsLoss(), torch.Generator().manual_seed(2), Hand()
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=3) as monitor:
        for _ in range(7):
            real = real_batch(gen)
            opt_g.zero_grad()
            fake = G(torch.randn(BATCH, NZ, generator=gen))
            out_g = D(fake)
            loss_g = bce(out_g, torch.ones_like(out_g))
            loss_g.backward()
            opt_g.step()
            opt_d.zero_grad()
            out_real, out_fake = D(real), D(fake.detach())
            loss_d = (bce(out_real, torch.ones_like(out_real)) + bce(out_fake, torch.zeros_like(out_fake))) / 2
            loss_d.backward()
            opt_d.step()
            monitor.log(loss_d=loss_d, loss_g=loss_g)
            for key, value in (("g", out_g), ("real", out_real), ("fake", out_fake), ("loss_d", loss_d), ("loss_g", loss_g)):
                hand.add(key, value)
            hand.end_row()
    assert monitor.config["loss"] == "logits"
    assert monitor.history["D/loss"][0].tolist() == list(range(1, 8)) and "row/partial" not in monitor.history
    for key, name in (("G/out_fake/mean", "g"), ("D/out_real/mean", "real"), ("D/out_fake/mean", "fake"),
                      ("D/loss", "loss_d"), ("G/loss", "loss_g")):
        close(monitor, key, hand.series(name))
    close(monitor, "D/out_real/acc", hand.series("real", lambda x: (x > 0).double().mean()))
    close(monitor, "D/prob_fake/mean", hand.series("fake", lambda x: torch.sigmoid(x).mean()))


# ---- penalties ----------------------------------------------------------------------------
def test_wgan_gp_interpolates_are_not_counted_as_real():
    G, D = pair()
    opt_g, opt_d = adam(G, 1e-4), adam(D, 1e-4)
    gen, hand = torch.Generator().manual_seed(3), Hand()
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=5) as monitor:
        for _ in range(6):
            for _ in range(3):  # n_critic 3, D-first
                real, fake = real_batch(gen), G(torch.randn(BATCH, NZ, generator=gen))
                opt_d.zero_grad()
                out_real, out_fake = D(real), D(fake.detach())
                alpha = torch.rand(BATCH, 1, generator=gen)
                interpolates = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
                out_interp = D(interpolates)
                grads = torch.autograd.grad(out_interp, interpolates, torch.ones_like(out_interp), create_graph=True)[0]
                penalty = 10 * ((grads.norm(2, dim=1) - 1) ** 2).mean()
                (out_fake.mean() - out_real.mean() + penalty).backward()
                opt_d.step()
                hand.add("real", out_real), hand.add("fake", out_fake)
            opt_g.zero_grad()
            out_g = D(G(torch.randn(BATCH, NZ, generator=gen)))
            (-out_g.mean()).backward()
            opt_g.step()
            hand.add("g", out_g)
            hand.end_row()
    assert monitor.config["loss"] == "wgan"
    close(monitor, "D/out_real/mean", hand.series("real"))
    close(monitor, "D/out_real/std", hand.series("real", lambda x: x.std(unbiased=False)))
    close(monitor, "G/out_fake/mean", hand.series("g"))
    assert monitor.calls.seen["penalty"] == 18


def test_r1_on_real_inputs_keeps_the_real_batch_real():
    G, D = pair()
    opt_g, opt_d = adam(G), adam(D)
    gen, hand = torch.Generator().manual_seed(4), Hand()
    softplus = nn.functional.softplus
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=4) as monitor:
        for _ in range(5):
            real = real_batch(gen).requires_grad_(True)
            fake = G(torch.randn(BATCH, NZ, generator=gen))
            opt_d.zero_grad()
            out_real, out_fake = D(real), D(fake.detach())
            grad, = torch.autograd.grad(out_real.sum(), real, create_graph=True)
            r1 = 5.0 * grad.pow(2).sum(dim=1).mean()
            (softplus(-out_real).mean() + softplus(out_fake).mean() + r1).backward()
            opt_d.step()
            opt_g.zero_grad()
            out_g = D(fake)
            softplus(-out_g).mean().backward()
            opt_g.step()
            hand.add("real", out_real), hand.add("fake", out_fake)
            hand.end_row()
    assert monitor.config["loss"] == "logits" and monitor.calls.seen["penalty"] == 0
    close(monitor, "D/out_real/mean", hand.series("real"))
    close(monitor, "D/out_fake/mean", hand.series("fake"))


# ---- loss families ------------------------------------------------------------------------
@pytest.mark.parametrize("targets", [(0.0, 1.0), (-1.0, 1.0)], ids=["0-1", "-1-1"])
def test_lsgan_outputs_are_read_by_their_targets(targets):
    fake_target, real_target = targets
    G, D = pair()
    opt_g, opt_d = adam(G), adam(D)
    mse, gen, hand = nn.MSELoss(), torch.Generator().manual_seed(5), Hand()
    center = (fake_target + real_target) / 2
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=4) as monitor:
        for _ in range(8):
            real, fake = real_batch(gen), G(torch.randn(BATCH, NZ, generator=gen))
            opt_d.zero_grad()
            out_real, out_fake = D(real), D(fake.detach())
            (0.5 * mse(out_real, torch.full_like(out_real, real_target))
             + 0.5 * mse(out_fake, torch.full_like(out_fake, fake_target))).backward()
            opt_d.step()
            opt_g.zero_grad()
            out_g = D(fake)
            mse(out_g, torch.full_like(out_g, real_target)).backward()
            opt_g.step()
            hand.add("real", out_real), hand.add("fake", out_fake)
            hand.end_row()
    expected = "lsgan" if targets == (0.0, 1.0) else "lsgan:-1,1"
    assert monitor.config["loss"] == expected
    close(monitor, "D/out_real/mean", hand.series("real"))
    close(monitor, "D/out_real/acc", hand.series("real", lambda x: (x > center).double().mean()))
    close(monitor, "D/out_fake/acc", hand.series("fake", lambda x: (x < center).double().mean()))
    close(monitor, "D/out_real/sign", hand.series("real", lambda x: torch.sign(x - center).mean()))
    share = lambda x: ((x - fake_target) / (real_target - fake_target)).clamp(0, 1).mean()  # noqa: E731
    close(monitor, "D/prob_real/mean", hand.series("real", share))


def test_a_loss_given_to_attach_is_used_from_the_first_step_and_checked():
    G, D = pair()
    with gandiag.attach(G, D, loss="lsgan") as monitor:
        D(torch.full((4, 2), 0.0)).sum().backward()
        monitor.update_done("D")
        monitor.update_done("G")
    assert monitor.config == {"loss": "lsgan"} and not monitor.family.inferring
    with gandiag.attach(G, D, config={"loss": "hinge", "lr": 1e-3}) as monitor:
        assert monitor.family.current.name == "hinge" and monitor.config["lr"] == 1e-3
    with pytest.raises(ValueError, match=r"attach\(loss=...\): expected a loss among .*'lsgan:<fake>,<real>'"):
        gandiag.attach(G, D, loss="least-squares")
    with pytest.raises(ValueError, match="fake < real"):
        gandiag.attach(G, D, loss="lsgan:1,0")


def test_a_conditional_d_with_labels_is_filed_by_its_sample_input():
    G, D = pair(conditional=True)
    opt_g, opt_d = adam(G), adam(D)
    bce, gen, hand = nn.BCEWithLogitsLoss(), torch.Generator().manual_seed(6), Hand()
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=4) as monitor:
        for _ in range(5):
            labels = torch.randint(0, 3, (BATCH,), generator=gen)
            real, fake = real_batch(gen), G(torch.randn(BATCH, NZ, generator=gen))
            opt_d.zero_grad()
            out_real, out_fake = D(real, labels), D(fake.detach(), labels)
            (bce(out_real, torch.ones_like(out_real)) + bce(out_fake, torch.zeros_like(out_fake))).backward()
            opt_d.step()
            opt_g.zero_grad()
            out_g = D(fake, labels=labels)
            bce(out_g, torch.ones_like(out_g)).backward()
            opt_g.step()
            for key, value in (("real", out_real), ("fake", out_fake), ("g", out_g)):
                hand.add(key, value)
            hand.end_row()
    close(monitor, "D/out_real/mean", hand.series("real"))
    close(monitor, "D/out_fake/mean", hand.series("fake"))
    close(monitor, "G/out_fake/mean", hand.series("g"))


# ---- weights after the loop's own edits ---------------------------------------------------
def test_weights_are_measured_after_clipping_made_right_after_the_step():
    G, D = pair()
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.5), torch.optim.SGD(D.parameters(), lr=0.5)
    gen, ratios = torch.Generator().manual_seed(7), []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, weight_every=2, log_every=2) as monitor:
        for _ in range(4):
            before = torch.cat([p.detach().reshape(-1).clone() for p in D.parameters()])
            opt_d.zero_grad()
            (D(G(torch.randn(BATCH, NZ, generator=gen)).detach()).mean() - D(real_batch(gen)).mean()).backward()
            opt_d.step()
            for p in D.parameters():
                p.data.clamp_(-0.01, 0.01)
            after = torch.cat([p.detach().reshape(-1) for p in D.parameters()])
            ratios.append(float((after - before).norm() / before.norm()))
            opt_g.zero_grad()
            (-D(G(torch.randn(BATCH, NZ, generator=gen))).mean()).backward()
            opt_g.step()
    steps, measured = monitor.history["D/update_ratio/total"]
    assert steps.tolist() == [2, 4]
    np.testing.assert_allclose(measured, [ratios[1], ratios[3]], rtol=1e-5)
    assert monitor.history["D/lr"][1].tolist() == [0.5, 0.5]


# ---- what the monitor says --------------------------------------------------------------
def test_a_g_update_whose_d_calls_are_not_on_g_outputs_is_named_at_the_users_line():
    G, D = pair()
    opt_g, opt_d = adam(G), adam(D)
    with pytest.warns(UserWarning, match=r"G's update had no D call on G's outputs.*phase\('fake'\)") as seen:
        with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d):
            for _ in range(2):
                opt_g.zero_grad()
                augmented = G(torch.randn(BATCH, NZ)) + 0.1  # a new tensor: not G's output
                D(augmented).mean().backward()
                opt_g.step()
    assert [w.filename for w in seen if "G's update" in str(w.message)] == [__file__]


def test_an_inferred_loss_reaches_the_run_store_and_the_diagnosis(tmp_path):
    G, D = pair()
    opt_g, opt_d = adam(G), adam(D)
    mse, gen = nn.MSELoss(), torch.Generator().manual_seed(8)
    store = tmp_path / "runs.sqlite"
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=3, store=store, run="ls",
                        config={"lr": 1e-3}, diagnose=True) as monitor:
        for _ in range(4):
            opt_d.zero_grad()
            out_real, out_fake = D(real_batch(gen)), D(G(torch.randn(BATCH, NZ, generator=gen)).detach())
            (mse(out_real, torch.ones_like(out_real)) + mse(out_fake, torch.zeros_like(out_fake))).backward()
            opt_d.step()
            opt_g.zero_grad()
            out_g = D(G(torch.randn(BATCH, NZ, generator=gen)))
            mse(out_g, torch.ones_like(out_g)).backward()
            opt_g.step()
    assert monitor.diagnosis.loss == "lsgan"
    run = gandiag.open_run("ls", store=store)
    assert run.config == {"lr": 1e-3, "loss": "lsgan"}
    from gandiag.core.series import loss_name
    assert loss_name(run) == loss_name(monitor) == "lsgan"


def hinge_run(fast, monkeypatch, lr=1e-3):
    from gandiag.hooks import buffer
    monkeypatch.setattr(buffer, "CPU_FAST_PATH", fast)
    G, D = pair()
    opt_g, opt_d = adam(G, lr), adam(D, lr)
    relu, gen = nn.functional.relu, torch.Generator().manual_seed(9)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=5) as monitor:
            for _ in range(40):
                opt_d.zero_grad()
                out_real, out_fake = D(real_batch(gen)), D(G(torch.randn(BATCH, NZ, generator=gen)).detach())
                (relu(1 - out_real).mean() + relu(1 + out_fake).mean()).backward()
                opt_d.step()
                opt_g.zero_grad()
                (-D(G(torch.randn(BATCH, NZ, generator=gen))).mean()).backward()
                opt_g.step()
    return monitor, [w for w in seen if "recognised as hinge" in str(w.message)]


def test_a_hinge_d_read_as_a_critic_until_its_margins_show_is_recorded_alike_on_both_paths(monkeypatch):
    (host, host_warned), (device, device_warned) = (hinge_run(fast, monkeypatch) for fast in (True, False))
    assert host.config["loss"] == device.config["loss"] == "hinge"
    assert host.family.decided_at == device.family.decided_at > 5  # first read as a critic
    assert len(host_warned) == 1 and host_warned[0].filename == __file__
    assert sorted(host.history) == sorted(device.history)
    for key in host.history:
        np.testing.assert_allclose(device.history[key][1], host.history[key][1], rtol=1e-9, err_msg=key)
    steps = host.history["D/out_real/acc"][0]  # the threshold appears with the decision
    assert steps[0] > 5 and steps[-1] == 40
