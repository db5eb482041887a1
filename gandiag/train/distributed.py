"""Data-parallel training over processes (`torchrun`): who this process is, its device,
and its models wrapped in `DistributedDataParallel`.

Under `torchrun --nproc_per_node=N` every process runs the same script. The Trainer then
wraps G and D in DDP (gradients are averaged across ranks at each backward), each rank
draws its own real batches (its shard) and its own noise, the monitor all-reduces its
buffer once per flush, and rank 0 alone runs the callbacks marked `rank_zero_only` (run
store, progress, diagnosis), so one store holds one run.

    >>> world()            # a plain process: rank 0 of 1
    (0, 1)
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) started several processes of this job."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env() -> bool:
    """Join the process group torchrun describes in the environment, once; True if joined.

    NCCL when this process has a GPU, gloo on CPUs. A process started without a launcher
    (WORLD_SIZE unset or 1) stays on its own.
    """
    if not launched_by_torchrun() or not dist.is_available():
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank() % torch.cuda.device_count())
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def leave(*, together: bool) -> None:
    """Leave the process group. `together`: first wait for every rank (rank 0 writes the
    checkpoint and the report after training), since a gloo rank torn down while another
    still holds its connection can abort ("terminate called without an active
    exception"); after an error, leave at once (torchrun stops the others)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if together:
        dist.barrier()
    dist.destroy_process_group()


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK): which GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def local_cuda_device() -> torch.device:
    return torch.device("cuda", local_rank() % torch.cuda.device_count())


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on some rank (one tiny collective).

    A stop asked on one rank (a dashboard, a diagnosis) must stop all of them at the same
    step, or the others would wait forever in their next gradient all-reduce.
    """
    if world()[1] == 1:
        return flag
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    vote = torch.tensor([1.0 if flag else 0.0], device=backend_device)
    dist.all_reduce(vote)
    return bool(vote.item() > 0)  # note: a sync, once per flush


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel when several ranks train, else `model` itself.

    Buffers (BatchNorm statistics, spectral norm's vectors) are broadcast from rank 0 at
    every forward, so all ranks keep the same model.
    """
    if world()[1] == 1:
        return model
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            f"Trainer: {type(model).__name__} has no trainable parameters, so it cannot be "
            "trained with DistributedDataParallel; unfreeze its parameters"
        )
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
