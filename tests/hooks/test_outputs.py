"""Output statistics: numpy (CPU) and torch (device) sums agree; decode gives known answers."""

import numpy as np
import pytest
import torch
from torch import nn

from gandiag.hooks.outputs import OutputStats, prob_key


def tricky_slots():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(64, generator=generator) * 4
    real[:6] = torch.tensor([float("nan"), float("inf"), -float("inf"), -10.0, 10.0, 0.0])
    fake = torch.tensor([-30.0, 30.0, 9.999, -9.9, 0.5])  # beyond the range, at its edges
    return [[real[:40], real[40:]], [fake], [], [torch.zeros(3)]]


def test_numpy_and_torch_sums_agree():
    stats = OutputStats(bins=40, value_range=(-10.0, 10.0))
    slots = tricky_slots()
    np.testing.assert_allclose(stats.sums_numpy(slots), stats.sums_torch(slots).numpy(), rtol=1e-12, atol=1e-12)


def test_decoded_statistics_match_numpy_on_the_finite_values():
    stats = OutputStats(bins=40, value_range=(-10.0, 10.0))
    slots = tricky_slots()
    sums = stats.sums_numpy(slots)
    real = torch.cat(slots[0]).numpy().astype(np.float64)
    finite = real[np.isfinite(real)]
    decoded = stats.decode(sums[:1], real=True)
    assert decoded["nonfinite"][0] == 3 and decoded["n"][0] == 61
    np.testing.assert_allclose(decoded["mean"][0], finite.mean(), rtol=1e-12)
    np.testing.assert_allclose(decoded["std"][0], finite.std(), rtol=1e-9)
    np.testing.assert_allclose(decoded["sign"][0], np.sign(finite).mean())
    np.testing.assert_allclose(decoded["acc"][0], (finite > 0).mean())
    np.testing.assert_allclose(decoded["prob"][0], (1 / (1 + np.exp(-finite))).mean(), rtol=1e-12)
    expected = np.histogram(np.clip(finite, -10, 10), bins=40, range=(-10, 10))[0]
    np.testing.assert_array_equal(decoded["hist"][0], expected)
    fake = stats.decode(sums[1:2], real=False)
    assert fake["acc"][0] == pytest.approx(2 / 5)  # logit < 0 counts as right for a fake
    assert fake["hist"][0][0] == 2 and fake["hist"][0][-1] == 2  # outside the range: edge bins
    assert stats.decode(sums[2:3], real=False)["n"][0] == 0  # an empty slot


def test_bad_settings_and_key_names():
    with pytest.raises(ValueError, match="range low < high"):
        OutputStats(bins=10, value_range=(1.0, -1.0))
    assert prob_key("G/out_fake") == "G/prob_fake/mean"


def test_bf16_logits_from_cpu_autocast_are_recorded():
    import gandiag

    torch.manual_seed(0)
    G, D = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=1e-3), torch.optim.SGD(D.parameters(), lr=1e-3)
    hand = []
    with gandiag.attach(G, D, opt_g=opt_g, opt_d=opt_d, log_every=5) as monitor:
        for _ in range(10):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                fake = G(torch.randn(8, 2))
                out_real = D(torch.randn(8, 2))
                out_fake = D(fake.detach())
            assert out_real.dtype == torch.bfloat16
            hand.append(float(out_real.detach().float().mean()))
            opt_d.zero_grad()
            (out_fake.float().mean() - out_real.float().mean()).backward()
            opt_d.step()
            opt_g.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                (-D(fake).float().mean()).backward()
            opt_g.step()
    np.testing.assert_allclose(monitor.history["D/out_real/mean"][1], hand, rtol=1e-6)
