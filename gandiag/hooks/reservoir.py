"""`SampleReservoir`: a few of D's real and fake inputs, kept for label-free coverage.

D sees the user's data and G's samples, so the monitor can keep some of each, as D sees
them, for coverage metrics that need no labels (`gandiag.metrics.coverage`), and for a
samples panel of a user's own loop. No extra G call and no draw from the user's random
streams: each D call offers its first `take` rows, copied on the device (no sync) while
fewer than `per_flush` rows of its kind wait, and moved to the host at the next flush.
On the host:

- real: a uniform sample of up to `keep` of every real row offered so far (Vitter's
  algorithm R, with the reservoir's own generator), so it stands for the data set;
- fake: the `keep` most recent fake rows (G changes: old fakes say little about it now);
- a *snapshot* of G, on request (`arm_snapshot(n)`): every row of the next fake D inputs
  until `n` are held, so they come from a few consecutive steps. The ring's rows are
  spread over several flushes (`per_flush` a flush), and a G that hops between modes every
  few hundred steps covers them all over that span while it covers a few at any moment;
  coverage compares snapshots.

Real and fake calls of the D updates and of the G updates both count (a G update's fakes
are G's samples too); penalty inputs do not. Packed inputs (PacGAN: k samples per D
input) are unpacked with `sample_shape`, the shape of one sample. Memory: `keep` samples
of each kind, at most `max_bytes` each (fewer samples are kept when they are large).
Inputs that cannot be kept are counted in `skipped` (integer inputs such as token ids,
inputs not made of `sample_shape` samples, shape changes), so that a coverage that never
ran can say why.

    >>> import torch
    >>> reservoir = SampleReservoir(keep=4, per_flush=8, take=2, seed=0)
    >>> reservoir.offer("real", torch.arange(12.0).reshape(6, 2))
    >>> reservoir.offer("fake", torch.zeros(6, 2))
    >>> reservoir.absorb()
    >>> reservoir.real.shape, reservoir.fake.shape, reservoir.seen
    ((2, 2), (2, 2), {'real': 2, 'fake': 2})
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


class SampleReservoir:
    """Real and fake samples as D saw them (see the module doc)."""

    def __init__(self, *, keep: int = 2000, per_flush: int = 128, take: int = 4,
                 sample_shape: tuple[int, ...] | None = None, max_bytes: int = 64 << 20,
                 seed: int = 0) -> None:
        self.keep, self.per_flush, self.take, self.max_bytes = keep, per_flush, take, max_bytes
        self.sample_shape = tuple(sample_shape) if sample_shape is not None else None
        self._pending: dict[str, list[Tensor]] = {"real": [], "fake": []}
        self._waiting = {"real": 0, "fake": 0}  # rows copied since the last flush
        self.real: np.ndarray | None = None
        self.fake: np.ndarray | None = None
        self.seen = {"real": 0, "fake": 0}  # rows absorbed so far
        self._fake_next = 0  # where the next fake row goes in the ring of recent fakes
        self._rng = np.random.default_rng(seed)
        self._snap_left = 0          # snapshot rows still wanted
        self._snap_made: list[Tensor] = []   # snapshot rows copied, waiting for `add`
        self._snap_pending: list[Tensor] = []
        self.snapshot: np.ndarray | None = None  # the snapshot's rows on the host so far
        # D inputs that could not be kept, by reason (said when coverage never ran).
        self.skipped = {"not_floating_point": 0, "not_of_sample_shape": 0, "shape_changes": 0}

    def wants(self, kind: str) -> bool:
        """Whether a call of `kind` ('real' or 'fake') should offer rows now."""
        return self._waiting[kind] < self.per_flush

    def copy(self, kind: str, x: Tensor) -> Tensor | None:
        """The rows of D input `x` to keep (a copy on its device: no sync), or None."""
        burst = kind == "fake" and self._snap_left > 0
        if not (burst or self.wants(kind)) or x.dim() < 1 or x.shape[0] == 0:
            return None
        if not x.is_floating_point():  # token ids, labels: not samples to compare
            self.skipped["not_floating_point"] += 1
            return None
        rows = x.detach() if burst else x.detach()[: self.take]
        if self.sample_shape is not None:
            size = math.prod(self.sample_shape)
            if rows[0].numel() % size:
                self.skipped["not_of_sample_shape"] += 1
                return None  # not made of samples of that shape: nothing to keep
            rows = rows.reshape(-1, *self.sample_shape)
        if burst:
            room = max_rows(rows[0], self.max_bytes) - (0 if self.snapshot is None else len(self.snapshot))
            rows = rows[: max(min(self._snap_left, room), 0)].clone()
            self._snap_left = self._snap_left - len(rows) if len(rows) else 0
            self._snap_made.append(rows)
            return rows
        rows = rows[: self.per_flush - self._waiting[kind]].clone()
        self._waiting[kind] += len(rows)
        return rows

    def add(self, kind: str, rows: Tensor) -> None:
        """Rows `copy` made, of a call filed as `kind` (a penalty input's are dropped)."""
        if any(rows is made for made in self._snap_made):
            if kind != "fake":  # filed otherwise after all: not G's samples
                self._snap_left += len(rows)
                return
            self._snap_pending.append(rows)
            rows = rows[: min(self.take, self.per_flush - self._waiting[kind])]
            self._waiting[kind] += len(rows)
            if not len(rows):
                return
        self._pending[kind].append(rows)

    def arm_snapshot(self, n: int) -> None:
        """Start a snapshot: keep every row of the next fake D inputs until `n` rows (or
        `max_bytes` of them) are held; `take_snapshot` hands them over."""
        self._snap_left, self.snapshot = int(n), None
        self._snap_made, self._snap_pending = [], []

    def take_snapshot(self) -> np.ndarray | None:
        """The snapshot's rows (whatever was held so far), and the snapshot is over."""
        snapshot, self.snapshot, self._snap_left = self.snapshot, None, 0
        return snapshot

    def offer(self, kind: str, x: Tensor) -> None:
        """`copy` then `add`: for inputs whose kind is already known."""
        rows = self.copy(kind, x)
        if rows is not None:
            self.add(kind, rows)

    def absorb(self) -> None:
        """At a flush (the one sync): bring the copied rows to the host and keep some."""
        pending, self._snap_pending, self._snap_made = self._snap_pending, [], []
        if pending and len({r.shape[1:] for r in pending}) == 1:
            rows = torch.cat(pending).float().cpu().numpy()  # sync ok: flush
            same = self.snapshot is not None and self.snapshot.shape[1:] == rows.shape[1:]
            self.snapshot = np.concatenate([self.snapshot, rows]) if same else rows
        for kind, pending in self._pending.items():
            if pending and len({r.shape[1:] for r in pending}) == 1:
                self._keep(kind, torch.cat(pending).float().cpu().numpy())  # sync ok: flush
            elif pending:  # inputs of several shapes in one flush: which are the samples?
                self.skipped["shape_changes"] += 1
            pending.clear()
            self._waiting[kind] = 0

    def recent_fakes(self, n: int) -> np.ndarray | None:
        """A copy of the `n` most recent fake rows (fewer while fewer are kept), oldest first."""
        if self.fake is None:
            return None
        held, full = self.fake, len(self.fake)
        if self._fake_next and self._fake_next % full:  # the ring has wrapped: oldest at _fake_next
            held = np.roll(held, -(self._fake_next % full), axis=0)
        return held[-n:].copy()

    def full(self, kind: str) -> bool:
        """Whether `kind` holds as many rows as it can (`keep`, or fewer large ones)."""
        held = self.real if kind == "real" else self.fake
        return held is not None and len(held) >= self._capacity(held[0])

    def _capacity(self, sample: np.ndarray) -> int:
        return min(self.keep, max_rows(sample, self.max_bytes))

    def _keep(self, kind: str, rows: np.ndarray) -> None:
        held = self.real if kind == "real" else self.fake
        if held is not None and held.shape[1:] != rows.shape[1:]:
            held = None  # the samples changed shape (a new data set): start over
            self.seen[kind] = 0
            self.skipped["shape_changes"] += 1
            if kind == "fake":
                self._fake_next = 0  # the new ring starts empty
        capacity = self._capacity(rows[0])
        if held is None:
            held = np.empty((0, *rows.shape[1:]), np.float32)
        if kind == "real":
            held = self._reservoir(held, rows, capacity)
        else:
            held = self._recent(held, rows, capacity)
        self.seen[kind] += len(rows)
        if kind == "real":
            self.real = held
        else:
            self.fake = held

    def _reservoir(self, held: np.ndarray, rows: np.ndarray, capacity: int) -> np.ndarray:
        """Algorithm R: row number n (0-based) of all offered replaces a random kept row
        with probability capacity / (n + 1), so every row offered is kept alike."""
        n = self.seen["real"]
        room = max(capacity - len(held), 0)
        if room:
            held = np.concatenate([held, rows[:room]])
            n, rows = n + min(room, len(rows)), rows[room:]
        for row in rows:
            slot = int(self._rng.integers(n + 1))
            if slot < capacity:
                held[slot] = row
            n += 1
        return held

    def _recent(self, held: np.ndarray, rows: np.ndarray, capacity: int) -> np.ndarray:
        """The `capacity` most recent rows, as a ring (`recent_fakes` reads it in order)."""
        rows = rows[-capacity:]
        if len(held) < capacity:
            room = capacity - len(held)
            held, rows = np.concatenate([held, rows[:room]]), rows[room:]
        for row in rows:
            held[self._fake_next % capacity] = row
            self._fake_next += 1
        return held


def max_rows(sample: np.ndarray | Tensor, max_bytes: int) -> int:
    """How many rows like `sample` fit in `max_bytes` (at least 1), kept as float32."""
    size = sample.size if isinstance(sample, np.ndarray) else sample.numel()
    return max(1, max_bytes // max(4 * int(size), 1))
