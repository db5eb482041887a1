"""`Trainer`: alternating D and G updates, read top to bottom in `_update` (one step).

Example:
    >>> from gandiag import Trainer, TrainConfig, data, models
    >>> G, D = models.small_toy(pack=2)
    >>> trainer = Trainer(G, D, data.ring(), TrainConfig(pack=2, ema=0.999, log_every=10))
    >>> trainer.fit(20).fit(10).step   # a second fit() continues where the first stopped
    30
    >>> sorted(trainer.evaluate())     # the ring's metrics on 2500 fixed-noise samples
    ['fair_modes', 'hq', 'modes', 'reverse_kl']
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Iterable

import torch
from torch import Tensor, nn

from gandiag.data.adapters import batch_source
from gandiag.hooks import Monitor, attached_monitor
from gandiag.core.history import History
from gandiag.train import checkpoint, distributed, paths
from gandiag.train.capture import CaptureError, GraphedTrainStep, adam_options, resolve_capture
from gandiag.train import stabilisers as stab
from gandiag.core.callback import Callback
from gandiag.train.config import TrainConfig
from gandiag.train.host import CallbackHost
from gandiag.train.control import LoopControl, NonFiniteLossError, check_finite_losses
from gandiag.train.ema import EMA
from gandiag.train.losses import get_loss
from gandiag.train.resolve import (as_logits, check_fake, check_module, check_trainable, compile_error,
                                   input_dtype, resolve_device, resolve_z_shape)

class Trainer(LoopControl, CallbackHost):
    """Trains generator `G` against discriminator `D` on `data` (see `TrainConfig`).

    `G` maps noise (B, z_dim) to samples; `D` maps samples to logits of shape (B,) or
    (B, 1). `data` is anything `gandiag.data.batch_source` accepts; its batches take D's
    float type (float64 numpy data meets a float32 D). The models are moved to the
    training device; with `spectral_norm=True`, D's layers are parametrised in place.
    torch's global RNG is seeded with `config.seed` (dropout, user code). `name` names the
    run and its checkpoint (`<name>-last.pt` in `checkpoint_dir`), so it must be a plain
    file name; it and the folder are checked here, before any training.

    Every `config.coverage_every` steps, `coverage` (a `LabelFreeCoverage`) compares G's
    samples with the real batches kept in `reservoir`, without labels (see host.py).
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
        check_module("G", G)
        check_module("D", D)
        check_trainable("G", G)
        check_trainable("D", D)
        name = paths.check_run_name(name, what="Trainer: name")
        if config.checkpoint_dir is not None:  # checked here: a bad folder fails the first save, late
            paths.check_folder_path(config.checkpoint_dir, what="TrainConfig.checkpoint_dir")
            paths.check_not_folders(config.checkpoint_dir, (f"{name}-last.pt",),
                                    what="TrainConfig.checkpoint_dir")
        self.config, self.name = config, name
        self.rank, self.world_size = distributed.world()
        self.device = resolve_device(config.device, G, D)
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
        self.z_shape = resolve_z_shape(config, G)
        self.amp = config.amp and self.device.type == "cuda"
        if config.amp and not self.amp:
            warnings.warn("TrainConfig.amp=True needs CUDA; training in float32 on the CPU", stacklevel=2)
        torch.manual_seed(config.seed)
        # The capture mode in force: the one asked for, or "none" with a warning saying why.
        self.capture = resolve_capture(config.capture, device=self.device, world_size=self.world_size,
                                       instance_noise=config.instance_noise)
        self.opt_g = torch.optim.Adam(G.parameters(), betas=config.betas,
                                      **adam_options(self.capture, self.device, config.lr_g))
        self.opt_d = torch.optim.Adam(D.parameters(), betas=config.betas,
                                      **adam_options(self.capture, self.device, config.lr_d))
        self.ema = EMA(G, config.ema) if config.ema > 0 else None
        # Under DDP each rank draws its own noise and its own shard of the data.
        self.noise_generator = torch.Generator(device=self.device).manual_seed(
            config.seed + 1_000_003 * self.rank)
        self.data = batch_source(data, batch_size=config.batch_size, seed=config.seed + 1,
                                 device=self.device, shard=(self.rank, self.world_size),
                                 dtype=input_dtype(D))
        self._evaluator = data if callable(getattr(data, "evaluate", None)) else None
        # The trainer records through the same hooks a user's own loop gets from attach().
        for model in (G, D):
            previous = attached_monitor(model)
            if previous is not None and previous.owner == "trainer":
                previous.remove()  # the trainer this replaces (a re-run notebook cell)
        self.monitor = Monitor(G, D, opt_g=self.opt_g, opt_d=self.opt_d, log_every=config.log_every,
                               loss=config.loss, keep_samples=0, auto_flush=False, owner="trainer")
        # One callback list, driven by both: the monitor hands each batch of records and
        # each alert to it (on_records, on_alert), the trainer everything else.
        self.monitor.host = self
        self.monitor.callbacks = list(callbacks or [])
        self._setup_coverage()  # coverage/* every coverage_every steps (host.py)
        self._evaluated: tuple[int, dict[str, Any]] | None = None  # (step, metrics)
        # What the step calls: the models themselves, or their DDP wrappers (which average
        # gradients across ranks); sample(), evaluate() and checkpoints use G and D.
        self._G_step = distributed.wrap(G, self.device)
        self._D_step = distributed.wrap(D, self.device)
        if self.capture == "compile":  # the hooks stay eager: torch.compile runs them between graphs
            self._G_step, self._D_step = torch.compile(self._G_step), torch.compile(self._D_step)
        self._graphed = self._new_graph()
        self.step = 0  # G updates so far
        self.fit_steps = 0
        self.error: BaseException | None = None
        self._validated = False
        LoopControl.__init__(self)

    # ---- the training step ---------------------------------------------------------
    def train_step(self) -> None:
        """One G update preceded by `n_critic` D updates: eager, or replayed as one CUDA
        graph (capture="cuda_graph"). No host-device sync."""
        reals = [self.data.next() for _ in range(self.config.n_critic)]
        if self._keep_reals:  # before packing and noise, outside any graph: a device copy of a few rows
            for real in reals:
                self.reservoir.offer("real", real)
        if self._graphed is not None:
            try:
                self._graphed(reals)
            except CaptureError as error:
                warnings.warn(f"{error}. Training goes on eagerly.", stacklevel=2)
                self._graphed, self.capture = None, "none"
                self._update(reals)
        elif self.capture == "compile" and not self._validated:
            self._first_compiled_step(reals)
        else:
            self._update(reals)
        self.step += 1
        self._validated = True

    def _update(self, reals: list[Tensor]) -> None:
        """The step itself: D update(s) on `reals`, then the G update, then the losses logged."""
        cfg, D = self.config, self.D
        batch = cfg.batch_size

        # ---- D update(s): push D(real) up and D(fake) down ----
        for real in reals:
            with torch.no_grad(), self._autocast():
                fake = self._generate(real.shape[0])  # no graph: D's step leaves G alone
            check_fake(fake, real)
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
                        self._D_step, real_in, fake_in, cfg.penalty_gp, generator=self.noise_generator,
                        logits=lambda out: as_logits(out, out.shape[0]))
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
            self.ema.update(self.G)
        self.monitor.log(loss_d=loss_d, loss_g=loss_g)  # D outputs and gradients come from hooks

    def _new_graph(self) -> GraphedTrainStep | None:
        if self.capture != "cuda_graph":
            return None
        return GraphedTrainStep(self._update, self.monitor, (self.opt_d, self.opt_g), (self.noise_generator,))

    def _first_compiled_step(self, reals: list[Tensor]) -> None:
        """torch.compile compiles at the first calls; where it cannot (no C++ compiler, an
        unsupported op), say why and train eagerly. The step is then run again from the
        start: a failure in the G update's compilation costs D one extra update."""
        from torch._dynamo.exc import TorchDynamoException

        noise_state = self.noise_generator.get_state()
        try:
            self._update(reals)
        except TorchDynamoException as error:
            warnings.warn(f"TrainConfig(capture='compile'): torch.compile failed "
                          f"({type(error).__name__}: {str(error).splitlines()[0]}); training "
                          "eagerly (capture='none')", stacklevel=3)
            self.capture = "none"
            self._G_step = distributed.wrap(self.G, self.device)
            self._D_step = distributed.wrap(self.D, self.device)
            self.monitor.calls.clear()
            self.noise_generator.set_state(noise_state)  # the same noise as the failed try
            self._update(reals)

    def _generate(self, n: int) -> Tensor:
        z = torch.randn((n, *self.z_shape), generator=self.noise_generator, device=self.device)
        if self._validated:
            return self._G_step(z)
        try:
            return self._G_step(z)
        except (RuntimeError, TypeError) as error:
            if compile_error(error):
                raise  # capture="compile" handles it
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
            return as_logits(self._D_step(x), x.shape[0])
        try:
            out = self._D_step(x)
        except RuntimeError as error:
            if compile_error(error):
                raise
            packing = (f" With pack={self.config.pack}, D gets {self.config.pack} samples "
                       "concatenated along dim 1; build D for that many input channels "
                       "(e.g. models.ToyDiscriminator(pack=...))." if self.config.pack > 1 else "")
            raise ValueError(
                f"D failed on a batch of shape {tuple(x.shape)}: {error}.{packing}"
            ) from error
        return as_logits(out, x.shape[0])

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:  # a CUDA graph cannot keep autocast's cast cache across replays
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                                  cache_enabled=self.capture != "cuda_graph")
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
            self._refresh_coverage()
            for callback in self._active_callbacks():
                callback.on_fit_start(self)
            try:
                self._loop(self.step + steps)
            except BaseException as error:
                self.error = error
                raise
            finally:
                for callback in self._active_callbacks():
                    callback.on_fit_end(self)
        finally:
            self._lock.release()
        return self

    def _loop(self, end: int) -> None:
        try:
            while self.step < end:
                self._running.wait()  # blocks while paused
                if self._stop_requested and self.world_size == 1:
                    break
                self.train_step()
                for callback in self._active_callbacks():
                    callback.on_step_end(self)
                if self.step % self.config.log_every == 0:
                    self._flush()
                    if self.world_size > 1 and distributed.any_rank(self._stop_requested):
                        self._stop_requested = True
                        break  # all ranks stop together, at a flush
        except BaseException:
            self.monitor.flush()  # keep everything recorded, also on an error or Ctrl-C
            raise
        self._flush()

    def _flush(self) -> None:
        """Bring recorded rows to the host (the sync), stop on a non-finite loss, notify."""
        records = self.monitor.flush()
        self.reservoir.absorb()  # the kept real rows to the host, before on_flush reads them
        if not records:
            return
        check_finite_losses(records)
        for callback in self._active_callbacks():
            callback.on_flush(self, records)
        cfg = self.config
        if (cfg.checkpoint_every and cfg.checkpoint_dir and self.step % cfg.checkpoint_every == 0
                and self.rank == 0):
            self.save(os.path.join(cfg.checkpoint_dir, f"{self.name}-last.pt"))

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

    def record_evaluation(self) -> dict[str, Any]:
        """`evaluate()` at the current step, recorded as metric/<name> (history, run
        store) once: later calls at the same step (a progress line and a store recorder
        both ask) return the same values without evaluating again."""
        if self._evaluated is None or self._evaluated[0] != self.step:
            metrics = self.evaluate()
            self.record({f"metric/{name}": value for name, value in metrics.items()}, step=self.step)
            self._evaluated = (self.step, metrics)
        return dict(self._evaluated[1])

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
        self._evaluated = None  # other weights at the same step
        self._graphed = self._new_graph()  # a graph would replay into the replaced tensors
        self._restart_coverage()  # bins refitted, next evaluation due once enough reals are kept

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint that `load` resumes exactly (on the CPU)."""
        checkpoint.save(self.state_dict(), path)

    def load(self, path: str | os.PathLike) -> "Trainer":
        """Restore a checkpoint written by `save` into this trainer (same models and data)."""
        self.load_state_dict(checkpoint.load(path, map_location=self.device))
        return self
