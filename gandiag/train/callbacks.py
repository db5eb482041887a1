"""`ProgressPrinter`: the trainer's progress bar and line (a `gandiag.core.Callback`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from gandiag.core.callback import Callback

if TYPE_CHECKING:
    from gandiag.core.records import Records
    from gandiag.train.trainer import Trainer


class ProgressPrinter(Callback):
    """A tqdm bar plus the DCGAN tutorial's progress line at every flush.

        [ 500/3000] Loss_D: 1.3012  Loss_G: 0.8120  D(x): 0.5211  D(G(z)): 0.4420 / 0.4391

    D(x) and D(G(z)) are mean probabilities (sigmoid of the logits) for the BCE losses,
    and mean raw outputs for the others; D(G(z)) shows the D step / the G step value.
    """

    rank_zero_only = True  # under torchrun, rank 0 alone prints

    def __init__(self, *, stream: TextIO | None = None, bar: bool = True,
                 evaluate: bool = False) -> None:
        self.stream = stream
        self.bar = bar
        # With evaluate=True and data that can score samples (the toy mixtures), each line
        # also shows the data's metrics on fixed noise (Trainer.record_evaluation: recorded
        # as metric/<name>), kept in `evaluations`.
        self.evaluate = evaluate
        self.evaluations: list[tuple[int, dict[str, Any]]] = []
        self._tqdm: Any = None
        self._end = 0

    def on_fit_start(self, trainer: "Trainer") -> None:
        self._end = trainer.step + trainer.fit_steps
        if self.bar:
            from tqdm.auto import tqdm

            # disable=None: no bar when the stream is not a terminal (CI logs, pipes).
            self._tqdm = tqdm(total=trainer.fit_steps, file=self.stream or sys.stderr,
                              desc=trainer.name, leave=False, mininterval=0.5, disable=None)

    def records_metrics(self, host: Any) -> bool:
        return self.evaluate and bool(getattr(host, "can_evaluate", False))

    def on_step_end(self, trainer: "Trainer") -> None:
        if self._tqdm is not None:
            self._tqdm.update(1)

    def on_flush(self, trainer: "Trainer", records: "Records") -> None:
        rows = records.scalars
        steps = rows["D/loss"][0]
        if len(steps) == 0:
            return
        last = {key: float(values[-1]) for key, (_, values) in rows.items()}
        prob = trainer.loss.probabilistic
        kind = "prob" if prob else "out"
        line = (
            f"[{int(steps[-1]):>{len(str(self._end))}}/{self._end}] "
            f"Loss_D: {last['D/loss']:.4f}  Loss_G: {last['G/loss']:.4f}  "
            f"D(x): {last[f'D/{kind}_real/mean']:.4f}  "
            f"D(G(z)): {last[f'D/{kind}_fake/mean']:.4f} / {last[f'G/{kind}_fake/mean']:.4f}"
        )
        if self.records_metrics(trainer):
            # Evaluated once per step and recorded (history, run store) as metric/<name>,
            # however many callbacks ask (a StoreRecorder too). The trainer flushes at the
            # end of fit(), so the last evaluation is that of the final weights: a later
            # trainer.evaluate() gives the same numbers.
            metrics = trainer.record_evaluation()
            self.evaluations.append((trainer.step, metrics))
            line += "  |" + "".join(f" {k}: {_short(v)}" for k, v in metrics.items())
        if self._tqdm is not None:
            self._tqdm.write(line, file=self.stream or sys.stdout)
        else:
            print(line, file=self.stream or sys.stdout, flush=True)

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None


def _short(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
