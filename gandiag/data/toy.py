"""2-D Gaussian mixtures for mode-collapse experiments, with their metric (PacGAN lineage).

Data and metric live together on purpose: the HQ threshold is measured in units of the
mixture's own ``std``, so a metric detached from its mixture would be easy to misuse.

Definitions (docs/definitions.md, "Toy mixtures"):

- a sample is *high quality* (HQ) if ``||x - c|| / std < 3`` for its nearest mode ``c``;
- a mode is *covered* if at least one HQ sample is nearest to it;
- a mode *holds its fair share* if at least half of 1/K of the HQ samples are nearest to
  it (``2 K n_k >= n_HQ``): the count of such modes drops at once when G piles its samples
  on a few modes, where the covered count stays at K as long as a stray sample lands on
  every mode;
- reverse KL = KL(p̂ ‖ uniform over K) = log K − H(p̂), p̂ the histogram of HQ samples.

Non-finite samples (NaN or ±inf in any coordinate) are never HQ and are never dropped:
they stay in the denominator of the HQ share, so a generator that starts emitting NaN
shows up as a falling ``hq`` instead of disappearing from the metric.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["ToyMixture", "ring", "grid"]

#: Std-scaled distance below which a sample counts as high quality.
HQ_THRESHOLD = 3.0

# Rows per chunk for the nearest-mode search: chunk * K * 2 float64 values, i.e. about
# 26 MB for the 25-mode grid, so 1e6 samples never materialise a (n, K, 2) tensor.
_CHUNK_SIZE = 65_536


@dataclass(frozen=True, eq=False, repr=False)
class ToyMixture:
    """An equal-weight mixture of isotropic Gaussians in 2-D.

    Args:
        name: Short name shown in reprs and plots, e.g. ``"ring"``.
        centers: Mode centres, shape ``(K, 2)``; stored as a float32 CPU copy.
        std: Standard deviation of every mode, > 0.

    Example:
        >>> toy = ring()
        >>> x = toy.sample(2500, generator=torch.Generator().manual_seed(0))
        >>> toy.evaluate(x)["modes"]
        8
    """

    name: str
    centers: Tensor
    std: float

    def __post_init__(self) -> None:
        centers = torch.as_tensor(self.centers).detach()
        if centers.ndim != 2 or centers.shape[1] != 2 or centers.shape[0] < 1:
            raise ValueError(
                f"ToyMixture: expected centers of shape (K, 2) with K >= 1, got "
                f"{tuple(centers.shape)}; pass one (x, y) row per mode"
            )
        std = float(self.std)
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"ToyMixture: expected a finite std > 0, got {self.std!r}")
        # A private float32 copy: later edits to the caller's tensor must not move modes.
        object.__setattr__(self, "centers", centers.to("cpu", torch.float32).clone())
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "_centers_on", {})  # device -> centers: one copy per device

    @property
    def n_modes(self) -> int:
        """Number of mixture components K."""
        return int(self.centers.shape[0])

    def __repr__(self) -> str:
        return f"ToyMixture(name={self.name!r}, n_modes={self.n_modes}, std={self.std})"

    # ----------------------------------------------------------------- sampling

    def sample_with_modes(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` samples and the index of the mode each was drawn from.

        The mode index is uniform over K (``torch.randint``), then ``std`` times standard
        normal noise is added; both draws use ``generator``, in that order, so a seeded
        generator gives the same samples every time. With a generator and no ``device``,
        sampling happens on the generator's device.

        Returns:
            ``(samples, modes)``: float32 ``(n, 2)`` and int64 ``(n,)``.

        Example:
            >>> x, m = grid().sample_with_modes(4, generator=torch.Generator().manual_seed(1))
            >>> x.shape, m.shape
            (torch.Size([4, 2]), torch.Size([4]))
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(
                f"ToyMixture.sample: expected n to be an int >= 0, got {n!r}; "
                "pass the number of samples you want"
            )
        device = _sampling_device(generator, device)
        modes = torch.randint(self.n_modes, (n,), generator=generator, device=device)
        noise = torch.randn(n, 2, generator=generator, device=device)
        samples = self._centers(device)[modes] + self.std * noise
        return samples, modes

    def _centers(self, device: torch.device) -> Tensor:
        # Copied to a GPU once, not at every batch: a copy from pageable host memory is a
        # host-device sync (and cannot sit inside a captured step).
        device = torch.device(device)
        if device.type == "cpu":
            return self.centers
        if device not in self._centers_on:
            self._centers_on[device] = self.centers.to(device)
        return self._centers_on[device]

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``n`` samples of shape ``(n, 2)``, float32; see :meth:`sample_with_modes`.

        Example:
            >>> ring().sample(3, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([3, 2])
        """
        return self.sample_with_modes(n, generator=generator, device=device)[0]

    # ------------------------------------------------------------------ metrics

    def mode_histogram(
        self, samples: Tensor | np.ndarray, *, chunk_size: int = _CHUNK_SIZE
    ) -> np.ndarray:
        """Count HQ samples per nearest mode.

        Args:
            samples: ``(n, 2)`` torch tensor (any device, float or int dtype, grad or not)
                or numpy array. Non-finite rows are counted as not HQ.
            chunk_size: Rows per step of the nearest-mode search (bounds memory only;
                the result does not depend on it).

        Returns:
            int64 array of shape ``(K,)``; its sum is the number of HQ samples.

        Example:
            >>> toy = ring()
            >>> toy.mode_histogram(toy.centers[:1].repeat(5, 1)).tolist()
            [5, 0, 0, 0, 0, 0, 0, 0]
        """
        points = _as_points(samples, "ToyMixture.mode_histogram")
        return self._hq_histogram(points, chunk_size)

    def evaluate(
        self, samples: Tensor | np.ndarray, *, chunk_size: int = _CHUNK_SIZE
    ) -> dict[str, int | float]:
        """Mode coverage, HQ share and reverse KL of generator samples.

        Returns:
            ``{"modes": int, "fair_modes": int, "hq": float, "reverse_kl": float}`` where
            ``modes`` counts modes with at least one HQ sample nearest to them,
            ``fair_modes`` counts modes holding their fair share: modes ``k`` whose count
            ``n_k`` of nearest HQ samples is at least half of an even split,
            ``n_k >= n_HQ / (2K)`` (compared exactly, as ``2 K n_k >= n_HQ``; 0 when no
            sample is HQ). A perfect generator gives K, everything on one mode 1, an even
            split over 4 of 8 modes 4; a collapsing G that still drops a few samples on
            every mode keeps ``modes`` at K while ``fair_modes`` falls. ``hq`` is the share of all
            ``n`` samples that are HQ (non-finite samples included in ``n``), and
            ``reverse_kl`` = log K − H(p̂) in nats (0 = uniform over all K modes,
            log K = everything on one mode). If no sample is HQ, p̂ is undefined and
            ``reverse_kl`` is ``math.inf``.

        Example:
            >>> toy = grid()
            >>> toy.evaluate(toy.centers[:1].repeat(10, 1))["modes"]
            1
        """
        points = _as_points(samples, "ToyMixture.evaluate")
        hist = self._hq_histogram(points, chunk_size)
        n_hq = int(hist.sum())
        return {
            "modes": int(np.count_nonzero(hist)),
            "fair_modes": _fair_modes(hist),
            "hq": n_hq / points.shape[0],
            "reverse_kl": _reverse_kl_uniform(hist),
        }

    def _hq_histogram(self, points: Tensor, chunk_size: int) -> np.ndarray:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"ToyMixture: expected chunk_size to be an int >= 1, got {chunk_size!r}")
        centers = self.centers.to(torch.float64)
        counts = torch.zeros(self.n_modes, dtype=torch.int64)
        for chunk in points.split(chunk_size):
            # Broadcast difference rather than torch.cdist: cdist's matmul shortcut
            # (|x|² + |c|² − 2x·c) loses precision right where the 3-std cut sits.
            dist = (chunk[:, None, :] - centers[None, :, :]).norm(dim=-1) / self.std
            nearest_dist, nearest = dist.min(dim=1)
            # isfinite guard: NaN rows give NaN distances; they are explicitly not HQ.
            hq = torch.isfinite(chunk).all(dim=1) & (nearest_dist < HQ_THRESHOLD)
            counts += torch.bincount(nearest[hq], minlength=self.n_modes)
        return counts.numpy()


