"""What G makes right now, as numpy for the samples panel (GAN Lab's views on your models).

- 2-D data (`PlaneSnapshot`): G's samples from fixed noise over real points, D's logit
  over the plane (its decision surface) and, at each of the first samples, the direction
  and size of the gradient G's loss sends back to that sample (where G's update moves it).
- Images (`ImageSnapshot`): a PNG grid of G's samples from fixed noise.

`take_snapshot(trainer)` must run in the training thread between steps (the dashboard
asks for one and its callback takes it at the next step end): it runs G and D on the
models being trained, in eval mode, outside the hooks' records and without touching any
parameter's `.grad`, the data stream or the training RNG.

    >>> import gandiag
    >>> trainer = gandiag.Trainer(*gandiag.models.small_toy(), gandiag.data.ring(), gandiag.TrainConfig(steps=1))
    >>> shot = take_snapshot(trainer)
    >>> shot.fake.shape, shot.logits.shape, shot.push.shape
    ((500, 2), (64, 64), (100, 2))
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from gandiag.store.png import samples_png
from gandiag.train.stabilisers import pack
from gandiag.widgets.samples import ImageSnapshot, PlaneSnapshot, Snapshot


def take_snapshot(trainer: Any, *, n: int = 500, arrows: int = 100, resolution: int = 64,
                  images: int = 36) -> Snapshot | None:
    """A snapshot of `trainer`'s G and D, or None for data that is neither 2-D points nor
    images. Cost on the toy pair: a few ms (D on resolution² points, one backward on
    `arrows` samples)."""
    D, device = trainer.D, trainer.device
    # The G being trained (not its EMA: D's surface and the arrows are about this one),
    # from fixed noise, in eval mode: the trainer's own sampler.
    fake = trainer.sample(images, ema=False)  # a grid's worth first: images need no more
    if fake.dim() == 4 and fake.shape[1] in (1, 3):
        return ImageSnapshot(trainer.step, samples_png(fake.cpu().numpy()))
    if not (fake.dim() == 2 and fake.shape[1] == 2):
        return None
    fake = trainer.sample(n, ema=False)
    real = _real_points(trainer, n, device)
    m = trainer.config.pack
    with _quiet(trainer), _eval(D):
        grid, logits = _surface(D, fake, real, m, resolution)
        push = _push(trainer, fake[: arrows - arrows % m])
    return PlaneSnapshot(trainer.step, _np(fake), _np(real), grid, logits, push)


def _surface(D: nn.Module, fake: torch.Tensor, real: torch.Tensor, m: int,
             resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """D's logit on a square grid that holds the real data and most of G's samples. A packed
    D sees m copies of each point (its verdict on a pack of identical samples)."""
    points = torch.cat([real, fake[torch.isfinite(fake).all(dim=1)]]).cpu()
    reach = float(torch.quantile(points.abs().flatten(), 0.99)) if len(points) else 1.0
    reach = 1.25 * max(reach, 1e-3)
    grid = torch.linspace(-reach, reach, resolution, device=fake.device)
    ys, xs = torch.meshgrid(grid, grid, indexing="ij")
    plane = torch.stack([xs.flatten(), ys.flatten()], dim=1)
    with torch.no_grad():
        out = D(plane.repeat(1, m)).float().reshape(-1)
    return _np(grid), _np(out.reshape(resolution, resolution))


def _push(trainer: Any, fake: torch.Tensor) -> np.ndarray:
    """-d(G loss)/d(sample) for each sample, through the trainer's own loss and packing:
    autograd.grad w.r.t. the samples only, so no parameter's .grad is touched."""
    if len(fake) == 0:
        return np.zeros((0, 2), np.float32)
    x = fake.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = trainer.D(pack(x, trainer.config.pack)).float().reshape(-1)
        loss = trainer.loss.g(logits) * len(logits)  # undo the mean over D outputs (packs)
        (grad,) = torch.autograd.grad(loss, x)
    return _np(-grad)


def _real_points(trainer: Any, n: int, device: torch.device) -> torch.Tensor:
    """A fixed draw of real points: the toy mixture's own sampler (so the training data
    stream is not advanced), else the start of an in-memory tensor."""
    data = trainer._evaluator
    if data is not None and hasattr(data, "sample"):
        return data.sample(n, generator=torch.Generator().manual_seed(0)).to(device).float()
    tensor = getattr(trainer.data, "data", None)  # an in-memory tensor (IndexedSource)
    if isinstance(tensor, torch.Tensor) and tensor.dim() == 2 and tensor.shape[1] == 2:
        return tensor[:n].to(device).float()
    return torch.zeros((0, 2), device=device)


@contextlib.contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm's running statistics, no dropout), restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _quiet(trainer: Any) -> contextlib.AbstractContextManager:
    """These D calls are not training calls: keep them out of the hooks' records."""
    monitor = getattr(trainer, "monitor", None)
    return monitor.phase("ignore") if monitor is not None else contextlib.nullcontext()


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy().astype(np.float32)
