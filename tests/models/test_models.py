"""Tests for gandiag.models: shapes, packing, init, logits, registry errors, gradients."""

from __future__ import annotations

import io
import re

import pytest
import torch
from torch import nn

from gandiag.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    MLPImageDiscriminator,
    MODEL_NAMES,
    Maxout,
    ToyDiscriminator,
    ToyGenerator,
    build_pair,
    dcgan_weights_init,
    pacgan_toy,
    small_toy,
)
from gandiag.train.stabilisers import pack

B = 4


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pack_samples(x: torch.Tensor, m: int) -> torch.Tensor:
    """The trainer's own packing, so models and trainer follow one convention."""
    return pack(x, m)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- toy


def test_maxout_takes_the_max_over_pieces() -> None:
    layer = Maxout(1, 1, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0], [2.0], [-1.0]]))
        layer.linear.bias.zero_()
    out = layer(torch.tensor([[1.0], [-1.0], [0.0]]))
    # max(x, 2x, -x): 2 at x=1, 1 at x=-1, 0 at x=0.
    assert out.flatten().tolist() == [2.0, 1.0, 0.0]


def test_maxout_groups_consecutive_columns_per_unit() -> None:
    layer = Maxout(1, 2, pieces=2)
    with torch.no_grad():
        # Unit 0 owns columns 0-1 (weights 1, 3); unit 1 owns columns 2-3 (weights -5, 0).
        layer.linear.weight.copy_(torch.tensor([[1.0], [3.0], [-5.0], [0.0]]))
        layer.linear.bias.zero_()
    assert layer(torch.tensor([[1.0]])).tolist() == [[3.0, 0.0]]


def test_toy_generator_shape_and_z_dim() -> None:
    G = ToyGenerator(z_dim=3, hidden=16, depth=2, out_dim=5)
    assert G.z_dim == 3
    assert G(torch.randn(B, 3)).shape == (B, 5)


