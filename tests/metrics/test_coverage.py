"""Label-free coverage from the samples a user loop's monitor kept: known answers on the
ring (all modes, half of them) and on digits through the random conv embedding, and the
callback's life in a real loop (recorded at the step compared, in the history and store)."""

import time

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag.hooks.reservoir import SampleReservoir
from gandiag.metrics.coverage import LabelFreeCoverage, default_extractor


class Host:
    """What the callback reads of a monitor: step, reservoir, record()."""

    def __init__(self, real, fake):
        self.step, self.recorded = 500, {}
        self.reservoir = SampleReservoir(keep=len(real))
        self.reservoir.real, self.reservoir.fake = real.astype(np.float32), fake.astype(np.float32)

    def record(self, values, step=None, histograms=None):
        self.recorded = {"step": step, **values, **(histograms or {})}


def evaluate(real, fake, **options):
    return evaluate_on(Host(real, fake), LabelFreeCoverage(every=1, **options))


def evaluate_on(host, callback):
    callback.on_flush(host, None)
    callback.on_fit_end(host)
    assert callback.error is None
    return host.recorded


def ring_samples(n, modes, seed):
    ring, rng = gandiag.data.ring(), np.random.default_rng(seed)
    centres = np.asarray(ring.centers)[rng.choice(modes, n)]
    return centres + 0.01 * rng.standard_normal((n, 2))


def test_a_generator_covering_every_mode_stays_at_the_data_s_own_null_level():
    recorded = evaluate(ring_samples(2000, range(8), 0), ring_samples(2000, range(8), 1))
    assert recorded["step"] == 500
    assert recorded["coverage/ndb"] <= recorded["coverage/ndb_null"] + 0.04  # one bin of 50 at most over
    assert recorded["coverage/jsd"] <= 2 * recorded["coverage/jsd_null"]
    assert recorded["coverage/bins_covered"] == 1.0
    assert recorded["coverage/recall"] > 0.9 and recorded["coverage/precision"] > 0.9


def test_half_the_modes_dropped_is_seen_by_every_signal():
    recorded = evaluate(ring_samples(2000, range(8), 0), ring_samples(2000, range(4), 1))
    assert recorded["coverage/ndb"] >= 5 * recorded["coverage/ndb_null"]
    assert recorded["coverage/jsd"] == pytest.approx(0.2158, abs=0.03)  # log 2 - (3/2 log 3/2 - 1/2 log 1/2) / 2
    assert recorded["coverage/bins_covered"] == pytest.approx(0.5, abs=0.1)
    assert recorded["coverage/recall"] < 0.6 and recorded["coverage/coverage"] < 0.6
    assert recorded["coverage/precision"] > 0.9  # what G makes is on the data


def test_the_random_conv_embedding_tells_digit_classes_apart():
    """Known answer for images: 16x16 digits, fakes of 5 classes of 10, no labels used."""
    dataset = gandiag.data.digits()
    images, labels = dataset.tensors
    images = nn.functional.interpolate(images, size=16, mode="bilinear", align_corners=False)
    real, others = images[::2].numpy(), images[1::2]
    assert default_extractor(real.shape[1:]) == "random-conv"
    same = evaluate(real, others.numpy(), n=800, min_real=800, bins=20)
    half = evaluate(real, others[labels[1::2] < 5].numpy(), n=400, min_real=800, bins=20)
    assert same["coverage/ndb"] <= same["coverage/ndb_null"] + 0.1
    assert half["coverage/ndb"] >= 0.4 and half["coverage/bins_covered"] <= 0.75
    assert half["coverage/jsd"] > 5 * same["coverage/jsd"]


def test_a_failed_evaluation_is_said_once_and_training_goes_on():
    host = Host(ring_samples(200, range(8), 0), ring_samples(200, range(8), 1))
    callback = LabelFreeCoverage(every=1, min_real=100, n=100, extractor="no-such-extractor")
    callback.on_flush(host, None)
    with pytest.warns(UserWarning, match="label-free coverage failed"):
        callback.on_fit_end(host)
    assert host.recorded == {}


