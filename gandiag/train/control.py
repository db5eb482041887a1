"""What the trainer's loop answers to from outside it: stop, pause and resume from another
thread (the dashboard's buttons), and the stop it makes itself on a non-finite loss."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

LOSS_KEYS = ("D/loss", "G/loss")


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss became NaN or infinite; `.step` says when."""

    def __init__(self, key: str, step: int, value: float) -> None:
        self.key, self.step, self.value = key, step, value
        super().__init__(
            f"{key} became {value} at step {step}; training stopped. Everything recorded up "
            "to here is kept (trainer.history) and no checkpoint was written after the last "
            "finite flush. Common fixes: lower the learning rates, add a gradient penalty "
            "(r1_gamma / gp_lambda) or spectral_norm, check the data for NaNs, or disable amp"
        )


def check_finite_losses(records: Any) -> None:
    """Raise `NonFiniteLossError` at the first NaN or infinite loss in a flush."""
    for key in LOSS_KEYS:
        steps, values = records.scalars[key]
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.argmax(bad))
            raise NonFiniteLossError(key, int(steps[first]), float(values[first]))


class LoopControl:
    """Thread-safe controls of a training loop; `fit()` holds `_lock` while it runs, waits
    on `_running` between steps and returns when `_stop_requested`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop_requested = False
        self._running = threading.Event()
        self._running.set()  # set: not paused
        self.error: BaseException | None = None  # what ended the last fit(), if anything

    def stop(self) -> None:
        """Ask fit() to return after the current step (thread-safe). Under torchrun all
        ranks stop together at the next flush."""
        self._stop_requested = True
        self._running.set()

    def pause(self) -> None:
        """Hold fit() before the next step until resume() (thread-safe)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        """True when the last fit() ended early because stop() was called."""
        return self._stop_requested

    @property
    def running(self) -> bool:
        return self._lock.locked()

    @property
    def end_status(self) -> str:
        """How the last fit() ended (in `on_fit_end`: how this one ends): "finished",
        "stopped", "interrupted" (Ctrl-C) or "failed"."""
        if self.error is None:
            return "stopped" if self._stop_requested else "finished"
        return "interrupted" if isinstance(self.error, KeyboardInterrupt) else "failed"
