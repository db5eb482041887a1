"""Step capture: TrainConfig(capture="cuda_graph" | "compile") and gandiag.capture_step.

On CUDA (skipped without a GPU): a captured run records what the eager run records, to
float tolerance, replays without a host sync, and sees learning-rate changes. On the
CPU: the fallbacks say why and train exactly like eager; torch.compile records like
eager; and the replay bookkeeping (warm-up, one graph per weight-measuring kind of step,
recapture when the buffer grows) is checked against a stand-in for torch.cuda.
"""

import contextlib
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag import TrainConfig, Trainer, data, models
from gandiag.hooks import buffer
from gandiag.train import capture
from gandiag.train.capture import CaptureError, capture_step
from tests.hooks.test_cuda import no_sync_allowed

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def toy_trainer(**config) -> Trainer:
    torch.manual_seed(0)
    G, D = models.small_toy()
    return Trainer(G, D, data.ring(), TrainConfig(log_every=20, **config))


def recorded(trainer: Trainer) -> dict[str, np.ndarray]:
    history = trainer.history
    return {key: history[key][1] for key in history.keys() if not key.startswith("D/out_hist")}


# ---- CPU: fallbacks ---------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_cuda_graph_on_the_cpu_says_why_and_trains_exactly_like_eager():
    with pytest.warns(UserWarning, match="CUDA graphs need a CUDA device.*training eagerly"):
        captured = toy_trainer(capture="cuda_graph")
    assert captured.capture == "none"
    eager = toy_trainer()
    captured.fit(40)
    eager.fit(40)
    for key, values in recorded(eager).items():
        np.testing.assert_array_equal(recorded(captured)[key], values, err_msg=key)


def test_a_stabiliser_that_changes_with_the_step_is_refused_for_capture():
    with pytest.warns(UserWarning, match="instance_noise anneals with the step"):
        mode = capture.resolve_capture("cuda_graph", device=torch.device("cuda"), world_size=1,
                                       instance_noise=0.1)
    assert mode == "none"


def test_capture_mode_is_checked_by_name():
    with pytest.raises(ValueError, match="TrainConfig.capture: expected one of none, cuda_graph, "
                                         "compile, got 'cuda-graph'; did you mean 'cuda_graph'"):
        TrainConfig(capture="cuda-graph")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error")
def test_capture_step_without_cuda_is_a_clear_error():
    with pytest.raises(CaptureError, match="CUDA graphs need a CUDA device"):
        capture_step(lambda: None)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
