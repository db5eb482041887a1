"""Binned mode coverage without labels: NDB and JSD over k-means bins.

Richardson & Weiss, "On GANs and GMMs" (NeurIPS 2018): cut the real data into k bins by
k-means, then ask whether the generator puts the same share of its samples in every bin.
Definitions (docs/definitions.md, "Binned coverage (NDB, JSD)"), for n_r real and n_f fake
samples with c_r, c_f of them in a bin, shares p_r = c_r / n_r and p_f = c_f / n_f:

- a bin is *statistically different* when the two-proportion z-test with pooled
  proportion rejects at level alpha (two-sided): p = (c_r + c_f) / (n_r + n_f),
  se = √(p (1 − p) (1/n_r + 1/n_f)), z = (p_f − p_r) / se, different when
  |z| > z_{1−alpha/2}; where se = 0 (a bin empty in both, or holding all of both) z = 0,
  not different. ndb = the number of different bins, ndb_k = ndb / k;
- jsd = ½ KL(p_r ‖ m) + ½ KL(p_f ‖ m), m = (p_r + p_f) / 2, in nats with 0 log 0 = 0:
  0 for equal histograms, log 2 for disjoint ones. A fake that spreads like the data over
  bins of real mass s and misses the rest gives jsd = log 2 − ½ [(1 + s) log(1 + s) −
  s log s]: 0.2158 for half the modes (s = ½), 0.6439 for one bin of 1/50;
- bins_covered = share of the bins with p_r > 0 whose p_f >= p_r / 4 (exact integer test
  4 c_f n_r >= c_r n_f).

Two samples of one distribution differ by chance: each bin is "different" with
probability ≈ alpha, and jsd ≈ (k − 1)/8 · (1/n_r + 1/n_f) (JSD ≈ ⅛ Σ (p_r − p_f)² / m to
second order, and that sum ≈ χ²_{k−1} (1/n_r + 1/n_f)): 0.006 for k = 50 and 2 000 + 2 000
samples. :func:`null_ndb` measures this level on the data itself, so a detector compares
with it rather than with a constant tuned to one data set.

Numerics: float64 on the device of the tensor inputs (numpy: the CPU); squared distances
|x|² − 2x·c + |c|² on centred data, in row blocks of at most 64 MiB. k-means: Lloyd's
algorithm from k-means++ seeds (Arthur & Vassilvitskii 2007), ``restarts`` runs, the lowest
inertia kept; a run stops when no sample changes bin. Draws come from a CPU generator
seeded with ``seed``: one seed, the same bins (on a GPU, up to ties rounded the other
way). Empty bins are re-seeded during Lloyd's steps at the samples farthest from their
centres; one still empty at the end (fewer than k distinct real points) is dropped with a
warning, so ``bins.k`` may be below the k asked for. Measured on this project's 2-core CPU
machine (busy; one thread), k = 50, d = 64: ``fit_bins`` of 2 000 samples (3 restarts)
0.1-0.2 s, ``binned_coverage`` of 2 000 + 2 000 samples 5 ms, ``null_ndb`` (200 draws of a
4 000 pool) 20 ms; two threads on the busy box: fit 0.4-0.6 s (threads wait on each other).
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gandiag.metrics.functional import _inputs

__all__ = ["Bins", "bin_of", "binned_coverage", "fit_bins", "null_ndb"]


@dataclass(frozen=True, eq=False, repr=False)
class Bins:
    """k-means bins of a real sample: the centres and how the real samples fell into them.

    Args:
        centres: ``(k, d)`` bin centres; stored as a read-only float64 numpy copy.
        real_counts: Real samples per bin at fitting time (each >= 0).
        inertia: Sum of squared distances of the fitting samples to their centres.

    Example:
        >>> bins = Bins(np.array([[0.0], [10.0]]), (3, 1), inertia=0.0)
        >>> bins.k, bins.n_real, bins.real_shares
        (2, 4, (0.75, 0.25))
    """

    centres: np.ndarray
    real_counts: tuple[int, ...]
    inertia: float = math.nan

    def __post_init__(self) -> None:
        centres = np.array(self.centres, dtype=np.float64)  # a copy the caller cannot edit
        counts = tuple(int(count) for count in self.real_counts)
        if centres.ndim != 2 or 0 in centres.shape or not np.isfinite(centres).all() or len(
                counts) != centres.shape[0] or min(counts) < 0 or sum(counts) < 1:
            raise ValueError(f"Bins: expected finite centres (k, d) and k real counts >= 0, not "
                             f"all 0, got centres {centres.shape} and counts {counts}; build "
                             "Bins with fit_bins")
        centres.setflags(write=False)
        object.__setattr__(self, "centres", centres)
        object.__setattr__(self, "real_counts", counts)
        object.__setattr__(self, "inertia", float(self.inertia))

    @property
    def k(self) -> int:
        """Number of bins."""
        return int(self.centres.shape[0])

    @property
    def n_real(self) -> int:
        """Number of real samples the bins were fitted on."""
        return sum(self.real_counts)

    @property
    def real_shares(self) -> tuple[float, ...]:
        """Share of the fitting real samples in each bin."""
        return tuple(count / self.n_real for count in self.real_counts)

    def __repr__(self) -> str:
        return f"Bins(k={self.k}, d={self.centres.shape[1]}, n_real={self.n_real})"


def fit_bins(
    real: Tensor | np.ndarray, k: int = 50, *, seed: int = 0, iterations: int = 100,
    restarts: int = 3,
) -> Bins:
    """k-means bins of the real samples ``(N, ...)`` (flattened to ``(N, d)``).

    Args:
        real: Real samples or features, tensor (any device; computed there) or array.
        k: Number of bins, >= 2; needs N >= k, and N < 2k warns (under two samples per
            bin leave the z-test nothing to test; 20k or more is comfortable).
        seed: Seeds the k-means++ draws; the same seed gives the same bins.
        iterations: Most Lloyd steps per run (a run stops earlier when no sample moves).
        restarts: k-means runs from different seeds; the lowest inertia is kept.

    Example:
        >>> real = torch.randn(1000, 8, generator=torch.Generator().manual_seed(0))
        >>> bins = fit_bins(real, k=10)
        >>> bins.k, bins.n_real, min(bins.real_counts) > 0
        (10, 1000, True)
    """
    where = "fit_bins"
    k = _inputs.positive_int(k, name="k", where=where, minimum=2)
    iterations = _inputs.positive_int(iterations, name="iterations", where=where)
    restarts = _inputs.positive_int(restarts, name="restarts", where=where)
    seed = _inputs.positive_int(seed, name="seed", where=where, minimum=0)
    device = _inputs.compute_device(real, where=where)
    x = _batch(real, name="real", where=where, device=device)
    n = x.shape[0]
    if n < k:
        raise ValueError(f"{where}: expected at least k={k} real samples (one per bin, 2k or more "
                         f"recommended), got {n}; pass more real samples or a smaller k")
    if n < 2 * k:
        warnings.warn(f"{where}: {n} real samples for k={k} bins leave the z-tests almost nothing "
                      "to test; pass 2k or more (20k is comfortable) or a smaller k", stacklevel=2)
    rows = _inputs.chunk_rows(None, max(k, x.shape[1]), where=where)  # 64 MiB blocks
    centred = x - x.mean(dim=0)
    generator = torch.Generator().manual_seed(seed)
    best_centres, best_inertia = None, math.inf
    for _ in range(restarts):
        seeds = _kmeans_plus_plus(centred, k, generator)
        centres, inertia = _lloyd(centred, seeds, iterations, rows)
        if inertia < best_inertia:
            best_centres, best_inertia = centres, inertia
    centres = best_centres + x.mean(dim=0)
    # Count with bin_of's own arithmetic, so bin_of(bins, real) reproduces real_counts.
    counts = torch.bincount(_nearest(centres, x, rows), minlength=k).cpu().numpy()
    keep = counts > 0
    if not keep.all():
        warnings.warn(f"{where}: dropped {k - keep.sum()} of {k} bins that stayed empty (the real "
                      f"sample has fewer than k distinct points), k={keep.sum()}", stacklevel=2)
    return Bins(centres.cpu().numpy()[keep], tuple(counts[keep].tolist()), best_inertia)


def bin_of(bins: Bins, x: Tensor | np.ndarray, *, chunk_size: int | None = None) -> np.ndarray:
    """Index of the nearest bin centre (squared Euclidean) of each sample ``(n, ...)``.

    Ties go to the lower index. Computed in row blocks of at most 64 MiB (or
    ``chunk_size`` rows); returns an int64 numpy array of shape ``(n,)``.

    Example:
        >>> bins = Bins(np.array([[0.0, 0.0], [10.0, 0.0]]), (1, 1))
        >>> bin_of(bins, np.array([[1.0, 2.0], [9.0, -3.0], [4.0, 0.0]])).tolist()
        [0, 1, 0]
    """
    where = "bin_of"
    device = _inputs.compute_device(x, where=where)
    return _labels(bins, x, name="x", where=where, device=device, chunk_size=chunk_size)


def binned_coverage(
    bins: Bins, real: Tensor | np.ndarray, fake: Tensor | np.ndarray, *, alpha: float = 0.05
) -> dict[str, int | float | list[float]]:
    """NDB, JSD and bins covered of ``fake`` against ``real`` samples over ``bins``.

    Args:
        bins: From :func:`fit_bins` on real data.
        real: Real samples ``(n_r, ...)``: held out, or the sample the bins were fitted on.
        fake: Generated samples ``(n_f, ...)``, each of the real samples' shape.
        alpha: Level of each bin's two-sided z-test, in (0, 1).

    Returns:
        ``{"ndb": int, "ndb_k": float, "jsd": float, "bins_covered": float, "k": int,
        "n_real": int, "n_fake": int, "real_shares": list, "fake_shares": list,
        "z_scores": list}``; the lists hold one float per bin (z = 0 where se = 0).

    Example:
        >>> real = torch.randn(1000, 8, generator=torch.Generator().manual_seed(0))
        >>> bins = fit_bins(real, k=10)
        >>> same = binned_coverage(bins, real, real.clone())
        >>> same["ndb"], same["jsd"], same["bins_covered"]
        (0, 0.0, 1.0)
        >>> collapsed = binned_coverage(bins, real, real[:1].repeat(1000, 1))
        >>> collapsed["ndb"], collapsed["bins_covered"]
        (10, 0.1)
    """
    where = "binned_coverage"
    critical = _critical_z(alpha, where)
    device = _inputs.compute_device(real, fake, where=where)
    real_counts, fake_counts = (
        np.bincount(_labels(bins, value, name=name, where=where, device=device), minlength=bins.k)
        for name, value in (("real", real), ("fake", fake))
    )
    ndb, jsd, covered, z = _compare(real_counts, fake_counts, critical)
    n_real, n_fake = int(real_counts.sum()), int(fake_counts.sum())
    return {
        "ndb": int(ndb), "ndb_k": int(ndb) / bins.k, "jsd": float(jsd),
        "bins_covered": float(covered), "k": bins.k, "n_real": n_real, "n_fake": n_fake,
        "real_shares": (real_counts / n_real).tolist(),
        "fake_shares": (fake_counts / n_fake).tolist(),
        "z_scores": z.tolist(),
    }


def null_ndb(
    bins: Bins, real: Tensor | np.ndarray, n_fake: int, *, n_real: int | None = None,
    alpha: float = 0.05, draws: int = 200, quantile: float = 0.95, seed: int = 0,
) -> dict[str, int | float]:
    """The level ndb_k and jsd reach when the "fake" is itself real: the data's own null.

    Each draw shuffles the real pool ``real`` (N samples; numpy generator seeded with
    ``seed``), takes its first ``n_fake`` samples as a stand-in fake and the next
    ``n_real`` (default: all the other N − n_fake) as the real sample, and computes
    ndb_k and jsd as :func:`binned_coverage` would. Both levels depend on the sizes
    (jsd ≈ (k − 1)/8 · (1/n_r + 1/n_f)), so pass a pool of at least n_real + n_fake
    samples for the sizes of the comparison you judge.

    Returns:
        ``{"ndb_k_mean", "ndb_k_quantile", "jsd_mean", "jsd_quantile", "starved_mean",
        "starved_quantile"}`` (floats, starved = 1 − bins_covered: the mean
        over draws and the ``quantile``-th quantile, an observed value at or above it,
        numpy's ``method="higher"``), with ``"quantile"``, ``"draws"``, ``"k"``,
        ``"n_real"`` and ``"n_fake"``.

    Example:
        >>> real = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
        >>> bins = fit_bins(real[:1000], k=10)
        >>> level = null_ndb(bins, real, 1000, draws=50)
        >>> level["n_real"], level["n_fake"], level["jsd_quantile"] < 0.02
        (1000, 1000, True)
    """
    where = "null_ndb"
    critical = _critical_z(alpha, where)
    draws = _inputs.positive_int(draws, name="draws", where=where)
    quantile = _unit_interval(quantile, name="quantile", where=where)
    seed = _inputs.positive_int(seed, name="seed", where=where, minimum=0)
    device = _inputs.compute_device(real, where=where)
    labels = _labels(bins, real, name="real", where=where, device=device)
    pool = labels.shape[0]
    n_fake = _inputs.positive_int(n_fake, name="n_fake", where=where)
    if n_real is not None:
        n_real = _inputs.positive_int(n_real, name="n_real", where=where)
    n_real = pool - n_fake if n_real is None else n_real
    if n_real < 1 or n_fake + n_real > pool:
        raise ValueError(f"{where}: expected n_fake + n_real <= the {pool} real samples (two "
                         f"disjoint parts of the pool), got n_fake={n_fake}, n_real={n_real}; "
                         "pass a larger real pool or smaller sizes")
    rng = np.random.default_rng(seed)
    fake_counts, real_counts = (np.empty((draws, bins.k), dtype=np.int64) for _ in range(2))
    for draw in range(draws):
        shuffled = labels[rng.permutation(pool)]
        fake_counts[draw] = np.bincount(shuffled[:n_fake], minlength=bins.k)
        real_counts[draw] = np.bincount(shuffled[n_fake:n_fake + n_real], minlength=bins.k)
    ndb, jsd, covered, _ = _compare(real_counts, fake_counts, critical)
    levels = {"ndb_k": ndb / bins.k, "jsd": jsd, "starved": 1 - covered}
    return {
        **{f"{name}_mean": float(v.mean()) for name, v in levels.items()},
        **{f"{name}_quantile": float(np.quantile(v, quantile, method="higher")) for name, v in levels.items()},
        "quantile": quantile, "draws": draws, "k": bins.k, "n_real": n_real, "n_fake": n_fake,
    }


# ------------------------------------------------------------------- helpers


def _compare(
    real_counts: np.ndarray, fake_counts: np.ndarray, critical: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ndb, jsd, bins_covered and the z-scores of count histograms ``(..., k)``."""
    n_r, n_f = (counts.sum(axis=-1, keepdims=True) for counts in (real_counts, fake_counts))
    p_r, p_f = real_counts / n_r, fake_counts / n_f
    pooled = (real_counts + fake_counts) / (n_r + n_f)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_r + 1 / n_f))
    z = np.divide(p_f - p_r, se, out=np.zeros_like(se), where=se > 0)  # se = 0: p_f = p_r
    ndb = (np.abs(z) > critical).sum(axis=-1)
    # ½ Σ p log(2p / (p + q)) over both sides, 0 log 0 = 0; 2p / (p + p) is exactly 1.
    jsd = sum(0.5 * p * np.log(np.divide(2 * p, p_r + p_f, out=np.ones_like(p), where=p > 0))
              for p in (p_r, p_f)).sum(axis=-1)
    jsd = np.clip(jsd, 0.0, math.log(2))  # the clip only absorbs rounding
    held = real_counts > 0
    covered = (4 * fake_counts * n_r >= real_counts * n_f) & held  # p_f >= p_r / 4, exactly
    bins_covered = covered.sum(axis=-1) / held.sum(axis=-1)
    return ndb, jsd, bins_covered, z


