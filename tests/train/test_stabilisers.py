"""R1 and GP against autograd references with known answers; packing; noise; clipping; SN."""

import pytest
import torch
from torch import nn

from gandiag.train import stabilisers as stab


class Quadratic(nn.Module):
    """D(x) = sum(a * x^2): grad_x D = 2 a x, known in closed form."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([0.5, -1.5]))

    def forward(self, x):
        return (self.a * x**2).sum(1)


def test_r1_matches_the_closed_form():
    D = Quadratic()
    x = torch.tensor([[1.0, 2.0], [-0.5, 0.3]], requires_grad=True)
    penalty = stab.r1_penalty(D(x), x, gamma=10.0)
    grads = 2 * D.a.detach() * x.detach()
    expected = 5.0 * grads.pow(2).sum(1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)
    # The penalty is differentiable in D's parameters (create_graph), so it trains D.
    penalty.backward()
    assert D.a.grad is not None and torch.count_nonzero(D.a.grad) == 2


def test_gradient_penalty_of_a_linear_critic():
    D = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))  # ||grad|| = 5 everywhere
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    penalty = stab.gradient_penalty(D, real, fake, 10.0, generator=torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx(10.0 * (5.0 - 1.0) ** 2, rel=1e-6)
    penalty.backward()
    assert D.weight.grad is not None


def test_gradient_penalty_interpolates_per_sample():
    # D(x) = x1^2: grad norm is 2|x1| at the mixed point, so the penalty depends on eps.
    class Square(nn.Module):
        def forward(self, x):
            return x[:, 0] ** 2

    real, fake = torch.ones(4, 1), torch.zeros(4, 1)
    gen = torch.Generator().manual_seed(3)
    eps = torch.rand((4, 1), generator=torch.Generator().manual_seed(3))
    expected = ((2 * eps[:, 0] - 1) ** 2).mean()
    assert stab.gradient_penalty(Square(), real, fake, 1.0, generator=gen).item() == pytest.approx(expected.item(), rel=1e-6)


def test_pack_concatenates_consecutive_samples():
    x = torch.arange(12.0).reshape(6, 2)
    packed = stab.pack(x, 2)
    assert packed.shape == (3, 4)
    assert packed[0].tolist() == [0.0, 1.0, 2.0, 3.0]
    images = torch.randn(8, 3, 4, 4)
    packed = stab.pack(images, 4)
    assert packed.shape == (2, 12, 4, 4)
    assert torch.equal(packed[1, 3:6], images[5])
    assert stab.pack(torch.randn(7, 2), 2).shape == (3, 4)  # short batch: last sample dropped
    assert stab.pack(x, 1) is x


def test_instance_noise_anneals_to_zero():
    assert stab.instance_noise_std(0.2, 0, 100) == 0.2
    assert stab.instance_noise_std(0.2, 50, 100) == pytest.approx(0.1)
    assert stab.instance_noise_std(0.2, 150, 100) == 0.0
    x = torch.zeros(10000, 2)
    noisy = stab.add_instance_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.5, rel=0.05)
    assert stab.add_instance_noise(x, 0.0, None) is x


def test_clip_weights():
    D = nn.Linear(4, 1)
    with torch.no_grad():
        D.weight.mul_(100)
    stab.clip_weights_(D, 0.01)
    assert all(p.abs().max() <= 0.01 for p in D.parameters())


def test_spectral_norm_bounds_each_layer():
    D = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        D[0].weight.mul_(50)
    assert stab.apply_spectral_norm(D) == 2
    for _ in range(30):  # power iteration converges over forwards
        D(torch.randn(4, 5))
    sigma = torch.linalg.matrix_norm(D[0].weight.detach(), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)
    assert stab.apply_spectral_norm(D) == 0  # idempotent


def test_spectral_norm_without_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="no Linear or Conv layer"):
        stab.apply_spectral_norm(nn.Sequential(nn.ReLU()))
