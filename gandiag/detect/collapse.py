"""`mode_collapse`: G covers fewer modes of the data than it should.

Three kinds of evidence, each enough on its own:
- *coverage* (when metrics are scheduled, `metric/<name>`): a coverage metric
  (`fair_modes`, `modes`, `coverage`, `recall`) falls `drop` (a share) below its best so
  far, or a KL to uniform (`reverse_kl`, `kl`) reaches `kl` (e^-0.5: only ~61 % of the modes effectively used) or
  rises `kl_rise` above its lowest, on `evaluations` consecutive evaluations after the
  warm-up, ignoring evaluations where the toy metric's `metric/hq` is under `min_hq`
  (modes are counted on high-quality samples: with few of them the count says little);
- *label-free coverage* (`coverage/*`, from `gandiag.metrics.LabelFreeCoverage`, on by
  default in `attach` and the Trainer): the data is cut into 10 k-means regions, each
  about a tenth of it, and G's share of each region is compared with the data's. The
  regions' JSD reaches `jsd_factor` times what two real samples of the same size give
  (`coverage/regions_jsd_null`, measured on the data itself), on `evaluations`
  consecutive evaluations where at least `min_precision` of G's samples lie on the data
  (PRDC precision; before that, where its few good samples fall says little): for all of
  G's samples, or for those that lie on the data (`coverage/regions_jsd_hq`: where its
  good samples fall, which speaks while G still makes much off the data), and some
  region gets under a quarter of its share (`coverage/regions_starved`, or
  `regions_starved_hq` for G's samples on the data) more often than real against real
  gives; a JSD `pile_up` times the null (a pile-up) needs no starved region. Five
  times the null is about one region (a tenth of the data) getting a fifth of its share,
  or one region getting five times its share; shares that only wander (5-7x the null on
  natural ring runs whose every mode kept a fair share) are not collapse. The alert names the regions
  and the fine bins starved (fake share under a quarter of the real share) and since
  when, and says when the starved regions move between evaluations (mode hopping);
- *diversity* (always recorded by the hooks): the rolling median of `D/spread_ratio`, the
  spread (mean pairwise distance) of D's fake inputs over that of its real inputs, stays
  below `spread` for `persist` records: fake batches far less diverse than real ones.
One collapse is one alert: while one kind of evidence has an alert running, the others
do not raise a second. A coverage alert quotes the evaluation recorded at the step that
raised it and names that step and the step of each best value, so its numbers are the
ones the run store and the progress line hold for those steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gandiag.core.alert import Alert
from gandiag.detect.base import Detector, View
from gandiag.detect.rolling import asof, fmt, nan_median, rolling, tail

HIGHER_IS_MORE_MODES = ("metric/fair_modes", "metric/modes", "metric/coverage", "metric/recall")
KL_TO_UNIFORM = ("metric/reverse_kl", "metric/kl")

_WHY = ("G maps most of its noise to a few outputs, which D then learns to reject, so G "
        "moves on to other few outputs instead of spreading out. The classic GAN failure: "
        "the losses can look normal while the samples lose variety.")
_FIXES = ["pack D's inputs (PacGAN, pack=2) or add minibatch discrimination / minibatch "
          "standard deviation to D",
          "regularise D (R1, spectral norm) and keep an EMA of G's weights (ema=0.999)",
          "lower G's learning rate relative to D's (TTUR) or use a larger noise dimension",
          "check that data batches are shuffled and diverse (one class per batch looks like "
          "collapse to D)"]


@dataclass
class ModeCollapse(Detector):
    """Thresholds as in the module docstring."""

    kind = "mode_collapse"
    spread_window: int = 100
    spread: float = 0.3
    persist: int = 200
    drop: float = 0.25
    kl: float = 0.5
    kl_rise: float = 0.3
    evaluations: int = 2
    min_hq: float = 0.2
    jsd_factor: float = 5.0
    pile_up: float = 20.0
    min_precision: float = 0.2

    def lookback(self) -> int:
        return self.spread_window

    def scan(self, view: View, warmup: int) -> list[Alert]:
        # One collapse, one alert, in the order the evidence came: an alert is dropped
        # while another kind of evidence has one running (raised before this scan, or
        # earlier in it and still running), so a run diagnosed flush by flush and the
        # whole stored run keep the same alert.
        paths = ("coverage", "regions", "diversity")
        running_before = {path for path in paths if self._running(path)}
        raised = [(path, alert) for path, alerts in (("coverage", self._coverage(view, warmup)),
                                                     ("regions", self._regions(view, warmup)),
                                                     ("diversity", self._diversity(view, warmup)))
                  for alert in alerts]
        kept, taken = [], set()
        for path, alert in sorted(raised, key=lambda pair: pair[1].detected_at):
            others = {other for other in paths if other != path}
            if others & running_before or any(other in taken and self._running(other) for other in others):
                continue
            kept.append(alert)
            taken.add(path)
        return kept

    def _running(self, path: str) -> bool:
        episode = self.episodes.get(path)
        return episode is not None and episode.active

    def _coverage(self, view: View, warmup: int) -> list[Alert]:
        keys = [k for k in HIGHER_IS_MORE_MODES + KL_TO_UNIFORM if k in view]
        if not keys:
            return []
        steps = np.unique(np.concatenate([view.new(k)[0] for k in keys]))
        condition = np.zeros(len(steps), bool)
        bests: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        ignored = np.zeros(0, np.int64)  # evaluations left out for too few HQ samples
        for key in keys:
            own, values = view.new(key)
            if "metric/hq" in view:  # too few high-quality samples: no evidence either way
                low = asof(own, *view.get("metric/hq")) < self.min_hq
                ignored = np.union1d(ignored, own[low])
                values = np.where(low, np.nan, values)
            values = np.where(np.isfinite(values), values, np.nan)
            best, best_step = self._best_so_far(key, own, values if key in HIGHER_IS_MORE_MODES
                                                else -values)
            bests[key] = (own, best, best_step)
            with np.errstate(invalid="ignore"):
                if key in HIGHER_IS_MORE_MODES:
                    bad = (best > 0) & (values <= (1 - self.drop) * best)
                else:
                    bad = (values >= self.kl) | (values >= -best + self.kl_rise)
            condition |= np.isin(steps, own[bad])
        condition &= steps >= warmup
        ignored_before = self.state.get("ignored_low_hq", 0)
        self.state["ignored_low_hq"] = ignored_before + len(ignored)
        alerts = []
        for start, index in self.episode("coverage", persist=self.evaluations).feed(steps, condition):
            at = int(steps[index])
            n_ignored = ignored_before + int(np.count_nonzero(ignored <= at))
            alerts.append(self._coverage_alert(view, bests, start, at, n_ignored))
        return alerts

    def _best_so_far(self, key: str, own: np.ndarray,
                     signed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best value so far (highest of `signed`, NaN ignored) at each new evaluation,
        and the step it was reached at (the earliest, on ties); carried across scans."""
        best = self.state.get(key, np.nan)
        at = self.state.get(f"{key}@step", -1)
        bests, best_steps = np.full(len(own), np.nan), np.full(len(own), -1, np.int64)
        for i, (step, value) in enumerate(zip(own, signed)):
            if np.isfinite(value) and not value <= best:  # `not <=`: a NaN best is beaten
                best, at = float(value), int(step)
            bests[i], best_steps[i] = best, at
        self.state[key], self.state[f"{key}@step"] = best, at
        return bests, best_steps

    def _coverage_alert(self, view: View, bests: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                        step: int, at: int, n_ignored: int) -> Alert:
        # Every value quoted is the evaluation recorded at step `at` (the one that raised
        # the alert), and every best names its own step, so each number can be found in
        # the run store and the progress lines as printed.
        parts, evidence, fired = [], {"step": at}, set()
        for key, (own, best_so_far, best_steps) in bests.items():
            values = view.upto(key, at, 1)[1]
            best = float(asof(np.array([at]), own, best_so_far)[0])
            best_step = int(asof(np.array([at]), own, best_steps)[0])
            if not len(values) or not np.isfinite(best):
                continue
            name, now = key.split("/", 1)[1], float(values[-1])
            if key in HIGHER_IS_MORE_MODES:
                parts.append(f"{name} {fmt(now)} (best {fmt(best)} at step {best_step})")
                evidence[name] = {"now": now, "best": best, "best_step": best_step}
                if best > 0 and now <= (1 - self.drop) * best:
                    fired.add("count")
            else:
                parts.append(f"{name} {fmt(now)} (lowest {fmt(-best)} at step {best_step}; about "
                             f"{np.exp(-now):.0%} of the modes effectively used)")
                evidence[name] = {"now": now, "lowest": -best, "lowest_step": best_step}
                if now >= self.kl or now >= -best + self.kl_rise:
                    fired.add("kl")
        severe = any(v.get("now", 0) >= 1.0 for k, v in evidence.items() if "kl" in k) or any(
            v["now"] <= v["best"] / 2 for k, v in evidence.items() if isinstance(v, dict) and "best" in v)
        note = ""
        if n_ignored:
            evidence["ignored_low_hq"] = n_ignored
            note = (f" ({n_ignored} evaluation(s) with under {self.min_hq:.0%} high-quality "
                    "samples left out of the best values)")
        return Alert(self.kind, step, "critical" if severe else "warning",
                     f"{_coverage_headline(fired)} at step {at}: " + "; ".join(parts) + note, evidence,
                     _WHY, list(_FIXES), detected_at=at)

    def _regions(self, view: View, warmup: int) -> list[Alert]:
        if "coverage/regions_jsd" not in view or "coverage/regions_jsd_null" not in view:
            return []
        steps = view.new("coverage/regions_jsd")[0]
        ratio_all, ratio_on_data, precision = _ratios(view, steps)
        with np.errstate(invalid="ignore"):
            # Judged once enough of G's samples lie on the data: all of them, or those on it.
            judged = (steps >= warmup) & (precision >= self.min_precision)
            worst = np.fmax(ratio_all, ratio_on_data)
            # Uneven is not collapsed: a healthy G's shares of the regions wander a little
            # (5-7x the null on natural ring runs with every mode well covered); a region
            # left under a quarter of its share (beyond what real samples give), or a
            # pile-up 4x over the threshold, is what collapse looks like.
            bad = (worst >= self.jsd_factor) & (_starved(view, steps) | (worst >= self.pile_up))
        steps, bad = steps[judged], bad[judged]
        alerts = []
        for start, index in self.episode("regions", persist=self.evaluations).feed(steps, bad):
            alerts.append(self._regions_alert(view, start, int(steps[index])))
        return alerts

    def _regions_alert(self, view: View, start: int, at: int) -> Alert:
        """Quote the evaluation recorded at `at`; count the hops since the episode began."""
        def value(name: str, step: int = at) -> float:
            key = f"coverage/{name}"
            if key not in view:
                return float("nan")
            own, values = view.upto(key, step, 1)
            return float(values[-1]) if len(own) and own[-1] == step else float("nan")

        k, jsd, null = value("k"), value("regions_jsd"), value("regions_jsd_null")
        jsd_hq, null_hq = value("regions_jsd_hq"), value("regions_jsd_hq_null")
        n_regions = int(value("regions")) if np.isfinite(value("regions")) else 10
        regions = round(value("regions_starved") * n_regions)
        regions_hq = round(np.nan_to_num(value("regions_starved_hq")) * n_regions)
        bins = round((1 - value("bins_covered")) * k) if np.isfinite(k) else 0
        bins_null = round(value("starved_null") * k) if np.isfinite(k) else 0
        hops = self._hops(view, start, at)
        evidence = {"step": at, "since": start, "regions_jsd": jsd, "regions_jsd_null": null,
                    "regions_jsd_on_data": jsd_hq, "regions_jsd_on_data_null": null_hq,
                    "regions_starved": regions, "regions_starved_on_data": regions_hq,
                    "bins_starved": bins, "bins": k,
                    "bins_starved_null": bins_null, "ndb": value("ndb"), "ndb_null": value("ndb_null"),
                    "jsd": value("jsd"), "jsd_null": value("jsd_null"),
                    "precision": value("precision"), "recall": value("recall"), "hops": hops}
        if regions or regions_hq:
            of = "" if regions >= regions_hq else " of G's samples that lie on the data"
            where = (f"{max(regions, regions_hq)} of {n_regions} regions of the data (a {_nth(n_regions)} "
                     f"each) get under a quarter of their share{of}")
        elif jsd / null >= self.jsd_factor:
            where = "G's samples pile onto part of the data"
        else:
            where = "the samples G makes on the data pile onto part of it"
        parts = [f"regions' JSD {fmt(jsd)}, {fmt(jsd / null)}x what two real samples of this size "
                 f"give ({fmt(null)})"]
        if np.isfinite(jsd_hq):
            parts.append(f"{fmt(jsd_hq / null_hq)}x for the {fmt(value('precision'))} of G's samples "
                         "that lie on the data")
        if np.isfinite(k):
            parts.append(f"{bins} of {int(k)} bins starved (real vs real: up to {bins_null}); "
                         f"NDB {fmt(value('ndb'))} (real vs real: {fmt(value('ndb_null'))})")
        parts.append(f"recall {fmt(value('recall'))}")
        hopping = (f"; the starved regions moved {hops} time(s) since step {start}: mode hopping"
                   if hops else "")
        worst = np.nanmax([jsd / null, jsd_hq / null_hq])
        severe = max(regions, regions_hq) >= 3 or worst >= self.pile_up
        return Alert(self.kind, start, "critical" if severe else "warning",
                     f"G covers only part of the data since step {start}: {where} at step {at} ("
                     + "; ".join(parts) + ")" + hopping, evidence, _WHY, list(_FIXES), detected_at=at)

    @staticmethod
    def _hops(view: View, start: int, at: int) -> int:
        """Evaluations in steps (start, at] where a region became starved while another
        that was starved at the evaluation before filled again."""
        if "coverage/regions_new" not in view or "coverage/regions_starved" not in view:
            return 0
        steps, starved = view.get("coverage/regions_starved")
        new = asof(steps, *view.get("coverage/regions_new"))
        hops = 0
        for i in range(1, len(steps)):
            if start < steps[i] <= at and np.isfinite(new[i]):
                refilled = starved[i - 1] - (starved[i] - new[i])
                hops += bool(new[i] > 0 and refilled > 1e-9)
        return hops

    def _diversity(self, view: View, warmup: int) -> list[Alert]:
        key = "D/spread_ratio"
        if key not in view:
            return []
        steps, values, n = tail(view, key, self.spread_window - 1)
        median = rolling(values, self.spread_window, nan_median)[len(values) - n:]
        steps = steps[len(steps) - n:]
        with np.errstate(invalid="ignore"):
            condition = (steps >= warmup) & (median < self.spread)
        alerts = []
        for start, index in self.episode("diversity", persist=self.persist).feed(steps, condition):
            ratio = float(median[index])
            at = int(steps[index])
            evidence = {"spread_ratio": ratio, "steps_held": at - start + 1}
            for side in ("real", "fake"):
                own, spread = view.upto(f"D/in_{side}/spread", at, self.spread_window)
                if len(spread):
                    evidence[f"spread_{side}"] = float(np.nanmedian(spread))
            how = (f"are {fmt(1 / ratio)}x less diverse than real data" if ratio > 0
                   else "are all identical")
            alerts.append(Alert(
                self.kind, start, "critical" if ratio < self.spread / 3 else "warning",
                f"G's samples {how} at step {at} (median spread ratio of the last "
                f"{self.spread_window} steps {fmt(ratio)}, under {fmt(self.spread)} for "
                f"{at - start + 1} steps)",
                evidence, _WHY, list(_FIXES),
                detected_at=at))
        return alerts


