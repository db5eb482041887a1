"""`attach(G, D, ...) -> Monitor`: record a GAN's training from hooks, without code changes.

    with gandiag.attach(netG, netD, opt_g=optimizerG, opt_d=optimizerD) as monitor:
        for real in loader:
            ...                                     # the unchanged training loop
            monitor.log(loss_d=errD, loss_g=errG)   # optional: losses, any scalars
    steps, values = monitor.history["D/out_real/mean"]

What the hooks do (no host-device sync anywhere on the step):
- D's forward hooks add statistics of its outputs to a pending accumulator, marked real
  or fake by provenance (see `phase`); the next optimizer step says which update the
  calls served, so D-step and G-step values never mix.
- The optimizer step pre-hooks measure per-layer gradient norms of the model about to be
  updated (unscaled: AMP's GradScaler unscales before the step), every `weight_every`
  steps also weight norms and update/weight ratios, and during the first
  `leak_check_steps` steps a gradient-leak check (`leak`).
- G's optimizer step ends a training step (the step counts G updates): the row of
  measurements is committed to the device buffer at the next event, so that losses
  logged after `opt_g.step()` still belong to it.
- Every `flush_every` steps the buffer comes to the host (the one sync), into
  `monitor.history` (bounded memory) and to the callbacks' `on_records` (the run store,
  the live diagnosis, a dashboard).

Callbacks (`gandiag.core.Callback`, the protocol a Trainer drives too) are added with
`add_callback`. In a user's loop (`owner="user"`) the monitor drives every hook:
`on_fit_start` when added, `on_step_end` after G's optimizer step, `on_records` and then
`on_flush` at each flush, `on_fit_end` at `remove()`. Under a Trainer (`owner="trainer"`)
the monitor delivers `on_records` and `on_alert` only, with the trainer as the host; the
trainer drives the rest.

D outputs are treated as **logits**. A D that ends in `nn.Sigmoid` (the PyTorch DCGAN
tutorial, trained with BCELoss) is detected and read through the Sigmoid's input, the
exact logits; with `d_output="probability"` and no Sigmoid module, outputs p are read as
logit(p) with p clipped to [1e-7, 1 - 1e-7] (so logits beyond ±16.1 saturate).
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

from gandiag.hooks.buffer import DeviceBuffer, _world_size
from gandiag.hooks.calls import DCalls
from gandiag.hooks.checks import check_optimizer, resolve_d_output, unwrap
from gandiag.hooks.gradients import GradientRecorder, ModelLayers, WeightRecorder
from gandiag.hooks.health import health_warnings
from gandiag.core.alert import Alert
from gandiag.core.callback import Callback
from gandiag.core.history import History
from gandiag.hooks.layout import Layout
from gandiag.hooks.leak import LeakProbe, probe_parameter
from gandiag.hooks.outputs import SLOTS, OutputStats
from gandiag.hooks.phase import check_phase
from gandiag.core.records import Records

LOSS_NAMES = {"loss_d": "D/loss", "loss_g": "G/loss"}
_SLOT_OF = {(role, kind): f"{role}/out_{kind}" for role in ("D", "G") for kind in ("real", "fake")}
_ATTACHED: "weakref.WeakKeyDictionary[nn.Module, Monitor]" = weakref.WeakKeyDictionary()


def attached_monitor(model: nn.Module) -> Monitor | None:
    """The monitor attached to `model` (or to the module a DDP wrapper holds), if any."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return _ATTACHED.get(model)


