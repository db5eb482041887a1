"""Named feature extractors for FID, KID and precision/recall/density/coverage.

A registry in the torch-fidelity style: a *factory* takes a ``torch.device`` and returns
an *extractor*, a callable mapping a batch of samples ``(B, ...)`` on that device to
features ``(B, F)``. The built-ins register exactly as a user would:

- ``"digits"``: the shipped digits classifier's 64 penultimate activations, for
  ``(B, 1, 8, 8)`` samples in [-1, 1];
- ``"digits-stacked"``: the same for each channel of ``(B, 3, 8, 8)`` stacked digits,
  concatenated (channel 0 first): 192 features;
- ``"pixels"``: the samples flattened, ``(B, C*H*W)``; for small data and toy mixtures;
- ``"random-conv"``: a fixed, randomly initialised conv net (256 features) for images of
  any size and channel count, the label-free coverage's default for images.

No weights are ever downloaded. To use Inception (or any network) features, load weights
you already have and register a factory; with ``my_inception`` an ``nn.Module`` built from
your own file::

    weights = torch.load("pt_inception-2015-12-05.pth", weights_only=True)
    my_inception.load_state_dict(weights)
    register_extractor("inception", lambda device: my_inception.to(device).eval())
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import numpy as np
import torch

from gandiag.metrics.classifier import (
    _as_sample_tensor,
    _check_batch_size,
    _check_sample_shape,
    load_digits_classifier,
    run_in_fixed_chunks,
)

__all__ = [
    "Extractor",
    "ExtractorFactory",
    "extract_features",
    "extractor_names",
    "get_extractor",
    "register_extractor",
    "unregister_extractor",
]

#: Maps a batch of samples (B, ...) on the extractor's device to features (B, F).
Extractor = Callable[[torch.Tensor], torch.Tensor]
#: Builds an :data:`Extractor` for a ``torch.device``.
ExtractorFactory = Callable[[torch.device], Extractor]

# Insertion order is the order users see in extractor_names() and in error messages.
_FACTORIES: dict[str, ExtractorFactory] = {}
_BUILT_IN: set[str] = set()


def register_extractor(name: str, factory: ExtractorFactory, *, overwrite: bool = False) -> None:
    """Make ``factory`` available as ``extract_features(..., extractor=name)``.

    ``factory(device)`` returns a callable mapping a batch ``(B, ...)`` on ``device`` to
    features ``(B, F)``; it runs once per :func:`get_extractor` call, so load weights
    there (or cache them yourself). An existing name is replaced only with
    ``overwrite=True``.

    Example:
        >>> register_extractor("mean-pixel", lambda device: lambda x: x.flatten(1).mean(1, keepdim=True))
        >>> extract_features(torch.ones(3, 1, 8, 8), "mean-pixel").tolist()
        [[1.0], [1.0], [1.0]]
        >>> unregister_extractor("mean-pixel")
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            f"register_extractor: expected a non-empty str name, got {name!r}; "
            "pass e.g. register_extractor('inception', factory)"
        )
    if not callable(factory):
        raise TypeError(
            f"register_extractor({name!r}): expected factory to be a callable taking a "
            f"torch.device and returning an extractor, got {type(factory).__name__}; "
            "e.g. lambda device: model.to(device).eval()"
        )
    if name in _FACTORIES and not overwrite:
        raise ValueError(
            f"register_extractor: an extractor named {name!r} is already registered; "
            "pass overwrite=True to replace it, or pick another name"
        )
    _FACTORIES[name] = factory


def unregister_extractor(name: str) -> None:
    """Remove an extractor registered by the user; built-ins stay (overwrite them instead).

    Example:
        >>> register_extractor("tmp", lambda device: lambda x: x.flatten(1))
        >>> unregister_extractor("tmp"); "tmp" in extractor_names()
        False
    """
    if name in _BUILT_IN:
        raise ValueError(
            f"unregister_extractor: {name!r} is a built-in extractor and cannot be removed; "
            "register_extractor(name, factory, overwrite=True) replaces it"
        )
    _lookup(name, owner="unregister_extractor")
    del _FACTORIES[name]


def extractor_names() -> tuple[str, ...]:
    """Registered extractor names, built-ins first.

    Example:
        >>> extractor_names()[:3]
        ('digits', 'digits-stacked', 'pixels')
    """
    return tuple(_FACTORIES)


def get_extractor(name: str, device: torch.device | str | None = None) -> Extractor:
    """The extractor ``name`` built for ``device`` (CPU when None).

    Example:
        >>> extract = get_extractor("digits")
        >>> extract(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 64])
    """
    factory = _lookup(name, owner="get_extractor")
    return factory(torch.device("cpu") if device is None else torch.device(device))