def _nth(n: int) -> str:
    return {10: "tenth", 5: "fifth", 4: "quarter", 2: "half"}.get(n, f"1/{n}")


def _exactly_at(view: View, key: str, steps: np.ndarray) -> np.ndarray:
    """The value of `key` recorded at each of `steps` (NaN where it has none)."""
    out = np.full(len(steps), np.nan)
    if key in view:
        own, values = view.get(key)
        where = np.searchsorted(own, steps)
        hit = (where < len(own)) & (own[np.minimum(where, len(own) - 1)] == steps)
        out[hit] = values[where[hit]]
    return out


def _ratios(view: View, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At each evaluation: the regions' JSD over its null for all of G's samples, the same
    for G's samples on the data (NaN when too few), and the precision."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_all = (_exactly_at(view, "coverage/regions_jsd", steps)
                     / _exactly_at(view, "coverage/regions_jsd_null", steps))
        ratio_on_data = (_exactly_at(view, "coverage/regions_jsd_hq", steps)
                         / _exactly_at(view, "coverage/regions_jsd_hq_null", steps))
    precision = _exactly_at(view, "coverage/precision", steps)
    if "coverage/precision" not in view:
        precision = np.ones(len(steps))
    return ratio_all, ratio_on_data, precision


def _starved(view: View, steps: np.ndarray) -> np.ndarray:
    """Whether some region got under a quarter of its share at each evaluation, more than
    real against real gives: for all of G's samples or for those on the data."""
    found = np.zeros(len(steps), bool)
    for name in ("regions_starved", "regions_starved_hq"):
        starved = _exactly_at(view, f"coverage/{name}", steps)
        null = _exactly_at(view, f"coverage/{name}_null", steps)
        with np.errstate(invalid="ignore"):
            found |= starved > np.nan_to_num(null, nan=0.0) + 1e-9
    return found


def _coverage_headline(fired: set[str]) -> str:
    """Say what the evaluation shows: fewer modes (a count fell), or samples piled onto a
    few modes while every mode may still get some (only the KL to uniform rose)."""
    if "count" in fired:
        return "G covers fewer modes"
    return "G piles its samples onto a few modes"