# ---------------------------------------------------------------- the two mixtures


def ring() -> ToyMixture:
    """8 modes on the unit circle at angles 2πi/8, std 0.01.

    Reference (docs/definitions.md; PacGAN Table 1, 10 runs ± s.e., 400k updates): GAN 6.3±0.5
    modes, 98.2±0.2 % HQ, rKL 0.45±0.09; PacGAN2 7.9±0.1 modes, 95.6±2.0 % HQ,
    rKL 0.07±0.03. A perfect generator on 2500 samples gives 8 modes, 98.89 % HQ
    (P(χ²₂ ≤ 9)) and rKL ≈ (K−1)/(2n) ≈ 0.0015; all mass on one mode gives log 8 = 2.0794.

    Example:
        >>> ring().centers[2].tolist()  # doctest: +ELLIPSIS
        [..., 1.0]
    """
    angles = [2 * math.pi * i / 8 for i in range(8)]
    centers = torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)
    return ToyMixture("ring", centers, 0.01)


def grid() -> ToyMixture:
    """25 modes at {-4, -2, 0, 2, 4}², std 0.05, ordered by x then y.

    Reference (docs/definitions.md; PacGAN Table 1, 10 runs ± s.e., 400k updates): GAN 17.3±0.8
    modes, 94.8±0.7 % HQ, rKL 0.70±0.07; PacGAN2 23.8±0.7 modes, 91.3±0.8 % HQ,
    rKL 0.13±0.04. A perfect generator on 2500 samples gives 25 modes, 98.89 % HQ and
    rKL ≈ (K−1)/(2n) ≈ 0.0049; all mass on one mode gives log 25 = 3.2189.

    Example:
        >>> grid().centers[:2].tolist()
        [[-4.0, -4.0], [-4.0, -2.0]]
    """
    coords = range(-4, 5, 2)
    centers = torch.tensor(list(itertools.product(coords, coords)), dtype=torch.float32)
    return ToyMixture("grid", centers, 0.05)


