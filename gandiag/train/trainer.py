"""`Trainer`: alternating D and G updates, read top to bottom in `train_step`.

Example:
    >>> from gandiag import Trainer, TrainConfig, data, models
    >>> G, D = models.small_toy(pack=2)
    >>> trainer = Trainer(G, D, data.ring(), TrainConfig(pack=2, ema=0.999, log_every=10))
    >>> trainer.fit(20).fit(10).step   # a second fit() continues where the first stopped
    30
    >>> sorted(trainer.evaluate())     # the ring's metrics on 2500 fixed-noise samples
    ['hq', 'modes', 'reverse_kl']
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from gandiag.data.adapters import batch_source
from gandiag.hooks import Monitor, attached_monitor
from gandiag.hooks.history import History
from gandiag.train import checkpoint
from gandiag.train import stabilisers as stab
from gandiag.train.callbacks import Callback
from gandiag.train.config import TrainConfig
from gandiag.train.ema import EMA
from gandiag.train.losses import get_loss

LOSS_KEYS = ("D/loss", "G/loss")


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss became NaN or infinite; `.step` says when."""

    def __init__(self, key: str, step: int, value: float) -> None:
        self.key, self.step, self.value = key, step, value
        super().__init__(
            f"{key} became {value} at step {step}; training stopped. Everything recorded up "
            "to here is kept (trainer.history) and no checkpoint was written after the last "
            "finite flush. Common fixes: lower the learning rates, add a gradient penalty "
            "(r1_gamma / gp_lambda) or spectral_norm, check the data for NaNs, or disable amp"
        )


