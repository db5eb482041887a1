"""Pure metric functions: tensors or arrays in, plain Python numbers out.

Every function accepts torch tensors (any device; the math runs there, in float64) or
numpy arrays (on the CPU), checks shapes and values, and returns floats, ints or dicts of
them. The streaming metrics in :mod:`gandiag.metrics` hold state and call these.

- mode coverage: :func:`mode_stats` (class labels), :func:`toy_coverage` (ring, grid),
  :func:`binned_coverage` (no labels: NDB and JSD over k-means bins from :func:`fit_bins`,
  against the data's own level from :func:`null_ndb`);
- sample quality: :func:`prdc`, :func:`fid` (:func:`frechet_distance`,
  :func:`feature_statistics`), :func:`kid`;
- cheap collapse signals: :func:`mean_pairwise_distance`, :func:`relative_diversity`,
  :func:`near_duplicate_rate`, :func:`fixed_noise_drift`.

Example:
    >>> import numpy as np
    >>> from gandiag.metrics.functional import mode_stats
    >>> mode_stats(np.array([0, 0, 1, 1]), 2)
    {'modes': 2, 'kl': 0.0}
"""

from gandiag.metrics.functional.binned import Bins, bin_of, binned_coverage, fit_bins, null_ndb
from gandiag.metrics.functional.diversity import (
    fixed_noise_drift,
    mean_pairwise_distance,
    near_duplicate_rate,
    relative_diversity,
)
from gandiag.metrics.functional.frechet import feature_statistics, fid, frechet_distance
from gandiag.metrics.functional.kid import kid
from gandiag.metrics.functional.modes import mode_stats, toy_coverage
from gandiag.metrics.functional.prdc import prdc

__all__ = [
    "Bins",
    "bin_of",
    "binned_coverage",
    "feature_statistics",
    "fid",
    "fit_bins",
    "fixed_noise_drift",
    "frechet_distance",
    "kid",
    "mean_pairwise_distance",
    "mode_stats",
    "near_duplicate_rate",
    "null_ndb",
    "prdc",
    "relative_diversity",
    "toy_coverage",
]