def test_compile_records_what_eager_records():
    torch.set_num_threads(1)
    eager, compiled = toy_trainer(), toy_trainer(capture="compile")
    eager.fit(20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled.fit(20)
    if compiled.capture != "compile":  # the machine cannot compile (e.g. no Python headers)
        pytest.skip(f"torch.compile is not usable here: {[str(w.message) for w in caught]}")
    for key, values in recorded(eager).items():  # fused kernels round differently: close, not equal
        np.testing.assert_allclose(recorded(compiled)[key], values, rtol=1e-3, atol=1e-5, err_msg=key)


def test_a_failed_compile_says_why_and_trains_eagerly(monkeypatch):
    from torch._dynamo.exc import TorchDynamoException

    def broken(module):
        def call(*args):
            raise TorchDynamoException("no compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    trainer = toy_trainer(capture="compile")
    with pytest.warns(UserWarning, match="torch.compile failed.*no compiler here.*training eagerly"):
        trainer.fit(20)
    assert trainer.capture == "none" and trainer.step == 20
    eager = toy_trainer()
    eager.fit(20)
    np.testing.assert_array_equal(recorded(trainer)["D/loss"], recorded(eager)["D/loss"])


# ---- CPU: the replay bookkeeping, against a stand-in for torch.cuda -----------------
class FakeGraph:
    """Captures by running the step once (its ops run then, on the CPU); replays count."""

    def __init__(self):
        self.replays, self.generators = 0, []

    def register_generator_state(self, generator):
        self.generators.append(generator)

    def replay(self):
        self.replays += 1


class FakeStream:
    def wait_stream(self, other):
        pass


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(buffer, "CPU_FAST_PATH", False)  # the device code path, on the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: contextlib.nullcontext())


def test_replays_are_counted_as_steps_with_one_graph_per_kind_of_step(fake_cuda):
    G, D = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    real = torch.randn(8, 2)

    def step():
        opt_d.zero_grad(set_to_none=True)
        fake = G(torch.randn(8, 2))
        loss_d = nn.functional.softplus(-D(real)).mean() + nn.functional.softplus(D(fake.detach())).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = nn.functional.softplus(-D(fake)).mean()
        loss_g.backward()
        opt_g.step()
        monitor.log(loss_d=loss_d.detach(), loss_g=loss_g.detach())

    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=100, weight_every=10,
                        leak_check_steps=5) as monitor:
        captured = capture_step(step, monitor=monitor, warmup=3)
        for _ in range(30):
            captured()
        # eager until the leak check is over (5 steps), then a plain graph; the weight-
        # measuring steps 10, 20, 30 have their own graph, captured at step 10
        assert captured._warm == 5 and captured.captures == 2
        assert sorted(captured.graphs) == [False, True]
        assert captured.graphs[True].replays == 3 and captured.graphs[False].replays == 22
        assert monitor.step == 30
        records = monitor.flush()
    # the fake replays record nothing, so only the eager steps and the captures hold rows;
    # what matters here: the host counted 30 steps and the device counter matches it
    assert records.scalars["D/loss"][0][-1] == 7  # 5 eager rows + 2 captures, committed in order


@pytest.mark.filterwarnings("ignore:gandiag. no call of D on real data")  # this toy loop has none
def test_a_new_logged_key_recaptures(fake_cuda):
    G, D = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    extra = {}

    def step():
        opt_d.zero_grad(set_to_none=True)
        D(G(torch.randn(4, 2)).detach()).mean().backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        D(G(torch.randn(4, 2))).mean().backward()
        opt_g.step()
        monitor.log(**extra)

    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, weight_every=0, leak_check_steps=0) as monitor:
        captured = capture_step(step, monitor=monitor, warmup=1)
        for _ in range(3):
            captured()
        assert captured.captures == 1
        extra["lr_note"] = torch.tensor(1.0)  # a new column: the buffer is reallocated
        monitor.log(**extra)
        captured()
        assert captured.captures == 2



def test_a_failed_capture_leaves_no_count_and_no_held_call_behind(fake_cuda):
    # The hooks of a step being captured run, but the step does not happen: a capture that
    # fails half-way (after D's update) must not count a step nor leave D's calls for the
    # next row to pick up.
    G, D = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    real, failing, real_means = torch.randn(8, 2), [False], []

    def step():
        opt_d.zero_grad(set_to_none=True)
        out_real = D(real * (100.0 if failing[0] else 1.0))
        real_means.append(float(out_real.detach().double().mean()))
        loss_d = nn.functional.softplus(-out_real).mean() + nn.functional.softplus(D(G(real).detach())).mean()
        loss_d.backward()
        opt_d.step()
        if failing[0]:
            raise RuntimeError("a host sync")
        opt_g.zero_grad(set_to_none=True)
        nn.functional.softplus(-D(G(real))).mean().backward()
        opt_g.step()

    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, weight_every=0, leak_check_steps=0) as monitor:
        captured = capture_step(step, monitor=monitor, warmup=1)
        captured()  # eager (warm-up)
        failing[0] = True
        with pytest.raises(CaptureError, match="a host sync"):
            captured()
        assert monitor.step == 1 and captured.captures == 0
        failing[0] = False
        step()  # eager, as GraphedTrainStep runs a batch it cannot replay
        monitor.commit_step()
        records = monitor.flush()
    steps, means = records.scalars["D/out_real/mean"]
    assert steps.tolist() == [1, 2]
    np.testing.assert_allclose(means, [real_means[0], real_means[2]], rtol=1e-6)

