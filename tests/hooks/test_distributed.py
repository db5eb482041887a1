"""Under DDP (2 CPU processes, gloo) the flush reduces the buffer across ranks and only
rank 0 hands records to consumers and writes the run store."""

import json
import os
import socket
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gandiag.core import Callback, Records

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not dist.is_available(), reason="needs torch.distributed with gloo")

STEPS, BATCH, NZ = 4, 6, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Delivered(Callback):
    """Notes the keys of each batch of records the monitor hands its callbacks."""

    def __init__(self, into: list) -> None:
        self.into = into

    def on_records(self, host: object, records: Records) -> None:
        self.into.append(sorted(records.scalars))


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    import gandiag

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same initial models on both ranks
        G = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(NZ, 4), nn.Tanh(), nn.Linear(4, 2)))
        D = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1)))
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-2)
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
        bce = nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(100 + rank)  # different data per rank
        hand = {"real_sum": [], "real_n": [], "d_norm": [], "loss_d": []}
        delivered = []
        with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=2,
                            store=os.path.join(folder, "store.sqlite"), run="ddp") as monitor:
            monitor.add_callback(Delivered(delivered))
            for _ in range(STEPS):
                real = torch.randn(BATCH, 2, generator=generator)
                D.zero_grad()
                out_real = D(real)
                loss_real = bce(out_real, torch.ones_like(out_real))
                loss_real.backward()
                fake = G(torch.randn(BATCH, NZ, generator=generator))
                out_fake = D(fake.detach())
                loss_fake = bce(out_fake, torch.zeros_like(out_fake))
                loss_fake.backward()
                hand["d_norm"].append(float(torch.sqrt(sum(p.grad.norm() ** 2 for p in D.parameters()))))
                opt_d.step()
                G.zero_grad()
                out = D(fake)
                bce(out, torch.ones_like(out)).backward()
                opt_g.step()
                loss_d = (loss_real + loss_fake).detach()
                monitor.log(loss_d=loss_d)
                hand["real_sum"].append(float(out_real.detach().sum()))
                hand["real_n"].append(out_real.numel())
                hand["loss_d"].append(float(loss_d))
        result = {
            "hand": hand, "delivered": len(delivered),
            "out_real_mean": monitor.history["D/out_real/mean"][1].tolist(),
            "d_norm": monitor.history["D/grad_norm/total"][1].tolist(),
            "loss_d": monitor.history["D/loss"][1].tolist(),
            "steps": monitor.history["D/loss"][0].tolist(),
        }
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as file:
            json.dump(result, file)
        dist.barrier()  # both ranks done before either closes its connections
    finally:
        dist.destroy_process_group()


def test_two_ranks_reduce_once_per_flush_and_only_rank_0_delivers(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    hand = [r["hand"] for r in ranks]
    # D(real) mean over both ranks' batches, as one big batch would give
    expected = (np.add(hand[0]["real_sum"], hand[1]["real_sum"])
                / np.add(hand[0]["real_n"], hand[1]["real_n"]))
    for rank in ranks:
        assert rank["steps"] == [1, 2, 3, 4]
        np.testing.assert_allclose(rank["out_real_mean"], expected, rtol=1e-6)
        # DDP averages gradients, so the norm is the same on every rank
        np.testing.assert_allclose(rank["d_norm"], hand[0]["d_norm"], rtol=1e-5)
        np.testing.assert_allclose(rank["loss_d"], np.mean([h["loss_d"] for h in hand], axis=0), rtol=1e-6)
    assert ranks[0]["delivered"] == 2 and ranks[1]["delivered"] == 0  # two flushes, rank 0 only
    from gandiag.store import list_runs, open_run
    assert [run.name for run in list_runs(str(tmp_path / "store.sqlite"))] == ["ddp"]  # one writer
    with open_run("ddp", str(tmp_path / "store.sqlite")) as run:
        np.testing.assert_allclose(run.scalars("D/out_real/mean")[1], expected, rtol=1e-6)
