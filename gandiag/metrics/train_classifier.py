"""Train the shipped digits classifier: ``python -m gandiag.metrics.train_classifier``.

Reproduces ``gandiag/metrics/weights/digits_classifier.pt`` bit for bit on the same machine
and torch build: a seeded, stratified 80/20 split of scikit-learn's digits, Adam, small
random shifts of half the images as augmentation, one CPU thread, all randomness from ``seed``. Takes a few
seconds. The file holds a plain state_dict plus metadata (held-out accuracy, split seed,
held-out indices), so it loads with ``torch.load(..., weights_only=True)``.

Usage::

    python -m gandiag.metrics.train_classifier [--out PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gandiag.data.digits import digits
from gandiag.metrics.classifier import CHECKPOINT_FORMAT, DigitsClassifier

__all__ = ["DEFAULT_OUT", "heldout_split", "main", "train_digits_classifier"]

#: Where the shipped weights live; ``--out`` defaults to it.
DEFAULT_OUT = Path(__file__).resolve().parent / "weights" / "digits_classifier.pt"

# Training recipe. Changing any of these changes the shipped weights: rerun the script.
HELDOUT_FRACTION = 0.2
EPOCHS = 30
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
MAX_SHIFT = 1  # pixels; digits in generated samples are not always centred
SHIFT_PROBABILITY = 0.5  # shifting every image costs ~1 point of held-out accuracy


def heldout_split(labels: np.ndarray, seed: int = 0, fraction: float = HELDOUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: sorted ``(train_index, heldout_index)``, ``round(fraction * n_c)``
    held out from each class ``c``, chosen by ``numpy.random.default_rng(seed)``.

    Example:
        >>> labels = np.repeat(np.arange(10), 10)
        >>> train, heldout = heldout_split(labels, seed=0)
        >>> len(train), len(heldout), np.bincount(labels[heldout]).tolist() == [2] * 10
        (80, 20, True)
    """
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    heldout_index = np.sort(np.concatenate(held))
    train_index = np.setdiff1d(np.arange(len(labels)), heldout_index)
    return train_index, heldout_index


def _random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift a random SHIFT_PROBABILITY share of the images by up to MAX_SHIFT pixels in x
    and y, filling with background (-1); the rest stay as they are."""
    n, _, height, width = images.shape
    padded = F.pad(images[:, 0], (MAX_SHIFT,) * 4, value=-1.0)
    shifted = torch.rand(n, 1, 1, generator=generator) < SHIFT_PROBABILITY
    # Offsets into the padded image; MAX_SHIFT is the unshifted position.
    dy, dx = torch.randint(2 * MAX_SHIFT + 1, (2, n, 1, 1), generator=generator)
    rows = torch.where(shifted, dy, MAX_SHIFT) + torch.arange(height)[:, None]
    cols = torch.where(shifted, dx, MAX_SHIFT) + torch.arange(width)[None, :]
    return padded[torch.arange(n)[:, None, None], rows, cols].unsqueeze(1)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run with one intra-op thread (reduction order fixed), restoring the old count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def _accuracy(model: DigitsClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((model(images).argmax(dim=1) == labels).double().mean())


def train_digits_classifier(seed: int = 0, *, epochs: int = EPOCHS) -> dict[str, Any]:
    """Train a :class:`DigitsClassifier` and return the checkpoint the script saves:
    ``{"state_dict", "heldout_accuracy", "split_seed", "heldout_fraction", "heldout_index",
    "epochs", "torch_version", "format"}``. Deterministic for a given seed and epochs on one
    machine; the global torch RNG and thread count are left as they were.

    Example:
        >>> checkpoint = train_digits_classifier(seed=0, epochs=1)
        >>> sorted(checkpoint["state_dict"])[:2], checkpoint["heldout_accuracy"] > 0.5
        (['body.0.bias', 'body.0.weight'], True)
    """
    images, labels = digits().tensors
    train_index, heldout_index = heldout_split(labels.numpy(), seed)
    train_images, train_labels = images[train_index], labels[train_index]
    generator = torch.Generator().manual_seed(seed)  # shuffling and shifts
    with _one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the layers' default init draws from the global RNG
        model = DigitsClassifier()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        # Cosine decay to zero: the last epochs settle instead of bouncing.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(train_labels), generator=generator)
            for start in range(0, len(order), BATCH_SIZE):
                batch = order[start:start + BATCH_SIZE]
                inputs = _random_shift(train_images[batch], generator)
                loss = F.cross_entropy(model(inputs), train_labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            schedule.step()
        model.eval()
        accuracy = _accuracy(model, images[heldout_index], labels[heldout_index])
    return {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
        "heldout_accuracy": accuracy,
        "split_seed": int(seed),
        "heldout_fraction": HELDOUT_FRACTION,
        "heldout_index": torch.from_numpy(heldout_index).to(torch.int16),
        "epochs": int(epochs),
        "torch_version": str(torch.__version__),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: train, report held-out accuracy and time, save to ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m gandiag.metrics.train_classifier",
        description="Train gandiag's 8x8 digits classifier and save its weights.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="split, init and shuffling seed (default: 0)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default: {EPOCHS})")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"expected --epochs >= 1, got {args.epochs}")
    started = time.perf_counter()
    checkpoint = train_digits_classifier(args.seed, epochs=args.epochs)
    seconds = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    held = len(checkpoint["heldout_index"])
    print(
        f"held-out accuracy {checkpoint['heldout_accuracy']:.4f} on {held} digits "
        f"(seed {args.seed}, {args.epochs} epochs, {seconds:.1f} s); "
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
