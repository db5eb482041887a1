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
    """Read a checkpoint with `weights_only=True`; a missing, truncated or foreign file is
    one clear error, not torch's unpickling internals."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"expected a checkpoint file, got the folder {path!r}; pass the .pt file "
                         "inside it (Trainer.save writes <name>-last.pt into checkpoint_dir)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path!r}; check the path") from None
    except PermissionError:
        raise
    except Exception as error:
        # weights_only refuses pickled objects with an UnpicklingError (told apart by name:
        # nothing here needs the pickle module); on damage torch raises RuntimeError,
        # EOFError, KeyError or IndexError.
        if type(error).__name__ == "UnpicklingError":
            raise ValueError(
                f"{path!r} is not a gandiag checkpoint: torch refuses to read it with "
                "weights_only=True (not a torch file, or one holding pickled Python objects "
                "such as a whole model); expected a file written by Trainer.save. For a model "
                "of your own, save and load its state_dict()"
            ) from None
        raise ValueError(
            f"{path!r} is not a readable checkpoint: torch cannot read it (truncated or "
            "damaged, e.g. by an interrupted write or copy, or not a torch file at all); "
            "expected a complete file written by Trainer.save. Use an earlier checkpoint or "
            "copy it again"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path!r} is not a gandiag checkpoint (expected a file written by "
            "Trainer.save); for bare weights use G.load_state_dict(torch.load(path, weights_only=True))"
        )
    return state


def restore_trainer_state(trainer: "Trainer", state: dict[str, Any]) -> None:
    """Load `state` into `trainer`, all of it or nothing: every part is checked against the
    trainer before the first one is assigned, so a checkpoint that does not fit leaves the
    trainer as it was."""
    check_state(trainer, state)
    _warn_changed_settings(state["config"], trainer.config.to_dict())
    _load_host_parts(trainer, state)
    trainer.G.load_state_dict(state["G"])
    trainer.D.load_state_dict(state["D"])
    if trainer.ema is not None:
        trainer.ema.load_state_dict(state["G_ema"])
    for optimizer, key in ((trainer.opt_g, "opt_g"), (trainer.opt_d, "opt_d")):
        _load_optimizer(optimizer, state[key])
    trainer.noise_generator.set_state(state["rng"]["noise"].cpu())
    torch.set_rng_state(state["rng"]["torch"].cpu())
    if state["rng"]["cuda"] and torch.cuda.is_available():
        # A run saved on more GPUs than this machine has: the GPUs present get theirs.
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"][:torch.cuda.device_count()]])
    trainer.step = state["step"]
    trainer._validated = False  # re-check shapes on the first resumed step


# ---- checks: nothing below changes the trainer ------------------------------------
# The parts of a checkpoint and the type each must have.
_PARTS: dict[str, type | tuple[type, ...]] = {
    "version": int, "step": int, "config": dict, "G": dict, "D": dict, "opt_g": dict,
    "opt_d": dict, "rng": dict, "data": dict, "monitor": dict, "callbacks": list,
}


def check_state(trainer: "Trainer", state: Any) -> None:
    """Raise ValueError if `state` cannot be loaded into `trainer` whole."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError("Trainer.load_state_dict: expected a dict from Trainer.state_dict() "
                         f"(format {FORMAT!r}), got {_describe(state)}")
    for key, kind in _PARTS.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            got = "nothing" if key not in state else _describe(state[key])
            raise ValueError(f"the checkpoint is incomplete: expected its {key!r} part, got "
                             f"{got}; use a checkpoint written whole by Trainer.save")
    if state["version"] > VERSION:
        raise ValueError(
            f"checkpoint format version {state['version']} is newer than this gandiag "
            f"understands ({VERSION}); upgrade gandiag"
        )
    _check_structure(state["config"], trainer.config.to_dict())
    _check_module_state("G", trainer.G, state["G"])
    _check_module_state("D", trainer.D, state["D"])
    if trainer.ema is not None:
        ema = state.get("G_ema")
        if not isinstance(ema, dict) or not isinstance(ema.get("model"), dict):
            raise ValueError(f"the checkpoint has no EMA copy of G, got {_describe(ema)}; load "
                             "it into a trainer with TrainConfig(ema=0)")
        _check_module_state("G's EMA copy", trainer.ema.model, ema["model"])
        _check_number("G_ema decay", ema.get("decay"))
    _check_optimizer_state("G's optimizer", trainer.opt_g, state["opt_g"])
    _check_optimizer_state("D's optimizer", trainer.opt_d, state["opt_d"])
    _check_rng(trainer, state["rng"])
    if state["step"] < 0:
        raise ValueError(f"the checkpoint's step is {state['step']}; expected a count >= 0")


def _check_structure(saved: dict[str, Any], current: dict[str, Any]) -> None:
    clashes = [k for k in _STRUCTURAL if saved.get(k) != current.get(k)]
    if clashes:
        diff = ", ".join(f"{k}: saved {saved.get(k)!r} vs now {current.get(k)!r}" for k in clashes)
        raise ValueError(
            f"the checkpoint was trained with other settings ({diff}); build the Trainer "
            "with the saved config: TrainConfig.from_dict(checkpoint['config'])"
        )


