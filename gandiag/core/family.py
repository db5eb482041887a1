"""`LossFamily`: how D's outputs are read, from the loss D is trained with.

The loss decides what D's raw output means, so it decides every statistic of it:

| family   | losses                              | D says "real" when     | D is sure when the gap is |
|----------|-------------------------------------|------------------------|---------------------------|
| `logits` | BCE / BCEWithLogits, minimax, non-saturating | logit > 0     | 3 logits (p 0.82 vs 0.18) |
| `lsgan`  | least squares to targets a (fake), b (real) | output > (a + b) / 2 | 0.64 (b - a), the same p gap |
| `hinge`  | hinge (SAGAN, BigGAN)               | output > 0             | 2 (both margins met)      |
| `wgan`   | Wasserstein critics (clipping, GP)  | no threshold: a critic is shift-invariant | none     |

An LSGAN D trained towards 0 and 1 approximates the same D*(x) = p_data / (p_data + p_g)
as the BCE one does on the probability scale, so an LSGAN output of (x - a) / (b - a) is
read as a probability and the "sure" gap is the probability gap of 3 logits.

A loss is named as `TrainConfig.loss` names it (`nonsaturating`, `lsgan`, `wgan-gp`, ...);
LSGAN targets other than 0/1 are written `lsgan:-1,1` (fake target, real target).

    >>> family_of("lsgan:-1,1").center, family_of("nonsaturating").name, family_of("wgan-gp").center
    (0.0, 'logits', None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOGIT_GAP = 3.0  # a logit gap at which D is sure: sigmoid(1.5) = 0.82 vs 0.18
PROBABILITY_GAP = 1.0 / (1.0 + math.exp(-LOGIT_GAP / 2)) - 1.0 / (1.0 + math.exp(LOGIT_GAP / 2))

_NAMES = {"logits": "logits", "bce": "logits", "minimax": "logits", "nonsaturating": "logits",
          "lsgan": "lsgan", "hinge": "hinge", "wgan": "wgan", "wgan-gp": "wgan"}


@dataclass(frozen=True)
class LossFamily:
    """A loss family (see the module doc); `fake`, `real`: the LSGAN targets."""

    name: str
    fake: float = 0.0
    real: float = 1.0

    @property
    def center(self) -> float | None:
        """The output between fake and real (D's decision threshold); None for a critic."""
        if self.name == "wgan":
            return None
        return (self.fake + self.real) / 2 if self.name == "lsgan" else 0.0

    @property
    def sure_gap(self) -> float:
        """A gap mean D(real) - mean D(fake) at which D separates them surely (NaN: a critic)."""
        return {"logits": LOGIT_GAP, "lsgan": PROBABILITY_GAP * (self.real - self.fake),
                "hinge": 2.0}.get(self.name, math.nan)

    @property
    def spec(self) -> str:
        """The name that `family_of` reads back: 'lsgan:-1,1' for other LSGAN targets."""
        if self.name == "lsgan" and (self.fake, self.real) != (0.0, 1.0):
            return f"lsgan:{self.fake:g},{self.real:g}"
        return self.name


def family_of(loss: str | None, default: str = "logits") -> LossFamily:
    """The family of a loss name (see the module doc); `default` when it is None."""
    name = default if loss is None else str(loss)
    base, _, targets = name.partition(":")
    if base not in _NAMES:
        raise ValueError(f"expected a loss among {', '.join(sorted(_NAMES))} (or 'lsgan:<fake>,<real>' "
                         f"for other LSGAN targets), got {loss!r}")
    if not targets:
        return LossFamily(_NAMES[base])
    try:
        fake, real = (float(t) for t in targets.split(","))
    except ValueError:
        fake = real = math.nan
    if base != "lsgan" or not fake < real:
        raise ValueError(f"expected LSGAN targets as 'lsgan:<fake>,<real>' with fake < real (e.g. "
                         f"'lsgan:-1,1'), got {loss!r}")
    return LossFamily("lsgan", fake, real)


def known_family(loss: str | None) -> LossFamily | None:
    """`family_of(loss)`, or None for a name that is not a known loss (a detector reading a
    stored run's config must not fail on a custom loss name)."""
    try:
        return family_of(loss) if loss is not None else None
    except ValueError:
        return None
