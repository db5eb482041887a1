"""The Trainer under DDP: 2 CPU processes with gloo, as `torchrun --nproc_per_node=2` runs it.

Each rank trains on its own shard; the recorded values equal the cross-rank reduction of
what each rank's D really output; the models stay identical; rank 0 alone writes one run
into the store; a stop asked on one rank stops both at the same flush. A second test runs
the real launcher: `torchrun ... -m gandiag train`.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gandiag.train import Callback

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not dist.is_available(), reason="needs torch.distributed with gloo")

STEPS, BATCH, LOG_EVERY, N_DATA = 12, 4, 4, 48  # 48 = 2 ranks x 4 x 6 steps: a pass per 6 steps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TapeD(nn.Module):
    """A toy D that keeps, for the test, every input batch and every output it gave."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
        self.tape: list[tuple[np.ndarray, np.ndarray]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        self.tape.append((x.detach().numpy().copy(), out.detach().numpy()[:, 0].copy()))
        return out


class StopOnRank1(Callback):
    def on_step_end(self, trainer) -> None:
        if trainer.rank == 1 and trainer.step == 5:
            trainer.stop()


def _worker(rank: int, world: int, port: int, folder: str, stop: bool, stabilisers: dict) -> None:
    import gandiag
    from gandiag.store import StoreRecorder

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        G = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
        D = TapeD()
        data = torch.arange(N_DATA * 2, dtype=torch.float32).reshape(N_DATA, 2) / N_DATA
        config = gandiag.TrainConfig(batch_size=BATCH, z_dim=3, log_every=LOG_EVERY, device="cpu",
                                     lr_d=1e-2, lr_g=1e-2, **stabilisers)
        callbacks = [StoreRecorder(os.path.join(folder, "store.sqlite"), evaluate=False)]
        if stop:
            callbacks.append(StopOnRank1())
        trainer = gandiag.Trainer(G, D, data, config, callbacks=callbacks, name="ddp")
        trainer.fit(STEPS)
        callbacks[0].close()
        history = trainer.history
        result = {
            "step": trainer.step,
            "stopped": trainer.stop_requested,
            "tape": [(x.tolist(), out.tolist()) for x, out in D.tape],
            "recorded": {key: history[key][1].tolist() for key in
                         ("D/out_real/mean", "D/out_fake/mean", "G/out_fake/mean", "D/loss", "G/loss",
                          "D/grad_norm/total", "G/grad_norm/total")},
            "steps": history["D/loss"][0].tolist(),
            "params": [p.detach().numpy().ravel().tolist() for m in (G, D) for p in m.parameters()],
        }
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as file:
            json.dump(result, file)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _run_ranks(tmp_path, *, stop: bool = False, stabilisers: dict | None = None) -> list[dict]:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), stop, stabilisers or {}), nprocs=2, join=True)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def test_two_ranks_record_the_cross_rank_reduction_into_one_store(tmp_path):
    ranks = _run_ranks(tmp_path)
    # Every step calls D three times on each rank: real, fake (D step), fake (G step).
    calls = [r["tape"] for r in ranks]
    assert all(len(c) == 3 * STEPS for c in calls)
    real = [[np.array(c[3 * s][1]) for s in range(STEPS)] for c in calls]
    fake_d = [[np.array(c[3 * s + 1][1]) for s in range(STEPS)] for c in calls]
    fake_g = [[np.array(c[3 * s + 2][1]) for s in range(STEPS)] for c in calls]

    def across_ranks_mean(per_rank):  # the mean over both ranks' batches, step by step
        return [np.concatenate([per_rank[r][s] for r in range(2)]).mean() for s in range(STEPS)]

    expected_loss_d = [np.mean([_softplus(-real[r][s]).mean() + _softplus(fake_d[r][s]).mean()
                                for r in range(2)]) for s in range(STEPS)]
    expected_loss_g = [np.mean([_softplus(-fake_g[r][s]).mean() for r in range(2)]) for s in range(STEPS)]
    for rank in ranks:  # both ranks hold the reduced values
        recorded = rank["recorded"]
        assert rank["steps"] == list(range(1, STEPS + 1))
        np.testing.assert_allclose(recorded["D/out_real/mean"], across_ranks_mean(real), rtol=1e-5)
        np.testing.assert_allclose(recorded["D/out_fake/mean"], across_ranks_mean(fake_d), rtol=1e-5)
        np.testing.assert_allclose(recorded["G/out_fake/mean"], across_ranks_mean(fake_g), rtol=1e-5)
        np.testing.assert_allclose(recorded["D/loss"], expected_loss_d, rtol=1e-5)
        np.testing.assert_allclose(recorded["G/loss"], expected_loss_g, rtol=1e-5)
    # DDP averages gradients, so both ranks measured the same norms and hold the same models
    np.testing.assert_allclose(ranks[0]["recorded"]["D/grad_norm/total"],
                               ranks[1]["recorded"]["D/grad_norm/total"], rtol=1e-6)
    for p0, p1 in zip(ranks[0]["params"], ranks[1]["params"]):
        np.testing.assert_allclose(p0, p1, rtol=1e-6)

    # Each rank trained on its own shard: in every pass of 6 steps the two ranks' real
    # batches are disjoint and together hold every sample once.
    seen = [np.concatenate([np.array(c[3 * s][0]) for s in range(6)])[:, 0] for c in calls]
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    first_column = (torch.arange(N_DATA * 2, dtype=torch.float32).reshape(N_DATA, 2) / N_DATA)[:, 0]
    assert sorted(np.concatenate(seen).tolist()) == first_column.tolist()

    from gandiag.store import list_runs, open_run
    store = str(tmp_path / "store.sqlite")
    assert [run.name for run in list_runs(store)] == ["ddp"]  # rank 0 alone wrote
    with open_run("ddp", store) as run:
        assert run.status == "finished" and run.last_step == STEPS
        steps, values = run.scalars("D/out_real/mean")
        np.testing.assert_allclose(values, ranks[0]["recorded"]["D/out_real/mean"], rtol=1e-12)


