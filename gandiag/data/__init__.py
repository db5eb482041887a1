"""Datasets for GAN diagnostics: 2-D toy mixtures with their mode metric, and digits."""

from gandiag.data.adapters import BatchSource, batch_source
from gandiag.data.digits import digits, stacked_digits
from gandiag.data.toy import ToyMixture, grid, ring

__all__ = ["BatchSource", "ToyMixture", "batch_source", "digits", "grid", "ring", "stacked_digits"]