def _critical_z(alpha: object, where: str) -> float:
    """z_{1 − alpha/2} of the standard normal (the stdlib's inverse CDF, Wichura's AS241)."""
    alpha = _unit_interval(alpha, name="alpha", where=where)
    return statistics.NormalDist().inv_cdf(1 - alpha / 2)


def _unit_interval(value: object, *, name: str, where: str) -> float:
    value = _inputs.finite_float(value, name=name, where=where)
    if not 0 < value < 1:
        raise ValueError(f"{where}: expected {name} in (0, 1), got {value}; pass e.g. 0.05")
    return value


def _kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k seeds among the rows of ``x``: the first uniform, each next one with probability
    ∝ its squared distance to the nearest seed so far (uniform again when all are 0)."""
    n = x.shape[0]
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = (x - x[chosen[0]]).square().sum(dim=1)
    for _ in range(1, k):
        cumulative = nearest.cpu().cumsum(0)  # drawn on the CPU: one seed, one choice
        total = float(cumulative[-1])
        if total > 0:
            target = torch.rand((), generator=generator, dtype=torch.float64) * total
            index = min(int(torch.searchsorted(cumulative, target, right=True)), n - 1)
        else:  # fewer distinct points than seeds: the duplicate seed's bin ends up empty
            index = int(torch.randint(n, (1,), generator=generator))
        chosen.append(index)
        nearest = torch.minimum(nearest, (x - x[index]).square().sum(dim=1))
    return x[chosen].clone()


def _lloyd(x: Tensor, centres: Tensor, iterations: int, rows: int) -> tuple[Tensor, float]:
    """Up to ``iterations`` Lloyd steps from ``centres``, fewer when no sample moves;
    (centres, inertia)."""
    k, previous = centres.shape[0], None
    for step in range(iterations + 1):
        labels, squared = _assign(centres, x, rows)
        if step == iterations or (previous is not None and torch.equal(labels, previous)):
            break  # out of steps, or converged (the centres are these labels' means)
        empty = torch.nonzero(torch.bincount(labels, minlength=k) == 0).flatten()
        if empty.numel():  # re-seed empty bins at the samples farthest from their centres
            far = squared.topk(empty.numel()).indices  # empty.numel() < k <= n
            far = far[squared[far] > 0]
            labels[far] = empty[: far.numel()]
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
        previous = labels
    return centres, float(squared.sum())


def _assign(centres: Tensor, x: Tensor, rows: int) -> tuple[Tensor, Tensor]:
    """Nearest centre of each row of ``x`` and its squared distance, in 64 MiB row blocks."""
    centres_sq = centres.square().sum(dim=1)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    squared = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows]
        distances = torch.addmm(centres_sq[None, :], block, centres.T, alpha=-2)
        least = distances.min(dim=1)
        labels[start:start + rows] = least.indices
        squared[start:start + rows] = (least.values + block.square().sum(dim=1)).clamp(min=0)
    return labels, squared


def _labels(
    bins: Bins, value: object, *, name: str, where: str, device: torch.device,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Validated samples' nearest bins, an int64 array (what :func:`bin_of` returns)."""
    if not isinstance(bins, Bins):
        raise TypeError(f"{where}: expected bins from fit_bins (a Bins), got "
                        f"{type(bins).__name__}; call bins = fit_bins(real, k) first")
    points = _batch(value, name=name, where=where, device=device, dimension=bins.centres.shape[1])
    rows = _inputs.chunk_rows(chunk_size, max(bins.k, points.shape[1]), where=where)
    return _nearest(torch.tensor(bins.centres, device=device), points, rows).cpu().numpy()


def _nearest(centres: Tensor, x: Tensor, rows: int) -> Tensor:
    """Nearest centre, both shifted by the centres' mean (distances unchanged)."""
    shift = centres.mean(dim=0)
    return _assign(centres - shift, x - shift, rows)[0]


def _batch(
    value: object, *, name: str, where: str, device: torch.device, dimension: int | None = None
) -> Tensor:
    """Validate a finite batch ``(n, ...)``, n >= 1; float64 ``(n, d)`` (d = ``dimension``)."""
    x = _inputs.as_float64(value, name=name, where=where, device=device)
    if x.ndim < 2 or x.shape[0] < 1 or x.shape[1:].numel() == 0:
        raise ValueError(f"{where}: expected {name} as a non-empty batch of shape (n, ...), got "
                         f"{tuple(x.shape)}; for scalar samples pass {name}[:, None]")
    x = x.reshape(x.shape[0], -1)
    if dimension is not None and x.shape[1] != dimension:
        raise ValueError(f"{where}: expected {name} samples of {dimension} values (the bins' "
                         f"centres), got {tuple(x.shape)} after flattening; bin samples of the "
                         "kind the bins were fitted on (same shape, same feature extractor)")
    _inputs.check_finite_rows(x, name=name, where=where)
    return x
