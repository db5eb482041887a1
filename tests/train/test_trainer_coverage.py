"""Label-free coverage in the Trainer (TrainConfig.coverage_every): the ring, digits (raw
pixels) and stacked digits (random conv embedding) record coverage/* and the bin
histograms at the steps compared; packing, bf16, two DDP ranks (rank 0 alone keeps reals
and evaluates) and a resumed run keep it working; 0 turns it off; a bad value is a clear
error; `gandiag train`'s summary carries the last values. On CUDA: a captured bf16 step
keeps reals without a host sync.

The schedules are chosen so that the steps do not depend on the background thread's
speed: a first evaluation as soon as it is due, and the last one at the run's end, which
`on_fit_end` waits for (or makes) whatever the load of the machine."""

import gc
import json
import socket
import sys
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gandiag import TrainConfig, Trainer, data, models
from gandiag.cli import main
from gandiag.metrics.coverage import LabelFreeCoverage, default_extractor
from gandiag.runner import last_coverage, train_one
from gandiag.train.host import COVERAGE_SEED

KEYS = ("ndb", "jsd", "bins_covered", "precision", "recall", "density", "coverage", "ndb_null",
        "jsd_null")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: tiny models crawl when OpenMP threads share a busy core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_coverage(every):
    """Sizes for speed: 10 bins, 200 samples of each kind, bins fitted on 200 reals."""
    return LabelFreeCoverage(every=every, bins=10, n=200, min_real=200)


def ring_trainer(every=100, pack=1, callbacks=None, **settings):
    torch.manual_seed(0)
    G, D = models.small_toy(pack=pack)
    config = TrainConfig(batch_size=64, pack=pack, log_every=20, coverage_every=every, **settings)
    given = [small_coverage(every)] if callbacks is None and every else callbacks
    return Trainer(G, D, data.ring(), config, callbacks=given)


def coverage_steps(trainer):
    """{key: steps} of every coverage/* series and histogram."""
    history = trainer.history
    steps = {key: history[key][0].tolist() for key in history if key.startswith("coverage/")}
    steps |= {key: h.steps.tolist() for key, h in history.histograms.items() if key.startswith("coverage/")}
    return steps


@pytest.mark.parametrize("slow", [False, True], ids=["quick", "evaluation-slower-than-the-steps"])
def test_the_ring_records_coverage_and_bin_histograms_at_the_steps_compared(monkeypatch, slow):
    if slow:  # a loaded machine: the evaluation outlasts the steps until the next one is due
        evaluate = LabelFreeCoverage._evaluate

        def slow_evaluate(self, *args):
            time.sleep(0.5)
            evaluate(self, *args)
        monkeypatch.setattr(LabelFreeCoverage, "_evaluate", slow_evaluate)
    trainer = ring_trainer(every=100).fit(200)
    steps = coverage_steps(trainer)
    for key in KEYS:
        assert steps[f"coverage/{key}"] == [100, 200], key
    assert steps["coverage/real_bins"] == steps["coverage/fake_bins"] == [100, 200]
    real_bins = trainer.history.histograms["coverage/real_bins"]
    assert real_bins.counts.shape == (2, 10) and real_bins.counts.sum(axis=1).tolist() == [200, 200]
    ndb = trainer.history["coverage/ndb"][1]
    assert np.all((ndb >= 0) & (ndb <= 1))
    assert trainer.coverage.latest["step"] == 200 and trainer.coverage.error is None


def test_the_trainer_adds_coverage_from_the_config_unless_the_user_gave_one():
    own = ring_trainer(every=300, callbacks=[])  # the config's: default sizes
    assert isinstance(own.coverage, LabelFreeCoverage) and own.coverage.every == 300
    assert own.callbacks[-1] is own.coverage
    given = small_coverage(50)
    mine = ring_trainer(every=300, callbacks=[given])
    assert mine.coverage is given
    assert [c for c in mine.callbacks if isinstance(c, LabelFreeCoverage)] == [given]


