"""Every kind of training data becomes an endless, reproducible stream of batches."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from gandiag.data import batch_source, ring


def test_sampler_source_is_reproducible_and_resumable():
    a = batch_source(ring(), batch_size=8, seed=3)
    b = batch_source(ring(), batch_size=8, seed=3)
    torch.testing.assert_close(a.next(), b.next())
    state = a.state_dict()
    expected = a.next()
    b.load_state_dict(state)
    torch.testing.assert_close(b.next(), expected)


def test_tensor_source_sees_every_sample_once_per_pass():
    points = torch.arange(10.0)[:, None].repeat(1, 2)
    source = batch_source(points, batch_size=4, seed=0)
    seen = torch.cat([source.next() for _ in range(5)])[:, 0]  # 20 = two passes
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))


def test_dataset_smaller_than_a_batch():
    source = batch_source(torch.randn(3, 2), batch_size=8, seed=0)
    assert source.next().shape == (8, 2)


def test_numpy_tensordataset_and_map_dataset_with_labels():
    images = np.random.default_rng(0).standard_normal((20, 1, 4, 4)).astype(np.float32)
    assert batch_source(images, batch_size=5).next().shape == (5, 1, 4, 4)
    labelled = TensorDataset(torch.from_numpy(images), torch.zeros(20, dtype=torch.long))
    assert batch_source(labelled, batch_size=5).next().shape == (5, 1, 4, 4)

    class Pairs(Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return torch.from_numpy(images[i]), i

    a, b = batch_source(Pairs(), batch_size=6, seed=1), batch_source(labelled, batch_size=6, seed=1)
    torch.testing.assert_close(a.next(), b.next())  # same indices, same samples


def test_dataloader_cycles_and_iterable_dataset():
    loader = DataLoader(TensorDataset(torch.randn(10, 2)), batch_size=4)
    with pytest.warns(UserWarning, match="yields batches of 4 but batch_size is 64"):
        source = batch_source(loader, batch_size=64)
    sizes = [source.next().shape[0] for _ in range(6)]
    assert sizes == [4, 4, 2, 4, 4, 2]  # the loader's own batches, cycled

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(torch.randn(7, 2))

    assert batch_source(Stream(), batch_size=3).next().shape == (3, 2)
    assert batch_source(DataLoader(Stream(), batch_size=3), batch_size=3).next().shape == (3, 2)


@pytest.mark.parametrize("bad, error, message", [
    ("ring", TypeError, "expected training data as a sampler"),
    (torch.zeros(5, 2, dtype=torch.long), TypeError, "floating-point numbers, got dtype torch.int64"),
    (np.zeros((5, 2), dtype=np.uint8), TypeError, r"got dtype torch.uint8; .*float\(\) / 127.5 - 1"),
    (np.array([["a", "b"]]), TypeError, "numeric numpy array, got dtype <U1"),
    (torch.zeros(0, 2), ValueError, "empty dataset"),
])
def test_bad_data(bad, error, message):
    with pytest.raises(error, match=message):
        batch_source(bad, batch_size=4)


class FakePILImage:
    """Duck-types what the adapter reads from a PIL image: getbands() and the pixel array."""

    mode = "L"

    def __init__(self, pixels):
        self.pixels = pixels

    def getbands(self):
        return ("L",)

    def __array__(self, dtype=None, copy=None):
        return self.pixels


def test_pil_images_from_a_torchvision_style_dataset_become_tanh_range_tensors():
    class Images(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            pixels = np.full((4, 5), [0, 255, 51][i], dtype=np.uint8)
            return FakePILImage(pixels), i

    batch = batch_source(Images(), batch_size=3, seed=0).next()
    assert batch.shape == (3, 1, 4, 5)
    assert sorted(batch[:, 0, 0, 0].tolist()) == pytest.approx([-1.0, -0.6, 1.0])


def test_unknown_items_explain_the_transform():
    class Images(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return object(), 0

    with pytest.raises(TypeError, match="transform=Compose"):
        batch_source(Images(), batch_size=2).next()


def test_empty_dataloader():
    loader = DataLoader(TensorDataset(torch.zeros(0, 2)), batch_size=4)
    with pytest.raises(ValueError, match="DataLoader to yield batches, got none"):
        batch_source(loader, batch_size=4).next()


@pytest.mark.parametrize("make", [
    lambda x: x, lambda x: x.numpy(), TensorDataset,
    lambda x: DataLoader(TensorDataset(x), batch_size=4),
])
def test_float64_and_float16_data_become_the_models_dtype(make):
    points = torch.randn(12, 2, dtype=torch.float64)
    with pytest.warns(UserWarning, match="data is float64 and the models float32.*astype"):
        batch = batch_source(make(points), batch_size=4, dtype=torch.float32).next()
    assert batch.dtype == torch.float32
    assert any(torch.equal(batch[0], p) for p in points.float())  # the same samples, converted
    half = batch_source(make(points.half()), batch_size=4, dtype=torch.float32)
    assert half.next().dtype == torch.float32  # widening: lossless, no note


def test_the_precision_note_comes_once_per_source(recwarn):
    source = batch_source(torch.randn(8, 2, dtype=torch.float64), batch_size=4, dtype=torch.float32)
    for _ in range(5):
        source.next()
    assert len([w for w in recwarn if "float64" in str(w.message)]) == 1
    assert batch_source(torch.randn(8, 2, dtype=torch.float64), batch_size=4).next().dtype == torch.float64


def test_integer_items_and_batches_are_refused_with_the_scaling_fix():
    class Uint8Images(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.full((1, 4, 4), 255, dtype=np.uint8), 0

    with pytest.raises(TypeError, match=r"dataset items as floating-point numbers, got dtype torch.uint8"):
        batch_source(Uint8Images(), batch_size=2).next()
    loader = DataLoader(TensorDataset(torch.zeros(4, 2, dtype=torch.uint8)), batch_size=2)
    with pytest.raises(TypeError, match="127.5 - 1"):
        batch_source(loader, batch_size=2).next()

    class IntegerSampler:
        def sample(self, n, generator=None):
            return torch.zeros(n, 2, dtype=torch.long)

    with pytest.raises(TypeError, match="real samples as floating-point numbers"):
        batch_source(IntegerSampler(), batch_size=2).next()


def test_a_saved_shuffle_of_another_data_set_is_refused_before_any_change():
    source = batch_source(torch.randn(10, 2), batch_size=4, seed=0)
    other = batch_source(torch.randn(7, 2), batch_size=4, seed=0)
    other.next()
    state = source.state_dict()
    before = other.state_dict()
    with pytest.raises(ValueError, match="expected the shuffle of 7 samples, got an order of 10"):
        other.load_state_dict(state)
    after = other.state_dict()
    assert torch.equal(after["order"], before["order"]) and after["position"] == before["position"]
    assert torch.equal(after["generator"], before["generator"])
    with pytest.raises(ValueError, match=r"data sampler state: expected \d+ bytes"):
        batch_source(ring(), batch_size=4).load_state_dict({"generator": torch.zeros(3, dtype=torch.uint8)})
