"""Turn whatever the user trains on into an endless, reproducible stream of real batches.

Accepted: a sampler with `.sample(n, generator=...)` (the toy mixtures), a tensor or
numpy array of samples, a map-style `Dataset` (a `TensorDataset`, a torchvision dataset,
...; items may be `(sample, label)`, PIL images become tensors in [-1, 1]), an iterable
`Dataset`, or a `DataLoader`. Labels are dropped: the GAN is unconditional.

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
    shard: tuple[int, int] = (0, 1),
) -> BatchSource:
    """Wrap `data` (see the module docstring) as a `BatchSource` of `batch_size` samples.

    `shard=(rank, world)` under data-parallel training: an indexable data set is split so
    that each pass shows every sample to exactly one rank, a sampler gets its own stream
    per rank, and a DataLoader is used as given (give it a DistributedSampler).
    """
    device = torch.device(device)
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
        return LoaderSource(data, device=device)
    if hasattr(data, "sample") and callable(data.sample):
        # Each rank its own stream: 1_000_003 apart, so that seed + 1 on one rank is not
        # another rank's seed.
        return SamplerSource(data, batch_size=batch_size, seed=seed + 1_000_003 * rank, device=device)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, TensorDataset):
        data = data.tensors[0]  # fast path: index the tensor, not item by item
    if isinstance(data, Tensor):
        if not data.is_floating_point():
            raise TypeError(
                f"expected real samples as a floating-point tensor, got dtype {data.dtype}; "
                "convert with .float() and scale images to [-1, 1]"
            )
        return IndexedSource(data, len(data), batch_size=batch_size, seed=seed, device=device,
                             shard=shard)
    if isinstance(data, IterableDataset):
        return LoaderSource(DataLoader(data, batch_size=batch_size), device=device)
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return IndexedSource(data, len(data), batch_size=batch_size, seed=seed, device=device,
                             shard=shard)
    raise TypeError(
        f"expected training data as a sampler with .sample(n), a tensor or numpy array, a "
        f"Dataset or a DataLoader, got {type(data).__name__}; e.g. pass gandiag.data.ring() "
        "or torch.utils.data.TensorDataset(images)"
    )


class SamplerSource:
    """Fresh samples from `sampler.sample(n, generator=...)` each step (infinite data)."""

    def __init__(self, sampler: Any, *, batch_size: int, seed: int, device: torch.device) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def next(self) -> Tensor:
        batch = self.sampler.sample(self.batch_size, generator=self.generator)
        return _as_sample_batch(batch, self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class IndexedSource:
    """Shuffled passes over an indexable collection of `length` samples.

    Indices come from consecutive random permutations, so a dataset smaller than one
    batch still works and every sample is seen once per pass. With `shard=(rank, world)`
    all ranks walk the same permutations (same seed) in steps of `world` batches and each
    takes its own batch of every step: disjoint shards, like a DistributedSampler.
    """

    def __init__(self, data: Any, length: int, *, batch_size: int, seed: int,
                 device: torch.device, shard: tuple[int, int] = (0, 1)) -> None:
        if length == 0:
            raise ValueError(
                "expected at least one training sample, got an empty dataset; check the "
                "path or the filter that built it"
            )
        self.data = data
        self.length = length
        self.batch_size = batch_size
        self.rank, self.world = shard
        self.device = device
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
        return _as_sample_batch(batch, self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self._order.clone(),
                "position": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._order = state["order"].to(self._index_device).clone()
        self._position = int(state["position"])


class LoaderSource:
    """Cycles over a user's `DataLoader`; its own sampler decides order and batch size.

    A DataLoader's position cannot be saved, so a resumed run sees other batches than an
    uninterrupted one (a warning says so at load).
    """

    def __init__(self, loader: DataLoader, *, device: torch.device) -> None:
        self.loader = loader
        self.device = device
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
        return _as_sample_batch(_as_sample(batch), self.device)

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
        item = torch.from_numpy(item)
    if not isinstance(item, Tensor):
        raise TypeError(
            f"expected dataset items to be tensors or PIL images, got {type(item).__name__}; "
            "for a torchvision dataset pass transform=Compose([ToTensor(), Normalize([0.5]*C, "
            "[0.5]*C)]) so images become tensors in [-1, 1]"
        )
    return item.float() if not item.is_floating_point() else item


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


def _as_sample_batch(batch: Any, device: torch.device) -> Tensor:
    if not isinstance(batch, Tensor):
        raise TypeError(f"expected a batch tensor from the data, got {type(batch).__name__}")
    if batch.dim() == 0 or batch.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch of samples, got shape {tuple(batch.shape)}")
    if batch.dim() == 1:
        batch = batch[:, None]  # one scalar feature per sample
    # non_blocking: with pinned host memory the copy overlaps the previous step's kernels.
    return batch.to(device, non_blocking=True)
