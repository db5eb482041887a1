"""attach() on a loop written as a user writes it (the PyTorch DCGAN tutorial's shape):
recorded values equal hand computations in the same loop, D-step and G-step never mixed."""

import copy
import gc
import math
import warnings
import weakref

import numpy as np
import pytest
import torch
import torch.optim.optimizer as optim_hooks
from torch import nn

import gandiag
from gandiag.hooks import GradientLeakWarning

pytestmark = pytest.mark.usefixtures("code_path")  # every test on both code paths
NZ = 8


def tutorial_pair(sigmoid: bool = True) -> tuple[nn.Module, nn.Module]:
    """A small DCGAN as in the tutorial: BN, LeakyReLU(inplace=True), D ends in a Sigmoid."""
    G = nn.Sequential(
        nn.ConvTranspose2d(NZ, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
        nn.ConvTranspose2d(16, 1, 4, 2, 1, bias=False), nn.Tanh(),
    )
    layers = [
        nn.Conv2d(1, 16, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(16, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(32, 1, 2, 1, 0, bias=False),
    ]
    D = nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))
    return G, D


def layer_norms(model: nn.Module) -> dict[str, float]:
    """Per-layer gradient norms, computed by hand."""
    norms: dict[str, float] = {}
    for name, module in model.named_modules():
        grads = [p.grad for p in module.parameters(recurse=False) if p.grad is not None]
        if grads:
            norms[name] = math.sqrt(sum(float(g.double().norm()) ** 2 for g in grads))
    return norms


def tutorial_loop(G, D, steps, monitor=None, hand=None, batch=16):
    """The tutorial's training loop; `hand` collects the values a user would compute."""
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        real = torch.rand(batch, 1, 8, 8, generator=generator) * 2 - 1
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        D.zero_grad()
        output = D(real).view(-1)
        err_real = criterion(output, torch.ones(batch))
        err_real.backward()
        real_p = output.detach()
        noise = torch.randn(batch, NZ, 1, 1, generator=generator)
        fake = G(noise)
        output = D(fake.detach()).view(-1)
        err_fake = criterion(output, torch.zeros(batch))
        err_fake.backward()
        fake_p = output.detach()
        if hand is not None:
            hand.setdefault("D_norms", []).append(layer_norms(D))
        opt_d.step()
        # (2) update G: maximize log(D(G(z)))
        G.zero_grad()
        output = D(fake).view(-1)
        err_g = criterion(output, torch.ones(batch))
        err_g.backward()
        if hand is not None:
            hand.setdefault("G_norms", []).append(layer_norms(G))
        opt_g.step()
        if monitor is not None:
            monitor.log(loss_d=err_real + err_fake, loss_g=err_g, err_real=err_real.item())
        if hand is not None:
            logit = lambda p: torch.logit(p.double())  # noqa: E731
            hand.setdefault("real", []).append(logit(real_p))
            hand.setdefault("fake", []).append(logit(fake_p))
            hand.setdefault("g_fake", []).append(logit(output.detach()))
            hand.setdefault("loss_d", []).append(float(err_real.detach() + err_fake.detach()))


def attached_tutorial(steps=12, log_every=5, **options):
    torch.manual_seed(0)
    G, D = tutorial_pair()
    hand: dict = {}
    if log_every is not None:
        options["log_every"] = log_every
    with gandiag.attach(G, D, **options) as monitor:
        tutorial_loop(G, D, steps, monitor, hand)
    return monitor, hand, G, D


def test_records_equal_the_hand_computed_values_of_the_same_loop():
    monitor, hand, _, _ = attached_tutorial()
    history = monitor.history
    assert monitor.d_output == "probability"  # found the final Sigmoid
    steps, real_mean = history["D/out_real/mean"]
    assert steps.tolist() == list(range(1, 13))
    expected = lambda values, f: np.array([f(v) for v in values])  # noqa: E731
    np.testing.assert_allclose(real_mean, expected(hand["real"], lambda v: float(v.mean())), rtol=1e-5)
    np.testing.assert_allclose(history["D/out_fake/mean"][1], expected(hand["fake"], lambda v: float(v.mean())), rtol=1e-5)
    np.testing.assert_allclose(history["G/out_fake/mean"][1], expected(hand["g_fake"], lambda v: float(v.mean())), rtol=1e-5)
    np.testing.assert_allclose(history["D/out_real/std"][1], expected(hand["real"], lambda v: float(v.std(unbiased=False))), rtol=1e-4)
    np.testing.assert_allclose(history["D/out_real/sign"][1], expected(hand["real"], lambda v: float(torch.sign(v).mean())))
    np.testing.assert_allclose(history["D/out_real/acc"][1], expected(hand["real"], lambda v: float((v > 0).double().mean())))
    np.testing.assert_allclose(history["D/out_fake/acc"][1], expected(hand["fake"], lambda v: float((v < 0).double().mean())))
    np.testing.assert_allclose(history["D/prob_real/mean"][1], expected(hand["real"], lambda v: float(torch.sigmoid(v).mean())), rtol=1e-6)
    np.testing.assert_allclose(history["D/loss"][1], hand["loss_d"], rtol=1e-6)
    assert "G/out_real/mean" not in history  # the G step never calls D on real data


def test_gradient_norms_are_per_layer_and_per_update():
    monitor, hand, G, D = attached_tutorial()
    history = monitor.history
    for role, model in (("D", D), ("G", G)):
        for name in layer_norms(model):
            recorded = history[f"{role}/grad_norm/{name}"][1]
            np.testing.assert_allclose(recorded, [n[name] for n in hand[f"{role}_norms"]], rtol=1e-5)
        totals = [math.sqrt(sum(v ** 2 for v in n.values())) for n in hand[f"{role}_norms"]]
        np.testing.assert_allclose(history[f"{role}/grad_norm/total"][1], totals, rtol=1e-5)
    # D's norms are taken at D's step: G's backward also fills D's .grad, which must not count
    assert "D/grad_norm/0" in history and "D/grad_norm/5" in history


def test_histograms_count_every_output_and_losses_log_without_sync():
    monitor, hand, _, _ = attached_tutorial(hist_bins=8, hist_range=(-1.0, 1.0))
    hist = monitor.history.histograms["D/out_real/hist"]
    assert hist.counts.shape == (12, 8) and hist.edges[0] == -1.0 and hist.edges[-1] == 1.0
    np.testing.assert_array_equal(hist.counts.sum(axis=1), 16)  # outliers land in the edge bins
    first = hand["real"][0].clamp(-1, 1)
    np.testing.assert_array_equal(hist.counts[0], torch.histc(first.float(), 8, -1, 1).numpy())
    assert monitor.history["err_real"][0].tolist() == list(range(1, 13))  # a float logged by name
    assert monitor.history["nonfinite/loss"][1].sum() == 0


class FunctionalSigmoidD(nn.Module):
    """A D that applies torch.sigmoid in forward: no Sigmoid module to find."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))


def test_probability_outputs_are_read_as_logits_found_or_declared():
    torch.manual_seed(0)
    G, D = nn.Linear(NZ, 4), FunctionalSigmoidD()
    with gandiag.attach(G, D) as monitor:
        assert monitor.d_output == "logits"  # nothing to detect
    x = torch.randn(8, 4)
    with gandiag.attach(G, D, d_output="probability") as monitor:
        D(x)
        monitor.update_done("D")
        monitor.update_done("G")
    np.testing.assert_allclose(monitor.history["D/out_real/mean"][1], [float(D.linear(x).mean().detach())], rtol=1e-5)
    _, D_logits = tutorial_pair(sigmoid=False)
    with gandiag.attach(nn.Linear(NZ, 4), D_logits) as monitor:
        assert monitor.d_output == "logits"
    with pytest.raises(ValueError, match="d_output must be one of"):
        gandiag.attach(G, D, d_output="sigmoid")


def test_the_call_order_does_not_matter_g_step_first():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(NZ, 16), nn.ReLU(), nn.Linear(16, 4))
    D = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    bce = nn.BCEWithLogitsLoss()
    g_values, d_values = [], []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d) as monitor:
        for _ in range(6):
            opt_g.zero_grad()
            fake = G(torch.randn(8, NZ))
            out = D(fake)
            g_values.append(float(out.detach().mean()))
            bce(out, torch.ones_like(out)).backward()
            opt_g.step()
            opt_d.zero_grad()
            out = D(fake.detach())
            d_values.append(float(out.detach().mean()))
            (bce(D(torch.randn(8, 4)), torch.ones_like(out)) + bce(out, torch.zeros_like(out))).backward()
            opt_d.step()
    np.testing.assert_allclose(monitor.history["G/out_fake/mean"][1], g_values, rtol=1e-6)
    # G-first: the D update made after G update k is in the same iteration, so in row k
    steps, values = monitor.history["D/out_fake/mean"]
    assert steps.tolist() == [1, 2, 3, 4, 5, 6] and "row/partial" not in monitor.history
    np.testing.assert_allclose(values, d_values, rtol=1e-6)


def test_optimizers_are_found_from_their_steps():
    monitor, hand, _, _ = attached_tutorial()  # opt_g / opt_d not passed
    assert monitor.step == 12 and len(monitor.history["D/grad_norm/total"][0]) == 12


def test_weight_norms_and_update_ratios_every_k_steps():
    monitor, _, _, D = attached_tutorial(weight_every=4)
    steps, ratio = monitor.history["D/update_ratio/0"]
    assert steps.tolist() == [4, 8, 12]
    assert np.all(ratio > 0) and np.all(ratio < 0.1)  # Adam at 2e-4 moves weights a little
    np.testing.assert_allclose(monitor.history["D/weight_norm/0"][1][-1], float(D[0].weight.detach().norm()), rtol=1e-6)


def test_a_missing_zero_grad_is_reported_once_with_the_fix():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(NZ, 16), nn.ReLU(), nn.Linear(16, 4))
    D = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    bce = nn.BCEWithLogitsLoss()
    with pytest.warns(GradientLeakWarning, match=r"left over from the G update.*opt_d.zero_grad\(\)"):
        with gandiag.attach(G, D, log_every=4) as monitor:
            for _ in range(8):
                opt_d.zero_grad()
                opt_g.zero_grad()  # both zeroed at the top, then G first: D keeps G's gradients
                fake = G(torch.randn(8, NZ))
                out = D(fake)
                bce(out, torch.ones_like(out)).backward()
                opt_g.step()
                loss = bce(D(torch.randn(8, 4)), torch.ones_like(out)) + bce(D(fake.detach()), torch.zeros_like(out))
                loss.backward()
                opt_d.step()
    steps, leaked = monitor.history["grad_leak/D"]
    assert steps.tolist() == list(range(1, 9)) and leaked.all()  # G-first: D's update k is in row k
    assert not monitor.history["grad_leak/G"][1].any()


def test_a_correct_loop_with_gradient_clipping_raises_no_leak_warning(recwarn):
    monitor, _, _, _ = attached_tutorial()
    assert not [w for w in recwarn if issubclass(w.category, GradientLeakWarning)]
    assert not monitor.history["grad_leak/D"][1].any()


def test_non_finite_outputs_and_gradients_are_counted_not_hidden():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(NZ, 4))
    D = nn.Sequential(nn.Linear(4, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    with gandiag.attach(G, D) as monitor:
        real = torch.randn(8, 4)
        real[0, 0] = float("nan")
        opt_d.zero_grad()
        out = D(real)
        finite_mean = float(out.detach()[1:].mean())
        out.mean().backward()  # NaN output -> NaN gradients
        opt_d.step()
        opt_g.zero_grad()
        D(G(torch.randn(8, NZ))).mean().backward()
        opt_g.step()
        monitor.log(loss_d=torch.tensor(float("nan")))
    history = monitor.history
    assert history["nonfinite/D/out_real"][1].tolist() == [1]
    assert history["D/out_real/mean"][1][0] == pytest.approx(finite_mean)  # over the finite ones
    assert history["nonfinite/D/grad"][1].tolist() == [1]  # the weight's (the bias's is finite)
    assert np.isnan(history["D/loss"][1][0]) and history["nonfinite/loss"][1].tolist() == [1]
    assert history.histograms["D/out_real/hist"].counts.sum() == 7  # the NaN is not in a bin


def test_remove_leaves_no_hooks_and_identical_outputs():
    torch.manual_seed(0)
    G, D = tutorial_pair()
    untouched = copy.deepcopy(D)
    monitor = gandiag.attach(G, D)
    tutorial_loop(G, D, 2, monitor)
    untouched.load_state_dict(D.state_dict())
    monitor.remove()
    monitor.remove()  # idempotent
    for model in (G, D):
        for module in model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks
        for parameter in model.parameters():
            assert not parameter._backward_hooks
    assert not optim_hooks._global_optimizer_pre_hooks and not optim_hooks._global_optimizer_post_hooks
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(D(x), untouched(x))
    assert monitor.history["D/loss"][0].tolist() == [1, 2]  # history outlives the hooks


def test_a_removed_monitor_keeps_no_model_alive():
    monitor, _, G, D = attached_tutorial(steps=2)
    refs = [weakref.ref(G), weakref.ref(D)]
    del G, D
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert len(monitor.history["D/out_real/mean"][0]) == 2


def test_explicit_optimizers_register_only_on_them():
    torch.manual_seed(0)
    G, D = tutorial_pair()
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d):
        assert len(opt_g._optimizer_step_pre_hooks) == 1
        assert not optim_hooks._global_optimizer_pre_hooks
    assert not opt_g._optimizer_step_pre_hooks and not opt_d._optimizer_step_post_hooks


def test_phase_override_marks_transformed_samples():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(NZ, 4))
    D = nn.Sequential(nn.Linear(4, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.01), torch.optim.SGD(D.parameters(), lr=0.01)
    with gandiag.attach(G, D) as monitor:
        fake = G(torch.randn(8, NZ))
        augmented = fake.detach() + 0.0  # a new tensor: provenance is lost
        with monitor.phase("fake"):
            out_fake = D(augmented)
        with monitor.phase("ignore"):
            D(torch.randn(8, 4))  # e.g. a penalty on interpolates: not recorded
        opt_d.zero_grad()
        (out_fake.mean() - D(torch.randn(8, 4)).mean()).backward()
        opt_d.step()
        opt_g.zero_grad()
        D(fake).mean().backward()
        opt_g.step()
    np.testing.assert_allclose(monitor.history["D/out_fake/mean"][1], [float(out_fake.detach().mean())], rtol=1e-6)
    hist = monitor.history.histograms["D/out_real/hist"]
    assert hist.counts.sum() == 8  # one real call, the ignored one is not there
    with pytest.raises(ValueError, match="expected one of 'real', 'fake', 'ignore'"):
        with monitor.phase("generated"):
            pass


def test_calls_without_autograd_are_not_recorded():
    G, D = tutorial_pair()
    with gandiag.attach(G, D) as monitor:
        with torch.no_grad():
            D(torch.randn(4, 1, 8, 8))
    assert "D/out_real/mean" not in monitor.history


def test_with_a_grad_scaler_norms_are_unscaled_and_no_leak_is_reported(recwarn):
    # GradScaler unscales before optimizer.step, so the step pre-hooks see true gradients;
    # the leak check compares directions, so the scale factor does not matter.
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(NZ, 16), nn.ReLU(), nn.Linear(16, 4))
    D = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    bce = nn.BCEWithLogitsLoss()
    hand = []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d) as monitor:
        for _ in range(4):
            opt_d.zero_grad()
            fake = G(torch.randn(8, NZ))
            out_real, out_fake = D(torch.randn(8, 4)), D(fake.detach())
            loss_d = bce(out_real, torch.ones_like(out_real)) + bce(out_fake, torch.zeros_like(out_fake))
            scaler.scale(loss_d).backward()
            scaler.unscale_(opt_d)
            hand.append(layer_norms(D)["2"])
            scaler.step(opt_d)
            opt_g.zero_grad()
            out = D(fake)
            scaler.scale(bce(out, torch.ones_like(out))).backward()
            scaler.step(opt_g)
            scaler.update()
    np.testing.assert_allclose(monitor.history["D/grad_norm/2"][1], hand, rtol=1e-5)
    assert not monitor.history["grad_leak/D"][1].any()
    assert not [w for w in recwarn if issubclass(w.category, GradientLeakWarning)]


def test_steps_beyond_the_buffer_are_reported_and_the_kept_ones_stay_right():
    torch.manual_seed(0)
    G, D = nn.Linear(NZ, 4), nn.Linear(4, 1)
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)
    means = []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=2, auto_flush=False) as monitor:
        for step in range(1, 8):  # capacity 4 rows, 7 steps before the first flush
            real = torch.full((3, 4), float(step))
            opt_d.zero_grad()
            if step % 2:  # D on real data in odd steps only
                out = D(real)
                means.append(float(out.detach().mean()))
                out.mean().backward()
            opt_d.step()
            opt_g.zero_grad()
            D(G(torch.randn(3, NZ))).mean().backward()
            opt_g.step()
        with pytest.warns(RuntimeWarning, match="3 recorded steps were overwritten"):
            monitor.flush()
    steps, values = monitor.history["D/out_real/mean"]
    assert steps.tolist() == [5, 7]  # steps 4..7 kept; only the odd ones called D on real
    np.testing.assert_allclose(values, means[-2:], rtol=1e-6)


class ConstantG(nn.Module):
    """A fully collapsed generator: every noise vector gives the same sample."""

    def __init__(self) -> None:
        super().__init__()
        self.point = nn.Parameter(torch.zeros(4))

    def forward(self, z):
        return self.point.expand(z.shape[0], 4) + 0.0 * z[:, :4]


@pytest.mark.parametrize("collapsed", [True, False])
def test_the_spread_of_fake_vs_real_inputs_shows_collapse_in_an_unchanged_loop(collapsed):
    torch.manual_seed(0)
    G = ConstantG() if collapsed else nn.Linear(NZ, 4)
    D = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)
    if not collapsed:
        with torch.no_grad():  # G maps N(0, I) noise to N(0, I) samples, like the data
            G.weight.zero_()
            G.weight[:, :4] = torch.eye(4)
            G.bias.zero_()
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d) as monitor:
        for _ in range(5):
            fake = G(torch.randn(64, NZ))
            opt_d.zero_grad()
            (D(torch.randn(64, 4)).mean() - D(fake.detach()).mean()).backward()
            opt_d.step()
            opt_g.zero_grad()
            D(fake).mean().backward()
            opt_g.step()
    ratio = monitor.history["D/spread_ratio"][1]
    real_spread = monitor.history["D/in_real/spread"][1]
    assert np.allclose(real_spread, np.sqrt(2) * 2, rtol=0.25)  # E|x - y| for N(0, I_4) ~ 2.66
    if collapsed:
        assert np.all(ratio < 1e-6)
    else:
        assert np.all((ratio > 0.8) & (ratio < 1.25))


def test_a_deep_copy_of_attached_models_shares_the_monitor_and_is_not_recorded():
    # A user's EMA of G (copy.deepcopy after attach) or a second Trainer on the same models
    # must not try to copy the monitor (its lock cannot be copied).
    G, D = tutorial_pair()
    with gandiag.attach(G, D) as monitor:
        G_copy, D_copy = copy.deepcopy(G), copy.deepcopy(D)
        noise = torch.randn(4, NZ, 1, 1)
        D_copy(G_copy(noise))  # neither a G output nor a D call of the attached models
        assert monitor.calls.pending == []
    assert G_copy is not G and monitor.removed


def test_flush_every_is_the_old_name_of_log_every_and_still_works_with_a_warning():
    # attach(flush_every=...) was the name before log_every (TrainConfig's name for the
    # same cadence): it keeps working, the warning names the new spelling and points at
    # the caller's line, not at gandiag's forwarding code.
    with pytest.warns(DeprecationWarning, match=r"flush_every= is deprecated; use log_every=") as caught:
        old, hand, _, _ = attached_tutorial(steps=7, log_every=None, flush_every=3)
    assert [w.filename for w in caught if w.category is DeprecationWarning] == [__file__]
    new, _, _, _ = attached_tutorial(steps=7, log_every=3)
    assert old.log_every == new.log_every == 3 and old.buffer.capacity == new.buffer.capacity == 6
    for key in new.history:
        np.testing.assert_array_equal(old.history[key][0], new.history[key][0])
        np.testing.assert_array_equal(old.history[key][1], new.history[key][1])
    with pytest.warns(DeprecationWarning, match=r"read monitor.log_every"):
        assert old.flush_every == 3
    with pytest.warns(DeprecationWarning, match="flush_every= is deprecated"):
        gandiag.hooks.Monitor(nn.Linear(2, 2), nn.Linear(2, 1), flush_every=2).remove()
    with pytest.raises(TypeError, match="flush_every is the old name of log_every: pass log_every only"):
        gandiag.attach(nn.Linear(2, 2), nn.Linear(2, 1), log_every=5, flush_every=2)


def test_the_new_name_gives_no_deprecation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        monitor, _, _, _ = attached_tutorial(steps=3, log_every=2)
    assert monitor.log_every == 2
