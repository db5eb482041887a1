"""Tests for the feature-extractor registry and the built-in extractors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gandiag.data import digits, stacked_digits
from gandiag.metrics.classifier import load_digits_classifier
from gandiag.metrics.extractors import (
    extract_features,
    extractor_names,
    get_extractor,
    register_extractor,
    unregister_extractor,
)

_counter = itertools.count()



@pytest.fixture
def fresh_name():
    """A name no other test uses, unregistered afterwards whatever happens."""
    name = f"test-extractor-{next(_counter)}"
    yield name
    if name in extractor_names():
        unregister_extractor(name)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return digits().tensors[0][:700]


def _mean_factory(device: torch.device):
    return lambda x: x.flatten(1).mean(dim=1, keepdim=True)


# ---- registry ---------------------------------------------------------------------------


def test_built_ins_are_registered_first() -> None:
    assert extractor_names()[:3] == ("digits", "digits-stacked", "pixels")


def test_custom_extractor_registers_and_is_used(fresh_name) -> None:
    devices = []

    def factory(device: torch.device):
        devices.append(device)
        return lambda x: torch.stack([x.flatten(1).min(1).values, x.flatten(1).max(1).values], 1)

    register_extractor(fresh_name, factory)
    assert fresh_name in extractor_names()
    features = extract_features(torch.linspace(-1, 1, 128).reshape(2, 1, 8, 8), fresh_name)
    assert features.dtype == torch.float64 and features.device.type == "cpu"
    assert features.shape == (2, 2) and features[0, 0] == -1 and features[1, 1] == 1
    get_extractor(fresh_name, "cpu")
    assert devices == [torch.device("cpu")] * 2  # a torch.device, never a str


def test_existing_name_needs_overwrite(fresh_name) -> None:
    register_extractor(fresh_name, _mean_factory)
    with pytest.raises(ValueError, match=rf"{fresh_name!r} is already registered; pass overwrite=True"):
        register_extractor(fresh_name, _mean_factory)
    register_extractor(fresh_name, lambda device: lambda x: x.flatten(1)[:, :2], overwrite=True)
    assert extract_features(torch.zeros(3, 1, 8, 8), fresh_name).shape == (3, 2)
    with pytest.raises(ValueError, match=r"'pixels' is already registered"):
        register_extractor("pixels", _mean_factory)


def test_unregister_user_extractors_only(fresh_name) -> None:
    register_extractor(fresh_name, _mean_factory)
    unregister_extractor(fresh_name)
    assert fresh_name not in extractor_names()
    with pytest.raises(ValueError, match=r"'digits' is a built-in extractor and cannot be removed"):
        unregister_extractor("digits")
    with pytest.raises(ValueError, match=r"unregister_extractor: unknown extractor"):
        unregister_extractor(fresh_name)


def test_unknown_name_lists_names_and_how_to_register() -> None:
    message = (
        r"unknown extractor 'digts'; expected one of \('digits', 'digits-stacked', 'pixels'.*\); "
        r"did you mean 'digits'\? register your own with register_extractor\("
    )
    with pytest.raises(ValueError, match=message):
        extract_features(torch.zeros(2, 1, 8, 8), "digts")
    with pytest.raises(ValueError, match=r"get_extractor: unknown extractor 'inception'.*register_extractor"):
        get_extractor("inception")


def test_bad_registrations() -> None:
    with pytest.raises(ValueError, match=r"expected a non-empty str name, got ''"):
        register_extractor("", _mean_factory)
    with pytest.raises(TypeError, match=r"expected factory to be a callable.*got str"):
        register_extractor("not-callable", "digits")
    assert "not-callable" not in extractor_names()


# ---- built-in features ------------------------------------------------------------------


def test_digits_features_are_the_classifier_penultimate_layer(images) -> None:
    features = extract_features(images, "digits")
    assert features.shape == (700, 64) and features.dtype == torch.float64
    expected = load_digits_classifier().features(images).double()
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(extract_features(images.numpy(), "digits"), features)


def test_stacked_features_concatenate_channels_in_order() -> None:
    stacks = stacked_digits(50, seed=2).tensors[0]
    features = extract_features(stacks, "digits-stacked")
    assert features.shape == (50, 192)
    for channel in range(3):
        single = extract_features(stacks[:, channel : channel + 1], "digits")
        assert torch.equal(features[:, 64 * channel : 64 * (channel + 1)], single)


def test_pixels_flatten_and_keep_precision() -> None:
    samples = np.random.default_rng(0).normal(size=(20, 3, 8, 8))  # float64 numpy
    features = extract_features(samples, "pixels", batch_size=7)
    assert features.shape == (20, 192)
    assert np.array_equal(features.numpy(), samples.reshape(20, -1))
    toy = torch.randn(30, 2)
    assert torch.equal(extract_features(toy, "pixels"), toy.double())


@pytest.mark.parametrize("name", ["digits", "digits-stacked", "pixels"])
def test_batch_size_does_not_change_features(name, images) -> None:
    samples = images if name == "digits" else images[:699].reshape(233, 3, 8, 8)
    reference = extract_features(samples, name)
    for batch_size in (7, 100, 256, 5000):
        assert torch.equal(extract_features(samples, name, batch_size=batch_size), reference), batch_size
    assert torch.equal(extract_features(samples[:20], name, batch_size=1), reference[:20])


def test_a_callable_extractor_and_an_empty_batch() -> None:
    def corners(x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, [0, -1], [0, -1]]

    assert extract_features(torch.ones(4, 1, 8, 8), corners).shape == (4, 2)
    assert extract_features(torch.zeros(0, 1, 8, 8), "digits").shape == (0, 64)


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("digits", (5, 64), r"extractor 'digits': expected 8x8 digits of shape \(N, 1, 8, 8\), got \(5, 64\); reshape flat rows with x\.reshape\(-1, 1, 8, 8\)"),
        ("digits", (5, 3, 8, 8), r"got \(5, 3, 8, 8\); use stacked_labels\(\) or the 'digits-stacked' extractor"),
        ("digits", (5, 1, 28, 28), r"got \(5, 1, 28, 28\); resize samples to 8x8, or use extractor='pixels', or register_extractor\(\)"),
        ("digits-stacked", (5, 1, 8, 8), r"expected 3 stacked 8x8 digits of shape \(N, 3, 8, 8\), got \(5, 1, 8, 8\); use classify\(\) or the 'digits' extractor"),
        ("digits-stacked", (5, 192), r"reshape flat rows with x\.reshape\(-1, 3, 8, 8\)"),
    ],
)
def test_shape_errors_name_the_fix(name, shape, message) -> None:
    with pytest.raises(ValueError, match=message):
        extract_features(torch.zeros(shape), name)


def test_non_finite_samples_and_features_are_errors(fresh_name) -> None:
    samples = torch.zeros(20, 1, 8, 8)
    samples[[3, 9], 0, 4, 4] = float("nan")
    with pytest.raises(ValueError, match=r"extract_features: expected finite samples, got 2 of 20 with NaN or inf"):
        extract_features(samples, "digits")
    register_extractor(fresh_name, lambda device: lambda x: torch.log(x.flatten(1)))  # log(-1) = NaN
    with pytest.raises(ValueError, match=rf"extractor {fresh_name!r} returned NaN or inf features for 3 of 3"):
        extract_features(-torch.ones(3, 1, 8, 8), fresh_name)


def test_wrong_feature_shape_and_arguments(fresh_name) -> None:
    register_extractor(fresh_name, lambda device: lambda x: x)  # forgot to flatten
    with pytest.raises(ValueError, match=r"return features of shape \(4, F\).*got \(4, 1, 8, 8\); flatten"):
        extract_features(torch.zeros(4, 1, 8, 8), fresh_name)
    with pytest.raises(ValueError, match=r"expected batch_size to be a positive int, got -1"):
        extract_features(torch.zeros(4, 1, 8, 8), batch_size=-1)
    with pytest.raises(TypeError, match=r"expected extractor to be a registered name or a callable, got int"):
        extract_features(torch.zeros(4, 1, 8, 8), 3)
    with pytest.raises(TypeError, match=r"expected floating-point samples"):
        extract_features(torch.zeros(4, 1, 8, 8, dtype=torch.uint8))
