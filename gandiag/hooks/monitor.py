"""`attach(G, D, ...) -> Monitor`: record a GAN's training from hooks, without code changes.

    with gandiag.attach(netG, netD, opt_g=optimizerG, opt_d=optimizerD) as monitor:
        for real in loader:
            ...                                     # the unchanged training loop
            monitor.log(loss_d=errD, loss_g=errG)   # optional: losses, any scalars
    steps, values = monitor.history["D/out_real/mean"]

What the hooks do (no host-device sync anywhere on the step):
- D's forward hooks keep D's outputs until the next optimizer step says which update the
  calls served; they are then filed real, fake or penalty input (`calls`, `phase`), so
  D-step and G-step values never mix. A few rows of D's real and fake inputs are copied
  for label-free coverage (`reservoir`, `keep_samples`, `sample_shape`).
- The optimizer step pre-hooks measure per-layer gradient norms of the model about to be
  updated (unscaled: AMP's GradScaler unscales before the step), every `weight_every`
  steps also weight norms, update/weight ratios and the learning rate (`updates`), and
  during the first `leak_check_steps` steps a gradient-leak check (`leak`).
- A row is one iteration of the loop: one G update and the D updates of the same
  iteration, D-first or G-first (`steprow`; the step counts G updates). Each row is
  committed to the device buffer at the first event after its iteration's last update,
  so that losses logged at the end of the iteration still belong to it; `remove()`
  commits what is left as a partial row (`row/partial`).
- A model whose optimizer stops stepping while the other trains (`opt_g.step()` forgotten)
  is found *idle* from host counters (`idle`): then D's updates end the steps, and every
  `weight_every` steps it records `<role>/idle/*` and an update ratio of 0 (`frozen_model`).
- Every `log_every` steps the buffer comes to the host (the one sync), into
  `monitor.history` (bounded memory) and to the callbacks' `on_records` (the run store,
  the live diagnosis, a dashboard).

Callbacks (`gandiag.core.Callback`, the protocol a Trainer drives too) are added with
`add_callback`; `delivery` says which hooks the monitor drives in a user's loop
(`owner="user"`: all of them) and under a Trainer (`owner="trainer"`: `on_records` and
`on_alert`, with the trainer as the host).

D's outputs are read by the loss family (`gandiag.core.family`): given as
`loss=` ('nonsaturating', 'lsgan', 'lsgan:-1,1', 'hinge', 'wgan', ...), else inferred at the
first flush from the gradients the loop's loss leaves on them (`infer`). A D that ends in
`nn.Sigmoid` (the PyTorch DCGAN tutorial, trained with BCELoss) is read through the
Sigmoid's input, the exact logits; with `d_output="probability"` and no Sigmoid module,
outputs p are read as logit(p) with p clipped to [1e-7, 1 - 1e-7].
"""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
import torch.optim.optimizer as optim_hooks
from torch import Tensor, nn

from gandiag.core.history import History
from gandiag.core.records import Histograms, Records
from gandiag.hooks.buffer import DeviceBuffer, _world_size
from gandiag.hooks.calls import DCalls
from gandiag.hooks.checks import resolve_d_output, unwrap
from gandiag.hooks.delivery import CallbackDriver
from gandiag.hooks.gradients import ModelLayers
from gandiag.hooks.graphs import GraphSteps
from gandiag.hooks.health import health_warnings
from gandiag.hooks.idle import IdleWatch
from gandiag.hooks.infer import FamilyState, resolve_loss
from gandiag.hooks.layout import Layout
from gandiag.hooks.logged import add_logged, checked_values
from gandiag.hooks.options import check_counts, check_models, check_shape, renamed_flush_every
from gandiag.hooks.outputs import OutputStats
from gandiag.hooks.phase import check_phase
from gandiag.hooks.reservoir import SampleReservoir
from gandiag.hooks.rows import row_writer
from gandiag.hooks.steprow import StepRow
from gandiag.hooks.updates import Recorders, UpdateMeasures

_ATTACHED: "weakref.WeakKeyDictionary[nn.Module, Monitor]" = weakref.WeakKeyDictionary()


