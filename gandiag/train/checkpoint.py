"""Checkpoints: everything a resumed run needs to continue exactly, and nothing pickled.

The file holds only tensors, numbers, strings, lists and dicts, so it loads with
`torch.load(..., weights_only=True)`. Written to a temporary file and renamed, so a
crash mid-write never leaves a half checkpoint in place of the last good one.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from gandiag.train.trainer import Trainer

FORMAT = "gandiag-checkpoint"
VERSION = 1
# Settings that change what the saved tensors mean; the others (lr, steps) may change.
_STRUCTURAL = ("loss", "pack", "spectral_norm", "ema", "z_dim")


def trainer_state(trainer: "Trainer") -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "step": trainer.step,
        "config": trainer.config.to_dict(),
        "G": trainer.G.state_dict(),
        "D": trainer.D.state_dict(),
        "G_ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "opt_g": trainer.opt_g.state_dict(),
        "opt_d": trainer.opt_d.state_dict(),
        "rng": {
            "noise": trainer.noise_generator.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        "data": trainer.data.state_dict(),
        "monitor": trainer.monitor.state_dict(),
        "callbacks": [callback.state_dict() for callback in trainer.callbacks],
    }


def save(state: dict[str, Any], path: str | os.PathLike) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial"
    torch.save(state, partial)
    os.replace(partial, path)


def load(path: str | os.PathLike, *, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    path = os.fspath(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path!r}; check the path") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path!r} is not a gandiag checkpoint (expected a file written by "
            "Trainer.save); for bare weights use G.load_state_dict(torch.load(path, weights_only=True))"
        )
    return state


def restore_trainer_state(trainer: "Trainer", state: dict[str, Any]) -> None:
    if state.get("format") != FORMAT:
        raise ValueError("Trainer.load_state_dict: expected a dict from Trainer.state_dict()")
    if state["version"] > VERSION:
        raise ValueError(
            f"checkpoint format version {state['version']} is newer than this gandiag "
            f"understands ({VERSION}); upgrade gandiag"
        )
    saved = state["config"]
    current = trainer.config.to_dict()
    clashes = [k for k in _STRUCTURAL if saved.get(k) != current.get(k)]
    if clashes:
        diff = ", ".join(f"{k}: saved {saved.get(k)!r} vs now {current.get(k)!r}" for k in clashes)
        raise ValueError(
            f"the checkpoint was trained with other settings ({diff}); build the Trainer "
            "with the saved config: TrainConfig.from_dict(checkpoint['config'])"
        )
    quiet = {"log_every", "checkpoint_every", "checkpoint_dir", "device", "extra"}
    if not (current["instance_noise"] and current["instance_noise_steps"] is None):
        quiet.add("steps")  # only the annealing horizon reads steps during training
    changed = [k for k in current
               if k not in _STRUCTURAL and k not in quiet and saved.get(k) != current[k]]
    if changed:
        warnings.warn(f"resuming with changed settings: {', '.join(changed)}", stacklevel=4)
    trainer.G.load_state_dict(state["G"])
    trainer.D.load_state_dict(state["D"])
    if trainer.ema is not None and state["G_ema"] is not None:
        trainer.ema.load_state_dict(state["G_ema"])
    for optimizer, key in ((trainer.opt_g, "opt_g"), (trainer.opt_d, "opt_d")):
        learning_rates = [group["lr"] for group in optimizer.param_groups]
        optimizer.load_state_dict(state[key])
        for group, lr in zip(optimizer.param_groups, learning_rates):
            # A captured run keeps lr as a device tensor, an eager one as a number: keep this
            # trainer's kind, with the checkpoint's value.
            if isinstance(lr, torch.Tensor):
                lr.fill_(float(group["lr"]))
                group["lr"] = lr
            else:
                group["lr"] = float(group["lr"])
    trainer.noise_generator.set_state(state["rng"]["noise"].cpu())
    torch.set_rng_state(state["rng"]["torch"].cpu())
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
    trainer.data.load_state_dict(_to_cpu(state["data"]))
    trainer.monitor.load_state_dict(_to_cpu(state["monitor"]))
    for callback, callback_state in zip(trainer.callbacks, state["callbacks"]):
        callback.load_state_dict(callback_state)
    trainer.step = int(state["step"])
    trainer._validated = False  # re-check shapes on the first resumed step


def _to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    # Generator states must be CPU ByteTensors; map_location may have moved them.
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