class Trainer:
    """Trains generator `G` against discriminator `D` on `data` (see `TrainConfig`).

    `G` maps noise (B, z_dim) to samples; `D` maps samples to logits of shape (B,) or
    (B, 1). `data` is anything `gandiag.data.batch_source` accepts. The models are moved
    to the training device; with `spectral_norm=True`, D's layers are parametrised in
    place. torch's global RNG is seeded with `config.seed` (dropout, user code).
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        data: Any,
        config: TrainConfig | None = None,
        callbacks: Iterable[Callback] | None = None,
        *,
        name: str = "run",
    ) -> None:
        config = config if config is not None else TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer: expected config to be a TrainConfig, got {type(config).__name__}")
        _check_module("G", G)
        _check_module("D", D)
        self.config, self.name = config, name
        self.device = _resolve_device(config.device, G, D)
        self.G, self.D = G.to(self.device), D.to(self.device)
        d_pack = getattr(D, "pack", None)
        if isinstance(d_pack, int) and d_pack != config.pack:
            raise ValueError(
                f"Trainer: D was built for pack={d_pack} but config.pack={config.pack}; "
                f"build D with pack={config.pack} or set TrainConfig(pack={d_pack})"
            )
        if config.spectral_norm:
            stab.apply_spectral_norm(self.D)
        self.loss = get_loss(config.loss)
        self.z_shape = _resolve_z_shape(config, G)
        self.amp = config.amp and self.device.type == "cuda"
        if config.amp and not self.amp:
            warnings.warn("TrainConfig.amp=True needs CUDA; training in float32 on the CPU", stacklevel=2)
        torch.manual_seed(config.seed)
        # Fused Adam on CUDA (one kernel); foreach on the CPU, where torch would otherwise
        # loop over parameters one by one (measured: 30 % of a toy step).
        fast = {"fused": True} if self.device.type == "cuda" else {"foreach": True}
        self.opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=config.betas, **fast)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=config.betas, **fast)
        self.ema = EMA(G, config.ema) if config.ema > 0 else None
        self.noise_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.data = batch_source(data, batch_size=config.batch_size, seed=config.seed + 1,
                                 device=self.device)
        self._evaluator = data if callable(getattr(data, "evaluate", None)) else None
        self.callbacks: list[Callback] = list(callbacks or [])
        # The trainer records through the same hooks a user's own loop gets from attach().
        for model in (G, D):
            previous = attached_monitor(model)
            if previous is not None and previous.owner == "trainer":
                previous.remove()  # the trainer this replaces (a re-run notebook cell)
        self.monitor = Monitor(G, D, opt_g=self.opt_g, opt_d=self.opt_d, flush_every=config.log_every,
                               auto_flush=False, owner="trainer")
        self.step = 0  # G updates so far
        self.fit_steps = 0
        self.error: BaseException | None = None
        self._validated = False
        self._lock = threading.Lock()
        self._stop_requested = False
        self._running = threading.Event()
        self._running.set()  # set: not paused

    # ---- the training step ---------------------------------------------------------
    def train_step(self) -> None:
        """One G update preceded by `n_critic` D updates. No host-device sync."""
        cfg, G, D = self.config, self.G, self.D
        batch = cfg.batch_size

        # ---- D update(s): push D(real) up and D(fake) down ----
        for _ in range(cfg.n_critic):
            real = self.data.next()
            with torch.no_grad(), self._autocast():
                fake = self._generate(real.shape[0])  # no graph: D's step leaves G alone
            self._check_fake(fake, real)
            real_in, fake_in = self._d_input(real), self._d_input(fake)
            if cfg.r1_gamma:
                real_in.requires_grad_(True)
            with self._autocast():
                with self.monitor.phase("real"):  # packing and noise hide where inputs come from
                    real_logits = self._discriminate(real_in)
                with self.monitor.phase("fake"):
                    fake_logits = self._discriminate(fake_in)
            loss_d = self.loss.d(real_logits, fake_logits, 1.0 - cfg.label_smoothing)
            if cfg.r1_gamma:
                loss_d = loss_d + stab.r1_penalty(real_logits, real_in, cfg.r1_gamma)
            if cfg.penalty_gp:
                with self.monitor.phase("ignore"):  # D on interpolates: neither real nor fake
                    loss_d = loss_d + stab.gradient_penalty(
                        D, real_in, fake_in, cfg.penalty_gp, generator=self.noise_generator,
                        logits=lambda out: self._logits(out, out.shape[0]))
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            if cfg.loss == "wgan":
                stab.clip_weights_(D, cfg.clip)

        # ---- G update: fresh noise, D's verdict on G's samples flows back into G ----
        with self._autocast(), self.monitor.phase("fake"):
            fake = self._generate(batch)
            fake_logits_g = self._discriminate(self._d_input(fake))
        loss_g = self.loss.g(fake_logits_g)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(G)

        self.step += 1
        self._validated = True
        self.monitor.log(loss_d=loss_d, loss_g=loss_g)  # D outputs and gradients come from hooks

    def _generate(self, n: int) -> Tensor:
        z = torch.randn((n, *self.z_shape), generator=self.noise_generator, device=self.device)
        if self._validated:
            return self.G(z)
        try:
            return self.G(z)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"G failed on noise of shape {tuple(z.shape)}: {error}. G must map noise "
                "(B, z_dim) to a batch of samples; set TrainConfig(z_dim=...) or, for a G "
                "that wants (B, z_dim, 1, 1), set G.z_shape = (z_dim, 1, 1)"
            ) from error

    def _d_input(self, x: Tensor) -> Tensor:
        """What D sees: annealed instance noise, then PacGAN packing."""
        cfg = self.config
        if cfg.instance_noise:
            horizon = cfg.instance_noise_steps or cfg.steps
            std = stab.instance_noise_std(cfg.instance_noise, self.step, horizon)
            x = stab.add_instance_noise(x, std, self.noise_generator)
        return stab.pack(x, cfg.pack)

    def _discriminate(self, x: Tensor) -> Tensor:
        if self._validated:
            return self._logits(self.D(x), x.shape[0])
        try:
            out = self.D(x)
        except RuntimeError as error:
            packing = (f" With pack={self.config.pack}, D gets {self.config.pack} samples "
                       "concatenated along dim 1; build D for that many input channels "
                       "(e.g. models.ToyDiscriminator(pack=...))." if self.config.pack > 1 else "")
            raise ValueError(
                f"D failed on a batch of shape {tuple(x.shape)}: {error}.{packing}"
            ) from error
        return self._logits(out, x.shape[0])

    @staticmethod
    def _logits(out: Tensor, batch: int) -> Tensor:
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

    @staticmethod
    def _check_fake(fake: Tensor, real: Tensor) -> None:
        if fake.shape[1:] != real.shape[1:]:
            raise ValueError(
                f"G produced samples of shape {tuple(fake.shape[1:])} but the data has "
                f"{tuple(real.shape[1:])}; make G's output match one real sample"
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- the loop ------------------------------------------------------------------
    def fit(self, steps: int | None = None) -> "Trainer":
        """Run `steps` more G updates (default `config.steps`); returns the trainer."""
        steps = self.config.steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"Trainer.fit: expected steps to be an integer >= 0, got {steps!r}")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("Trainer.fit: already running (in another thread); call stop() first")
        try:
            self.fit_steps, self.error, self._stop_requested = steps, None, False
            self.G.train()
            self.D.train()
            for callback in self.callbacks:
                callback.on_fit_start(self)
            try:
                self._loop(self.step + steps)
            except BaseException as error:
                self.error = error
                raise
            finally:
                for callback in self.callbacks:
                    callback.on_fit_end(self)
        finally:
            self._lock.release()
        return self

    def _loop(self, end: int) -> None:
        try:
            while self.step < end:
                self._running.wait()  # blocks while paused
                if self._stop_requested:
                    break
                self.train_step()
                for callback in self.callbacks:
                    callback.on_step_end(self)
                if self.step % self.config.log_every == 0:
                    self._flush()
        except BaseException:
            self.monitor.flush()  # keep everything recorded, also on an error or Ctrl-C
            raise
        self._flush()

    def _flush(self) -> None:
        """Bring recorded rows to the host (the sync), stop on a non-finite loss, notify."""
        records = self.monitor.flush()
        if not records:
            return
        for key in LOSS_KEYS:
            steps, values = records.scalars[key]
            bad = ~np.isfinite(values)
            if bad.any():
                first = int(np.argmax(bad))
                raise NonFiniteLossError(key, int(steps[first]), float(values[first]))
        for callback in self.callbacks:
            callback.on_flush(self, records)
        cfg = self.config
        if cfg.checkpoint_every and cfg.checkpoint_dir and self.step % cfg.checkpoint_every == 0:
            self.save(os.path.join(cfg.checkpoint_dir, f"{self.name}-last.pt"))

    # ---- control from another thread -----------------------------------------------
    def stop(self) -> None:
        """Ask fit() to return after the current step (thread-safe)."""
        self._stop_requested = True
        self._running.set()

    def pause(self) -> None:
        """Hold fit() before the next step until resume() (thread-safe)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        """True when the last fit() ended early because stop() was called."""
        return self._stop_requested

    @property
    def running(self) -> bool:
        return self._lock.locked()

    # ---- results -------------------------------------------------------------------
    @property
    def history(self) -> "History":
        """Recorded series: key -> (steps, values), flushed rows only (see gandiag.hooks)."""
        return self.monitor.history

    @property
    def G_ema(self) -> nn.Module | None:
        """The EMA copy of G (None unless TrainConfig.ema > 0)."""
        return self.ema.model if self.ema is not None else None

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, ema: bool = True) -> Tensor:
        """n samples from fixed noise (`seed`), G in eval mode; the EMA G when there is one."""
        model = self.G_ema if (ema and self.G_ema is not None) else self.G
        generator = torch.Generator(device=self.device).manual_seed(seed)
        z = torch.randn((n, *self.z_shape), generator=generator, device=self.device)
        was_training = model.training
        model.eval()  # eval: use BatchNorm's running statistics, leave them untouched
        try:
            return model(z).float()
        finally:
            model.train(was_training)

    @property
    def can_evaluate(self) -> bool:
        """True when the data scores samples itself (the toy mixtures)."""
        return self._evaluator is not None

    def evaluate(self, n: int = 2500, *, seed: int = 0) -> dict[str, float]:
        """The data's own metrics (toy mixtures: modes, hq, reverse_kl) on `n` fixed-noise samples."""
        if self._evaluator is None:
            raise TypeError(
                "Trainer.evaluate: this data has no .evaluate(samples); use gandiag.metrics "
                "on trainer.sample(n) instead"
            )
        return self._evaluator.evaluate(self.sample(n, seed=seed))

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: models, optimisers, RNGs, data position, records."""
        return checkpoint.trainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        checkpoint.restore_trainer_state(self, state)

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint that `load` resumes exactly (on the CPU)."""
        checkpoint.save(self.state_dict(), path)

    def load(self, path: str | os.PathLike) -> "Trainer":
        """Restore a checkpoint written by `save` into this trainer (same models and data)."""
        self.load_state_dict(checkpoint.load(path, map_location=self.device))
        return self


def _check_module(role: str, module: Any) -> None:
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


def _resolve_device(requested: str, G: nn.Module, D: nn.Module) -> torch.device:
    g_device, d_device = _module_device(G), _module_device(D)
    if g_device is not None and d_device is not None and g_device != d_device:
        raise ValueError(
            f"Trainer: G is on {g_device} and D is on {d_device}; expected both on one "
            "device. Move them with .to(device), or leave both on the CPU and set "
            "TrainConfig(device=...)"
        )
    if requested == "auto":
        if g_device is not None and g_device.type == "cuda":
            return g_device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"TrainConfig.device={requested!r} but CUDA is not available here; use "
            "device='auto' or 'cpu'"
        )
    return device


def _resolve_z_shape(config: TrainConfig, G: nn.Module) -> tuple[int, ...]:
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