# ------------------------------------------------------------------- helpers


def _sampling_device(
    generator: torch.Generator | None, device: torch.device | str | None
) -> torch.device:
    if device is None:
        return generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    if generator is not None and generator.device.type != device.type:
        raise ValueError(
            f"ToyMixture.sample: generator is on {generator.device} but device={device}; "
            "create the generator on the sampling device or leave device=None"
        )
    return device


def _as_points(samples: object, where: str) -> Tensor:
    """Validate ``(n, 2)`` samples and return a detached float64 CPU tensor.

    Metrics run off the hot path, so one copy to the host in float64 is cheap and keeps
    the 3-std cut exact whatever dtype or device the generator used.
    """
    if isinstance(samples, np.ndarray):
        if samples.dtype.kind not in "fiu":
            raise TypeError(
                f"{where}: expected a real-valued array, got dtype {samples.dtype}; "
                "convert with samples.astype(np.float32)"
            )
        points = torch.from_numpy(np.asarray(samples, dtype=np.float64))
    elif isinstance(samples, Tensor):
        if samples.dtype.is_complex or samples.dtype == torch.bool:
            raise TypeError(
                f"{where}: expected a real-valued tensor, got dtype {samples.dtype}; "
                "convert with samples.float()"
            )
        points = samples.detach().to("cpu", torch.float64)
    else:
        raise TypeError(
            f"{where}: expected a torch.Tensor or numpy.ndarray of shape (n, 2), got "
            f"{type(samples).__name__}; wrap it with torch.as_tensor(...)"
        )
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"{where}: expected samples of shape (n, 2), got {tuple(points.shape)}; "
            "pass generator outputs for 2-D toy data"
        )
    if points.shape[0] == 0:
        raise ValueError(
            f"{where}: expected at least one sample, got shape (0, 2); "
            "pass a non-empty batch of generator outputs"
        )
    return points


def _fair_modes(hist: np.ndarray) -> int:
    """Modes holding at least half of an even share of the HQ samples: ``2 K n_k >= n``.

    Integer arithmetic, so the count is the same on every machine for the same histogram.
    """
    total = int(hist.sum())
    if total == 0:
        return 0
    return int(np.count_nonzero(2 * len(hist) * hist.astype(np.int64) >= total))


def _reverse_kl_uniform(hist: np.ndarray) -> float:
    """KL(p̂ ‖ uniform over K) in nats; ``inf`` when the histogram is empty."""
    total = int(hist.sum())
    if total == 0:
        return math.inf
    counts = hist[hist > 0].astype(np.float64)
    # Σ p log(p K) rather than log K − H(p): c·K / N is an exact ratio of integers, so a
    # uniform p̂ gives exactly 0 and uniform-on-half exactly log 2, with no cancellation.
    kl = float(np.sum(counts / total * np.log(counts * len(hist) / total)))
    return max(0.0, kl)  # KL is never < 0; the clamp only absorbs rounding