def test_coverage_every_zero_records_none_and_keeps_no_reals():
    trainer = ring_trainer(every=0).fit(120)
    assert trainer.coverage is None
    assert not [c for c in trainer.callbacks if isinstance(c, LabelFreeCoverage)]
    assert coverage_steps(trainer) == {} and trainer.reservoir.seen["real"] == 0


def test_the_reservoir_holds_real_samples_unpacked_with_pack_2():
    trainer = ring_trainer(every=100, pack=2).fit(100)
    assert trainer.reservoir.real.shape[1:] == (2,)  # samples, not D's packed (B, 4) inputs
    assert trainer.reservoir.seen["fake"] == 0  # the trainer draws its fakes itself
    radii = np.linalg.norm(trainer.reservoir.real, axis=1)
    np.testing.assert_allclose(radii, 1.0, atol=0.06)  # the ring's data: radius 1, std 0.01
    assert coverage_steps(trainer)["coverage/ndb"] == [100]


def test_coverage_fakes_are_g_on_fixed_noise_other_than_evaluate_s():
    trainer = ring_trainer(every=100, ema=0.99).fit(20)
    fakes = trainer.coverage_fakes(50)
    assert isinstance(fakes, np.ndarray) and fakes.dtype == np.float32 and fakes.shape == (50, 2)
    np.testing.assert_array_equal(fakes, trainer.coverage_fakes(50))  # fixed noise
    np.testing.assert_array_equal(fakes, trainer.sample(50, seed=COVERAGE_SEED, ema=True).numpy())
    assert not np.array_equal(fakes, trainer.sample(50, seed=0).numpy())  # not evaluate()'s noise


@pytest.mark.parametrize("name, dataset, embedding", [
    ("digits", data.digits, "pixels"),                                  # 1x8x8: 64 numbers
    ("stacked", lambda: data.stacked_digits(n=600), "random-conv"),    # 3x8x8
], ids=["digits", "stacked"])
def test_digit_images_are_compared_in_the_embedding_of_their_shape(name, dataset, embedding):
    images = dataset()
    shape = tuple(images.tensors[0].shape[1:])
    torch.manual_seed(0)
    G, D = models.build_pair("mlp", sample_shape=shape)
    config = TrainConfig(batch_size=32, log_every=10, coverage_every=30)
    trainer = Trainer(G, D, images, config, callbacks=[small_coverage(30)]).fit(60)
    assert trainer.reservoir.real.shape[1:] == shape
    assert default_extractor(shape) == embedding
    steps = coverage_steps(trainer)
    assert steps["coverage/ndb"] == steps["coverage/real_bins"] == [30, 60]
    assert trainer.coverage.error is None
    assert np.isfinite(trainer.history["coverage/jsd"][1]).all()


def test_bf16_models_keep_float32_reals():
    class CastG(nn.Module):  # noise comes as float32: a bf16 G casts it
        z_dim = 2

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))

        def forward(self, z):
            return self.net(z.to(torch.bfloat16))

    torch.manual_seed(0)
    G = CastG().to(torch.bfloat16)
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)).to(torch.bfloat16)
    config = TrainConfig(batch_size=64, log_every=10, coverage_every=50)
    with pytest.warns(UserWarning, match="converted to bfloat16"):
        trainer = Trainer(G, D, data.ring(), config, callbacks=[small_coverage(50)]).fit(100)
    assert trainer.reservoir.real.dtype == np.float32 and trainer.coverage_fakes(4).dtype == np.float32
    assert coverage_steps(trainer)["coverage/ndb"] == [50, 100]


def test_a_resumed_run_refits_the_bins_and_goes_on(tmp_path):
    first = ring_trainer(every=100, callbacks=[]).fit(40)  # the config's coverage: default sizes
    first.save(tmp_path / "c.pt")
    made = first.coverage
    first.load(tmp_path / "c.pt")  # back to a step it passed: a fresh coverage, in made's place
    assert first.coverage is not made and first.callbacks[-1] is first.coverage
    resumed = ring_trainer(every=100, callbacks=[]).load(tmp_path / "c.pt")
    resumed.fit(160)
    assert resumed.step == 200 and resumed.coverage.error is None and resumed.coverage.bins is not None
    # The reservoir refills from step 40, 400 reals a flush: 1 000 (min_real) by step 100.
    assert coverage_steps(resumed)["coverage/ndb"] == [100, 200]
    given = small_coverage(100)
    mine = ring_trainer(every=100, callbacks=[given]).load(tmp_path / "c.pt")
    assert mine.coverage is given  # a user's own coverage is theirs