def test_a_stop_on_one_rank_stops_every_rank_at_the_next_flush(tmp_path):
    ranks = _run_ranks(tmp_path, stop=True)
    # rank 1 asked at step 5; the next flush is at step 8, where both stop
    assert [r["step"] for r in ranks] == [8, 8]
    assert all(r["stopped"] for r in ranks)
    from gandiag.store import open_run
    with open_run("ddp", str(tmp_path / "store.sqlite")) as run:
        assert run.status == "stopped" and run.last_step == 8


def test_penalties_and_spectral_norm_keep_the_ranks_identical(tmp_path):
    # R1 backpropagates through a gradient (double backward) and spectral norm updates
    # buffers in D's forward: both must leave every rank with the same D.
    ranks = _run_ranks(tmp_path, stabilisers={"r1_gamma": 1.0, "spectral_norm": True, "ema": 0.9})
    for p0, p1 in zip(ranks[0]["params"], ranks[1]["params"]):
        np.testing.assert_allclose(p0, p1, rtol=1e-6)
    assert np.isfinite(ranks[0]["recorded"]["D/loss"]).all()
    assert ranks[0]["recorded"]["D/loss"] == ranks[1]["recorded"]["D/loss"]


def test_torchrun_runs_gandiag_train_on_two_ranks_with_one_store(tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "gandiag", "train", "--data", "ring", "--steps", "40", "--log-every", "20",
         "--device", "cpu", "--name", "ddp-ring", "--store", str(store), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Trained on 2 ranks" in result.stdout
    assert result.stdout.count("Recorded in the run store") == 1  # rank 0 alone reports
    from gandiag.store import list_runs, open_run
    assert [run.name for run in list_runs(str(store))] == ["ddp-ring"]
    with open_run("ddp-ring", str(store)) as run:
        assert run.status == "finished" and run.last_step == 40
        assert len(run.scalars("D/loss")[0]) == 40
        assert run.config["batch_size"] == 64 and run.config["world_size"] == 2
    assert (out / "ddp-ring-report.html").exists() and (out / "ddp-ring.pt").exists()