@pytest.mark.parametrize("D_cls", [ToyDiscriminator, MLPDiscriminator])
def test_toy_discriminators_shape_and_packing(D_cls: type[nn.Module]) -> None:
    D1 = D_cls(hidden=16)
    assert D1.pack == 1
    assert D1(torch.randn(B, 2)).shape == (B, 1)
    D2 = D_cls(hidden=16, pack=2)
    assert D2.pack == 2
    assert D2(pack_samples(torch.randn(B, 2), 2)).shape == (B // 2, 1)


def test_pacgan_toy_parameter_count_matches_paper_architecture() -> None:
    G, D = pacgan_toy()
    # G: Linear(2,400) + BN(400) + 3 x [Linear(400,400) + BN(400)] + Linear(400,2).
    g_expected = (2 * 400 + 400) + 2 * 400 + 3 * ((400 * 400 + 400) + 2 * 400) + (400 * 2 + 2)
    # D: Maxout(2,200,5) = Linear(2,1000); 2 x Maxout(200,200,5) = Linear(200,1000); Linear(200,1).
    d_expected = (2 * 1000 + 1000) + 2 * (200 * 1000 + 1000) + (200 + 1)
    assert n_params(G) == g_expected == 486_402
    assert n_params(D) == d_expected == 405_201
    # Packing m widens only D's first layer: 2*m inputs.
    _, D2 = pacgan_toy(pack=2)
    assert n_params(D2) == d_expected + 2 * 1000 == 407_201


def test_pacgan_toy_end_to_end_with_packing() -> None:
    G, D = pacgan_toy(pack=2)
    assert G.z_dim == 2
    x = G(torch.randn(10, G.z_dim))
    assert x.shape == (10, 2)
    assert D(pack_samples(x, 2)).shape == (5, 1)


def test_small_toy_is_the_3x128_pair() -> None:
    G, D = small_toy(pack=2, z_dim=4)
    assert isinstance(D, MLPDiscriminator) and D.pack == 2
    assert G.z_dim == 4
    assert sum(isinstance(m, nn.Linear) for m in G.modules()) == 4  # 3 hidden + output
    assert sum(isinstance(m, nn.Linear) for m in D.modules()) == 4
    assert not any(isinstance(m, nn.BatchNorm1d) for m in G.modules())
    assert small_toy()[0].z_dim == 4
    assert any(isinstance(m, nn.BatchNorm1d) for m in ToyGenerator().modules())
    assert n_params(D) == (4 * 128 + 128) + 2 * (128 * 128 + 128) + (128 + 1)


# ----------------------------------------------------------------------------- classic


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 8, 8), (64,)])
def test_classic_pair_shapes(shape: tuple[int, ...]) -> None:
    G = MLPGenerator(out_shape=shape)
    D = MLPImageDiscriminator(in_shape=shape)
    assert G.z_dim == 100
    x = G(torch.randn(B, 100))
    assert x.shape == (B, *shape)
    assert x.abs().max() <= 1.0  # Tanh output
    assert D(x).shape == (B, 1)
    D2 = MLPImageDiscriminator(in_shape=shape, pack=2)
    assert D2(pack_samples(x, 2)).shape == (B // 2, 1)


def test_classic_generator_layout() -> None:
    G = MLPGenerator()
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [
        (100, 256), (256, 512), (512, 1024), (1024, 784)
    ]
    # BatchNorm on every hidden layer but the first, with the default eps (not 0.8).
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [bn.num_features for bn in bns] == [512, 1024]
    assert all(bn.eps == 1e-5 for bn in bns)


# ----------------------------------------------------------------------------- dcgan


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes_and_both_noise_layouts(size: int, channels: int) -> None:
    G = DCGANGenerator(channels=channels, size=size, ngf=8)
    D = DCGANDiscriminator(channels=channels, size=size, ndf=8)
    z = torch.randn(B, G.z_dim)
    G.eval()  # eval BN: the two noise layouts must give the very same images
    x = G(z)
    assert x.shape == (B, channels, size, size)
    assert torch.equal(G(z[:, :, None, None]), x)
    assert D(x).shape == (B,)
    D2 = DCGANDiscriminator(channels=channels, size=size, ndf=8, pack=2)
    assert D2(pack_samples(x, 2)).shape == (B // 2,)


@pytest.mark.parametrize("size, n_stages", [(32, 4), (64, 5)])
def test_dcgan_tutorial_widths(size: int, n_stages: int) -> None:
    G = DCGANGenerator(size=size)
    D = DCGANDiscriminator(size=size)
    g_convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    d_convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(g_convs) == len(d_convs) == n_stages
    top = 8 if size == 64 else 4
    assert g_convs[0].in_channels == 100 and g_convs[0].out_channels == 64 * top
    assert d_convs[-1].in_channels == 64 * top and d_convs[-1].out_channels == 1


def test_dcgan_init_statistics() -> None:
    for model in (DCGANGenerator(size=64), DCGANDiscriminator(size=64)):
        convs = torch.cat(
            [m.weight.flatten() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        )
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        bn_w = torch.cat([m.weight.flatten() for m in bns])
        assert abs(convs.mean().item()) < 1e-3
        assert convs.std().item() == pytest.approx(0.02, rel=0.02)
        assert bn_w.mean().item() == pytest.approx(1.0, abs=0.005)
        assert bn_w.std().item() == pytest.approx(0.02, rel=0.2)
        assert all(torch.count_nonzero(m.bias) == 0 for m in bns)


def test_dcgan_weights_init_zeroes_conv_bias() -> None:
    conv = nn.Conv2d(2, 4, 3, bias=True).apply(dcgan_weights_init)
    assert torch.count_nonzero(conv.bias) == 0


# ----------------------------------------------------------------------------- logits


def _all_discriminators() -> list[tuple[nn.Module, tuple[int, ...]]]:
    return [
        (ToyDiscriminator(hidden=16), (2,)),
        (MLPDiscriminator(hidden=16), (2,)),
        (MLPImageDiscriminator(in_shape=(1, 8, 8)), (1, 8, 8)),
        (DCGANDiscriminator(channels=1, size=32, ndf=8), (1, 32, 32)),
    ]


@pytest.mark.parametrize("index", range(4))
def test_discriminators_return_logits_not_probabilities(index: int) -> None:
    D, shape = _all_discriminators()[index]
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    out = D(10.0 * torch.randn(64, *shape))
    # A probability head would keep every output in [0, 1].
    assert ((out < 0) | (out > 1)).any()


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    "name, shape",
    [("toy", (2,)), ("toy-small", (2,)), ("mlp", (1, 8, 8)), ("dcgan", (1, 32, 32))],
)
def test_gradients_flow_through_g_and_d(name: str, shape: tuple[int, ...]) -> None:
    G, D = build_pair(name, sample_shape=shape, pack=2)
    x = G(torch.randn(B, G.z_dim))
    D(pack_samples(x, 2)).sum().backward()
    for model in (G, D):
        for pname, p in model.named_parameters():
            assert p.grad is not None, f"{name}: no gradient for {pname}"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        total = sum(p.grad.abs().sum() for p in model.parameters())
        assert total > 0


# ----------------------------------------------------------------------------- registry


def test_model_names() -> None:
    assert MODEL_NAMES == ("toy", "toy-small", "mlp", "dcgan")


@pytest.mark.parametrize(
    "name, shape, sample_out, z_default",
    [
        ("toy", (2,), (2,), 2),
        ("toy-small", (2,), (2,), 4),
        ("mlp", (3, 8, 8), (3, 8, 8), 100),
        ("mlp", (10,), (10,), 100),
        ("dcgan", (3, 32, 32), (3, 32, 32), 100),
    ],
)
def test_build_pair_sizes_models_for_the_sample(
    name: str, shape: tuple[int, ...], sample_out: tuple[int, ...], z_default: int
) -> None:
    G, D = build_pair(name, sample_shape=shape)
    assert G.z_dim == z_default and D.pack == 1
    x = G(torch.randn(B, G.z_dim))
    assert x.shape == (B, *sample_out)
    assert D(x).shape[0] == B
    G7, D3 = build_pair(name, sample_shape=shape, z_dim=7, pack=2)
    assert G7.z_dim == 7 and D3.pack == 2


def test_build_pair_dcgan_picks_64() -> None:
    G, D = build_pair("dcgan", sample_shape=(1, 64, 64))
    assert G.size == D.size == 64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(name="dcgen", sample_shape=(3, 32, 32)),
            "build_pair: unknown model 'dcgen'; expected one of ('toy', 'toy-small', 'mlp', 'dcgan'); did you mean 'dcgan'?",
        ),
        (
            dict(name="dcgan", sample_shape=(1, 12, 12)),
            "build_pair('dcgan'): expected sample_shape (C, S, S) with S one of (8, 16, 32, 64), "
            "got (1, 12, 12); resize the images to one of those sizes, or use model 'mlp' for other sizes",
        ),
        (dict(name="dcgan", sample_shape=(3, 32, 64)), "got (3, 32, 64)"),
        (dict(name="toy", sample_shape=(1, 8, 8)), "build_pair('toy'): expected sample_shape (2,)"),
        (dict(name="toy-small", sample_shape=(3,)), "got (3,); use model 'mlp'"),
        (dict(name="mlp", sample_shape=(8, 8)), "add a channel dim for grey images: (1, 8, 8)"),
        (dict(name="mlp", sample_shape=(1, 1, 8, 8)), "without the batch dim"),
        (dict(name="mlp", sample_shape=(1, 0, 8)), "sample_shape[1] to be a positive int, got 0"),
        (dict(name="mlp", sample_shape=(1, 8, 8), pack=0), "expected pack to be a positive int, got 0"),
        (dict(name="toy", sample_shape=(2,), z_dim=-1), "expected z_dim to be a positive int, got -1"),
    ],
)
def test_build_pair_errors_say_expected_given_and_fix(kwargs: dict, message: str) -> None:
    kwargs = dict(kwargs)  # parametrize shares the dict across reruns; do not mutate it
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=re.escape(message)):
        build_pair(name, **kwargs)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: Maxout(2, 4, pieces=0), "Maxout: expected pieces to be a positive int, got 0"),
        (lambda: ToyGenerator(hidden=True), "ToyGenerator: expected hidden to be a positive int, got True"),
        (lambda: ToyDiscriminator(pack=0), "ToyDiscriminator: expected pack to be a positive int, got 0"),
        (lambda: MLPDiscriminator(depth=1.5), "MLPDiscriminator: expected depth to be a positive int"),
        (lambda: MLPGenerator(out_shape=()), "MLPGenerator: expected out_shape to be a non-empty tuple"),
        (lambda: MLPGenerator(hidden=(256, -1)), "expected hidden[1] to be a positive int, got -1"),
        (lambda: MLPImageDiscriminator(in_shape="1x8x8"), "expected in_shape to be a non-empty tuple"),
        (lambda: DCGANGenerator(size=48), "DCGANGenerator: expected size 8, 16, 32 or 64"),
        (lambda: DCGANDiscriminator(size=28), "got 28; resize images to one of those sizes"),
        (lambda: DCGANDiscriminator(pack=-2), "DCGANDiscriminator: expected pack to be a positive int"),
    ],
)
def test_constructors_reject_bad_arguments(factory, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        factory()


@pytest.mark.parametrize(
    "model, bad_input, message",
    [
        (ToyGenerator(), torch.randn(B, 3), "expected noise of shape (B, 2), got (4, 3)"),
        (DCGANGenerator(size=32, ngf=4), torch.randn(B, 100, 2, 2), "(B, 100) or (B, 100, 1, 1), got (4, 100, 2, 2)"),
        (ToyDiscriminator(pack=2), torch.randn(B, 2), "pack it with x.reshape(B // 2, 2 * 2)"),
        (MLPImageDiscriminator(in_shape=(1, 8, 8), pack=2), torch.randn(B, 1, 8, 8), "(N, 2, 8, 8)"),
        (DCGANDiscriminator(size=32, ndf=4), torch.randn(B, 3, 64, 64), "expected input of shape (N, 3, 32, 32)"),
    ],
)
def test_forward_rejects_wrong_shapes(model: nn.Module, bad_input: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        model(bad_input)


def test_state_dict_round_trips_with_weights_only() -> None:
    G, D = build_pair("toy-small", sample_shape=(2,), pack=2)
    buffer = io.BytesIO()
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    G2, D2 = build_pair("toy-small", sample_shape=(2,), pack=2)
    G2.load_state_dict(state["G"])
    D2.load_state_dict(state["D"])
    G.eval()
    G2.eval()
    z = torch.randn(B, G.z_dim)
    assert torch.equal(G(z), G2(z))
    x = torch.randn(B, 2)
    assert torch.equal(D(pack_samples(x, 2)), D2(pack_samples(x, 2)))


# ------------------------------------------------------------------- dcgan for small images


@pytest.mark.parametrize("channels", [1, 3])  # digits (1, 8, 8), stacked digits (3, 8, 8)
@pytest.mark.parametrize("size, n_stages", [(8, 2), (16, 3)])
def test_build_pair_dcgan_for_small_images_is_the_tutorial_stack_cut_short(
        channels: int, size: int, n_stages: int) -> None:
    G, D = build_pair("dcgan", sample_shape=(channels, size, size), pack=2)
    g_convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    d_convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(g_convs) == len(d_convs) == n_stages  # 4x4 -> 8 (-> 16): one stage a doubling
    assert g_convs[0].out_channels == d_convs[-1].in_channels == 64 * 4  # the 4x4 map of size 32
    assert d_convs[0].in_channels == 2 * channels  # packed: 2 samples along the channels
    G.eval()
    x = G(torch.randn(B, G.z_dim))
    assert x.shape == (B, channels, size, size) and x.abs().max() <= 1  # Tanh, as the data
    assert D(pack_samples(x, 2)).shape == (B // 2,)


def test_dcgan_trains_on_the_digits() -> None:
    from gandiag import Trainer, TrainConfig, data

    digits = data.digits()
    torch.manual_seed(0)
    G, D = build_pair("dcgan", sample_shape=tuple(digits.tensors[0].shape[1:]))
    trainer = Trainer(G, D, digits, TrainConfig(steps=3, batch_size=16, log_every=1, device="cpu"))
    trainer.fit()
    assert trainer.step == 3 and trainer.sample(5).shape == (5, 1, 8, 8)
    assert all(abs(loss) < float("inf") for loss in trainer.history["D/loss"][1].tolist())