def extract_features(
    samples: torch.Tensor | np.ndarray,
    extractor: str | Extractor = "digits",
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Features of ``samples`` ``(N, ...)`` as a float64 CPU tensor ``(N, F)``.

    ``extractor`` is a registered name (see :func:`extractor_names`) or an extractor
    callable. Batches of ``batch_size`` go to ``device`` (default: the samples' device,
    CPU for numpy) under ``torch.no_grad()``. NaN or inf in samples or features is an
    error, never a silent NaN in FID. The built-ins give the same features for any
    ``batch_size``, bit for bit.

    Example:
        >>> from gandiag.data import digits
        >>> images, _ = digits().tensors
        >>> features = extract_features(images[:100], "digits")
        >>> features.shape, features.dtype
        (torch.Size([100, 64]), torch.float64)
        >>> extract_features(images[:100], "pixels").shape
        torch.Size([100, 64])
    """
    owner = "extract_features"
    x = _as_sample_tensor(samples, owner=owner)
    batch_size = _check_batch_size(batch_size, owner=owner)
    target = x.device if device is None else torch.device(device)
    if isinstance(extractor, str):
        label, extract = repr(extractor), get_extractor(extractor, target)
    elif callable(extractor):
        label, extract = getattr(extractor, "__name__", type(extractor).__name__), extractor
    else:
        raise TypeError(
            f"{owner}: expected extractor to be a registered name or a callable, got "
            f"{type(extractor).__name__}; pick one of {extractor_names()}"
        )
    parts = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size].to(target)
            parts.append(_check_features(extract(batch), batch.shape[0], label, owner).to("cpu", torch.float64))
    if not parts:  # no samples: run one empty batch to learn F
        return _check_features(extract(x.to(target)), 0, label, owner).to("cpu", torch.float64)
    features = torch.cat(parts)
    bad = int((~torch.isfinite(features).all(dim=1)).sum())
    if bad:
        raise ValueError(
            f"{owner}: extractor {label} returned NaN or inf features for {bad} of "
            f"{features.shape[0]} samples; check its weights and input scaling"
        )
    return features


def _lookup(name: object, owner: str) -> ExtractorFactory:
    factory = _FACTORIES.get(name) if isinstance(name, str) else None
    if factory is None:
        names = extractor_names()
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"{owner}: unknown extractor {name!r}; expected one of {names}; {hint}"
            "register your own with register_extractor(name, lambda device: model.to(device).eval())"
        )
    return factory


def _check_features(features: object, rows: int, label: str, owner: str) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] != rows:
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(
            f"{owner}: expected extractor {label} to return features of shape ({rows}, F) for "
            f"a batch of {rows}, got {got}; flatten its output with .flatten(1)"
        )
    return features


# ---- built-ins, registered exactly as a user would ------------------------------------

_OTHER_SIZES = "use extractor='pixels', or register_extractor() your own network for other sizes"


def _digits_factory(device: torch.device) -> Extractor:
    model = load_digits_classifier(device)

    def digits_features(x: torch.Tensor) -> torch.Tensor:
        _check_sample_shape(x.shape, channels=1, owner="extractor 'digits'", other_sizes=_OTHER_SIZES)
        return run_in_fixed_chunks(model.features, x.to(torch.float32))

    return digits_features


def _digits_stacked_factory(device: torch.device) -> Extractor:
    model = load_digits_classifier(device)

    def digits_stacked_features(x: torch.Tensor) -> torch.Tensor:
        _check_sample_shape(x.shape, channels=3, owner="extractor 'digits-stacked'", other_sizes=_OTHER_SIZES)
        per_channel = x.to(torch.float32).reshape(x.shape[0] * 3, 1, 8, 8)
        # Rows come out as (sample, channel), so this reshape concatenates channels 0, 1, 2.
        return run_in_fixed_chunks(model.features, per_channel).reshape(x.shape[0], -1)

    return digits_stacked_features


def _pixels_factory(device: torch.device) -> Extractor:
    def pixels(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    return pixels


def _random_conv_factory(device: torch.device) -> Extractor:
    """A fixed, randomly initialised conv net (the same weights on every machine: drawn
    from a seeded CPU generator): three 3x3 stride-2 convolutions with ReLU (32, 64, 128
    channels, He-scaled weights), then the mean and the max of each channel over the
    image: 256 features. Naeem et al. (2020) found such random embeddings usable for
    precision/recall/density/coverage where ImageNet features do not fit the data."""
    weights: dict[int, list[torch.Tensor]] = {}  # by input channels

    def layers(channels: int) -> list[torch.Tensor]:
        if channels not in weights:
            generator = torch.Generator().manual_seed(20181210 + channels)
            sizes, made = [channels, 32, 64, 128], []
            for fan_in, fan_out in zip(sizes, sizes[1:]):
                w = torch.randn(fan_out, fan_in, 3, 3, generator=generator, dtype=torch.float64)
                made.append((w * (2.0 / (fan_in * 9)) ** 0.5).to(device, torch.float32))
            weights[channels] = made
        return weights[channels]

    def random_conv(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or min(x.shape[2:]) < 8:
            raise ValueError(f"extractor 'random-conv': expected images (B, C, H, W) of at least "
                             f"8x8, got shape {tuple(x.shape)}; {_OTHER_SIZES}")
        h = x.to(device, torch.float32)
        for w in layers(x.shape[1]):
            h = torch.relu(torch.nn.functional.conv2d(h, w, stride=2, padding=1))
        return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)

    return random_conv


register_extractor("digits", _digits_factory)
register_extractor("digits-stacked", _digits_stacked_factory)
register_extractor("pixels", _pixels_factory)
register_extractor("random-conv", _random_conv_factory)
_BUILT_IN.update(_FACTORIES)
