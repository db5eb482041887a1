"""The digits classifier that ships with gandiag, and the labels it gives to samples.

Class coverage on 8x8 digits and the 1000 modes of stacked digits (docs/definitions.md "Stacked
digits") both need a classifier, and FID/KID on digits needs features; no weights may be
downloaded at run time, so a small CNN trained on scikit-learn's digits ships in
``weights/digits_classifier.pt``. ``python -m gandiag.metrics.train_classifier``
reproduces that file.

Samples follow :func:`gandiag.data.digits`: float ``(N, 1, 8, 8)`` in [-1, 1] (a tanh
generator's range). :func:`classify` and :func:`stacked_labels` take torch tensors on any
device or numpy arrays. Any ``nn.Module`` that maps a batch of samples to logits ``(B, K)``
plugs in as ``classifier=``, e.g. your own MNIST classifier for 28x28 samples.
"""

from __future__ import annotations

import functools
import numbers
from importlib import resources
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "DigitsClassifier",
    "classify",
    "load_digits_classifier",
    "run_in_fixed_chunks",
    "stacked_labels",
]

#: Package resource that holds the shipped weights (a plain state_dict plus metadata).
_WEIGHTS_PACKAGE = "gandiag.metrics"
_WEIGHTS_NAME = "weights/digits_classifier.pt"
#: Tag written by the training script; a file with another tag is not ours to load.
CHECKPOINT_FORMAT = "gandiag.digits_classifier/1"


class DigitsClassifier(nn.Module):
    """Small CNN for 8x8 grey digits in [-1, 1]: ``forward`` gives logits, ``features`` the
    64 penultimate activations (used as the "digits" feature extractor for FID/KID/PRDC).

    Layout: conv 3x3 (32) -> ReLU -> max-pool -> conv 3x3 (64) -> ReLU -> max-pool ->
    linear 256 -> 64 -> ReLU (features) -> linear 64 -> 10 (logits). 36k parameters.

    Example:
        >>> model = DigitsClassifier()
        >>> x = torch.zeros(4, 1, 8, 8)
        >>> model(x).shape, model.features(x).shape
        (torch.Size([4, 10]), torch.Size([4, 64]))
    """

    #: Number of digit classes (0..9).
    num_classes: int = 10
    #: Width of :meth:`features`.
    feature_dim: int = 64

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4x4 -> 2x2
            nn.Flatten(),
            nn.Linear(64 * 2 * 2, self.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, self.num_classes)
        #: Filled by :func:`load_digits_classifier` from the checkpoint (accuracy, seed, ...).
        self.metadata: dict[str, Any] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(B, 64)`` of a batch ``(B, 1, 8, 8)``."""
        _check_sample_shape(x.shape, channels=1, owner="DigitsClassifier")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 10)`` of a batch ``(B, 1, 8, 8)``; argmax is the digit."""
        return self.head(self.features(x))


def load_digits_classifier(device: torch.device | str | None = None) -> DigitsClassifier:
    """The shipped, trained :class:`DigitsClassifier` on ``device`` (CPU when None), in eval
    mode with gradients off. Loaded with ``weights_only=True``, once per device: every call
    returns the same shared module, so do not train or modify it (``copy.deepcopy`` it first).

    ``.metadata`` holds what the training script recorded: ``heldout_accuracy``,
    ``split_seed``, ``heldout_fraction``, ``heldout_index``, ``epochs``, ``torch_version``.

    Example:
        >>> model = load_digits_classifier()
        >>> model.training, model.metadata["heldout_accuracy"] >= 0.97
        (False, True)
        >>> load_digits_classifier("cpu") is model
        True
    """
    return _load_cached(_device_key(device))


def _device_key(device: torch.device | str | None) -> str:
    """A canonical string per device, so "cuda" and "cuda:0" share one cached module."""
    if device is None:
        return "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"load_digits_classifier: expected a torch.device, a device string or None, "
            f"got {device!r}; pass e.g. 'cpu' or 'cuda'"
        ) from error
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    return str(resolved)


@functools.lru_cache(maxsize=None)
def _load_cached(device: str) -> DigitsClassifier:
    checkpoint = _read_checkpoint(map_location=device)
    model = DigitsClassifier()
    model.load_state_dict(checkpoint.pop("state_dict"))
    model.metadata = checkpoint
    model.requires_grad_(False)
    return model.to(device).eval()


