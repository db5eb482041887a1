"""Build a reference (G, D) pair by name, sized for a sample shape.

One entry point for the trainer, the CLI and the notebooks, so that a config can say
``model: "dcgan"`` and the data set decides the sizes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from torch import nn

from gandiag.models.classic import MLPGenerator, MLPImageDiscriminator
from gandiag.models.dcgan import DCGAN_SIZES, DCGANDiscriminator, DCGANGenerator
from gandiag.models._checks import _positive_int, _positive_int_tuple
from gandiag.models.toy import pacgan_toy, small_toy

__all__ = ["MODEL_NAMES", "build_pair"]

_Pair = tuple[nn.Module, nn.Module]
_Builder = Callable[[tuple[int, ...], int, int | None], _Pair]


def _shape_str(shape: tuple[int, ...]) -> str:
    # (2,) rather than (2): say exactly what the user would type.
    return repr(tuple(shape))


def _build_toy(sample_shape: tuple[int, ...], pack: int, z_dim: int | None) -> _Pair:
    _require_toy_shape("toy", sample_shape)
    return pacgan_toy(pack=pack, z_dim=2 if z_dim is None else z_dim)


def _build_toy_small(sample_shape: tuple[int, ...], pack: int, z_dim: int | None) -> _Pair:
    _require_toy_shape("toy-small", sample_shape)
    return small_toy(pack=pack, z_dim=4 if z_dim is None else z_dim)


def _require_toy_shape(name: str, sample_shape: tuple[int, ...]) -> None:
    if sample_shape != (2,):
        raise ValueError(
            f"build_pair({name!r}): expected sample_shape (2,) (points of a 2-D toy mixture), "
            f"got {_shape_str(sample_shape)}; use model 'mlp' or 'dcgan' for images"
        )


def _build_mlp(sample_shape: tuple[int, ...], pack: int, z_dim: int | None) -> _Pair:
    if len(sample_shape) not in (1, 3):
        fix = (
            f"add a channel dim for grey images: (1, {sample_shape[0]}, {sample_shape[1]})"
            if len(sample_shape) == 2
            else "pass the shape of one sample, without the batch dim"
        )
        raise ValueError(
            f"build_pair('mlp'): expected sample_shape (C, H, W) or flat (D,), "
            f"got {_shape_str(sample_shape)}; {fix}"
        )
    G = MLPGenerator(z_dim=100 if z_dim is None else z_dim, out_shape=sample_shape)
    D = MLPImageDiscriminator(in_shape=sample_shape, pack=pack)
    return G, D


def _build_dcgan(sample_shape: tuple[int, ...], pack: int, z_dim: int | None) -> _Pair:
    if len(sample_shape) != 3 or sample_shape[1] != sample_shape[2] or sample_shape[1] not in DCGAN_SIZES:
        raise ValueError(
            f"build_pair('dcgan'): expected sample_shape (C, S, S) with S one of "
            f"{DCGAN_SIZES}, got {_shape_str(sample_shape)}; resize the images to one of those "
            f"sizes, or use model 'mlp' for other sizes"
        )
    channels, size, _ = sample_shape
    G = DCGANGenerator(z_dim=100 if z_dim is None else z_dim, channels=channels, size=size)
    D = DCGANDiscriminator(channels=channels, size=size, pack=pack)
    return G, D


# Insertion order is the order users see in MODEL_NAMES and in error messages.
_BUILDERS: dict[str, _Builder] = {
    "toy": _build_toy,
    "toy-small": _build_toy_small,
    "mlp": _build_mlp,
    "dcgan": _build_dcgan,
}

#: Names accepted by :func:`build_pair`.
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_pair(
    name: str,
    *,
    sample_shape: Sequence[int],
    pack: int = 1,
    z_dim: int | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Build the reference generator and discriminator called ``name`` for ``sample_shape``.

    Names: ``"toy"`` (PacGAN paper pair, sample_shape (2,)), ``"toy-small"`` (3x128 MLPs,
    (2,)), ``"mlp"`` (classic fully connected pair, (C, H, W) or (D,)) and ``"dcgan"``
    ((C, S, S) for S = 8, 16, 32 or 64: the tutorial's stack for 32 and 64, cut to fewer
    stages for the 8x8 digits and 16x16). ``pack`` is the PacGAN packing degree of D; ``z_dim``
    None keeps the model's default (2 for ``"toy"``, 4 for
    ``"toy-small"``, 100 otherwise).

    Example:
        >>> import torch
        >>> G, D = build_pair("dcgan", sample_shape=(3, 32, 32), pack=2)
        >>> x = G(torch.randn(8, G.z_dim))
        >>> D(x.reshape(4, 6, 32, 32)).shape
        torch.Size([4])
    """
    builder = _BUILDERS.get(name) if isinstance(name, str) else None
    if builder is None:
        close = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
        fix = f"did you mean {close[0]!r}?" if close else "pick one of those names"
        raise ValueError(f"build_pair: unknown model {name!r}; expected one of {MODEL_NAMES}; {fix}")
    owner = f"build_pair({name!r})"
    shape = _positive_int_tuple(sample_shape, name="sample_shape", owner=owner)
    pack = _positive_int(pack, name="pack", owner=owner)
    if z_dim is not None:
        z_dim = _positive_int(z_dim, name="z_dim", owner=owner)
    return builder(shape, pack, z_dim)