# ---- CUDA: the real thing -----------------------------------------------------------
@cuda
@pytest.mark.parametrize("stabilisers", [{}, {"pack": 2, "ema": 0.999}, {"r1_gamma": 1.0},
                                         {"loss": "wgan-gp", "n_critic": 2}],
                         ids=["vanilla", "pack-ema", "r1", "wgan-gp"])
def test_a_captured_run_records_what_the_eager_run_records(stabilisers):
    eager = toy_trainer(device="cuda", **stabilisers)
    captured = toy_trainer(device="cuda", capture="cuda_graph", **stabilisers)
    eager.fit(120)  # weight norms every 50 steps: both graphs replay
    captured.fit(120)
    assert captured.capture == "cuda_graph" and captured._graphed.captured.captures == 2
    got, want = recorded(captured), recorded(eager)
    assert sorted(got) == sorted(want)
    for key, values in want.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-4, atol=1e-6, err_msg=key)
    assert captured.history["D/loss"][0].tolist() == list(range(1, 121))


@cuda
def test_replayed_steps_make_no_host_sync():
    trainer = toy_trainer(device="cuda", capture="cuda_graph", log_every=100)
    trainer.fit(30)  # warm-up, leak check and capture
    with no_sync_allowed():
        for _ in range(40):
            trainer.train_step()
    trainer.fit(30)  # flushes (the one sync) outside the checked region
    assert trainer.history["D/loss"][0][-1] == 100


@cuda
def test_a_learning_rate_set_between_replays_reaches_the_graph():
    trainer = toy_trainer(device="cuda", capture="cuda_graph")
    trainer.fit(40)
    for group in trainer.opt_d.param_groups:
        group["lr"] = 0.0  # as the dashboard's slider does: a number
    before = [p.detach().clone() for p in trainer.D.parameters()]
    trainer.fit(10)
    for old, new in zip(before, trainer.D.parameters()):
        torch.testing.assert_close(new.detach(), old)


@cuda
def test_dcgan_captured_in_bf16_with_channels_last_trains_and_records():
    torch.manual_seed(0)
    G, D = models.build_pair("dcgan", sample_shape=(3, 32, 32))
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    images = torch.rand(256, 3, 32, 32) * 2 - 1
    trainer = Trainer(G, D, images, TrainConfig(batch_size=32, amp=True, capture="cuda_graph", log_every=25))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        trainer.fit(75)
    assert trainer._graphed.captured.captures >= 1
    for key in ("D/loss", "G/loss", "D/out_real/mean", "D/grad_norm/total", "G/grad_norm/total"):
        steps, values = trainer.history[key]
        assert steps.tolist() == list(range(1, 76)) and np.isfinite(values).all(), key


@cuda
def test_capture_step_records_a_user_loop():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2)).cuda()
    D = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)).cuda()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=True)
    real = torch.randn(64, 2, device="cuda")
    last = {}

    def step():
        opt_d.zero_grad(set_to_none=True)
        fake = G(torch.randn(64, 8, device="cuda"))
        out_real = D(real)
        loss_d = nn.functional.softplus(-out_real).mean() + nn.functional.softplus(D(fake.detach())).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        nn.functional.softplus(-D(fake)).mean().backward()
        opt_g.step()
        monitor.log(loss_d=loss_d.detach())
        last["out_real"] = out_real.detach().mean()  # captured: the graph's output, rewritten by each replay

    hand = []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=50) as monitor:
        captured = capture_step(step, monitor=monitor)
        for _ in range(60):
            captured()
            hand.append(last["out_real"].clone())
    assert captured.captures == 2  # weight norms every 50 steps: their own graph
    steps, means = monitor.history["D/out_real/mean"]
    assert steps.tolist() == list(range(1, 61))
    np.testing.assert_allclose(means, torch.stack(hand).cpu().numpy(), rtol=1e-5)