class Monitor:
    """Hooks on G, D and their optimizers plus what they recorded; see `attach`."""

    def __init__(self, G: nn.Module, D: nn.Module, *, opt_g: torch.optim.Optimizer | None = None,
                 opt_d: torch.optim.Optimizer | None = None, flush_every: int = 50,
                 d_output: str = "auto", output_fn: Callable[[Any], Tensor] | None = None,
                 hist_bins: int = 40, hist_range: tuple[float, float] = (-10.0, 10.0),
                 weight_every: int = 50, leak_check_steps: int = 20,
                 recent: int = 10_000, overview: int = 2_000,
                 auto_flush: bool = True, owner: str = "user") -> None:
        G, D = unwrap("G", G), unwrap("D", D)
        if G is D:
            raise ValueError("gandiag.attach: G and D are the same module; pass the generator "
                             "and the discriminator, in that order")
        for model in (G, D):
            if model in _ATTACHED:
                raise RuntimeError(
                    f"gandiag.attach: {type(model).__name__} already has a monitor attached; "
                    "call monitor.remove() (or leave its `with` block) before attaching again"
                )
        for name, value, least in (("flush_every", flush_every, 1), ("weight_every", weight_every, 0),
                                   ("leak_check_steps", leak_check_steps, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"gandiag.attach: expected {name} to be an integer >= {least}, got {value!r}")
        self._G, self._D = weakref.ref(G), weakref.ref(D)
        self.flush_every, self.weight_every = flush_every, weight_every
        self.leak_check_steps, self.auto_flush = leak_check_steps, auto_flush
        self.owner = owner
        self.step = 0  # G updates seen
        self.history = History(recent=recent, overview=overview)
        self.callbacks: list[Callback] = []
        self.host: Any = self  # what callbacks are handed: this monitor, or the trainer that owns it
        self.alerts: list[Alert] = []  # every alert announced through alert()
        self.config: Any = None  # attach's config (a dict), for callbacks that read the loss
        self.end_status = "running"  # how the loop ended, set by remove() (see Callback)
        self._consumers: list[Callable[[Records], None]] = []  # deprecated plain callables
        self.writer: Any = None  # the RunWriter of attach(store=...)
        self.diagnosis: Any = None  # the live gandiag.detect.Diagnosis of attach(diagnose=True)
        device = next((p.device for p in D.parameters()), torch.device("cpu"))
        self.buffer = DeviceBuffer(device, capacity=2 * flush_every)
        self.stats = OutputStats(bins=hist_bins, value_range=hist_range)
        self._layers = {"D": ModelLayers(D), "G": ModelLayers(G)}
        self.layout = Layout(self.buffer, self.stats, self._layers["D"], self._layers["G"],
                             leak_check=leak_check_steps > 0)
        # D calls' logits by slot, for the step in progress
        self._row_calls: dict[str, list[Tensor]] = {slot: [] for slot in SLOTS}
        self._row_spreads: dict[str, list[Tensor]] = {slot: [] for slot in SLOTS}
        # CPU: (row number, ring position, calls by slot) of committed rows, summed at flush
        self._deferred: list[tuple[int, int, list[list[Tensor]]]] = []
        self._committed = 0  # rows committed
        self._lock = threading.RLock()
        self._row_due = False
        self._rows_unflushed = 0
        self._recorders: dict[Any, tuple] = {}  # per optimizer (and per role for update_done)
        self._roles: "weakref.WeakKeyDictionary[torch.optim.Optimizer, str | None]" = weakref.WeakKeyDictionary()
        self._warned: set[str] = set()
        self._handles: list[Any] = []
        # Everything that can refuse comes before the first hook, so a refused attach
        # leaves the models untouched.
        self.d_output, sigmoid = resolve_d_output(D, d_output)
        self.calls = DCalls(d_output=self.d_output, output_fn=output_fn, device=device)
        optimizers = self._check_optimizers(opt_g, opt_d)
        self._probes = self._make_probes(D, G) if leak_check_steps > 0 and _world_size() == 1 else {}
        self._hook_models(G, D, sigmoid)
        self._hook_optimizers(optimizers)
        _ATTACHED[G] = _ATTACHED[D] = self
        self.removed = False

    # ---- attaching -------------------------------------------------------------------
    def _hook_models(self, G: nn.Module, D: nn.Module, sigmoid: nn.Module | None) -> None:
        self._handles.append(G.register_forward_hook(self._on_g_output))
        self._handles.append(D.register_forward_pre_hook(self._on_d_input, with_kwargs=True))
        self._handles.append(D.register_forward_hook(self._on_d_output))
        self._sigmoid = weakref.ref(sigmoid) if sigmoid is not None else lambda: None
        if sigmoid is not None:
            self._handles.append(sigmoid.register_forward_hook(self._on_sigmoid))

    def _check_optimizers(self, opt_g: Any, opt_d: Any) -> dict[str, torch.optim.Optimizer]:
        if opt_g is None and opt_d is None:
            return {}
        for role, optimizer in (("G", opt_g), ("D", opt_d)):
            if optimizer is None:
                raise ValueError(
                    f"gandiag.attach: got opt_{'d' if role == 'G' else 'g'} but opt_{role.lower()}=None; "
                    "pass both optimizers, or neither to have them found from their steps"
                )
            check_optimizer(role, optimizer, self._layers)
        return {"G": opt_g, "D": opt_d}

    def _hook_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        if not optimizers:  # find them: every optimizer reports its steps
            self._handles.append(optim_hooks.register_optimizer_step_pre_hook(self._on_any_pre))
            self._handles.append(optim_hooks.register_optimizer_step_post_hook(self._on_any_post))
        for role, optimizer in optimizers.items():
            self._roles[optimizer] = role
            self._handles.append(optimizer.register_step_pre_hook(self._on_any_pre))
            self._handles.append(optimizer.register_step_post_hook(self._on_any_post))

    def _make_probes(self, D: nn.Module, G: nn.Module) -> dict[str, LeakProbe]:
        probes = {}
        for role, model in (("D", D), ("G", G)):
            parameter = probe_parameter(model)
            if parameter is not None:
                probes[role] = LeakProbe(parameter)
        return probes

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
    def _role(self, optimizer: torch.optim.Optimizer) -> str | None:
        if optimizer not in self._roles:
            self._roles[optimizer] = check_optimizer(None, optimizer, self._layers, warn=self._warn_once)
        return self._roles[optimizer]

    def _on_any_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        role = self._role(optimizer)
        if role is not None:
            with self._lock:
                self._before_update(role, self._recorders_for(optimizer, role))

    def _before_update(self, role: str, recorders: tuple[GradientRecorder, WeightRecorder] | None) -> None:
        """Right before `role`'s update: attribute pending D calls, measure gradients."""
        self._commit_due()
        columns = self.layout.models[role]
        for kind, calls in self.calls.pending.items():
            if calls:
                self._row_calls[_SLOT_OF[role, kind]].extend(calls)
                calls.clear()
            spreads = self.calls.spreads[kind]
            if spreads:
                self._row_spreads[_SLOT_OF[role, kind]].extend(spreads)
                spreads.clear()
        if recorders is None:  # update_done(): all of the model's parameters
            layers = self._layers[role]
            recorders = self._recorders.setdefault(role, _recorders(
                GradientRecorder(layers, layers.parameters, self.buffer.device, self.buffer.dtype)))
        gradients, weights = recorders
        self.buffer.add(columns.grad_sq, gradients.squared_norms())
        self.buffer.add(columns.grad_steps, 1.0)
        if self.weight_every and (self.step + 1) % self.weight_every == 0:
            weights.before_step()
        if self._probes and self.step < self.leak_check_steps and role in self._probes:
            self.buffer.put(columns.leak, self._probes[role].own_step())
            other = "G" if role == "D" else "D"
            if other in self._probes:
                self._probes[other].other_step()

    def _on_any_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        role = self._role(optimizer)
        if role is None:
            return
        with self._lock:
            if self.weight_every and (self.step + 1) % self.weight_every == 0:
                _, weights = self._recorders_for(optimizer, role)
                columns = self.layout.models[role]
                self.buffer.put(columns.weights, weights.after_step().reshape(-1))
                self.buffer.put(columns.weight_measured, 1.0)
            if role == "G":
                self._end_step()
        if role == "G":
            self._step_ended()

    def _recorders_for(self, optimizer: torch.optim.Optimizer, role: str) -> tuple[GradientRecorder, WeightRecorder]:
        # Rebuilt when the optimizer's parameter groups change (add_param_group); a cheap
        # check, as it runs at every update.
        groups = optimizer.param_groups
        signature = (len(groups), id(groups[-1]["params"]), len(groups[-1]["params"]))
        entry = self._recorders.get(id(optimizer))
        if entry is None or entry[2] != signature:
            layers = self._layers[role]
            params = [p for group in optimizer.param_groups for p in group["params"] if layers.owns(p)]
            gradients = GradientRecorder(layers, params, self.buffer.device, self.buffer.dtype)
            entry = (*_recorders(gradients), signature)
            self._recorders[id(optimizer)] = entry
        return entry[0], entry[1]

    def update_done(self, role: str) -> None:
        """Mark an update of 'D' or 'G' made without a torch.optim optimizer (whose steps
        report themselves): D calls since the last update are attributed to it, gradient
        norms are read from .grad, and 'G' ends the training step."""
        if role not in ("D", "G"):
            raise ValueError(f"monitor.update_done: expected 'D' or 'G', got {role!r}")
        with self._lock:
            self._before_update(role, None)
            if role == "G":
                self._end_step()
        if role == "G":
            self._step_ended()

    def _end_step(self) -> None:
        self._commit_due()
        self.step += 1
        self._row_due = True
        if self._probes and self.step >= self.leak_check_steps:
            for probe in self._probes.values():
                probe.remove()
            self._probes = {}

    def _commit_due(self) -> None:
        if not self._row_due:
            return
        calls = list(self._row_calls.values())
        if any(calls):
            if self.buffer.on_host:
                # CPU: the statistics of all the steps of a flush in one numpy pass at
                # flush time (per step only this list grows), measured ~10x cheaper.
                self._deferred.append((self._committed, self.buffer.next_position, [list(c) for c in calls]))
            else:  # all D outputs of the step in one batched computation on the device
                self.buffer.add(self.layout.all_slots, self.stats.sums(calls, self.buffer.dtype).reshape(-1))
            for slot_calls in calls:
                slot_calls.clear()
        for slot, spreads in self._row_spreads.items():
            if spreads:  # sum and count of the input spreads of the step's calls
                column = self.layout.spreads[slot]
                total = (sum(v.item() for v in spreads) if self.buffer.on_host  # sync ok: CPU tensors
                         else torch.stack(spreads).sum())
                self.buffer.add(column, total)
                self.buffer.add(column + 1, float(len(spreads)))
                spreads.clear()
        self.buffer.commit()
        self._row_due = False
        self._committed += 1
        self._rows_unflushed += 1
        if self.auto_flush and self._rows_unflushed >= self.flush_every:
            self.flush()

    # ---- steps replayed from a CUDA graph (gandiag.capture_step) -------------------
    def commit_step(self) -> None:
        """Commit the finished step's row now rather than at the next hook; a captured step
        ends with it, so that each replay commits its own row inside the graph."""
        with self._lock:
            self._commit_due()

    @property
    def weights_due(self) -> bool:
        """True when the coming step measures weight norms (every `weight_every` steps):
        such steps run another captured graph than the others."""
        return bool(self.weight_every) and (self.step + 1) % self.weight_every == 0

    @property
    def leak_check_active(self) -> bool:
        """True during the first `leak_check_steps` steps (host-side checks: not capturable)."""
        return bool(self._probes)

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """While a step is captured its hooks run but no step happens: undo their counting."""
        if self.buffer.on_host:
            raise RuntimeError("monitor.capturing: a CPU monitor records on the host; only a "
                               "CUDA monitor can be captured in a graph")
        with self._lock:
            counters = self.step, self._committed, self._rows_unflushed
            try:
                yield
            except BaseException:  # a failed capture: what its hooks collected never ran
                self.calls.clear()
                for held in (*self._row_calls.values(), *self._row_spreads.values()):
                    held.clear()
                raise
            finally:
                self.step, self._committed, self._rows_unflushed = counters
                self._row_due = False

    def replayed(self) -> None:
        """Account for one step replayed from a CUDA graph (its row is already committed)."""
        with self._lock:
            self.step += 1
            self._committed += 1
            self._rows_unflushed += 1
            due = self.auto_flush and self._rows_unflushed >= self.flush_every
        if due:
            self.flush()
        self._step_ended()

    def log(self, values: Mapping[str, Any] | None = None, /, **scalars: Any) -> None:
        """Record scalars for the current step: `loss_d`/`loss_g` (stored as D/loss,
        G/loss) and any others by name. Device tensors stay on the device (no sync);
        several values of one key in a step are averaged."""
        items = {LOSS_NAMES.get(name, name): value for name, value in {**(values or {}), **scalars}.items()}
        tensors, numbers = {}, {}
        for key, value in items.items():  # check everything before recording anything
            if isinstance(value, Tensor) and value.numel() != 1:
                raise ValueError(
                    f"monitor.log: {key} has shape {tuple(value.shape)}; expected one "
                    f"number per step (reduce it first, e.g. loss.mean())"
                )
            if isinstance(value, Tensor) and value.device == self.buffer.device and not self.buffer.on_host:
                tensors[key] = value.detach().reshape(())  # stays on the device: no sync
            else:
                numbers[key] = _number(key, value)
        with self._lock:
            if tensors:
                columns = self.layout.logged_columns(list(tensors))
                values = torch.stack(list(tensors.values()))
                start = columns[0]
                if columns == list(range(start, start + 2 * len(columns), 2)):
                    # The usual case, the same keys every step: one block of (sum, count).
                    self.buffer.add(slice(start, start + 2 * len(columns), 2), values)
                    self.buffer.add(slice(start + 1, start + 2 * len(columns), 2), 1.0)
                else:
                    for i, column in enumerate(columns):
                        self.buffer.add(column, values[i])
                        self.buffer.add(column + 1, 1.0)
            for number, column in zip(numbers.values(), self.layout.logged_columns(list(numbers))):
                self.buffer.add(column, number)  # a Python number: no copy to the device
                self.buffer.add(column + 1, 1.0)

    def flush(self) -> Records:
        """Bring everything recorded so far to the host (one sync); returns the new records."""
        with self._lock:
            self._commit_due()
            self._fill_deferred()
            steps, rows = self.buffer.read()
            self._rows_unflushed = 0
            records, leaks = self.layout.decode(steps, rows)
            self.history.append(records)
            self._check_health(records, leaks)
        self._deliver(records)
        if records and self.owner == "user":
            for callback in self._active():
                callback.on_flush(self.host, records)
        return records

    # ---- callbacks -------------------------------------------------------------------
    def add_callback(self, callback: Callback) -> Callback:
        """Drive `callback` (see the module doc) from now on; in a user's loop its
        `on_fit_start` runs at once. Returns it."""
        if not callable(getattr(callback, "on_records", None)):
            raise TypeError(f"monitor.add_callback: expected a gandiag.Callback, got "
                            f"{type(callback).__name__}; subclass gandiag.Callback and override "
                            "the hooks you need (e.g. on_records(host, records))")
        if self.owner == "user" and (_rank() == 0 or not callback.rank_zero_only):
            callback.on_fit_start(self.host)  # first: a callback that cannot start is not kept
        self.callbacks.append(callback)
        return callback

    def remove_callback(self, callback: Callback) -> None:
        """Stop driving `callback` (no-op if it is not driven)."""
        if callback in self.callbacks:
            self.callbacks.remove(callback)

    @property
    def consumers(self) -> list[Callable[[Records], None]]:
        """Deprecated: plain callables that get each records batch; use `add_callback`
        with a `gandiag.Callback` overriding `on_records(host, records)`."""
        warnings.warn("monitor.consumers is deprecated; use monitor.add_callback(callback) with a "
                      "gandiag.Callback overriding on_records(host, records)", DeprecationWarning,
                      stacklevel=2)
        return self._consumers

    def alert(self, alert: Alert) -> None:
        """Announce `alert` (raised by a detector): kept in `alerts`, handed to every
        callback's `on_alert` (the run store writes it, a dashboard shows it)."""
        self.alerts.append(alert)
        for callback in self._active():
            callback.on_alert(self.host, alert)

    def _active(self) -> list[Callback]:
        """The callbacks this rank runs: under DDP, ranks other than 0 skip the
        `rank_zero_only` ones (store, progress, diagnosis), so one process writes."""
        if _rank() == 0:
            return list(self.callbacks)
        return [c for c in self.callbacks if not getattr(c, "rank_zero_only", False)]

    def _step_ended(self) -> None:
        """After G's update, outside the lock: a user loop's `on_step_end`."""
        if self.owner == "user":
            for callback in self._active():
                callback.on_step_end(self.host)

    def _deliver(self, records: Records) -> None:
        if records and _rank() == 0:
            for callback in list(self.callbacks):
                self._guarded(callback.on_records, records, callback)
            for consumer in list(self._consumers):
                self._guarded(consumer, records, consumer)

    def _guarded(self, hook: Callable, records: Records, owner: Any) -> None:
        try:
            hook(self.host, records) if owner is not hook else hook(records)
        except Exception as error:  # a broken callback must not stop training
            self._warn_once(f"callback {owner!r}",
                            f"gandiag: {type(owner).__name__} failed on new records ({error!r}); "
                            "the records stay in the history and training goes on")

    def record(self, scalars: Mapping[str, float], *, step: int | None = None) -> Records:
        """Record host values measured outside the hooks (e.g. `metric/<name>` from a metric
        schedule) at `step` (default: the current step): into the history and to the
        consumers, like a flush."""
        at = np.array([self.step if step is None else int(step)], dtype=np.int64)
        records = Records(scalars={key: (at, np.array([float(value)])) for key, value in scalars.items()})
        with self._lock:
            self.history.append(records)
        self._deliver(records)
        return records

    def _fill_deferred(self) -> None:
        """CPU: add the output statistics of the committed steps to their ring rows."""
        oldest = self._committed - self.buffer.capacity  # rows before it were overwritten
        deferred = [entry for entry in self._deferred if entry[0] >= oldest]
        self._deferred = []
        if deferred:
            positions = [position for _, position, _ in deferred]
            slots = [calls for _, _, row in deferred for calls in row]
            sums = self.stats.sums_numpy(slots).reshape(len(deferred), -1)
            self.buffer.add_to_rows(positions, self.layout.all_slots, sums)

    @contextlib.contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        """Declare D calls inside the block as 'real', 'fake' or 'ignore' (not recorded)."""
        previous, self.calls.phase = self.calls.phase, check_phase(phase)
        try:
            yield
        finally:
            self.calls.phase = previous

    # ---- health --------------------------------------------------------------------
    def _check_health(self, records: Records, leaks: dict[str, list[str]]) -> None:
        for topic, message, category in health_warnings(
                records, leaks, self.calls.seen, step=self.step, user_loop=self.owner == "user"):
            self._warn_once(topic, message, category)

    def _warn_once(self, topic: str, message: str, category: type[Warning] = UserWarning) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            warnings.warn(message, category, stacklevel=3)

    # ---- lifetime --------------------------------------------------------------------
    def remove(self, *, status: str = "finished") -> None:
        """Flush what is left and take every hook off (idempotent). History stays; in a
        user's loop the callbacks' `on_fit_end` runs with `end_status` = `status` (a run
        store opened by attach(store=...) closes with it)."""
        if self.removed:
            return
        try:
            self.flush()
        finally:
            self.end_status = status
            self.removed = True
            try:
                if self.owner == "user":
                    for callback in self._active():
                        callback.on_fit_end(self.host)
            finally:
                self._take_hooks_off()

    def _take_hooks_off(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for probe in self._probes.values():
            probe.remove()
        self._probes = {}
        self.calls.clear()
        self._recorders.clear()  # they hold parameters; a removed monitor keeps no model alive
        self._layers = {}
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
        if self._row_due or self._rows_unflushed:
            self.flush()
        return {"step": self.step, "history": self.history.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flush()
        self.step = int(state["step"])
        self.buffer.set_step(self.step)
        self.history.load_state_dict(state["history"])

    def __repr__(self) -> str:
        state = "removed" if self.removed else "attached"
        return f"<gandiag.Monitor {state}, step {self.step}, {len(self.history)} series>"


def _recorders(gradients: GradientRecorder) -> tuple[GradientRecorder, WeightRecorder]:
    return gradients, WeightRecorder(gradients)


def _number(name: str, value: Any) -> float:
    try:
        return float(value.detach()) if isinstance(value, Tensor) else float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"monitor.log: {name} must be a number or a one-element tensor, got "
            f"{type(value).__name__}"
        ) from None


def _rank() -> int:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank()
    return 0
