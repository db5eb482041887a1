"""The trainer on CUDA (skipped without a GPU): device auto, fused Adam, bf16 autocast."""

import numpy as np
import pytest
import torch

from gandiag import TrainConfig, Trainer, data, models

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("amp", [False, True])
def test_auto_device_trains_on_cuda(amp):
    G, D = models.small_toy(pack=2)
    trainer = Trainer(G, D, data.ring(), TrainConfig(pack=2, amp=amp, log_every=10))
    assert trainer.device.type == "cuda"
    trainer.fit(30)
    assert np.isfinite(trainer.history["D/loss"][1]).all()
    assert next(trainer.G.parameters()).is_cuda
    assert trainer.evaluate(500)["modes"] >= 0


def test_checkpoint_from_cuda_loads_on_cuda(tmp_path):
    G, D = models.small_toy()
    trainer = Trainer(G, D, data.ring(), TrainConfig(log_every=5)).fit(10)
    trainer.save(tmp_path / "c.pt")
    G2, D2 = models.small_toy()
    resumed = Trainer(G2, D2, data.ring(), TrainConfig(log_every=5)).load(tmp_path / "c.pt")
    assert resumed.step == 10
    resumed.fit(5)