def _read_checkpoint(map_location: str = "cpu") -> dict[str, Any]:
    """The shipped checkpoint as a dict (state_dict + metadata), read with weights_only=True."""
    source = resources.files(_WEIGHTS_PACKAGE).joinpath(_WEIGHTS_NAME)
    with source.open("rb") as stream:
        checkpoint = torch.load(stream, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise RuntimeError(
            f"load_digits_classifier: expected a checkpoint tagged {CHECKPOINT_FORMAT!r} in "
            f"gandiag/metrics/{_WEIGHTS_NAME}, got something else; reinstall gandiag or "
            "rebuild the file with `python -m gandiag.metrics.train_classifier`"
        )
    return checkpoint


def classify(
    samples: torch.Tensor | np.ndarray,
    classifier: nn.Module | None = None,
    *,
    batch_size: int = 1024,
) -> np.ndarray:
    """Predicted label (argmax of the logits) of each sample, as an int64 numpy array ``(N,)``.

    With ``classifier=None`` the shipped digits classifier is used, on the samples' device,
    and samples must be ``(N, 1, 8, 8)`` in [-1, 1]. Any other ``nn.Module`` mapping a
    batch to logits ``(B, K)`` works the same way; batches are moved to its device, it runs
    in eval mode under ``torch.no_grad()`` and its train/eval flag is restored afterwards.

    Example:
        >>> from gandiag.data import digits
        >>> images, labels = digits().tensors
        >>> predicted = classify(images[:100])
        >>> float((predicted == labels[:100].numpy()).mean()) >= 0.97
        True
        >>> mnist_classifier = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # yours, trained
        >>> classify(torch.zeros(5, 1, 28, 28), mnist_classifier).shape
        (5,)
    """
    owner = "classify"
    x = _as_sample_tensor(samples, owner=owner)
    if classifier is None or isinstance(classifier, DigitsClassifier):
        _check_sample_shape(x.shape, channels=1, owner=owner)
    return _predict(x, classifier, batch_size=batch_size, owner=owner)


def stacked_labels(
    samples: torch.Tensor | np.ndarray,
    classifier: nn.Module | None = None,
    *,
    batch_size: int = 1024,
) -> np.ndarray:
    """Mode of each stacked-digits sample ``(N, 3, H, W)``: ``100 * a + 10 * b + c`` (0..999).

    Each channel is classified on its own as a ``(1, H, W)`` digit (``a`` from channel 0),
    as in docs/definitions.md "Stacked digits"; ``classifier`` is as in :func:`classify` and must
    return 10 logits. Samples from :func:`gandiag.data.stacked_digits` carry the same labels.

    Example:
        >>> from gandiag.data import stacked_digits
        >>> images, modes = stacked_digits(200, seed=0).tensors
        >>> float((stacked_labels(images) == modes.numpy()).mean()) >= 0.9
        True
    """
    owner = "stacked_labels"
    x = _as_sample_tensor(samples, owner=owner)
    if classifier is None or isinstance(classifier, DigitsClassifier):
        _check_sample_shape(x.shape, channels=3, owner=owner)
    elif x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f"{owner}: expected stacked samples of shape (N, 3, H, W), got {tuple(x.shape)}; "
            "stack three single-channel digits along dim 1"
        )
    n = x.shape[0]
    per_channel = x.reshape(n * 3, 1, *x.shape[2:])
    digits = _predict(per_channel, classifier, batch_size=batch_size, owner=owner, num_classes=10)
    triples = digits.reshape(n, 3)
    return 100 * triples[:, 0] + 10 * triples[:, 1] + triples[:, 2]


@torch.no_grad()
def _predict(
    x: torch.Tensor,
    classifier: nn.Module | None,
    *,
    batch_size: int,
    owner: str,
    num_classes: int | None = None,
) -> np.ndarray:
    """Argmax labels of ``x`` in batches; the classifier's train flag is restored."""
    batch_size = _check_batch_size(batch_size, owner=owner)
    if classifier is None:
        classifier = load_digits_classifier(x.device)
    elif not isinstance(classifier, nn.Module):
        raise TypeError(
            f"{owner}: expected classifier to be an nn.Module mapping samples to logits "
            f"(B, K) or None, got {type(classifier).__name__}; pass the module itself, or "
            "None for the shipped digits classifier"
        )
    device, dtype = _module_device_dtype(classifier, fallback=x.device)
    forward = classifier
    if isinstance(classifier, DigitsClassifier):
        forward = functools.partial(run_in_fixed_chunks, classifier)
    was_training = classifier.training
    classifier.eval()
    try:
        labels = [
            _argmax_logits(forward(x[start:start + batch_size].to(device, dtype)), owner, num_classes)
            for start in range(0, x.shape[0], batch_size)
        ]
    finally:
        classifier.train(was_training)
    if not labels:
        return np.zeros(0, dtype=np.int64)
    return torch.cat(labels).cpu().numpy().astype(np.int64, copy=False)


#: Rows per call in :func:`run_in_fixed_chunks`.
FIXED_CHUNK = 64  # small, so a call with a few samples stays cheap; full batches run as fast


