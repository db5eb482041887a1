"""Each detector on synthetic series with known answers: it fires on the step it should,
names what it should, and stays quiet on noise."""

import numpy as np
import pytest

from gandiag.detect import KINDS, diagnose
from tests.detect.series import healthy, retotal, set_from, steps


def kinds(alerts):
    return [a.kind for a in alerts]


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noise_raises_nothing(seed):
    assert diagnose(healthy(seed)) == []


def test_every_kind_is_raised_with_evidence_explanation_and_fixes():
    from gandiag.detect import DETECTORS
    assert sorted(DETECTORS) == sorted(KINDS)
    series = overpowered()                                             # d_overpowering
    set_from(series, "D/spread_ratio", 1000, 1.8)                      # runaway_critic
    set_from(series, "D/spread_ratio", 3000, 0.05)                     # mode_collapse
    s, loss = series["G/loss"]
    series["G/loss"] = (s, loss + np.clip((s - 3000) / 250, 0, None))  # divergence
    series["D/loss"] = (s, np.where(s >= 2000, series["D/loss"][1] + 0.3 * np.sin(s / 10), series["D/loss"][1]))
    _, total = series["D/grad_norm/total"]
    total[[1999, 2099, 2199]] *= 50                                    # exploding_gradients
    set_from(series, "D/grad_norm/net.0", 4500, 0.0)                   # vanishing_gradients
    set_from(series, "nonfinite/loss", 5900, 1.0)                      # nonfinite
    series["grad_leak/G"] = (np.arange(1, 21), np.full(20, 2.0))       # gradient_leak
    weighed, ratio = series["D/update_ratio/total"]
    series["D/update_ratio/total"] = (weighed, np.where(weighed >= 5000, 0.0, ratio))  # frozen_model
    evaluations = np.arange(500, 3000, 250)
    series["coverage/precision"] = (evaluations, np.full(len(evaluations), 0.01))      # stalled
    alerts = diagnose(series)
    assert sorted({a.kind for a in alerts}) == sorted(KINDS)
    for alert in alerts:
        assert alert.message and alert.evidence and len(alert.explanation) > 80 and alert.fixes, alert.kind
        assert alert.step <= alert.detected_at


# ---- nonfinite ---------------------------------------------------------------------------

def test_nonfinite_names_the_first_phase_in_the_step_order():
    series = healthy()
    set_from(series, "nonfinite/D/out_fake", 3000, 64.0)   # G produced NaN samples
    set_from(series, "nonfinite/D/grad", 3000, 8.0)
    set_from(series, "D/loss", 3000, np.nan)
    set_from(series, "D/grad_norm/net.0", 3000, np.nan)
    retotal(series, "D")
    (alert,) = diagnose(series)
    assert (alert.kind, alert.step, alert.detected_at, alert.severity) == ("nonfinite", 3000, 3000, "critical")
    assert alert.evidence["first"] == "D(fake) in the D update"
    assert "G produced NaN/inf samples" in alert.explanation
    assert alert.evidence["layers"] == ["D/net.0"]


def test_nonfinite_in_one_gradient_layer_names_model_and_layer():
    series = healthy()
    set_from(series, "nonfinite/G/grad", 2500, 1.0)
    set_from(series, "G/grad_norm/net.4", 2500, np.nan)
    retotal(series, "G")
    (alert,) = diagnose(series, warmup=10_000)   # no warm-up for NaN
    assert alert.step == 2500 and alert.evidence["first"] == "G's gradients"
    assert alert.evidence["layers"] == ["G/net.4"] and "G's gradient is non-finite in layer(s) net.4" in alert.message


def test_nonfinite_fires_once_per_episode_and_rearms_after_clear():
    series = healthy()
    for start, stop in ((2000, 2010), (2050, 2060), (3000, 3005)):
        _, v = series["nonfinite/loss"]
        v[start - 1:stop] = 1
    alerts = diagnose(series)
    assert [a.step for a in alerts] == [2000, 3000]  # 2050 is within `clear` = 100 steps


# ---- gradient_leak ----------------------------------------------------------------------

