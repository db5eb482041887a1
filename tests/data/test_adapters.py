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
    (torch.zeros(5, 2, dtype=torch.long), TypeError, "floating-point tensor, got dtype torch.int64"),
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