def _check_module_state(role: str, model: torch.nn.Module, saved: dict[str, Any]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    resized = [f"{k!r} saved {_shape(saved[k])} vs now {_shape(v)}" for k, v in expected.items()
               if k in saved and isinstance(v, torch.Tensor) and _shape(saved[k]) != _shape(v)]
    problems = [f"{label} {', '.join(map(str, items[:3]))}{' ...' if len(items) > 3 else ''}"
                for label, items in (("missing", [repr(k) for k in missing]),
                                     ("unexpected", [repr(k) for k in unexpected]),
                                     ("shapes differ:", resized)) if items]
    if problems:
        model = role.split("'")[0]  # "G's EMA copy" is G's
        raise ValueError(
            f"the checkpoint's {role} does not fit this trainer's {model} ({'; '.join(problems)}); "
            f"build {model} with the layers and sizes it was saved with"
        )


def _check_optimizer_state(role: str, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    groups, state = saved.get("param_groups"), saved.get("state")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sizes = [len(group["params"]) for group in optimizer.param_groups]
    fits = (isinstance(groups, list) and isinstance(state, dict)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                    and isinstance(g.get("lr"), (int, float, torch.Tensor)) for g in groups)
            and [len(g["params"]) for g in groups] == sizes)
    if fits:
        index = {pid: p for g, param_group in zip(groups, optimizer.param_groups)
                 for pid, p in zip(g["params"], param_group["params"])}
        fits = all(pid in index and isinstance(values, dict) and all(
            _shape(v) == tuple(index[pid].shape) for v in values.values()
            if isinstance(v, torch.Tensor) and v.dim() > 0) for pid, values in state.items())
    if not fits:
        raise ValueError(
            f"the checkpoint's {role} state does not fit this trainer's ({len(params)} "
            f"parameters in groups of {sizes}); build G and D as they were when saved"
        )


def _check_rng(trainer: "Trainer", rng: dict[str, Any]) -> None:
    for key, current in (("noise", trainer.noise_generator.get_state()), ("torch", torch.get_rng_state())):
        saved = rng.get(key)
        if not isinstance(saved, torch.Tensor) or saved.shape != current.shape:
            raise ValueError(
                f"the checkpoint's {key} generator state does not fit ({_describe(saved)} vs "
                f"{current.numel()} bytes here): it was saved on another kind of device; resume "
                f"on a {trainer.device.type} trainer of the saved device kind, or read the "
                "weights alone: G.load_state_dict(torch.load(path, weights_only=True)['G'])"
            )
    if not isinstance(rng.get("cuda"), list) or not all(isinstance(s, torch.Tensor) for s in rng["cuda"]):
        raise ValueError(f"the checkpoint's CUDA generator states are damaged, got "
                         f"{_describe(rng.get('cuda'))}; use a checkpoint written by Trainer.save")


def _check_number(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"the checkpoint's {what} is {_describe(value)}; expected a number")


def _shape(value: Any) -> tuple[int, ...] | str:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:80]


# ---- assigning ----------------------------------------------------------------------
def _warn_changed_settings(saved: dict[str, Any], current: dict[str, Any]) -> None:
    quiet = {"log_every", "checkpoint_every", "checkpoint_dir", "device", "extra", "coverage_every"}
    if not (current["instance_noise"] and current["instance_noise_steps"] is None):
        quiet.add("steps")  # only the annealing horizon reads steps during training
    changed = [k for k in current
               if k not in _STRUCTURAL and k not in quiet and saved.get(k) != current[k]]
    if changed:
        warnings.warn(f"resuming with changed settings: {', '.join(changed)}", stacklevel=5)


def _load_host_parts(trainer: "Trainer", state: dict[str, Any]) -> None:
    """Data position, records and callbacks: their layouts are theirs to check, so they
    load first, and a refusal puts back what had been loaded before the models are touched."""
    previous = _host_parts(trainer)
    try:
        _assign_host_parts(trainer, state)
    except Exception as error:
        _assign_host_parts(trainer, previous)
        raise ValueError(f"the checkpoint does not fit this trainer's data, records or "
                         f"callbacks ({error}); nothing was loaded") from None


def _host_parts(trainer: "Trainer") -> dict[str, Any]:
    return {"data": trainer.data.state_dict(), "monitor": trainer.monitor.state_dict(),
            "callbacks": [callback.state_dict() for callback in trainer.callbacks]}


def _assign_host_parts(trainer: "Trainer", state: dict[str, Any]) -> None:
    trainer.data.load_state_dict(_to_cpu(state["data"]))
    trainer.monitor.load_state_dict(_to_cpu(state["monitor"]))
    for callback, callback_state in zip(trainer.callbacks, state["callbacks"]):
        callback.load_state_dict(callback_state)


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    learning_rates = [group["lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, lr in zip(optimizer.param_groups, learning_rates):
        # A captured run keeps lr as a device tensor, an eager one as a number: keep this
        # trainer's kind, with the checkpoint's value.
        if isinstance(lr, torch.Tensor):
            lr.fill_(float(group["lr"]))
            group["lr"] = lr
        else:
            group["lr"] = float(group["lr"])


def _to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    # Generator states must be CPU ByteTensors; map_location may have moved them.
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