def test_nan_samples_are_counted_not_binned():
    fake = ring_samples(1000, range(8), 1)
    fake[:100] = np.nan  # a tenth of G's samples went non-finite
    recorded = evaluate(ring_samples(2000, range(8), 0), fake)
    assert recorded["coverage/nonfinite"] == pytest.approx(0.1)
    assert recorded["coverage/n"] == 900  # the finite ones are compared
    assert recorded["coverage/fake_bins"].counts.sum() == 900


def test_too_few_finite_samples_skip_with_a_note_saying_why():
    host = Host(ring_samples(200, range(8), 0), np.full((200, 2), np.nan))
    callback = LabelFreeCoverage(every=1, min_real=100, n=100)
    callback.on_flush(host, None)
    with pytest.warns(UserWarning, match=r"0 fake samples are finite \(100 fakes hold NaN or inf\)"):
        callback.on_fit_end(host)
    assert host.recorded == {}


def test_a_run_with_too_few_samples_says_why_it_has_no_coverage():
    host = Host(ring_samples(300, range(8), 0), ring_samples(300, range(8), 1))
    host.reservoir.keep = 2000  # room for more: the run was too short to fill it
    host.reservoir.skipped["not_floating_point"] = 7
    callback = LabelFreeCoverage(every=100)  # needs 1000 reals before the first fit
    callback.on_flush(host, None)
    with pytest.warns(UserWarning, match=r"300 real and 300 fake samples were kept.*needs 1000 real"
                                         r".*7 not floating point.*min_real"):
        callback.on_fit_end(host)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="expected n to be an integer >= 100, got 10"):
        LabelFreeCoverage(n=10)


@pytest.mark.parametrize("slow", [False, True], ids=["quick", "evaluation-slower-than-the-steps"])
def test_a_user_loop_records_coverage_in_its_history_and_store(tmp_path, monkeypatch, slow):
    if slow:  # a loaded machine: the evaluation outlasts the steps until the next one is due
        evaluate = LabelFreeCoverage._evaluate

        def slow_evaluate(self, *args):
            time.sleep(0.5)
            evaluate(self, *args)
        monkeypatch.setattr(LabelFreeCoverage, "_evaluate", slow_evaluate)
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    D = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    ring, softplus = gandiag.data.ring(), nn.functional.softplus
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=10, coverage_every=20,
                        store=tmp_path / "s.sqlite", run="ring") as monitor:
        for _ in range(100):  # 128 reals kept per flush: 1 000 (min_real) by step 80
            real, fake = ring.sample(64), G(torch.randn(64, 2))
            opt_d.zero_grad()
            (softplus(-D(real)).mean() + softplus(D(fake.detach())).mean()).backward()
            opt_d.step()
            opt_g.zero_grad()
            softplus(-D(fake)).mean().backward()
            opt_g.step()
    # Due at 80: a snapshot of G begins then, is compared at the next flush and recorded
    # at 80 (G's samples of that step); due again at 100, the last step: compared at the
    # end of the run.
    steps, ndb = monitor.history["coverage/ndb"]
    assert steps.tolist() == [80, 100] and np.all((ndb >= 0) & (ndb <= 1))
    stored = gandiag.open_run("ring", store=tmp_path / "s.sqlite")
    assert stored["coverage/jsd"][0].tolist() == [80, 100]
    assert monitor.coverage.latest["step"] == 100 and len(monitor.coverage.latest["fake_shares"]) == 50


def test_large_samples_are_compared_once_the_reservoir_holds_what_its_bytes_allow():
    real, fake = ring_samples(400, range(8), 0), ring_samples(400, range(8), 1)
    host = Host(real, fake)
    host.reservoir.max_bytes = 400 * real[0].astype(np.float32).nbytes  # room for 400 samples only
    recorded = evaluate_on(host, LabelFreeCoverage(every=1))  # min_real 1000 cannot be reached
    assert recorded["coverage/n"] == 200