def run_in_fixed_chunks(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = FIXED_CHUNK
) -> torch.Tensor:
    """``fn(x)`` computed ``chunk`` rows at a time, the last chunk zero-padded to full size,
    so that each row's result does not depend on how many rows come with it.

    Why: BLAS and oneDNN pick kernels by batch size, so ``model(x)[i]`` changes in the last
    bits with ``len(x)``; every call here has the same shape, so the features of a sample
    are bit-identical whatever ``batch_size`` the caller chose. The shipped classifier's
    features and labels go through this; the cost is at most one padded chunk per call.

    Example:
        >>> model = load_digits_classifier()
        >>> x = torch.rand(300, 1, 8, 8) * 2 - 1
        >>> whole = run_in_fixed_chunks(model.features, x)
        >>> torch.equal(whole[:5], run_in_fixed_chunks(model.features, x[:5]))
        True
    """
    outputs = []
    for start in range(0, x.shape[0], chunk):
        rows = x[start:start + chunk]
        taken = rows.shape[0]
        if taken < chunk:
            rows = torch.cat([rows, rows.new_zeros(chunk - taken, *rows.shape[1:])])
        outputs.append(fn(rows)[:taken])
    if not outputs:
        return fn(x)
    return torch.cat(outputs)


def _argmax_logits(logits: object, owner: str, num_classes: int | None) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"{owner}: expected the classifier to return logits of shape (B, K), got {got}; "
            "wrap it so that forward returns one row of class scores per sample"
        )
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(
            f"{owner}: expected a classifier with {num_classes} logits (digits 0..9), got "
            f"{logits.shape[1]}; stacked labels are 100*a + 10*b + c, so use a digit classifier"
        )
    return logits.argmax(dim=1)


def _module_device_dtype(module: nn.Module, fallback: torch.device) -> tuple[torch.device, torch.dtype]:
    """Device and float dtype of the module's first floating parameter (or buffer)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return fallback, torch.float32


def _check_batch_size(batch_size: object, owner: str) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(
            f"{owner}: expected batch_size to be a positive int, got {batch_size!r}; "
            "pass e.g. batch_size=512"
        )
    return int(batch_size)


def _as_sample_tensor(samples: object, owner: str) -> torch.Tensor:
    """``samples`` as a floating torch tensor (numpy is wrapped, not copied), checked to hold
    a batch dim and only finite values."""
    if isinstance(samples, np.ndarray):
        if samples.dtype.kind != "f":
            raise TypeError(_dtype_message(owner, str(samples.dtype)))
        samples = torch.from_numpy(np.ascontiguousarray(samples))
    elif not isinstance(samples, torch.Tensor):
        raise TypeError(
            f"{owner}: expected samples as a torch.Tensor or numpy array, got "
            f"{type(samples).__name__}; convert with torch.as_tensor(samples)"
        )
    elif not samples.is_floating_point():
        raise TypeError(_dtype_message(owner, str(samples.dtype).removeprefix("torch.")))
    if samples.dim() < 2:
        raise ValueError(
            f"{owner}: expected a batch of samples (N, ...), got shape {tuple(samples.shape)}; "
            "add the batch dim with x.unsqueeze(0)"
        )
    # One host sync to count them; these are evaluation calls, not the training hot path.
    finite = torch.isfinite(samples.detach()).flatten(1).all(dim=1)
    bad = int((~finite).sum())
    if bad:
        raise ValueError(
            f"{owner}: expected finite samples, got {bad} of {samples.shape[0]} with NaN or "
            "inf values; the generator has diverged, or filter them first"
        )
    return samples.detach()


def _dtype_message(owner: str, dtype: str) -> str:
    return (
        f"{owner}: expected floating-point samples in [-1, 1] (as gandiag.data.digits() gives "
        f"them), got dtype {dtype}; convert and scale, e.g. x.float() / 8 - 1 for sklearn's "
        "0..16 grey levels"
    )


def _check_sample_shape(
    shape: torch.Size,
    *,
    channels: int,
    owner: str,
    other_sizes: str = "pass your own classifier= for other sizes",
) -> None:
    """Raise a ValueError unless ``shape`` is (N, channels, 8, 8), with the likely fix."""
    if len(shape) == 4 and shape[1] == channels and tuple(shape[2:]) == (8, 8):
        return
    expected = f"(N, {channels}, 8, 8)"
    what = "8x8 digits" if channels == 1 else f"{channels} stacked 8x8 digits"
    if len(shape) == 2 and shape[1] == 64 * channels:
        fix = f"reshape flat rows with x.reshape(-1, {channels}, 8, 8)"
    elif len(shape) == 3 and tuple(shape[1:]) == (8, 8) and channels == 1:
        fix = "add the channel dim with x.unsqueeze(1)"
    elif len(shape) == 4 and tuple(shape[2:]) == (8, 8):
        fix = (
            "use stacked_labels() or the 'digits-stacked' extractor for 3-channel stacks"
            if shape[1] == 3
            else "use classify() or the 'digits' extractor for single digits"
            if shape[1] == 1
            else f"pass {channels}-channel samples"
        )
    else:
        fix = f"resize samples to 8x8, or {other_sizes}"
    raise ValueError(f"{owner}: expected {what} of shape {expected}, got {tuple(shape)}; {fix}")
