"""Known answers for label-free partial collapse (`mode_collapse` on `coverage/*`).

A "generator" that returns real held-out digits of k of the 10 classes goes through a
plain user loop (`gandiag.attach`) with a small D: the classes are the ground truth, no
label reaches gandiag. The label-free numbers must order k = 1, 2, 5, 8, 10 as class
coverage does, `mode_collapse` must fire for k <= 5 and stay quiet for all ten classes;
one class at 55 % (the rest sharing 45 %) is partial collapse too, uniform weights are not.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gandiag

STEPS, EVERY = 1050, 250


class HeldOutDigits(nn.Module):
    """G: real held-out digits of some classes, drawn with the given weights."""

    def __init__(self, images, pool, weights, seed):
        super().__init__()
        self.images, self.pool, self.weights = images, pool, weights / weights.sum()
        self.rng = np.random.default_rng(seed)
        self.w = nn.Parameter(torch.zeros(()))  # so that G's update is an update

    def forward(self, z):
        picked = torch.from_numpy(self.rng.choice(self.pool, len(z), p=self.weights))
        return self.images[picked] + 0 * self.w


def run(case, seed=0):
    torch.manual_seed(seed)
    images, labels = gandiag.data.digits().tensors
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train, held = order[:900], order[900:]
    held_labels = labels[held].numpy()
    if case == "skewed":
        share = np.r_[0.55, np.full(9, 0.45 / 9)]
        weights = share[held_labels] / np.bincount(held_labels, minlength=10)[held_labels]
        pool = held
    else:
        pool = held[np.isin(held_labels, rng.permutation(10)[:case])]
        weights = np.ones(len(pool))
    G = HeldOutDigits(images, pool, weights, seed)
    D = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, coverage_every=EVERY) as monitor:
        for _ in range(STEPS):
            real = images[torch.from_numpy(rng.choice(train, 64))]
            fake = G(torch.randn(64, 100))
            loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-D(fake)).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    assert monitor.coverage.error is None
    history = monitor.history
    last = {key.split("/", 1)[1]: float(history[key][1][-1]) for key in history if key.startswith("coverage/")}
    collapse = [a for a in gandiag.diagnose(history) if a.kind == "mode_collapse"]
    return last, collapse


@pytest.fixture(scope="module")
def runs():
    return {case: run(case) for case in (1, 2, 5, 8, 10, "skewed")}


def test_the_label_free_numbers_order_the_generators_as_class_coverage_does(runs):
    by_k = [runs[k][0] for k in (1, 2, 5, 8, 10)]
    for name, more_classes_means in (("regions_jsd", "lower"), ("jsd", "lower"), ("ndb", "lower"),
                                     ("bins_covered", "higher"), ("recall", "higher"),
                                     ("coverage", "higher")):
        values = np.array([last[name] for last in by_k])
        ordered = np.diff(values) < 0 if more_classes_means == "lower" else np.diff(values) > 0
        if name == "ndb":  # NDB / k saturates: with 1 or 2 classes nearly every bin differs
            ordered |= (values[:-1] >= 0.9) & (values[1:] >= 0.9)
        assert ordered.all(), (name, values.tolist())


@pytest.mark.parametrize("k", [1, 2, 5])
def test_mode_collapse_fires_when_g_covers_at_most_half_the_classes(runs, k):
    last, collapse = runs[k]
    assert collapse, last
    assert collapse[0].detected_at <= 2 * EVERY + 500  # two evaluations after the warm-up


def test_partial_collapse_names_the_starved_regions_and_since_when(runs):
    alert = runs[5][1][0]
    evidence = alert.evidence
    assert evidence["regions_starved"] >= 3 and evidence["bins_starved"] > evidence["bins_starved_null"]
    assert evidence["regions_jsd"] >= 5 * evidence["regions_jsd_null"]
    assert f"since step {evidence['since']}" in alert.message and "of 10 regions" in alert.message


def test_all_ten_classes_raise_no_collapse(runs):
    last, collapse = runs[10]
    assert collapse == [], [a.message for a in collapse]
    assert last["regions_jsd"] < 5 * last["regions_jsd_null"]


def test_one_class_at_55_percent_is_partial_collapse(runs):
    last, collapse = runs["skewed"]
    assert collapse, last
    assert "regions' JSD" in collapse[0].message


def history_of(evaluations):
    """A history holding only coverage records: {step: {name: value}}."""
    from gandiag.core.history import History
    from gandiag.core.records import Records

    history, names = History(), sorted({name for values in evaluations.values() for name in values})
    for name in names:
        steps = np.array([s for s, values in evaluations.items() if name in values], dtype=np.int64)
        values = np.array([evaluations[s][name] for s in steps], dtype=float)
        history.append(Records(scalars={f"coverage/{name}": (steps, values)}))
    return history


def evaluation(ratio, *, precision=0.9, ratio_on_data=None, starved=0.1, starved_on_data=0.0, new=0.0):
    values = {"regions_jsd": 0.004 * ratio, "regions_jsd_null": 0.004, "precision": precision,
              "recall": 0.8, "k": 50.0, "bins_covered": 0.9, "starved_null": 0.02, "ndb": 0.3,
              "ndb_null": 0.1, "regions_starved": starved, "regions_starved_null": 0.0,
              "regions_new": new, "regions": 10.0}
    if ratio_on_data is not None:
        values.update(regions_jsd_hq=0.005 * ratio_on_data, regions_jsd_hq_null=0.005,
                      regions_starved_hq=starved_on_data, regions_starved_hq_null=0.0)
    return values


def collapse_alerts(evaluations):
    return [a for a in gandiag.diagnose(history_of(evaluations)) if a.kind == "mode_collapse"]


def test_two_evaluations_in_a_row_at_five_times_the_null_raise_one_alert_from_the_first():
    alerts = collapse_alerts({500: evaluation(2), 1000: evaluation(6), 1500: evaluation(7),
                              2000: evaluation(8)})
    assert [(a.step, a.detected_at, a.severity) for a in alerts] == [(1000, 1500, "warning")]
    assert alerts[0].evidence["since"] == 1000 and "7x what two real samples" in alerts[0].message
    assert collapse_alerts({500: evaluation(2), 1000: evaluation(6), 1500: evaluation(4.9),
                            2000: evaluation(6)}) == []  # not in a row


def test_evaluations_with_g_off_the_data_are_left_out_and_its_on_data_samples_speak():
    off = {s: evaluation(9, precision=0.1, ratio_on_data=9) for s in (500, 1000, 1500)}
    assert collapse_alerts(off) == []  # where G's few on-data samples fall says little
    on_data = {s: evaluation(1, precision=0.3, ratio_on_data=8, starved=0.0, starved_on_data=0.1)
               for s in (500, 1000, 1500)}
    alerts = collapse_alerts(on_data)
    assert len(alerts) == 1 and "of G's samples that lie on the data" in alerts[0].message


def test_uneven_shares_with_no_starved_region_are_not_collapse_but_a_pile_up_is():
    uneven = {s: evaluation(7, starved=0.0) for s in (500, 1000, 1500)}
    assert collapse_alerts(uneven) == []  # every region keeps over a quarter of its share
    piled = {s: evaluation(21, starved=0.0) for s in (500, 1000, 1500)}
    alerts = collapse_alerts(piled)
    assert len(alerts) == 1 and "G's samples pile onto part of the data" in alerts[0].message


def test_regions_starved_make_it_critical_and_moving_starved_regions_are_called_hopping():
    alerts = collapse_alerts({500: evaluation(3, starved=0.2), 1000: evaluation(9, starved=0.3, new=0.1),
                              1500: evaluation(9, starved=0.3, new=0.2)})
    alert, = alerts
    assert alert.severity == "critical" and alert.evidence["regions_starved"] == 3
    assert alert.evidence["hops"] == 1  # at 1500: two became starved while two filled again
    assert "3 of 10 regions" in alert.message and "mode hopping" in alert.message