@pytest.mark.parametrize("code, kind", [(1.0, "other"), (2.0, "stale")])
def test_gradient_leak_reports_the_model_and_the_kind(code, kind):
    series = healthy()
    leak_steps = np.arange(1, 21)
    series["grad_leak/D"] = (leak_steps, np.where(leak_steps >= 3, code, 0.0))
    series["grad_leak/G"] = (leak_steps, np.zeros(20))
    (alert,) = diagnose(series)
    assert (alert.kind, alert.step, alert.evidence["model"], alert.evidence["kind"]) == ("gradient_leak", 3, "D", kind)
    assert "zero_grad" in alert.fixes[0]


# ---- d_overpowering ---------------------------------------------------------------------

def overpowered(starve_g=True):
    series = healthy()
    rng = np.random.default_rng(1)
    n = len(steps()) - 2999
    set_from(series, "D/out_real/sign", 3000, np.clip(rng.normal(0.97, 0.03, n), -1, 1))
    set_from(series, "D/out_real/acc", 3000, 0.99)
    set_from(series, "D/out_fake/acc", 3000, 0.99)
    set_from(series, "D/out_real/mean", 3000, 2.0 + np.linspace(0, 4, n))
    set_from(series, "D/out_fake/mean", 3000, -2.0 - np.linspace(0, 4, n))
    if starve_g:
        for key in [k for k in series if k.startswith("G/grad_norm/net.")]:
            set_from(series, key, 3000, series[key][1][2999:] * 0.02)
        retotal(series, "G")
    return series


def test_d_overpowering_fires_after_it_held_and_names_the_starving_g():
    alerts = [a for a in diagnose(overpowered()) if a.kind == "d_overpowering"]
    (alert,) = alerts
    assert 3000 < alert.step < 3200 and alert.detected_at == alert.step + 199
    assert alert.severity == "critical" and alert.evidence["g_grad_fell"] > 10
    assert "D is winning: r_t 0.9" in alert.message and "G's gradient norm fell" in alert.message
    assert any("TTUR" in fix for fix in alert.fixes)


def test_d_overpowering_is_info_while_g_learns_a_warning_when_d_pulls_away_and_silent_for_wgan():
    (alert,) = [a for a in diagnose(overpowered(starve_g=False)) if a.kind == "d_overpowering"]
    assert alert.severity == "info" and "not yet harm" in alert.message
    pulling = overpowered(starve_g=False)
    n = len(pulling["D/out_real/mean"][1]) - 2999
    set_from(pulling, "D/out_real/mean", 3000, 2.0 + np.linspace(0, 30, n))  # +4 logits per 200 steps
    set_from(pulling, "D/out_fake/mean", 3000, -2.0 - np.linspace(0, 30, n))
    (alert,) = [a for a in diagnose(pulling) if a.kind == "d_overpowering"]
    assert alert.severity == "warning" and "widening from" in alert.message
    assert "d_overpowering" not in kinds(diagnose(overpowered(), loss="wgan-gp"))


def test_d_overpowering_stays_quiet_during_warmup():
    series = overpowered()
    assert "d_overpowering" not in kinds(diagnose(series, warmup=6000))


# ---- vanishing_gradients ----------------------------------------------------------------

def test_vanishing_gradients_names_the_layer_that_died():
    series = healthy()
    set_from(series, "G/grad_norm/net.0", 3000, series["G/grad_norm/net.0"][1][2999:] * 1e-4)
    retotal(series, "G")
    (alert,) = diagnose(series)
    assert alert.kind == "vanishing_gradients" and alert.evidence["model"] == "G"
    assert list(alert.evidence["layers"]) == ["net.0"] and alert.severity == "warning"
    assert 3000 < alert.step <= 3060 and alert.detected_at == alert.step + 199
    assert "non-saturating" in alert.fixes[0]


def test_vanishing_gradients_of_a_whole_model_are_critical():
    series = healthy()
    for key in [k for k in series if k.startswith("D/grad_norm/")]:
        set_from(series, key, 4000, 0.0)
    (alert,) = diagnose(series)
    assert alert.evidence["model"] == "D" and "total" in alert.evidence["layers"]
    assert alert.severity == "critical" and "exactly 0" in alert.message


def test_a_layer_that_never_had_gradients_is_not_vanishing():
    series = healthy()
    series["G/grad_norm/unused"] = (steps(), np.zeros(len(steps())))
    assert diagnose(series) == []


# ---- exploding_gradients ----------------------------------------------------------------

