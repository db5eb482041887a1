"""A model whose optimizer never steps while the other trains (`gandiag.hooks.idle`):
`opt_g.step()` forgotten, no G update in the loop at all, a `step` replaced by a no-op.
The hooks measure in the optimizer's step hooks, so such a G used to leave no record (and,
steps counting G updates, the whole run in one open row): now the monitor records it idle
and `frozen_model` names the cause. Loops that update a model rarely on purpose (n_critic,
a long first critic phase) must not be taken for it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gandiag

BATCH = 32


def pair(seed=0):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 2))
    D = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    return G, D


def adam(model):
    return torch.optim.Adam(model.parameters(), 1e-3, betas=(0.5, 0.999))


def run(iterations, *, g_update="step", d_update=True, n_critic=1, first_critic=None,
        given=True, **options):
    """A non-saturating loop on the ring; `g_update`: 'step' (normal), 'no_step'
    (backward, opt_g.step() forgotten), 'none' (no G update at all) or 'noop' (opt_g.step
    replaced by a no-op). Returns (monitor, G's initial weights, G, D losses by iteration)."""
    G, D = pair()
    ring = gandiag.data.ring()
    opt_g, opt_d = adam(G), adam(D)
    if g_update == "noop":
        opt_g.step = lambda *args, **kwargs: None
    initial = [p.detach().clone() for p in G.parameters()]
    losses = []
    optimizers = {"opt_g": opt_g, "opt_d": opt_d} if given else {}
    options.setdefault("keep_samples", 0)   # no label-free coverage: too few steps for it
    with gandiag.attach(G, D, **optimizers, **options) as monitor:
        for it in range(iterations):
            critic = first_critic if first_critic is not None and it < 2 else n_critic
            for _ in range(critic):
                fake = G(torch.randn(BATCH, 2))
                loss_d = F.softplus(-D(ring.sample(BATCH))).mean() + F.softplus(D(fake.detach())).mean()
                opt_d.zero_grad()
                loss_d.backward()
                if d_update:
                    opt_d.step()
            if g_update != "none":
                loss_g = F.softplus(-D(fake)).mean()
                opt_g.zero_grad()
                loss_g.backward()
                if g_update != "no_step":
                    opt_g.step()
            monitor.log(loss_d=loss_d)
            losses.append(float(loss_d.detach()))
    return monitor, initial, G, np.array(losses)


def frozen(monitor):
    return [a for a in gandiag.diagnose(monitor) if a.kind == "frozen_model"]


def test_a_forgotten_g_step_is_recorded_and_named_as_the_cause(code_path):
    monitor, initial, G, losses = run(300, g_update="no_step", weight_every=25)
    assert all(torch.equal(p, q) for p, q in zip(initial, G.parameters()))   # G never moved
    history = monitor.history
    # G found idle at D's 200th update; from then on each D update ends a step
    assert monitor.step == 300
    steps, ratio = history["G/update_ratio/total"]
    assert steps.tolist() == list(range(200, 301, 25)) and ratio.tolist() == [0.0] * 5
    assert history["G/idle/steps"][1].tolist() == list(range(200, 301, 25))
    assert history["G/idle/other_updates"][1].tolist() == list(range(200, 301, 25))
    # the first 199 D updates are one row, at step 199; then one row per iteration, and the
    # loss logged after an iteration's D update is in that row
    own, logged = history["D/loss"]
    assert own.tolist() == list(range(199, 301))
    assert np.allclose(logged[1:], losses[199:]) and np.isclose(logged[0], losses[:199].mean())
    (alert,) = frozen(monitor)
    assert (alert.severity, alert.step, alert.detected_at, alert.evidence["model"]) == ("critical", 200, 250, "G")
    assert alert.evidence["cause"] == "no_optimizer_step"
    assert alert.message == ("G's optimizer made no update in 250 steps while D made 250: "
                             "its step() is never called (or does nothing)")
    assert alert.fixes[0] == "call opt_g.step() after loss_g.backward() in every G update"
    assert "opt_g.step()" in alert.explanation


def test_no_g_update_in_the_loop_at_all_is_the_same_cause():
    monitor, *_ = run(260, g_update="none", weight_every=20)
    (alert,) = frozen(monitor)
    assert (alert.evidence["model"], alert.evidence["cause"], alert.detected_at) == ("G", "no_optimizer_step", 240)
    assert not [k for k in monitor.history if k.startswith("G/grad_norm")]


def test_a_step_replaced_by_a_no_op_is_the_same_cause():
    monitor, initial, G, _ = run(260, g_update="noop", weight_every=20)
    assert all(torch.equal(p, q) for p, q in zip(initial, G.parameters()))
    (alert,) = frozen(monitor)
    assert alert.evidence["cause"] == "no_optimizer_step" and alert.message.startswith("G's optimizer")


def test_a_forgotten_g_step_is_found_also_when_the_optimizers_are_found_from_their_steps():
    monitor, *_ = run(260, g_update="no_step", weight_every=20, given=False)
    (alert,) = frozen(monitor)
    assert alert.evidence["model"] == "G" and alert.evidence["cause"] == "no_optimizer_step"


def test_an_idle_d_is_named_when_its_optimizer_was_given():
    monitor, *_ = run(260, d_update=False, weight_every=20, loss="nonsaturating")
    steps, ratio = monitor.history["D/update_ratio/total"]
    assert steps.tolist() == [200, 220, 240, 260] and ratio.tolist() == [0.0] * 4
    (alert,) = frozen(monitor)
    assert alert.evidence["model"] == "D" and alert.message.startswith(
        "D's optimizer made no update in 240 steps while G made 240")
    assert alert.fixes[0] == "call opt_d.step() after loss_d.backward() in every D update"


def test_a_g_trained_against_a_fixed_d_found_from_its_steps_is_not_an_alert():
    # no optimizers given: D's is never seen, so D may be a fixed, pretrained opponent
    monitor, *_ = run(260, d_update=False, weight_every=20, given=False,
                       loss="nonsaturating")
    assert "D/update_ratio/total" not in monitor.history and frozen(monitor) == []


@pytest.mark.parametrize("n_critic", [5, 10])
def test_infrequent_g_updates_with_n_critic_are_not_idle(n_critic):
    monitor, *_ = run(60, n_critic=n_critic, log_every=1, weight_every=1, leak_check_steps=0)
    assert monitor.step == 60
    assert not [k for k in monitor.history if "/idle/" in k]
    assert (monitor.history["G/update_ratio/total"][1] > 0).all()
    assert frozen(monitor) == []


def test_a_long_first_critic_phase_is_not_idle_and_raises_the_limit():
    # the original WGAN's schedule: 100 critic updates per G update early on
    monitor, *_ = run(40, n_critic=5, first_critic=150, log_every=1, weight_every=5)
    assert monitor.step == 40 and not [k for k in monitor.history if "/idle/" in k]
    assert frozen(monitor) == []


def test_a_g_that_starts_updating_after_being_idle_is_recorded_again():
    # D alone for 240 iterations (G idle from the 200th), then the normal loop: a long
    # first D phase is idle G (measured twice here), and stops being so at once
    G, D = pair()
    ring = gandiag.data.ring()
    opt_g, opt_d = adam(G), adam(D)
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, weight_every=25,
                        keep_samples=0) as monitor:
        for it in range(300):
            fake = G(torch.randn(BATCH, 2))
            loss_d = F.softplus(-D(ring.sample(BATCH))).mean() + F.softplus(D(fake.detach())).mean()
            opt_d.zero_grad(), loss_d.backward(), opt_d.step()
            if it >= 240:
                opt_g.zero_grad(), F.softplus(-D(fake)).mean().backward(), opt_g.step()
    assert monitor.history["G/idle/steps"][0].tolist() == [200, 225]
    steps, ratio = monitor.history["G/update_ratio/total"]
    assert steps.tolist() == [200, 225, 250, 275, 300] and (ratio[2:] > 0).all()
    # the last D update of the idle stretch and G's first update are rows of their own
    assert monitor.step == 301 and np.all(np.diff(monitor.history["D/grad_norm/total"][0]) > 0)
    assert frozen(monitor) == []   # two measurements idle (three raise it), then it trains


def test_frozen_model_reads_the_idle_records_and_says_no_longer_when_g_updated_before():
    from tests.detect.series import healthy
    series = healthy()
    own, ratio = series["G/update_ratio/total"]
    idle = own >= 2000   # G's last update at step 1800: idle from 2000 on (no lr recorded there)
    series["G/update_ratio/total"] = (own, np.where(idle, 0.0, ratio))
    series["G/idle/steps"] = (own[idle], own[idle] - 1800.0)
    series["G/idle/other_updates"] = (own[idle], own[idle] - 1800.0)
    (alert,) = gandiag.diagnose(series)
    assert (alert.kind, alert.step, alert.detected_at) == ("frozen_model", 2000, 2100)
    assert alert.message == ("G's optimizer made no update in 300 steps while D made 300: "
                             "its step() is no longer called (or does nothing)")
    assert alert.evidence["cause"] == "no_optimizer_step" and alert.evidence["idle_steps"] == 300
    # the same zero ratios without the idle records: an optimizer that steps, weights unchanged
    del series["G/idle/steps"], series["G/idle/other_updates"]
    (alert,) = gandiag.diagnose(series)
    assert alert.evidence["cause"] == "weights_unchanged"
    assert alert.message.startswith("G is not being updated: its weights did not change")
