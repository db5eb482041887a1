"""What the Trainer derives from and checks on the user's models and config, with clear
errors: the training device (also one GPU per rank under torchrun), the noise shape,
trainable parameters, the data's float type, and the shapes G and D return.

    >>> resolve_z_shape(TrainConfig(), torch.nn.Linear(100, 2))
    (100,)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gandiag.train import distributed
from gandiag.train.config import TrainConfig


def compile_error(error: BaseException) -> bool:
    """True for torch.compile's own failures (its exceptions live in these modules)."""
    return type(error).__module__.startswith(("torch._dynamo", "torch._inductor"))


def check_module(role: str, module: Any) -> None:
    if isinstance(module, nn.Module):
        return
    what = "a function" if callable(module) else type(module).__name__
    raise TypeError(
        f"Trainer: expected {role} to be an nn.Module, got {what}; pass the module itself "
        "(e.g. an nn.Sequential), not its forward or its output"
    )


def _module_device(module: nn.Module) -> torch.device | None:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return None


def resolve_device(requested: str, G: nn.Module, D: nn.Module) -> torch.device:
    g_device, d_device = _module_device(G), _module_device(D)
    if g_device is not None and d_device is not None and g_device != d_device:
        raise ValueError(
            f"Trainer: G is on {g_device} and D is on {d_device}; expected both on one "
            "device. Move them with .to(device), or leave both on the CPU and set "
            "TrainConfig(device=...)"
        )
    several_ranks = distributed.world()[1] > 1
    if requested == "auto":
        if g_device is not None and g_device.type == "cuda":
            return g_device
        if several_ranks and torch.cuda.is_available():
            return distributed.local_cuda_device()  # one GPU per process (LOCAL_RANK)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"TrainConfig.device={requested!r} but CUDA is not available here; use "
            "device='auto' or 'cpu'"
        )
    if several_ranks and requested == "cuda":
        return distributed.local_cuda_device()
    return device


def resolve_z_shape(config: TrainConfig, G: nn.Module) -> tuple[int, ...]:
    z_shape = getattr(G, "z_shape", None)
    if z_shape is not None:
        return tuple(int(s) for s in z_shape)
    model_z = getattr(G, "z_dim", None)
    if config.z_dim is not None and isinstance(model_z, int) and model_z != config.z_dim:
        raise ValueError(
            f"TrainConfig.z_dim={config.z_dim} but G.z_dim={model_z}; drop z_dim from the "
            "config (G's own is used) or build G for the size you want"
        )
    return (config.z_dim or (model_z if isinstance(model_z, int) else 100),)


def check_trainable(role: str, model: nn.Module) -> None:
    """A model the trainer cannot update is an error here, not torch's 'empty parameter
    list' from the optimizer, nor a G that silently never learns."""
    parameters = list(model.parameters())
    if parameters and any(p.requires_grad for p in parameters):
        return
    what = type(model).__name__
    if not parameters:
        raise ValueError(
            f"Trainer: expected {role} to have trainable parameters, got {what} with none; "
            f"pass a model with learnable layers (e.g. nn.Sequential(nn.Linear(...), ...))"
        )
    raise ValueError(
        f"Trainer: expected {role} to have trainable parameters, got {what} whose "
        f"{len(parameters)} parameters all have requires_grad=False; call "
        f"{role}.requires_grad_(True) before training"
    )


def input_dtype(D: nn.Module) -> torch.dtype:
    """The float type D computes in (its first floating parameter's): real batches are
    converted to it, so float64 numpy data meets a float32 D."""
    return next((p.dtype for p in D.parameters() if p.is_floating_point()), torch.float32)


def as_logits(out: Tensor, batch: int) -> Tensor:
    """D's output as float32 logits of shape (B,); anything else is a clear error."""
    if out.dim() == 2 and out.shape == (batch, 1):
        out = out[:, 0]
    elif out.shape != (batch,):
        raise ValueError(
            f"D returned shape {tuple(out.shape)} for a batch of {batch}; expected "
            f"logits of shape ({batch},) or ({batch}, 1): end D with a layer of one "
            "output (e.g. nn.Linear(features, 1)) and flatten spatial maps"
        )
    return out.float()

def check_fake(fake: Tensor, real: Tensor) -> None:
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(
            f"G produced samples of shape {tuple(fake.shape[1:])} but the data has "
            f"{tuple(real.shape[1:])}; make G's output match one real sample"
        )
