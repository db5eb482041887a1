"""Metrics of mode coverage and sample quality (docs/definitions.md, all sections).

Pure math in `gandiag.metrics.functional` (re-exported here), streaming classes with
`update / compute / reset` in `streaming`, a digits classifier and a registry of feature
extractors for FID/KID and class coverage, `MetricSchedule`, the callback that
evaluates metrics on fixed noise during training, and `LabelFreeCoverage`, the callback
that compares the real and fake samples a user loop's monitor kept, without labels.

    >>> import torch, gandiag
    >>> real = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    >>> result = gandiag.metrics.prdc(real, real, k=5)   # identical sets
    >>> [result[key] for key in ("precision", "recall", "density", "coverage")]
    [1.0, 1.0, 1.0, 1.0]
"""

from gandiag.metrics.coverage import LabelFreeCoverage
from gandiag.metrics.classifier import DigitsClassifier, classify, load_digits_classifier, stacked_labels
from gandiag.metrics.extractors import (extract_features, extractor_names, get_extractor,
                                        register_extractor)
from gandiag.metrics.functional import (feature_statistics, fid, fixed_noise_drift, frechet_distance,
                                        kid, mean_pairwise_distance, mode_stats, near_duplicate_rate,
                                        prdc, relative_diversity, toy_coverage)
from gandiag.metrics.schedule import MetricSchedule
from gandiag.metrics.streaming import FID, PRDC, Metric, ModeCoverage, ToyCoverage

__all__ = [
    "FID", "PRDC", "DigitsClassifier", "LabelFreeCoverage", "Metric", "MetricSchedule", "ModeCoverage", "ToyCoverage",
    "classify", "extract_features", "extractor_names", "feature_statistics", "fid",
    "fixed_noise_drift", "frechet_distance", "get_extractor", "kid", "load_digits_classifier",
    "mean_pairwise_distance", "mode_stats", "near_duplicate_rate", "prdc", "register_extractor",
    "relative_diversity", "stacked_labels", "toy_coverage",
]