def test_three_spikes_fire_at_the_third_one_single_spike_does_not():
    series = healthy()
    _, total = series["D/grad_norm/total"]
    total[2999] *= 50
    assert diagnose(series) == []
    total[3099] *= 50
    total[3199] *= 50
    (alert,) = diagnose(series)
    assert (alert.kind, alert.step, alert.detected_at) == ("exploding_gradients", 3200, 3200)
    assert alert.evidence["spikes"] == 3 and "3 spikes" in alert.message


def grown_g(series, *, blow_up_d, scale=1.0):
    """G's gradient norms (times `scale`) grow 1000x over 1500 steps from step 3000; D's
    logit gap with them (`blow_up_d`) or not."""
    n = len(steps()) - 2999
    growth = scale * np.exp(np.log(1000) * np.arange(n) / 1500)
    for key in [k for k in series if k.startswith("G/grad_norm/net.")]:
        set_from(series, key, 3000, series[key][1][2999:] * growth)
    retotal(series, "G")
    if blow_up_d:
        set_from(series, "D/out_real/mean", 3000, series["D/out_real/mean"][1][2999:] + np.log(growth))
    return series


def test_sustained_growth_with_d_blowing_up_fires_early():
    (alert,) = [a for a in diagnose(grown_g(healthy(), blow_up_d=True)) if a.kind == "exploding_gradients"]
    assert alert.evidence["model"] == "G" and alert.evidence["growth"] >= 10
    assert "while D's outputs blew up" in alert.message
    assert 3500 < alert.step < 4200
    assert alert.severity == "warning"   # raised while the norms are still small (~5)


def test_growth_while_d_stays_calm_is_learning_not_an_explosion():
    # G's gradient grows 10-60x while G first reaches the data on healthy runs
    assert [a for a in diagnose(grown_g(healthy(), blow_up_d=False)) if a.kind == "exploding_gradients"] == []


def test_spikes_that_settle_are_info_and_growth_over_100_is_critical():
    series = healthy()
    s, total = series["D/grad_norm/total"]
    total = total * 10
    total[[2999, 3099, 3199]] *= 50
    series["D/grad_norm/total"] = (s, total)
    (alert,) = diagnose(series)
    assert alert.severity == "info" and "the median settled back" in alert.message
    big = grown_g(healthy(), blow_up_d=True, scale=2000.0)
    (alert,) = [a for a in diagnose(big) if a.kind == "exploding_gradients" and a.evidence["cause"] == "growth"]
    assert alert.severity == "critical" and "norms over 100" in alert.message


def test_large_but_steady_norms_are_not_exploding():
    series = healthy()
    s, total = series["D/grad_norm/total"]
    series["D/grad_norm/total"] = (s, total * 2000)   # ganhacks' rule alone would fire
    assert diagnose(series) == []


# ---- oscillation ------------------------------------------------------------------------

def test_periodic_losses_fire_noise_and_drift_do_not():
    series = healthy()
    s, loss = series["D/loss"]
    swing = 0.3 * np.sin(2 * np.pi * s / 60)
    series["D/loss"] = (s, np.where(s >= 2000, loss + swing, loss))
    (alert,) = diagnose(series)
    assert alert.kind == "oscillation" and alert.evidence["signal"] == "D's loss"
    assert abs(alert.evidence["period"] - 60) < 3
    assert 0.05 < alert.evidence["amplitude"] <= 0.35  # averaged over a window only partly oscillating
    assert 2000 < alert.detected_at < 2000 + 2048

    rng = np.random.default_rng(3)
    drift = np.zeros(len(s))
    for i in range(1, len(s)):   # red noise: AR(1), slow wandering
        drift[i] = 0.995 * drift[i - 1] + 0.03 * rng.standard_normal()
    quiet = healthy()
    quiet["G/loss"] = (s, quiet["G/loss"][1] + drift)
    assert "oscillation" not in kinds(diagnose(quiet))


# ---- divergence -------------------------------------------------------------------------

def test_a_loss_that_keeps_rising_is_divergence_one_that_levels_off_is_not():
    series = healthy()
    s, loss = series["G/loss"]
    series["G/loss"] = (s, loss + np.clip((s - 3000) / 250, 0, None))
    (alert,) = diagnose(series)
    assert alert.kind == "divergence" and alert.evidence["signal"] == "|G's loss|"
    assert alert.evidence["tau"] >= 0.8 and alert.evidence["to"] - alert.evidence["from"] >= 2
    assert 3000 < alert.detected_at < 4200

    settles = healthy()
    settles["G/loss"] = (s, settles["G/loss"][1] + np.clip((s - 3000) / 250, 0, 1.5))
    assert diagnose(settles) == []


