"""Reference generators and discriminators: toy MLPs, the classic MLP pair, DCGAN 32/64.

Conventions shared by every model here:

- a generator maps noise ``z`` of shape (B, z_dim) to a sample batch and has ``z_dim``;
- a discriminator returns logits (no sigmoid; higher = more real), shape (N,) or (N, 1);
- every discriminator takes ``pack`` (PacGAN): with ``pack=m`` it expects m consecutive
  samples concatenated along dim 1, ``x.reshape(B // m, m * C, *x.shape[2:])``, and
  returns B // m logits.

Example:
    >>> from gandiag.models import build_pair
    >>> G, D = build_pair("toy", sample_shape=(2,), pack=2)
    >>> G.z_dim, D.pack
    (2, 2)
"""

from gandiag.models.classic import MLPGenerator, MLPImageDiscriminator
from gandiag.models.dcgan import DCGAN_SIZES, DCGANDiscriminator, DCGANGenerator, dcgan_weights_init
from gandiag.models.registry import MODEL_NAMES, build_pair
from gandiag.models.toy import (
    Maxout,
    MLPDiscriminator,
    ToyDiscriminator,
    ToyGenerator,
    pacgan_toy,
    small_toy,
)

__all__ = [
    "Maxout",
    "ToyGenerator",
    "ToyDiscriminator",
    "MLPDiscriminator",
    "pacgan_toy",
    "small_toy",
    "MLPGenerator",
    "MLPImageDiscriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "dcgan_weights_init",
    "DCGAN_SIZES",
    "build_pair",
    "MODEL_NAMES",
]
