"""Each loss against its formula written out by hand, and numerical stability at extreme logits."""

import math

import pytest
import torch

from gandiag.train.losses import LOSSES, get_loss

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.2, 1.5])


def _sig(t):
    return 1 / (1 + math.exp(-t))


def _mean(values):
    return sum(values) / len(values)


def test_minimax_matches_the_original_objective():
    loss = get_loss("minimax")
    # D maximises log D(x) + log(1 - D(G(z))): its loss is the negative.
    d = _mean([-math.log(_sig(r)) for r in REAL.tolist()]) + _mean(
        [-math.log(1 - _sig(f)) for f in FAKE.tolist()])
    # G minimises log(1 - D(G(z))).
    g = _mean([math.log(1 - _sig(f)) for f in FAKE.tolist()])
    assert loss.d(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_nonsaturating_g_maximises_log_d_of_fakes():
    g = _mean([-math.log(_sig(f)) for f in FAKE.tolist()])
    assert get_loss("nonsaturating").g(FAKE).item() == pytest.approx(g, rel=1e-6)
    assert get_loss("nonsaturating").d is get_loss("minimax").d


def test_label_smoothing_uses_the_smoothed_real_target():
    s = 0.1
    d = _mean([-(1 - s) * math.log(_sig(r)) - s * math.log(1 - _sig(r)) for r in REAL.tolist()])
    d += _mean([-math.log(1 - _sig(f)) for f in FAKE.tolist()])
    assert get_loss("nonsaturating").d(REAL, FAKE, 1 - s).item() == pytest.approx(d, rel=1e-6)


def test_wgan_hinge_lsgan_by_hand():
    r, f = REAL.tolist(), FAKE.tolist()
    assert get_loss("wgan").d(REAL, FAKE).item() == pytest.approx(_mean(f) - _mean(r), rel=1e-6)
    assert get_loss("wgan").g(FAKE).item() == pytest.approx(-_mean(f), rel=1e-6)
    assert get_loss("wgan-gp").d(REAL, FAKE).item() == pytest.approx(_mean(f) - _mean(r), rel=1e-6)
    hinge = _mean([max(0, 1 - x) for x in r]) + _mean([max(0, 1 + x) for x in f])
    assert get_loss("hinge").d(REAL, FAKE).item() == pytest.approx(hinge, rel=1e-6)
    assert get_loss("hinge").g(FAKE).item() == pytest.approx(-_mean(f), rel=1e-6)
    ls_d = 0.5 * _mean([(x - 1) ** 2 for x in r]) + 0.5 * _mean([x**2 for x in f])
    assert get_loss("lsgan").d(REAL, FAKE).item() == pytest.approx(ls_d, rel=1e-6)
    assert get_loss("lsgan").g(FAKE).item() == pytest.approx(0.5 * _mean([(x - 1) ** 2 for x in f]), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_stay_finite_and_have_gradients_at_extreme_logits(name):
    real = torch.tensor([200.0, -200.0], requires_grad=True)
    fake = torch.tensor([-200.0, 200.0], requires_grad=True)
    loss = get_loss(name)
    total = loss.d(real, fake) + loss.g(fake)
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


def test_saturating_g_gradient_vanishes_where_nonsaturating_does_not():
    # The reason practice prefers the non-saturating loss: D rejecting fakes confidently.
    fake = torch.tensor([-10.0], requires_grad=True)
    get_loss("minimax").g(fake).backward()
    saturating = fake.grad.abs().item()
    fake.grad = None
    get_loss("nonsaturating").g(fake).backward()
    assert saturating < 1e-4 < fake.grad.abs().item()


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'wgan_gp'.*wgan-gp"):
        get_loss("wgan_gp")


def test_every_trainer_loss_has_a_family_to_read_d_by():
    """The monitor reads D's outputs by the loss's family (gandiag.core.family): a loss the
    Trainer offers must have one, with the threshold its targets imply."""
    from gandiag.core.family import family_of
    from gandiag.train.losses import LOSSES
    families = {name: family_of(name) for name in LOSSES}
    assert families["lsgan"].center == 0.5 and families["wgan-gp"].center is None
    assert {f.name for f in families.values()} <= {"logits", "lsgan", "hinge", "wgan"}
