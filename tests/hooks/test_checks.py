"""Bad input to attach(): a clear error or warning each, the models left usable."""

import pytest
import torch
from torch import nn

import gandiag
from tests.hooks.test_monitor import NZ, tutorial_loop, tutorial_pair


def small_pair():
    return nn.Sequential(nn.Linear(NZ, 4)), nn.Sequential(nn.Linear(4, 1))


def test_attaching_twice_is_an_error_until_removed():
    G, D = small_pair()
    monitor = gandiag.attach(G, D)
    with pytest.raises(RuntimeError, match="already has a monitor attached; call monitor.remove"):
        gandiag.attach(G, nn.Linear(4, 1))
    monitor.remove()
    gandiag.attach(G, D).remove()  # fine once removed
    with pytest.raises(ValueError, match="G and D are the same module"):
        gandiag.attach(D, D)


class TupleD(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        features = torch.relu(x)
        return self.linear(features), features


def test_a_d_returning_a_tuple_is_read_by_its_first_element_and_says_so_once():
    G, D = nn.Linear(NZ, 4), TupleD()
    with gandiag.attach(G, D) as monitor:
        with pytest.warns(UserWarning, match=r"D returned a tuple of 2.*output_fn=lambda out: out\[1\]") as seen:
            logits, _ = D(torch.randn(3, 4))
            D(torch.randn(3, 4))
        monitor.update_done("D")
        monitor.update_done("G")
    assert len(seen) == 1 and seen[0].filename == __file__  # once, at the user's line
    assert monitor.history["D/out_real/mean"][1][0] != 0.0


def test_a_d_returning_something_else_needs_output_fn():
    class DictD(TupleD):
        def forward(self, x):
            return {"score": super().forward(x)[0]}

    G, D = nn.Linear(NZ, 4), DictD()
    with gandiag.attach(G, D):
        with pytest.raises(TypeError, match=r"D returned a dict.*output_fn=lambda out: out\[0\]"):
            D(torch.randn(3, 4))
    D = TupleD()
    with gandiag.attach(G, D, output_fn=lambda out: out[0]) as monitor:
        logits, _ = D(torch.randn(3, 4))
        monitor.update_done("D")
        monitor.update_done("G")
    assert monitor.history["D/out_real/mean"][1][0] == pytest.approx(float(logits.detach().mean()))


def test_optimizers_of_the_wrong_model_are_errors():
    G, D = small_pair()
    other = nn.Linear(3, 3)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with pytest.raises(ValueError, match="opt_g holds parameters of neither G nor D"):
        gandiag.attach(G, D, opt_g=torch.optim.Adam(other.parameters()), opt_d=opt_d)
    with pytest.raises(ValueError, match="were opt_g and opt_d swapped"):
        gandiag.attach(G, D, opt_g=opt_d, opt_d=opt_g)
    with pytest.raises(ValueError, match="one optimizer per model"):
        both = torch.optim.Adam([*G.parameters(), *D.parameters()])
        gandiag.attach(G, D, opt_g=both, opt_d=opt_d)
    with pytest.raises(ValueError, match="pass both optimizers"):
        gandiag.attach(G, D, opt_g=opt_g)
    for module in (*G.modules(), *D.modules()):  # a refused attach leaves no hook behind
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert all(not p._backward_hooks for p in (*G.parameters(), *D.parameters()))
    gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d).remove()
    with pytest.raises(ValueError, match="expected weight_every to be an integer >= 0, got -1"):
        gandiag.attach(G, D, weight_every=-1)


def test_wrapped_models_are_unwrapped_or_refused():
    G, D = small_pair()
    with pytest.raises(TypeError, match="nn.DataParallel.*DistributedDataParallel"):
        gandiag.attach(G, nn.DataParallel(D))
    with pytest.raises(TypeError, match=r"torch.compile.*D._orig_mod"):
        gandiag.attach(G, torch.compile(D))
    with pytest.raises(TypeError, match="expected D to be an nn.Module, got a function"):
        gandiag.attach(G, D.forward)


def test_a_loop_that_never_calls_d_on_real_data_is_told_how_to_fix_it():
    G, D = small_pair()
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.01), torch.optim.SGD(D.parameters(), lr=0.01)
    with pytest.warns(UserWarning, match=r"no call of D on real data.*monitor.phase\('real'\)"):
        with gandiag.attach(G, D):
            for _ in range(3):
                fake = G(torch.randn(4, NZ))
                opt_d.zero_grad()
                D(fake.detach()).mean().backward()
                opt_d.step()
                opt_g.zero_grad()
                (-D(fake).mean()).backward()
                opt_g.step()


def test_a_loop_whose_g_steps_are_unseen_is_told_how_to_fix_it():
    G, D = small_pair()
    with pytest.warns(UserWarning, match="no G update was seen.*update_done"):
        with gandiag.attach(G, D):
            D(torch.randn(4, 4))
            D(torch.randn(4, 4))


def test_bad_log_values_are_clear_errors_and_the_step_goes_on():
    G, D = tutorial_pair()
    with gandiag.attach(G, D) as monitor:
        with pytest.raises(ValueError, match=r"shape \(3,\); expected one number per step"):
            monitor.log(loss_d=torch.ones(3))
        with pytest.raises(TypeError, match="must be a number or a one-element tensor, got str"):
            monitor.log(loss_d="low")
        tutorial_loop(G, D, 2, monitor)
    assert monitor.history["D/loss"][0].tolist() == [1, 2]
