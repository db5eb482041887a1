"""`frozen_model` and `runaway_critic` on synthetic series with known answers (built like
`tests/detect/series.py`), and `frozen_model` on a real user loop whose G has lr 0."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gandiag
from gandiag import data
from gandiag.detect import diagnose
from tests.detect.series import healthy, set_from, steps

MINE = ["frozen_model", "runaway_critic"]


def kinds(alerts):
    return [a.kind for a in alerts]


def set_weighed(series, key, start, value):
    """Replace a series recorded every `weight_every` steps from step `start` on."""
    own, values = series[key]
    series[key] = (own, np.where(own >= start, value, values))


def assert_explained(alert):
    assert alert.message and alert.evidence and len(alert.explanation) > 80 and alert.fixes
    assert alert.step <= alert.detected_at


# ---- frozen_model -------------------------------------------------------------------------

def test_a_g_whose_weights_stop_changing_is_frozen_at_the_third_measured_update():
    series = healthy()
    set_weighed(series, "G/update_ratio/total", 2000, 0.0)   # measured every 50 steps
    (alert,) = diagnose(series, warmup=10_000)                # no warm-up: a cause, not a trend
    assert (alert.kind, alert.step, alert.detected_at, alert.severity) == ("frozen_model", 2000, 2100, "critical")
    assert alert.evidence["model"] == "G" and alert.evidence["cause"] == "weights_unchanged"
    assert alert.evidence["steps"] == [2000, 2050, 2100] and alert.evidence["update_ratio"] == [0.0] * 3
    assert alert.evidence["update_ratio_before_step"] == 1950
    assert alert.message.startswith("G is not being updated: its weights did not change in its last 3")
    assert "although its learning rate is 2.00e-04" in alert.message
    assert "G.parameters()" in alert.fixes[0] and "requires_grad" in alert.explanation
    assert_explained(alert)


def test_a_learning_rate_of_0_is_named_as_the_cause():
    series = healthy()
    set_weighed(series, "D/update_ratio/total", 3000, 0.0)   # what the hooks record with lr 0
    set_weighed(series, "D/lr", 3000, 0.0)
    (alert,) = diagnose(series)
    assert (alert.step, alert.detected_at, alert.evidence["model"]) == (3000, 3100, "D")
    assert alert.evidence["cause"] == "learning_rate_0" and alert.evidence["lr"] == [0.0] * 3
    assert alert.message.startswith("D is not being updated: its learning rate is 0")
    assert "get_last_lr()" in alert.fixes[0] and "schedule" in alert.explanation
    assert_explained(alert)


def test_the_learning_rate_decides_alone_when_no_update_ratio_was_recorded():
    series = healthy()
    del series["G/update_ratio/total"], series["D/update_ratio/total"]
    set_weighed(series, "G/lr", 2000, 0.0)
    (alert,) = diagnose(series)
    assert (alert.kind, alert.step, alert.detected_at) == ("frozen_model", 2000, 2100)
    assert alert.evidence["cause"] == "learning_rate_0" and "update_ratio" not in alert.evidence


def test_a_first_param_group_at_lr_0_while_the_weights_change_is_not_frozen():
    series = healthy()
    set_weighed(series, "G/lr", 2000, 0.0)   # a frozen backbone in group 0, the head trains
    assert diagnose(series) == []


def test_a_run_recorded_without_the_total_is_read_through_its_layers():
    series = healthy()
    own, ratio = series.pop("G/update_ratio/total")
    for layer in ("net.0", "net.2"):
        series[f"G/update_ratio/{layer}"] = (own, ratio)
    set_weighed(series, "G/update_ratio/net.0", 2000, 0.0)   # one frozen layer: not a frozen model
    assert diagnose(series) == []
    set_weighed(series, "G/update_ratio/net.2", 4000, 0.0)   # every layer
    (alert,) = diagnose(series)
    assert (alert.step, alert.detected_at, alert.evidence["model"]) == (4000, 4100, "G")


def test_one_alert_per_episode_rearmed_after_updates_resume():
    series = healthy()
    own, ratio = series["G/update_ratio/total"]
    frozen = ((own >= 2000) & (own < 2600)) | (own >= 4000)
    series["G/update_ratio/total"] = (own, np.where(frozen, 0.0, ratio))
    assert [(a.step, a.detected_at) for a in diagnose(series)] == [(2000, 2100), (4000, 4100)]


def test_skipped_updates_and_models_taking_turns_are_not_frozen():
    series = healthy()
    own, ratio = series["D/update_ratio/total"]
    skipped = np.isin(own, [2000, 2050, 3000])      # AMP skips a step now and then
    turns = (own >= 4000) & ((own // 50) % 2 == 0)  # D and G take turns every 50 steps
    series["D/update_ratio/total"] = (own, np.where(skipped | turns, 0.0, ratio))
    assert diagnose(series) == []


# ---- runaway_critic ---------------------------------------------------------------------

def runaway(grow=20.0):
    """Spread ratio 1.8 from step 3000; D's outputs grow `grow` times over 200 steps."""
    series = healthy()
    s = steps()
    set_from(series, "D/spread_ratio", 3000, 1.8 + 0.08 * np.random.default_rng(2).standard_normal(len(s)))
    growth = grow ** np.clip((s - 3000) / 200, 0, 1)
    for side in ("real", "fake"):
        _, mean = series[f"D/out_{side}/mean"]
        series[f"D/out_{side}/mean"] = (s, mean * growth)
    return series


