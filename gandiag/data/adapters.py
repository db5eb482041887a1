"""Turn whatever the user trains on into an endless, reproducible stream of real batches.

Accepted: a sampler with `.sample(n, generator=...)` (the toy mixtures), a tensor or
numpy array of samples, a map-style `Dataset` (a `TensorDataset`, a torchvision dataset,
...; items may be `(sample, label)`, PIL images become tensors in [-1, 1]), an iterable
`Dataset`, or a `DataLoader`. Labels are dropped: the GAN is unconditional.

Samples must be floating point (images scaled to [-1, 1]); integer data such as uint8
images is refused with the fix rather than fed to D as 0..255. With `dtype` (the Trainer
passes D's), batches of another float type are converted as they are drawn, with a
one-time note where that drops precision (float64 data, numpy's default, for float32 D).

Example:
    >>> source = batch_source(torch.randn(1000, 2), batch_size=64, seed=0)
    >>> source.next().shape
    torch.Size([64, 2])
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, TensorDataset


class BatchSource(Protocol):
    """An endless stream of real batches on the training device."""

    def next(self) -> Tensor: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def batch_source(
    data: Any, *, batch_size: int, seed: int = 0, device: torch.device | str = "cpu",
    shard: tuple[int, int] = (0, 1), dtype: torch.dtype | None = None,
) -> BatchSource:
    """Wrap `data` (see the module docstring) as a `BatchSource` of `batch_size` samples,
    on `device` and, when given, of float type `dtype` (the models' own).

    `shard=(rank, world)` under data-parallel training: an indexable data set is split so
    that each pass shows every sample to exactly one rank, a sampler gets its own stream
    per rank, and a DataLoader is used as given (give it a DistributedSampler).
    """
    mover = _BatchMover(torch.device(device), dtype)
    rank, world = shard
    if isinstance(data, DataLoader):
        if world > 1 and not isinstance(data.sampler, DistributedSampler):
            warnings.warn(
                f"training on {world} ranks from a DataLoader without a DistributedSampler: "
                "every rank sees the same batches; build the loader with "
                "sampler=torch.utils.data.DistributedSampler(dataset)",
                stacklevel=2,
            )
        if data.batch_size is not None and data.batch_size != batch_size:
            warnings.warn(
                f"the DataLoader yields batches of {data.batch_size} but batch_size is "
                f"{batch_size}: D's real batches follow the loader, G's fake batches the "
                "config; make them equal for a balanced D step",
                stacklevel=2,
            )
        return LoaderSource(data, mover=mover)
    if hasattr(data, "sample") and callable(data.sample):
        # Each rank its own stream: 1_000_003 apart, so that seed + 1 on one rank is not
        # another rank's seed.
        return SamplerSource(data, batch_size=batch_size, seed=seed + 1_000_003 * rank, mover=mover)
    if isinstance(data, np.ndarray):
        data = _from_numpy(data, "the training data")
    if isinstance(data, TensorDataset):
        data = data.tensors[0]  # fast path: index the tensor, not item by item
    if isinstance(data, Tensor):
        _check_floating(data, "real samples")
        return IndexedSource(data, len(data), batch_size=batch_size, seed=seed, mover=mover,
                             shard=shard)
    if isinstance(data, IterableDataset):
        return LoaderSource(DataLoader(data, batch_size=batch_size), mover=mover)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return IndexedSource(data, len(data), batch_size=batch_size, seed=seed, mover=mover,
                             shard=shard)
    raise TypeError(
        f"expected training data as a sampler with .sample(n), a tensor or numpy array, a "
        f"Dataset or a DataLoader, got {type(data).__name__}; e.g. pass gandiag.data.ring() "
        "or torch.utils.data.TensorDataset(images)"
    )


class SamplerSource:
    """Fresh samples from `sampler.sample(n, generator=...)` each step (infinite data)."""

    def __init__(self, sampler: Any, *, batch_size: int, seed: int, mover: "_BatchMover") -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.mover = mover
        self.device = mover.device
        self.generator = torch.Generator(device=mover.device).manual_seed(seed)

    def next(self) -> Tensor:
        batch = self.sampler.sample(self.batch_size, generator=self.generator)
        return self.mover(batch)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_generator_state(self.generator, state.get("generator"))


class IndexedSource:
    """Shuffled passes over an indexable collection of `length` samples.

    Indices come from consecutive random permutations, so a dataset smaller than one
    batch still works and every sample is seen once per pass. With `shard=(rank, world)`
    all ranks walk the same permutations (same seed) in steps of `world` batches and each
    takes its own batch of every step: disjoint shards, like a DistributedSampler.
    """

    def __init__(self, data: Any, length: int, *, batch_size: int, seed: int,
                 mover: "_BatchMover", shard: tuple[int, int] = (0, 1)) -> None:
        if length == 0:
            raise ValueError(
                "expected at least one training sample, got an empty dataset; check the "
                "path or the filter that built it"
            )
        self.data = data
        self.length = length
        self.batch_size = batch_size
        self.rank, self.world = shard
        self.mover = mover
        self.device = mover.device
        self.generator = torch.Generator().manual_seed(seed)  # indices live on the CPU
        # A data set already on a GPU is indexed there: its permutation is copied over once
        # per pass, not an index per batch (each copy a host-device sync).
        self._index_device = data.device if isinstance(data, Tensor) else torch.device("cpu")
        self._order = self._permutation()
        self._position = 0

    def _indices(self) -> Tensor:
        parts, needed = [], self.batch_size * self.world  # one batch for every rank
        while needed:
            if self._position == self.length:
                self._order = self._permutation()
                self._position = 0
            take = min(needed, self.length - self._position)
            parts.append(self._order[self._position:self._position + take])
            self._position += take
            needed -= take
        every_rank = torch.cat(parts)
        return every_rank[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def _permutation(self) -> Tensor:
        return torch.randperm(self.length, generator=self.generator).to(self._index_device)

    def next(self) -> Tensor:
        index = self._indices()
        if isinstance(self.data, Tensor):
            batch = self.data[index]
        else:
            batch = torch.stack([_as_sample(self.data[i]) for i in index.tolist()])
        return self.mover(batch)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self._order.clone(),
                "position": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the shuffle; a state saved over another data set (another length) is an
        error before anything changes, not indices out of range later."""
        order, position = state.get("order"), state.get("position")
        fits = (isinstance(order, Tensor) and order.dim() == 1 and not order.is_floating_point()
                and len(order) == self.length and isinstance(position, int)
                and 0 <= position <= self.length)
        if not fits:
            got = (f"an order of {len(order)} samples" if isinstance(order, Tensor) and order.dim() == 1
                   else f"{type(order).__name__} order")
            raise ValueError(
                f"data position: expected the shuffle of {self.length} samples, got {got} at "
                f"position {position!r}; resume with the data set the checkpoint was trained on"
            )
        _set_generator_state(self.generator, state.get("generator"))
        self._order = order.to(self._index_device).clone()
        self._position = position


class LoaderSource:
    """Cycles over a user's `DataLoader`; its own sampler decides order and batch size.

    A DataLoader's position cannot be saved, so a resumed run sees other batches than an
    uninterrupted one (a warning says so at load).
    """

    def __init__(self, loader: DataLoader, *, mover: "_BatchMover") -> None:
        self.loader = loader
        self.mover = mover
        self.device = mover.device
        self._iterator: Iterator[Any] | None = None
        self._epoch_batches = 0

    def next(self) -> Tensor:
        if self._iterator is None:
            self._iterator = iter(self.loader)
            self._epoch_batches = 0
        try:
            batch = next(self._iterator)
        except StopIteration:
            if self._epoch_batches == 0:
                raise ValueError(
                    "expected the DataLoader to yield batches, got none: its dataset is "
                    "empty (or drop_last dropped the only, short batch)"
                ) from None
            self._iterator = None
            return self.next()
        self._epoch_batches += 1
        return self.mover(_as_sample(batch))

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        warnings.warn(
            "resuming from a DataLoader: its position is not restored, so the resumed run "
            "sees different batches than an uninterrupted one would",
            stacklevel=2,
        )


def _as_sample(item: Any) -> Tensor:
    """One dataset item (sample, or (sample, label, ...)) as a float tensor."""
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError("expected a dataset item (sample, label), got an empty tuple")
        item = item[0]
    if hasattr(item, "getbands"):  # a PIL image, as torchvision datasets yield by default
        item = _pil_to_tensor(item)
    if isinstance(item, np.ndarray):
        item = _from_numpy(item, "a dataset item")
    if not isinstance(item, Tensor):
        raise TypeError(
            f"expected dataset items to be tensors or PIL images, got {type(item).__name__}; "
            "for a torchvision dataset pass transform=Compose([ToTensor(), Normalize([0.5]*C, "
            "[0.5]*C)]) so images become tensors in [-1, 1]"
        )
    _check_floating(item, "dataset items")
    return item


def _pil_to_tensor(image: Any) -> Tensor:
    """A PIL image as a (C, H, W) float tensor scaled from 0..255 to [-1, 1] (tanh range)."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        raise TypeError(
            f"expected an 8-bit PIL image, got pixel type {pixels.dtype} (mode "
            f"{getattr(image, 'mode', '?')}); convert with image.convert('RGB') or pass a transform"
        )
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 127.5 - 1.0


def _set_generator_state(generator: torch.Generator, state: Any) -> None:
    """Set a generator's state, or raise ValueError without touching it: a state of
    another size comes from a generator on another kind of device."""
    current = generator.get_state()
    if not isinstance(state, Tensor) or state.dtype != torch.uint8 or state.shape != current.shape:
        got = (f"{state.numel()} bytes" if isinstance(state, Tensor) else type(state).__name__)
        raise ValueError(
            f"data sampler state: expected {current.numel()} bytes (a {generator.device.type} "
            f"generator), got {got}; resume on the kind of device the checkpoint was saved on"
        )
    generator.set_state(state.cpu())


def _check_floating(samples: Tensor, what: str) -> None:
    """Refuse integer (and bool, complex) samples: uint8 images fed as 0..255 train a GAN
    on the wrong scale without any error."""
    if samples.is_floating_point():
        return
    raise TypeError(
        f"expected {what} as floating-point numbers, got dtype {samples.dtype}; convert "
        "and scale them, e.g. images.float() / 127.5 - 1 for uint8 images in [0, 255] "
        "(G's tanh output is in [-1, 1])"
    )


def _from_numpy(array: np.ndarray, what: str) -> Tensor:
    if array.dtype.kind not in "fiub":
        raise TypeError(
            f"expected {what} as a numeric numpy array, got dtype {array.dtype}; build it with "
            "np.asarray(samples, dtype=np.float32)"
        )
    return torch.from_numpy(array)


class _BatchMover:
    """Puts every batch on the training device, as the models' float type when known;
    notes once when that conversion drops precision (float64 data for a float32 D)."""

    def __init__(self, device: torch.device, dtype: torch.dtype | None) -> None:
        self.device, self.dtype = device, dtype
        self._noted = False

    def __call__(self, batch: Any) -> Tensor:
        if not isinstance(batch, Tensor):
            raise TypeError(f"expected a batch tensor from the data, got {type(batch).__name__}")
        if batch.dim() == 0 or batch.shape[0] == 0:
            raise ValueError(f"expected a non-empty batch of samples, got shape {tuple(batch.shape)}")
        _check_floating(batch, "real samples")
        if batch.dim() == 1:
            batch = batch[:, None]  # one scalar feature per sample
        dtype = self.dtype if self.dtype is not None else batch.dtype
        if dtype != batch.dtype and not self._noted and _loses_precision(batch.dtype, dtype):
            self._noted = True
            warnings.warn(
                f"gandiag: the training data is {_name(batch.dtype)} and the models "
                f"{_name(dtype)}; batches are converted to {_name(dtype)} as they are drawn "
                f"(digits beyond {_name(dtype)}'s precision are dropped). Pass "
                f"{_name(dtype)} data (e.g. array.astype('float32')) to skip the conversion",
                stacklevel=3,
            )
        # non_blocking: with pinned host memory the copy overlaps the previous step's kernels.
        # One .to() converts and moves together: no second copy of the batch.
        return batch.to(self.device, dtype, non_blocking=True)


def _loses_precision(source: torch.dtype, target: torch.dtype) -> bool:
    return target.is_floating_point and torch.finfo(target).eps > torch.finfo(source).eps


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
