"""The training core: config, losses, stabilisers, the trainer and its callbacks."""

from gandiag.core.callback import Callback
from gandiag.train.callbacks import ProgressPrinter
from gandiag.train.capture import CaptureError, CapturedStep, capture_step
from gandiag.train.config import STABILISERS, TrainConfig, parse_stabilisers
from gandiag.train.ema import EMA
from gandiag.train.losses import LOSSES, GANLoss, get_loss
from gandiag.train.trainer import NonFiniteLossError, Trainer

__all__ = [
    "CaptureError", "CapturedStep", "Callback", "EMA", "GANLoss", "LOSSES", "NonFiniteLossError", "ProgressPrinter",
    "STABILISERS", "TrainConfig", "Trainer", "capture_step", "get_loss", "parse_stabilisers",
]