def test_fakes_more_spread_than_the_data_with_growing_critic_outputs_is_critical():
    (alert,) = [a for a in diagnose(runaway()) if a.kind == "runaway_critic"]
    assert 3000 < alert.step <= 3051 and alert.detected_at == alert.step + 199
    assert alert.severity == "critical" and alert.evidence["critic_grew"] >= 10
    assert alert.evidence["spread_ratio"] > 1.5 and alert.evidence["steps_held"] == 200
    assert alert.evidence["critic_scale"] > 10 * alert.evidence["critic_scale_at_start"]
    assert alert.message.startswith("G's samples are 1.8")
    assert "as spread out as real data" in alert.message and "critic outputs grew" in alert.message
    assert any("gradient penalty" in fix for fix in alert.fixes)
    assert any("sign of D's loss" in fix for fix in alert.fixes)
    assert "unconstrained" in alert.explanation
    assert_explained(alert)


def test_without_growing_critic_outputs_it_is_a_warning():
    series = runaway(grow=1.0)
    series["D/out_real/std"] = (steps(), np.full(len(steps()), 0.3))
    (alert,) = [a for a in diagnose(series) if a.kind == "runaway_critic"]
    assert alert.severity == "warning" and "grew" not in alert.message
    assert alert.evidence["critic_std_real"] == 0.3
    assert 0.4 < alert.evidence["critic_scale"] < 0.6   # |gap| ~0.2 plus the std


@pytest.mark.parametrize("seed", range(5))
def test_healthy_series_raise_neither(seed):
    assert diagnose(healthy(seed), warmup=0, kinds=MINE) == []


def test_a_collapse_is_not_a_runaway_critic():
    series = healthy()
    set_from(series, "D/spread_ratio", 3000, 0.05)
    assert kinds(diagnose(series)) == ["mode_collapse"]


def test_a_burst_shorter_than_persist_is_not_a_runaway_critic():
    series = healthy()
    _, ratio = series["D/spread_ratio"]
    ratio[2999:3149] = 3.0   # 150 steps: the rolling median stays high for ~150 records
    assert diagnose(series) == []
    assert kinds(diagnose(series, thresholds={"runaway_critic": {"persist": 100}})) == ["runaway_critic"]


def test_a_wgan_critic_whose_outputs_drift_is_not_running_away():
    series = healthy()
    s = steps()
    drift = np.linspace(0, 500, len(s))   # a critic is shift-invariant: its outputs wander
    for side in ("real", "fake"):
        _, mean = series[f"D/out_{side}/mean"]
        series[f"D/out_{side}/mean"] = (s, mean + drift)
    assert diagnose(series, loss="wgan", kinds=MINE) == []


def test_flush_by_flush_gives_the_alerts_of_one_pass():
    series = runaway()
    set_weighed(series, "G/update_ratio/total", 4000, 0.0)
    set_weighed(series, "G/lr", 4000, 0.0)
    offline = diagnose(series, kinds=MINE)
    assert kinds(offline) == ["runaway_critic", "frozen_model"]
    assert diagnose(series, kinds=MINE, chunk=50) == offline == diagnose(series, kinds=MINE, chunk=777)


# ---- a real run -------------------------------------------------------------------------

def mlp(inputs, outputs):
    return nn.Sequential(nn.Linear(inputs, 32), nn.LeakyReLU(0.2), nn.Linear(32, outputs))


def test_a_user_loop_whose_g_has_lr_0_is_diagnosed_frozen():
    torch.manual_seed(0)
    G, D = mlp(4, 2), mlp(2, 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=0.0, betas=(0.5, 0.999))   # the bug
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion, ring = nn.BCEWithLogitsLoss(), data.ring()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hooks' health warnings are not under test here
        with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=50, weight_every=10) as monitor:
            for _ in range(300):
                opt_d.zero_grad()
                fake = G(torch.randn(64, 4))
                loss_d = (criterion(D(ring.sample(64)).view(-1), torch.ones(64))
                          + criterion(D(fake.detach()).view(-1), torch.zeros(64)))
                loss_d.backward()
                opt_d.step()
                opt_g.zero_grad()
                criterion(D(fake).view(-1), torch.ones(64)).backward()
                opt_g.step()
    frozen = [a for a in diagnose(monitor.history, warmup=100) if a.kind == "frozen_model"]
    assert [a.evidence["model"] for a in frozen] == ["G"], [str(a) for a in frozen]
    (alert,) = frozen
    assert alert.detected_at <= 50 and alert.evidence["cause"] == "learning_rate_0"
    assert "G is not being updated: its learning rate is 0" in alert.message


@pytest.mark.parametrize("clip", [None, 0.01], ids=["unconstrained", "clipped"])
def test_a_wgan_critic_without_clipping_runs_away_in_a_real_loop_and_a_clipped_one_does_not(clip):
    """No fault injected: the classic WGAN loop (n_critic 5) on the ring, D's lr 1e-3. Without
    clipping the critic's outputs grow and G's samples spread past the data (measured:
    spread ratio 1.6 to 2.2 from step ~400, seeds 0 and 1); with clipping they do not."""
    torch.manual_seed(0)
    ring = data.ring()
    G = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    D = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.9))
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=100) as monitor:
        for _ in range(900):
            for _ in range(5):
                real, fake = ring.sample(128), G(torch.randn(128, 2)).detach()
                opt_d.zero_grad()
                (D(fake).mean() - D(real).mean()).backward()
                opt_d.step()
                if clip:
                    for p in D.parameters():
                        p.data.clamp_(-clip, clip)
            opt_g.zero_grad()
            (-D(G(torch.randn(128, 2))).mean()).backward()
            opt_g.step()
    kinds = [a.kind for a in diagnose(monitor, warmup=300)]
    assert monitor.config["loss"] == "wgan"
    assert ("runaway_critic" in kinds) is (clip is None)
