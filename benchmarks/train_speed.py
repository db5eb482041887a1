"""Training step time of the reference GANs on this machine's device.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--steps N] [--threads T]

Prints one row per setup: ms per step (one D and one G update) and steps per second,
timed after a warm-up with the device synchronised at both ends (never inside the loop).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from gandiag import TrainConfig, Trainer, data, models

SETUPS = [
    # name, data, model, batch, stabilisers
    ("ring toy-small vanilla", "ring", "toy-small", 64, {}),
    ("ring toy-small pack2+ema", "ring", "toy-small", 64, {"pack": 2, "ema": 0.999}),
    ("ring PacGAN toy (maxout)", "ring", "toy", 100, {}),
    ("digits mlp", "digits", "mlp", 64, {}),
    ("dcgan32 (3ch)", "dcgan32", "dcgan", 64, {}),
    ("dcgan64 (3ch) batch 128", "dcgan64", "dcgan", 128, {}),
]


def make_data(name: str):
    """The data set and the shape of one sample."""
    if name == "ring":
        return data.ring(), (2,)
    if name == "digits":
        return data.digits(), (1, 8, 8)
    size = int(name.removeprefix("dcgan"))
    return torch.rand(512, 3, size, size) * 2 - 1, (3, size, size)  # random images: speed only


def time_setup(data_name, model_name, batch, stabilisers, device, steps):
    dataset, shape = make_data(data_name)
    G, D = models.build_pair(model_name, sample_shape=shape, pack=stabilisers.get("pack", 1))
    config = TrainConfig(batch_size=batch, device=device, log_every=max(1, steps), **stabilisers)
    trainer = Trainer(G, D, dataset, config)
    trainer.fit(max(3, steps // 10))  # warm-up: allocator, cudnn autotune, first flush
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.fit(steps)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps, trainer.device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads")
    for name, data_name, model_name, batch, stabilisers in SETUPS:
        steps = args.steps if model_name != "dcgan" else max(5, args.steps // 20)
        seconds, device = time_setup(data_name, model_name, batch, stabilisers, args.device, steps)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"{name:<28} {label:<10} {1000 * seconds:9.2f} ms/step {1 / seconds:9.1f} steps/s"
              f"  ({steps} steps)")


if __name__ == "__main__":
    main()
