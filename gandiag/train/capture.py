"""`capture_step`: a whole GAN training step, recording included, as one CUDA graph.

Eager PyTorch launches each of a step's hundreds of kernels from Python; for small
models the GPU mostly waits for the launches. Captured once and replayed, the step costs
one launch. The monitor's hooks write into its device buffer with device ops only (the
write position lives on the device), so recording is captured with the step and every
replay records a row; the host only counts replays.

    captured = gandiag.capture_step(step, monitor=monitor, generators=[noise])
    for _ in range(steps):
        real_static.copy_(next_batch())    # inputs: copied into the tensors step() reads
        captured()                         # warm-up, then capture, then replays

What `step` must do (the Trainer's step does all of it): read inputs from tensors that
stay the same objects (copy new data into them), draw noise on the device inside the
step (`torch.randn(..., device="cuda")`, from the default generator or a `generators`
one), use optimizers built with `capturable=True`, zero gradients with
`set_to_none=True`, and never bring a value to the host (`.item()`, `if tensor:`). A
step that breaks a rule fails to capture with a `CaptureError` naming the cause.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch

if TYPE_CHECKING:
    from gandiag.hooks import Monitor


class CaptureError(RuntimeError):
    """The step cannot be captured as a CUDA graph; the message says why and the fix."""


class CapturedStep:
    """Calls `step` eagerly `warmup` times (on a side stream, as capture needs), then
    captures it and replays the graph at every later call. See `capture_step`."""

    def __init__(self, step: Callable[[], None], *, monitor: "Monitor | None" = None,
                 warmup: int = 3, generators: Iterable[torch.Generator] = ()) -> None:
        if not torch.cuda.is_available():
            raise CaptureError("capture_step: CUDA graphs need a CUDA device, and none is "
                               "available here; call the step eagerly instead")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"capture_step: expected warmup to be an integer >= 1, got {warmup!r}")
        self.step, self.monitor, self.warmup = step, monitor, warmup
        self.generators = [g for g in generators if g.device.type == "cuda"]
        self.graphs: dict[bool, torch.cuda.CUDAGraph] = {}  # by "measures weight norms"
        self.captures = 0  # how many graphs were captured (a new buffer column recaptures)
        self._warm = 0
        self._buffer_key: tuple[int, ...] | None = None
        self._stream: torch.cuda.Stream | None = None

    def __call__(self) -> None:
        """Run one training step."""
        monitor = self.monitor
        if monitor is not None and self._buffer_key != monitor.buffer.addresses:
            self.graphs.clear()  # the buffer grew (a new logged key): graphs write old memory
            self._buffer_key = monitor.buffer.addresses
        key = monitor.weights_due if monitor is not None else False
        graph = self.graphs.get(key)
        if graph is None:
            if self._warm < self.warmup or (monitor is not None and not monitor.ready_to_capture()):
                self._eager()
                return
            graph = self.graphs[key] = self._capture()
        graph.replay()  # also right after a capture, which recorded the step without running it
        if monitor is not None:
            monitor.replayed()

    def _eager(self) -> None:
        # Warm-up on a side stream, as the CUDA-graph docs ask: kernels that allocate
        # workspace or pick algorithms (cuDNN, cuBLAS) do it before capture.
        if self._stream is None:
            self._stream = torch.cuda.Stream()
        self._stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._stream):
            self.step()
            if self.monitor is not None:
                self.monitor.commit_step()
        torch.cuda.current_stream().wait_stream(self._stream)
        self._warm += 1

    def _capture(self) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        for generator in self.generators:
            if not hasattr(graph, "register_generator_state"):
                raise CaptureError(
                    f"capture_step: drawing from a torch.Generator inside a CUDA graph needs "
                    f"PyTorch >= 2.5 (this is {torch.__version__}); upgrade PyTorch or use "
                    "capture='none'")
            graph.register_generator_state(generator)
        monitor = self.monitor
        try:
            if monitor is not None:
                with monitor.capturing(), torch.cuda.graph(graph):
                    self.step()
                    monitor.commit_step()
            else:
                with torch.cuda.graph(graph):
                    self.step()
        except CaptureError:
            raise
        except Exception as error:
            raise CaptureError(
                f"capture_step: the step could not be captured as a CUDA graph ({type(error).__name__}: "
                f"{error}). Common causes: a host sync in the step (.item(), print of a tensor, "
                "`if tensor:`), an optimizer without capturable=True, or data-dependent shapes; "
                "train without capture (TrainConfig(capture='none')) or remove the sync"
            ) from error
        self.captures += 1
        return graph


def capture_step(step: Callable[[], None], *, monitor: "Monitor | None" = None, warmup: int = 3,
                 generators: Iterable[torch.Generator] = ()) -> CapturedStep:
    """`step` (a training step without arguments) as a `CapturedStep`: call it once per
    training step. Pass the `monitor` recording the step (from `gandiag.attach`) so that
    replays are counted, and any CUDA `torch.Generator` the step draws noise from.

    Example (a GPU; `step` reads `real_static`, see the module docstring):
        >>> captured = capture_step(step, monitor=monitor)   # doctest: +SKIP
        >>> for batch in loader:                              # doctest: +SKIP
        ...     real_static.copy_(batch)
        ...     captured()
    """
    return CapturedStep(step, monitor=monitor, warmup=warmup, generators=generators)


# ---- the Trainer's use of it --------------------------------------------------------
def resolve_capture(requested: str, *, device: torch.device, world_size: int,
                    instance_noise: float) -> str:
    """The capture mode a Trainer can use: `requested`, or "none" with a warning that says
    why (CPU, several ranks, a stabiliser whose value changes with the step)."""
    if requested == "none":
        return "none"
    if requested == "cuda_graph":
        reason = None
        if device.type != "cuda":
            reason = f"CUDA graphs need a CUDA device, and this run trains on {device}"
        elif world_size > 1:
            reason = ("DistributedDataParallel's gradient all-reduce is not captured here; "
                      "each rank runs eagerly")
        elif instance_noise:
            reason = ("instance_noise anneals with the step, a host value a replayed graph "
                      "cannot see; use r1_gamma or spectral_norm instead, or capture='compile'")
        if reason is not None:
            warnings.warn(f"TrainConfig(capture='cuda_graph'): {reason}; training eagerly "
                          "(capture='none')", stacklevel=3)
            return "none"
    return requested


def adam_options(capture: str, device: torch.device, lr: float) -> dict[str, Any]:
    """Adam's speed options: fused on CUDA (one kernel), foreach on the CPU (torch would
    otherwise loop over parameters: measured 30 % of a toy step); for a captured step also
    capturable, with the learning rate as a device tensor so that changing it (dashboard,
    schedules) reaches the replayed graph."""
    if device.type != "cuda":
        return {"lr": lr, "foreach": True}
    if capture == "cuda_graph":
        return {"lr": torch.tensor(lr, device=device), "fused": True, "capturable": True}
    return {"lr": lr, "fused": True}


class GraphedTrainStep:
    """The Trainer's step as a `CapturedStep`: real batches are copied into static tensors
    before each replay, learning rates set as numbers are copied into the graph's tensors,
    and a batch of another shape (a DataLoader's short last batch) runs eagerly."""

    def __init__(self, update: Callable[[list[torch.Tensor]], None], monitor: "Monitor",
                 optimizers: Iterable[torch.optim.Optimizer],
                 generators: Iterable[torch.Generator]) -> None:
        self.update, self.monitor = update, monitor
        self.optimizers = list(optimizers)
        self.lrs = [[group["lr"] for group in opt.param_groups] for opt in self.optimizers]
        self.static_reals: list[torch.Tensor] | None = None
        self.captured = capture_step(lambda: update(self.static_reals), monitor=monitor,
                                     generators=generators)

    def __call__(self, reals: list[torch.Tensor]) -> None:
        if self.static_reals is None:
            self.static_reals = [real.clone() for real in reals]
        if any(real.shape != static.shape for real, static in zip(reals, self.static_reals)):
            self.update(reals)  # eager, and its row committed now: replays commit their own
            self.monitor.commit_step()
            return
        for static, real in zip(self.static_reals, reals):
            static.copy_(real, non_blocking=True)
        self._sync_learning_rates()
        self.captured()

    def _sync_learning_rates(self) -> None:
        for optimizer, tensors in zip(self.optimizers, self.lrs):
            for group, tensor in zip(optimizer.param_groups, tensors):
                if group["lr"] is not tensor:  # set as a number since: into the graph's tensor
                    tensor.fill_(float(group["lr"]))  # note: a sync if it was set as a CUDA tensor
                    group["lr"] = tensor