def attached_monitor(model: nn.Module) -> Monitor | None:
    """The monitor attached to `model` (or to the module a DDP wrapper holds), if any."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return _ATTACHED.get(model)


class Monitor(CallbackDriver, GraphSteps):
    """Hooks on G, D and their optimizers plus what they recorded; see `attach`."""

    def __init__(self, G: nn.Module, D: nn.Module, *, opt_g: torch.optim.Optimizer | None = None,
                 opt_d: torch.optim.Optimizer | None = None, log_every: int = 50,
                 d_output: str = "auto", output_fn: Callable[[Any], Tensor] | None = None,
                 hist_bins: int = 40, hist_range: tuple[float, float] = (-10.0, 10.0),
                 weight_every: int = 50, leak_check_steps: int = 20,
                 recent: int = 10_000, overview: int = 2_000, loss: str | None = None,
                 keep_samples: int = 2000, sample_shape: tuple[int, ...] | None = None,
                 auto_flush: bool = True, owner: str = "user", flush_every: int | None = None) -> None:
        if flush_every is not None:
            log_every = renamed_flush_every(flush_every, log_every, default=50)
        G, D = unwrap("G", G), unwrap("D", D)
        check_models(G, D, _ATTACHED)
        check_counts(log_every=(log_every, 1), weight_every=(weight_every, 0),
                     leak_check_steps=(leak_check_steps, 0), keep_samples=(keep_samples, 0))
        super().__init__(owner=owner)
        self._G, self._D = weakref.ref(G), weakref.ref(D)
        self.log_every, self.weight_every = log_every, weight_every
        self.leak_check_steps, self.auto_flush = leak_check_steps, auto_flush
        self.history = History(recent=recent, overview=overview)
        self.config: Any = None  # attach's config (a dict); its "loss" is set once known
        self.end_status = "running"  # how the loop ended, set by remove() (see Callback)
        self.writer: Any = None  # the RunWriter of attach(store=...)
        self.diagnosis: Any = None  # the live gandiag.detect.Diagnosis of attach(diagnose=True)
        self.coverage: Any = None  # the gandiag.metrics.LabelFreeCoverage of attach(coverage_every=...)
        device = next((p.device for p in D.parameters()), torch.device("cpu"))
        self.buffer = DeviceBuffer(device, capacity=2 * log_every)
        self.stats = OutputStats(bins=hist_bins, value_range=hist_range)
        layers = {"D": ModelLayers(D), "G": ModelLayers(G)}
        self.layout = Layout(self.buffer, self.stats, layers["D"], layers["G"],
                             leak_check=leak_check_steps > 0)
        self._row = StepRow()  # the step in progress and the step/row counters
        self._rows = row_writer(self.buffer, self.stats, self.layout)  # host or device statistics
        self._updates = UpdateMeasures(layers, self.buffer, self.layout)  # gradients, weights, leaks
        self._lock = threading.RLock()
        self._handles: list[Any] = []
        # Everything that can refuse comes before the first hook, so a refused attach
        # leaves the models untouched.
        self.d_output, sigmoid = resolve_d_output(D, d_output)
        given = resolve_loss(loss, self.d_output)
        # A few of D's inputs for label-free coverage, about 128 of each kind per flush.
        self.reservoir = (SampleReservoir(keep=keep_samples, sample_shape=check_shape(sample_shape),
                                          take=max(1, -(-128 // log_every)))
                          if keep_samples else None)
        self.calls = DCalls(d_output=self.d_output, output_fn=output_fn, device=device,
                            warn=self._warn_once, reservoir=self.reservoir)
        self.family = FamilyState(given, self.calls, self.stats, self._rows)  # how D's outputs are read
        optimizers = self._updates.given(opt_g, opt_d)
        self._idle = IdleWatch(armed={"G", *optimizers})  # a model whose updates stopped (`idle`)
        if leak_check_steps > 0 and _world_size() == 1:
            self._updates.start_leak_check(D, G)
        self._hook_models(G, D, sigmoid)
        self._hook_optimizers(optimizers)
        _ATTACHED[G] = _ATTACHED[D] = self
        self.removed = False

    @property
    def step(self) -> int:
        """G updates seen (training steps ended)."""
        return self._row.step

    @step.setter
    def step(self, value: int) -> None:
        self._row.step = value

    @property
    def flush_every(self) -> int:
        """Deprecated name of `log_every`."""
        warnings.warn("monitor.flush_every is deprecated; read monitor.log_every (the same "
                      "cadence as TrainConfig.log_every)", DeprecationWarning, stacklevel=2)
        return self.log_every

    # ---- attaching -------------------------------------------------------------------
    def _hook_models(self, G: nn.Module, D: nn.Module, sigmoid: nn.Module | None) -> None:
        self._handles.append(G.register_forward_hook(self._on_g_output))
        self._handles.append(D.register_forward_pre_hook(self._on_d_input, with_kwargs=True))
        self._handles.append(D.register_forward_hook(self._on_d_output))
        self._sigmoid = weakref.ref(sigmoid) if sigmoid is not None else lambda: None
        if sigmoid is not None:
            self._handles.append(sigmoid.register_forward_hook(self._on_sigmoid))

    def _hook_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        if not optimizers:  # find them: every optimizer reports its steps
            self._handles.append(optim_hooks.register_optimizer_step_pre_hook(self._on_any_pre))
            self._handles.append(optim_hooks.register_optimizer_step_post_hook(self._on_any_post))
        for role, optimizer in optimizers.items():
            self._updates.assign(optimizer, role)
            self._handles.append(optimizer.register_step_pre_hook(self._on_any_pre))
            self._handles.append(optimizer.register_step_post_hook(self._on_any_post))

    # ---- model hooks -----------------------------------------------------------------
    def _on_g_output(self, module: nn.Module, args: tuple, output: Any) -> None:
        if module is not self._G():  # a copy of G (an EMA made by deepcopy) is not G
            return
        with self._lock:
            self._commit_due()
            self.calls.g_output(output)

    def _on_d_input(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if module is not self._D():
            return
        with self._lock:
            self._commit_due()
            self.calls.d_input(args, kwargs)

    def _on_sigmoid(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        if module is not self._sigmoid():  # the Sigmoid of a copy of D
            return
        self.calls.sigmoid_input(args)

    def _on_d_output(self, module: nn.Module, args: tuple, output: Any) -> None:
        if module is not self._D():
            return
        with self._lock:
            self.calls.d_output(output)

    # ---- optimizer hooks -------------------------------------------------------------
    def _on_any_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        role = self._updates.role(optimizer, self._warn_once)
        if role is not None:
            with self._lock:
                self._before_update(role, self._updates.of_optimizer(optimizer, role),
                                    optimizer.param_groups[0].get("lr"))

    def _before_update(self, role: str, recorders: Recorders, lr: Any = None) -> None:
        """Right before `role`'s update: file pending D calls, measure gradients."""
        self._row.begin(role)
        skipped = self._idle.updated(role, step=self.step)
        if skipped is not None:  # G idle: D updates end the steps, each row held until the
            self._row.due = True  # next update; the first time, the open row's D updates
            if skipped:          # become as many steps (`idle`)
                self._row.step += skipped
                self.buffer.set_step(self._row.step - 1)
        self._commit_due()
        self._row.attribute(role, self.calls)
        if role == "D":
            self.family.add(self.calls.filed_calls)
        self._updates.before(role, recorders, weights_due=self.weights_due,
                             leak_check=self.step < self.leak_check_steps, lr=lr)

    def _on_any_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        role = self._updates.role(optimizer, self._warn_once)
        if role is None:
            return
        with self._lock:
            if self.weights_due:  # measured at the next event: after edits such as WGAN's clipping
                self._updates.weigh_later(optimizer, role)
            ends = self._ends_step(role)
            if ends:
                self._end_step(hold=role == "D")
        if ends:
            self._step_ended()

    def update_done(self, role: str) -> None:
        """Mark an update of 'D' or 'G' made without a torch.optim optimizer (whose steps
        report themselves): D calls since the last update are attributed to it, gradient
        norms are read from .grad, and 'G' ends the training step."""
        if role not in ("D", "G"):
            raise ValueError(f"monitor.update_done: expected 'D' or 'G', got {role!r}")
        with self._lock:
            self._before_update(role, self._updates.of_model(role))
            ends = self._ends_step(role)
            if ends:
                self._end_step(hold=role == "D")
        if ends:
            self._step_ended()

    def _ends_step(self, role: str) -> bool:
        """G's update ends the step; so does D's while G is idle (no G update in a long
        stretch of D updates, see `idle`), so that rows and flushes go on."""
        return role == "G" or self._idle.idle("G")

    def _end_step(self, *, hold: bool = False) -> None:
        self._commit_due()
        if self.weights_due:  # a model idle since the last weight step records it (`idle`)
            self._idle.weigh(self.step + 1, self.buffer, self.layout)
        self._row.end(hold=hold)
        if self._updates.probes and self.step >= self.leak_check_steps:
            self._updates.stop_leak_check()

    def _commit_due(self) -> None:
        """At every hook event: measure weights an update left, then commit the ended
        step's row if one waits (the first event after the iteration's last update)."""
        self._updates.weigh_pending()
        if not self._row.due:
            return
        self._row.commit(self._rows)
        if self.auto_flush and self._row.unflushed >= self.log_every:
            self.flush()

    # ---- recording -------------------------------------------------------------------
    def log(self, values: Mapping[str, Any] | None = None, /, **scalars: Any) -> None:
        """Record scalars for the current step: `loss_d`/`loss_g` (stored as D/loss,
        G/loss) and any others by name. Device tensors stay on the device (no sync);
        several values of one key in a step are averaged."""
        tensors, numbers = checked_values({**(values or {}), **scalars}, self._rows.stays_on_device)
        with self._lock:
            add_logged(self.buffer, self.layout, tensors, numbers)
            self._row.logged = True

    def flush(self) -> Records:
        """Bring everything recorded so far to the host (one sync); returns the new records."""
        with self._lock:
            self._commit_due()
            self.family.settle(self)
            self._rows.fill(self._row.committed)
            steps, rows = self.buffer.read()
            if self.reservoir is not None:
                self.reservoir.absorb()
            self._row.flushed()
            records, leaks = self.layout.decode(steps, rows)
            self.history.append(records)
            self._check_health(records, leaks)
        self._flushed(records)
        return records

    def record(self, scalars: Mapping[str, float], *, step: int | None = None,
               histograms: Mapping[str, Histograms] | None = None) -> Records:
        """Record host values measured outside the hooks (e.g. `metric/<name>` from a metric
        schedule) at `step` (default: the current step): into the history and to every
        callback's `on_records`, like a flush. `histograms`: key -> Histograms of that step."""
        at = np.array([self.step if step is None else int(step)], dtype=np.int64)
        records = Records(scalars={key: (at, np.array([float(value)])) for key, value in scalars.items()},
                          histograms=dict(histograms or {}))
        with self._lock:
            self.history.append(records)
        self._deliver(records)
        return records

    @contextlib.contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        """Declare D calls inside the block as 'real', 'fake' or 'ignore' (not recorded)."""
        previous, self.calls.phase = self.calls.phase, check_phase(phase)
        try:
            yield
        finally:
            self.calls.phase = previous

    def _check_health(self, records: Records, leaks: dict[str, list[str]]) -> None:
        for topic, message, category in health_warnings(
                records, leaks, self.calls.seen, step=self.step, user_loop=self.owner == "user"):
            self._warn_once(topic, message, category)

    # ---- lifetime --------------------------------------------------------------------
    def remove(self, *, status: str = "finished") -> None:
        """Flush what is left and take every hook off (idempotent). History stays; in a
        user's loop the callbacks' `on_fit_end` runs with `end_status` = `status` (a run
        store opened by attach(store=...) closes with it)."""
        if self.removed:
            return
        try:
            with self._lock:
                self._commit_due()
                if self._row.open:  # the last iteration's updates after G's, values logged after
                    self.buffer.put(self.layout.partial, float(self._row.partial))
                    self._row.commit(self._rows)
            self.flush()
        finally:
            self.end_status = status
            self.removed = True
            try:
                self._fit_ended()
            finally:
                self._take_hooks_off()

    def _take_hooks_off(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._updates.clear()  # probes off; recorders and layers hold parameters: dropped
        self.calls.clear()
        for model in (self._G(), self._D()):
            if model is not None and _ATTACHED.get(model) is self:
                del _ATTACHED[model]

    def __deepcopy__(self, memo: dict) -> "Monitor":
        # The hooks on G and D are bound methods of this monitor, so `copy.deepcopy(G)` (an
        # EMA of G, in the user's loop or a second Trainer's) reaches it. A monitor is a
        # live recording, not a value: the copy shares it, and the hooks ignore calls of a
        # module that is not the attached G or D.
        return self

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: Any) -> None:
        if kind is None:
            self.remove()
        else:
            self.remove(status="interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")

    def state_dict(self) -> dict[str, Any]:
        # Flush only what is new: under DDP a flush is a collective, and a checkpoint written
        # by rank 0 alone right after the trainer's flush must not wait for the other ranks.
        if self._row.due or self._row.unflushed:
            self.flush()
        return {"step": self.step, "history": self.history.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flush()
        self.step = int(state["step"])
        self.buffer.set_step(self.step)
        self._idle.resumed(self.step)
        self.history.load_state_dict(state["history"])

    def __repr__(self) -> str:
        state = "removed" if self.removed else "attached"
        return f"<gandiag.Monitor {state}, step {self.step}, {len(self.history)} series>"