# ---- mode_collapse ----------------------------------------------------------------------

def test_fake_batches_losing_diversity_is_collapse():
    series = healthy()
    set_from(series, "D/spread_ratio", 3000, 0.05)
    (alert,) = diagnose(series)
    assert alert.kind == "mode_collapse" and 3000 < alert.step <= 3051
    assert alert.detected_at == alert.step + 199 and alert.severity == "critical"
    assert "20x less diverse" in alert.message


def metric_series(modes, kl, hq):
    evals = np.arange(250, 6001, 250)
    return {"metric/modes": (evals, modes(evals)), "metric/reverse_kl": (evals, kl(evals)),
            "metric/hq": (evals, hq(evals))}


def test_falling_coverage_metrics_are_collapse_once_hq_is_meaningful():
    series = healthy() | metric_series(lambda e: np.where(e < 3000, 8.0, 3.0),
                                       lambda e: np.where(e < 3000, 0.02, 1.1),
                                       lambda e: np.full(len(e), 0.8))
    (alert,) = diagnose(series)
    assert (alert.kind, alert.step, alert.detected_at) == ("mode_collapse", 3000, 3250)
    assert alert.evidence["modes"] == {"now": 3.0, "best": 8.0, "best_step": 250}
    assert alert.evidence["step"] == 3250 and alert.severity == "critical"
    assert "at step 3250: modes 3 (best 8 at step 250)" in alert.message
    assert "reverse_kl 1.1 (lowest 0.02 at step 250;" in alert.message

    few_hq = healthy() | metric_series(lambda e: np.where(e < 3000, 8.0, 0.0),
                                       lambda e: np.where(e < 3000, 0.02, np.inf),
                                       lambda e: np.where(e < 3000, 0.5, 0.01))
    assert diagnose(few_hq) == []   # modes are counted on HQ samples: 1 % says nothing


def test_the_headline_says_what_fell_fewer_modes_or_samples_piled_onto_a_few():
    fewer = healthy() | metric_series(lambda e: np.where(e < 3000, 8.0, 3.0),
                                      lambda e: np.where(e < 3000, 0.02, 1.1),
                                      lambda e: np.full(len(e), 0.8))
    assert diagnose(fewer)[0].message.startswith("G covers fewer modes at step 3250:")
    # Every mode keeps a sample (8 of 8 covered) while the KL to uniform rises: piled up.
    piled = healthy() | metric_series(lambda e: np.full(len(e), 8.0),
                                      lambda e: np.where(e < 3000, 0.02, 1.1),
                                      lambda e: np.full(len(e), 0.8))
    (alert,) = diagnose(piled)
    assert alert.message.startswith("G piles its samples onto a few modes at step 3250:")
    assert "modes 8 (best 8 at step 250)" in alert.message


def test_coverage_evidence_names_its_steps_and_the_evaluations_left_out_for_low_hq():
    # HQ under 20 % until step 1000: those four evaluations do not set the best values, so
    # the best (6 modes) is at step 1250, not the 8 recorded at step 250.
    series = healthy() | metric_series(lambda e: np.where(e < 1250, 8.0, np.where(e < 3000, 6.0, 2.0)),
                                       lambda e: np.where(e < 3000, 0.3, 1.5),
                                       lambda e: np.where(e < 1250, 0.1, 0.8))
    (alert,) = diagnose(series)
    assert (alert.step, alert.detected_at) == (3000, 3250)
    assert alert.evidence["modes"] == {"now": 2.0, "best": 6.0, "best_step": 1250}
    assert alert.evidence["reverse_kl"] == {"now": 1.5, "lowest": 0.3, "lowest_step": 1250}
    assert alert.evidence["ignored_low_hq"] == 4
    assert "modes 2 (best 6 at step 1250)" in alert.message
    assert "4 evaluation(s) with under 20% high-quality samples left out" in alert.message


def test_one_collapse_is_one_alert_even_with_both_kinds_of_evidence():
    series = healthy() | metric_series(lambda e: np.where(e < 3000, 8.0, 1.0),
                                       lambda e: np.where(e < 3000, 0.02, 2.0),
                                       lambda e: np.full(len(e), 0.8))
    set_from(series, "D/spread_ratio", 3000, 0.01)
    assert kinds(diagnose(series)) == ["mode_collapse"]
