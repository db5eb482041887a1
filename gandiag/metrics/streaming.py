"""Streaming metrics: `update` with batches as they come, `compute` at any time, `reset`.

The math lives in `gandiag.metrics.functional`; these classes only hold state
(torchmetrics style), so a streamed result equals the one-shot function on the
concatenated batches, whatever the batch sizes. Memory is constant for `FID` (running
float64 sums) and `ModeCoverage` (a histogram), bounded by `max_samples` for `PRDC`.

    >>> import torch
    >>> from gandiag import data
    >>> coverage = ToyCoverage(data.ring())
    >>> for _ in range(5):
    ...     coverage.update(data.ring().sample(500, generator=torch.Generator().manual_seed(_)))
    >>> coverage.compute()["modes"]
    8
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from gandiag.data.toy import _reverse_kl_uniform as reverse_kl_uniform  # the mixture's own math
from gandiag.metrics.functional import frechet_distance, mode_stats, prdc


def _as_features(x: Any, where: str) -> Tensor:
    """(n, d) float64 CPU tensor from a tensor or array of features."""
    t = torch.as_tensor(x).detach()
    if t.dim() != 2:
        raise ValueError(f"{where}: expected features of shape (n, d), got {tuple(t.shape)}; "
                         "flatten samples first (x.flatten(1)) or pass extracted features")
    return t.to(device="cpu", dtype=torch.float64)


class Metric:
    """Base class: `update(...)`, `compute()`, `reset()`, and `state_dict()` round trips."""

    def reset(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if isinstance(value, Tensor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value.clone())


class FID(Metric):
    """Fréchet distance between real and fake features from running float64 sums.

    `update(features, real=...)` with (n, d) features (e.g. from
    `gandiag.metrics.extract_features`); `compute()` gives the FID.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.real_n = torch.zeros((), dtype=torch.float64)
        self.fake_n = torch.zeros((), dtype=torch.float64)
        self.real_sum = self.fake_sum = self.real_outer = self.fake_outer = torch.zeros(0, dtype=torch.float64)

    def update(self, features: Any, *, real: bool) -> None:
        x = _as_features(features, "FID.update")
        side = "real" if real else "fake"
        total = getattr(self, f"{side}_sum")
        if total.numel() == 0:  # the first batch fixes the dimension
            total = torch.zeros(x.shape[1], dtype=torch.float64)
            setattr(self, f"{side}_outer", torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64))
        elif total.shape[0] != x.shape[1]:
            raise ValueError(f"FID.update: features of dimension {x.shape[1]}, but earlier {side} "
                             f"features had {total.shape[0]}; use one extractor throughout")
        setattr(self, f"{side}_sum", total + x.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + x.T @ x)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + x.shape[0])

    def statistics(self, *, real: bool) -> tuple[Tensor, Tensor]:
        """(mean, unbiased covariance) of the real or fake features seen so far."""
        side = "real" if real else "fake"
        n = float(getattr(self, f"{side}_n"))
        if n < 2:
            raise ValueError(f"FID: need at least 2 {side} samples, got {int(n)}; update() with more")
        mean = getattr(self, f"{side}_sum") / n
        covariance = (getattr(self, f"{side}_outer") - n * torch.outer(mean, mean)) / (n - 1)
        return mean, covariance

    def compute(self) -> float:
        mu1, sigma1 = self.statistics(real=True)
        mu2, sigma2 = self.statistics(real=False)
        if mu1.shape != mu2.shape:
            raise ValueError(f"FID: real features have dimension {mu1.shape[0]}, fake {mu2.shape[0]}")
        return frechet_distance(mu1, sigma1, mu2, sigma2)


class PRDC(Metric):
    """Precision, recall, density, coverage (k = 5) of the features seen, real vs fake.

    Keeps at most `max_samples` feature rows per side (PRDC needs the points themselves);
    more are ignored with a warning, so memory stays bounded on a long run.
    """

    def __init__(self, *, k: int = 5, max_samples: int = 10_000) -> None:
        self.k, self.max_samples = k, max_samples
        self.reset()

    def reset(self) -> None:
        self.real = torch.zeros(0, 0, dtype=torch.float64)
        self.fake = torch.zeros(0, 0, dtype=torch.float64)
        self._warned = False

    def update(self, features: Any, *, real: bool) -> None:
        x = _as_features(features, "PRDC.update")
        kept = self.real if real else self.fake
        room = self.max_samples - kept.shape[0]
        if room < x.shape[0] and not self._warned:
            self._warned = True
            warnings.warn(f"PRDC: keeping the first {self.max_samples} samples per side "
                          "(max_samples); reset() to start over", stacklevel=2)
        x = x[:max(room, 0)]
        kept = x if kept.numel() == 0 else torch.cat([kept, x])
        if real:
            self.real = kept
        else:
            self.fake = kept

    def compute(self) -> dict[str, float]:
        return prdc(self.real, self.fake, k=self.k)


class ModeCoverage(Metric):
    """Modes covered and KL to uniform of class labels (e.g. from a digits classifier).

    `update(labels)`; or give `labeller` (samples -> labels, e.g.
    `gandiag.metrics.stacked_labels` with n_modes=1000) and `update(samples)`.
    """

    def __init__(self, n_modes: int, labeller: Callable[[Any], Any] | None = None) -> None:
        if not isinstance(n_modes, int) or n_modes < 1:
            raise ValueError(f"ModeCoverage: expected n_modes to be an integer >= 1, got {n_modes!r}")
        self.n_modes, self.labeller = n_modes, labeller
        self.reset()

    def reset(self) -> None:
        self.counts = torch.zeros(self.n_modes, dtype=torch.int64)

    def update(self, samples_or_labels: Any) -> None:
        labels = self.labeller(samples_or_labels) if self.labeller is not None else samples_or_labels
        labels = np.asarray(torch.as_tensor(labels).cpu()).astype(np.int64).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_modes):
            raise ValueError(f"ModeCoverage.update: labels must lie in [0, {self.n_modes}), got "
                             f"[{labels.min()}, {labels.max()}]")
        self.counts += torch.from_numpy(np.bincount(labels, minlength=self.n_modes))

    def compute(self) -> dict[str, float]:
        labels = np.repeat(np.arange(self.n_modes), self.counts.numpy())
        return mode_stats(labels, self.n_modes)


class ToyCoverage(Metric):
    """The toy mixtures' metric (modes, HQ share, reverse KL) over all samples seen."""

    def __init__(self, mixture: Any) -> None:
        self.mixture = mixture
        self.reset()

    def reset(self) -> None:
        self.histogram = torch.zeros(self.mixture.n_modes, dtype=torch.int64)
        self.seen = torch.zeros((), dtype=torch.int64)

    def update(self, samples: Any) -> None:
        self.histogram += torch.from_numpy(self.mixture.mode_histogram(samples))
        self.seen += len(samples)

    def compute(self) -> dict[str, float]:
        hist = self.histogram.numpy()
        seen = int(self.seen)
        return {"modes": int(np.count_nonzero(hist)), "hq": int(hist.sum()) / seen if seen else 0.0,
                "reverse_kl": reverse_kl_uniform(hist)}