@pytest.mark.parametrize("value, said", [
    (-1, "got -1"), (2.5, "got 2.5"), ("often", "got 'often' (a string)"), (True, "got True (a bool)")])
def test_a_bad_coverage_every_is_a_clear_error(value, said):
    with pytest.raises(ValueError) as caught:
        TrainConfig(coverage_every=value)
    message = str(caught.value)
    assert message.startswith("TrainConfig.coverage_every: expected an integer >= 0")
    assert said in message and "coverage_every=0 to turn it off" in message


def test_coverage_every_round_trips_through_a_dict():
    config = TrainConfig(coverage_every=250)
    assert config.to_dict()["coverage_every"] == 250
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict({"coverage_every": "0"}).coverage_every == 0
    assert TrainConfig().coverage_every == 500


def test_gandiag_train_refuses_a_bad_coverage_every(capsys):
    assert main(["train", "--coverage-every", "-5"]) == 2
    assert "coverage_every: expected an integer >= 0, got -5" in capsys.readouterr().err


def test_the_run_summary_holds_the_last_coverage_values(tmp_path):
    config = TrainConfig(steps=100, log_every=50, coverage_every=50, batch_size=64)
    store = str(tmp_path / "s.sqlite")
    summary = train_one("ring", "ring", "toy-small", config, str(tmp_path), store)
    coverage = summary["coverage"]
    assert coverage["step"] == 100 and set(KEYS) <= set(coverage)
    with open(tmp_path / "ring.json") as f:
        assert json.load(f)["coverage"] == coverage
    off = TrainConfig(steps=20, log_every=10, coverage_every=0, batch_size=64)
    assert train_one("off", "ring", "toy-small", off, str(tmp_path), store)["coverage"] == {}


def test_last_coverage_takes_each_series_last_value():
    history = {"coverage/ndb": (np.array([50, 100]), np.array([0.5, 0.25])),
               "coverage/starved_new": (np.array([100]), np.array([0.0])),
               "D/loss": (np.array([1]), np.array([0.7]))}
    assert last_coverage(history) == {"ndb": 0.25, "starved_new": 0.0, "step": 100}
    assert last_coverage({}) == {}


def _ddp_worker(rank, port, folder):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        trainer = ring_trainer(every=20, device="cpu")
        trainer.fit(40)
        result = {"keys": sorted(k for k in trainer.history if k.startswith("coverage/")),
                  "kept": trainer.reservoir.seen["real"],
                  "ndb_steps": coverage_steps(trainer).get("coverage/ndb")}
        with open(f"{folder}/rank{rank}.json", "w") as f:
            json.dump(result, f)
        # As `gandiag train` does: garbage collected on both ranks, then leave together;
        # otherwise gloo aborts a rank at exit now and then (3 runs in 30, measured).
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32" or not dist.is_available(), reason="needs torch.distributed")
def test_under_ddp_rank_0_alone_keeps_reals_and_records_coverage(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0]["ndb_steps"] == [20, 40] and {f"coverage/{k}" for k in KEYS} <= set(ranks[0]["keys"])
    assert ranks[1]["keys"] == [] and ranks[1]["kept"] == 0  # rank_zero_only: rank 1 copies nothing


@cuda
def test_a_captured_bf16_run_keeps_reals_without_a_host_sync_in_the_step():
    from tests.hooks.test_cuda import no_sync_allowed

    trainer = ring_trainer(every=100, device="cuda", capture="cuda_graph", amp=True)
    trainer.fit(40)  # warm-up, leak check and capture
    with no_sync_allowed():
        for _ in range(20):
            trainer.train_step()  # the reservoir's device copies included
    trainer.fit(140)
    assert trainer.capture == "cuda_graph" and trainer.reservoir.real.dtype == np.float32
    assert coverage_steps(trainer)["coverage/ndb"] == [100, 200]
