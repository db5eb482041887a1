"""`LabelFreeCoverage`: does G cover the user's own data? No labels, no extra G call.

A monitor attached to a user's loop keeps a sample of D's real inputs and of G's recent
samples as D saw them (`gandiag.hooks.reservoir`). Every `every` steps this callback asks
it for a *snapshot* of G (every fake row D sees until `n` are held: samples from a few
consecutive steps, as a probe of G at one moment would give; a G that hops between modes
covers them all over a few hundred steps and only some at any moment), and at the next
flush compares it with the kept reals, in a background thread (the training step does
not wait; the result is recorded at the flush after, on the training thread). A Trainer
draws its own: G on fixed noise.

- in one embedding of the samples: the samples themselves when they are small (at most
  64 numbers: toy points, 8x8 digits), a fixed randomly initialised conv net for images
  (`extractor="random-conv"`, see `gandiag.metrics.extractors`), or a registered
  extractor named by the user;
- binned coverage (Richardson & Weiss 2018, `functional.binned`): k-means bins fitted
  once, on the first full real sample; NDB / k, JSD and the share of bins covered, of
  G's snapshot (`n` fakes) against `n` reals; the same JSD over 10 coarse *regions* (a
  tenth of the data each: what `mode_collapse` reads, see `gandiag.detect.collapse`),
  for all fakes and for those inside some real sample's k-NN ball (on the data), and
  the share of regions starved (under a quarter of their share) in each view;
- precision, recall, density, coverage (Naeem et al. 2020, `functional.prdc`, k = 5) of
  the same samples;
- the data's own null level: NDB / k and JSD of `n` reals against `n` other reals over
  the same bins (`null_ndb`, 95th percentile of 200 draws), so that a detector compares
  with what two real samples of that size give, not with a constant.

Recorded as `coverage/<name>` at the step whose samples were compared (every name is in
docs/definitions.md, "In a training loop"), with the real and fake counts per bin as the
histograms `coverage/real_bins` and `coverage/fake_bins`; `latest` holds the last
evaluation with its bin shares. NaN or inf samples are counted (`coverage/nonfinite`),
not binned; an evaluation that cannot run, or a run that ends without one, says why.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any

import numpy as np
import torch

from gandiag.core.callback import Callback
from gandiag.core.caller import user_stacklevel
from gandiag.core.records import Histograms
from gandiag.metrics.extractors import get_extractor
from gandiag.metrics.functional.binned import binned_coverage, fit_bins, null_ndb
from gandiag.metrics.functional.prdc import prdc

REGIONS = 10  # coarse bins: each holds about a tenth of the data
SMALL = 64  # samples of at most this many numbers are compared as they are


class LabelFreeCoverage(Callback):
    """Label-free coverage of a user loop's data (see the module doc). `every`: steps
    between evaluations; `bins`: k of the k-means bins; `n`: samples of each kind
    compared (at most: fewer while the reservoir fills); `min_real`: reals needed
    before the bins are fitted; `extractor`: an embedding's registered name (default:
    chosen from the samples' shape)."""

    rank_zero_only = True

    def __init__(self, *, every: int = 500, bins: int = 50, n: int = 1000, min_real: int = 1000,
                 extractor: str | None = None, seed: int = 0) -> None:
        for name, value, least in (("every", every, 1), ("bins", bins, REGIONS), ("n", n, 2 * bins),
                                   ("min_real", min_real, 2 * bins)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"LabelFreeCoverage: expected {name} to be an integer >= {least}, "
                                 f"got {value!r}")
        self.every, self.k, self.n, self.min_real = every, bins, n, min_real
        self.extractor, self.seed = extractor, seed
        self.bins: Any = None  # fitted at the first evaluation
        self.latest: dict[str, Any] | None = None  # the last evaluation, bin shares included
        self._embed: Any = None
        self._last = 0
        self._job: threading.Thread | None = None
        self._result: tuple[int, dict[str, Any]] | None = None
        self.error: BaseException | None = None
        self._rng = np.random.default_rng(seed)
        self._armed = False  # a snapshot of G was asked for and is being taken
        self._starved: np.ndarray | None = None  # the bins starved at the last evaluation
        self._coarse_starved: np.ndarray | None = None
        self.evaluations = 0  # recorded so far
        self.skipped: str | None = None  # why the last evaluation recorded nothing
        self._skip_said = False
        self.regions: Any = None

    def on_flush(self, host: Any, records: Any) -> None:
        self._record(host)
        if self._job is None and self._armed and host.step > self._last:
            self._armed = False
            real, fake = self._samples(host)
            # Recorded at the step the snapshot began: the samples are G's at that step.
            self._job = threading.Thread(target=self._evaluate, args=(self._last, real, fake),
                                         name="gandiag-coverage", daemon=True)
            self._job.start()
        elif self._job is None and not self._armed and self._due(host):
            self._last = host.step
            if not callable(getattr(host, "coverage_fakes", None)):
                host.reservoir.arm_snapshot(self.n)  # compared at the next flush
                self._armed = True
                return
            real, fake = self._samples(host)
            self._job = threading.Thread(target=self._evaluate, args=(host.step, real, fake),
                                         name="gandiag-coverage", daemon=True)
            self._job.start()

    def on_fit_end(self, host: Any) -> None:
        """The loop is over: the running evaluation is waited for, and one that fell due
        while it ran (or since) is made now, so a run ends with its last samples compared."""
        if self._job is not None:
            self._job.join()
            self._record(host)
        if self._armed and host.step > self._last:  # the snapshot began: G's samples at _last
            self._armed = False
            self._evaluate(self._last, *self._samples(host))
            self._record(host)
        if self._armed or self._due(host):
            self._armed, self._last = False, host.step
            self._evaluate(host.step, *self._samples(host))
            self._record(host)
        if not self.evaluations and host.step >= self.every:
            warnings.warn(f"gandiag: no label-free coverage in these {host.step} steps: "
                          f"{self._why_none(host)}", stacklevel=user_stacklevel())

    def _why_none(self, host: Any) -> str:
        """What kept every evaluation from happening, and how to fix it."""
        if self.skipped:
            return self.skipped
        reservoir = getattr(host, "reservoir", None)
        if reservoir is None:
            return "no samples are kept (keep_samples=0); attach with keep_samples=2000"
        n_real, n_fake = self._available(host)
        skipped = {why: count for why, count in reservoir.skipped.items() if count}
        note = (" D inputs left out: " + ", ".join(f"{count} {why.replace('_', ' ')}"
                                                      for why, count in skipped.items()) + ";"
                if skipped else "")
        return (f"{n_real} real and {n_fake} fake samples were kept, and the first evaluation "
                f"needs {self.min_real} real and {2 * self.k} fake.{note} Run longer, pass "
                "LabelFreeCoverage(min_real=...) for a small data set, or sample_shape= for a "
                "packed D")

    def _due(self, host: Any) -> bool:
        n_real, n_fake = self._available(host)
        needed = self.min_real if self.bins is None else 2 * self.k
        if n_real and host.reservoir.full("real"):  # large samples: max_bytes holds fewer
            needed = min(needed, max(n_real, 2 * self.k))
        # Due at the first flush of each stretch of `every` steps: evaluations stay at the
        # same steps of every run (500, 750, ... at every=250), whatever the flush steps.
        due = host.step // self.every > self._last // self.every
        return due and n_real >= needed and n_fake >= 2 * self.k

    def _available(self, host: Any) -> tuple[int, int]:
        """How many real and fake samples the host can give now."""
        reservoir = getattr(host, "reservoir", None)
        if reservoir is None or reservoir.real is None:
            return 0, 0
        if callable(getattr(host, "coverage_fakes", None)):  # a Trainer draws its own
            return len(reservoir.real), self.n
        return len(reservoir.real), 0 if reservoir.fake is None else len(reservoir.fake)

    def _samples(self, host: Any) -> tuple[np.ndarray, np.ndarray]:
        """Copies, taken on the training thread: the kept reals, and the snapshot of G
        (the `n` most recent fakes D saw when the snapshot holds fewer than 2 x bins; from a
        Trainer, `n` samples of G on fixed noise)."""
        draw = getattr(host, "coverage_fakes", None)
        if callable(draw):
            return host.reservoir.real.copy(), draw(self.n)
        fake = host.reservoir.take_snapshot()
        if fake is None or len(fake) < 2 * self.k:
            fake = host.reservoir.recent_fakes(self.n)
        return host.reservoir.real.copy(), fake

    def _record(self, host: Any) -> None:
        """On the training thread: record a finished evaluation, or say why it failed."""
        if self._job is not None and self._job.is_alive():
            return
        self._job = None
        if self.error is not None:
            error, self.error = self.error, None
            warnings.warn(f"gandiag: the label-free coverage failed ({type(error).__name__}: {error}); "
                          "training goes on, and the next evaluation tries again", stacklevel=user_stacklevel())
        if self.skipped and not self._skip_said:
            self._skip_said = True
            warnings.warn(f"gandiag: label-free coverage skipped: {self.skipped}", stacklevel=user_stacklevel())
        if self._result is not None:
            step, values, counts = self._result
            self._result = None
            self.evaluations += 1
            edges = np.arange(self.bins.k + 1, dtype=np.float64)  # one histogram bin per k-means bin
            host.record({f"coverage/{name}": value for name, value in values.items()}, step=step,
                        histograms={f"coverage/{kind}_bins": Histograms(np.array([step]), edges, row[None])
                                    for kind, row in counts.items()})

    def _evaluate(self, step: int, real: np.ndarray, fake: np.ndarray) -> None:
        self.skipped = None
        try:
            # NaN or inf samples are counted, not binned: k-means has no place for them.
            real, fake, n_bad = real[_finite(real)], fake[_finite(fake)], int(np.count_nonzero(~_finite(fake)))
            if len(fake) < 2 * self.k or len(real) < 2 * self.k:
                self._skip_said = False
                self.skipped = (f"at step {step} only {len(real)} real and {len(fake)} fake samples "
                                f"are finite ({n_bad} fakes hold NaN or inf); it needs {2 * self.k} of each")
                self._result = None
                return
            with torch.no_grad():
                real_f, fake_f = self._features(real), self._features(fake)
            if self.bins is None:
                self.bins = fit_bins(real_f, self.k, seed=self.seed)
                self.regions = fit_bins(real_f, REGIONS, seed=self.seed)
            n = min(self.n, len(real_f) // 2, len(fake_f))
            reals = real_f[self._rng.choice(len(real_f), n, replace=False)]
            fakes = fake_f[-n:]  # the most recent
            null = null_ndb(self.bins, real_f, n, n_real=n, seed=self.seed)
            binned = binned_coverage(self.bins, reals, fakes)
            quality = prdc(reals, fakes)
            real_counts = np.rint(np.asarray(binned["real_shares"]) * n)
            fake_counts = np.rint(np.asarray(binned["fake_shares"]) * n)
            starved = (real_counts > 0) & (4 * fake_counts < real_counts)  # as bins_covered counts
            coarse = binned_coverage(self.regions, reals, fakes)
            coarse_null = null_ndb(self.regions, real_f, n, n_real=n, seed=self.seed)
            coarse_starved = (np.asarray(coarse["fake_shares"]) < np.asarray(coarse["real_shares"]) / 4)
            values = {"ndb": binned["ndb_k"], "jsd": binned["jsd"], "bins_covered": binned["bins_covered"],
                      **{name: float(quality[name]) for name in ("precision", "recall", "density", "coverage")},
                      "ndb_null": null["ndb_k_quantile"], "jsd_null": null["jsd_quantile"],
                      "starved_null": null["starved_quantile"], "n": float(n), "k": float(self.bins.k),
                      "nonfinite": n_bad / (n_bad + len(fake)),
                      "regions": float(self.regions.k), "regions_jsd": coarse["jsd"], "regions_jsd_null": coarse_null["jsd_quantile"],
                      "regions_starved": 1 - coarse["bins_covered"],
                      "regions_starved_null": coarse_null["starved_quantile"]}
            if self._starved is not None:  # bins starved now that were not at the last evaluation
                values["starved_new"] = float(np.count_nonzero(starved & ~self._starved)) / self.bins.k
            # Where G's samples that lie on the data fall (those inside some real sample's
            # k-NN ball, PRDC's precision per sample): while many of G's samples are still
            # off the data, these show which regions its good samples cover.
            on_data = fakes[_inside_real_balls(reals, fakes)]
            if len(on_data) >= 10 * REGIONS:
                good = binned_coverage(self.regions, reals, on_data)
                good_null = null_ndb(self.regions, real_f, len(on_data), n_real=n, seed=self.seed)
                values["regions_jsd_hq"], values["regions_jsd_hq_null"] = good["jsd"], good_null["jsd_quantile"]
                values["regions_starved_hq"] = 1 - good["bins_covered"]
                values["regions_starved_hq_null"] = good_null["starved_quantile"]
            if self._coarse_starved is not None:
                values["regions_new"] = (float(np.count_nonzero(coarse_starved & ~self._coarse_starved))
                                         / self.regions.k)
            self._starved, self._coarse_starved = starved, coarse_starved
            self.latest = {"step": step, **values, "real_shares": binned["real_shares"],
                           "fake_shares": binned["fake_shares"], "starved": np.flatnonzero(starved).tolist()}
            self._result = (step, values, {"real": real_counts, "fake": fake_counts})
        except Exception as error:  # shown by the next flush's record, never kills training
            self.error = error
            self._result = None

    def _features(self, samples: np.ndarray) -> np.ndarray:
        if self._embed is None:
            self._embed = get_extractor(self.extractor or default_extractor(samples.shape[1:]), "cpu")
        out = self._embed(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
        return out.double().numpy()


def _inside_real_balls(real: np.ndarray, fake: np.ndarray, k: int = 5) -> np.ndarray:
    """Which fakes lie inside the ball of some real sample reaching its k-th nearest real
    neighbour (the samples PRDC's precision counts)."""
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    between_reals = torch.cdist(real_t, real_t)
    between_reals.fill_diagonal_(math.inf)
    radii = between_reals.kthvalue(k, dim=1).values
    return (torch.cdist(real_t, fake_t) < radii[:, None]).any(dim=0).numpy()


def _finite(samples: np.ndarray) -> np.ndarray:
    """Rows whose every number is finite."""
    return np.isfinite(samples.reshape(len(samples), -1)).all(axis=1)


def default_extractor(sample_shape: tuple[int, ...]) -> str:
    """'pixels' for samples of at most `SMALL` numbers, 'random-conv' for images (C, H, W)
    of at least 8x8, else 'pixels'."""
    if math.prod(sample_shape) <= SMALL:
        return "pixels"
    if len(sample_shape) == 3 and min(sample_shape[1:]) >= 8:
        return "random-conv"
    return "pixels"
