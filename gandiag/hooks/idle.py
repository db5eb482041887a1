"""`IdleWatch`: notice a model whose optimizer stopped updating it while the other trains.

Why: gradient norms, weight norms and update ratios are measured in the optimizer's step
hooks, so a model whose step never runs (`opt_g.step()` forgotten, no G update in the
loop at all, a `step` replaced by a no-op) left no record of its own, and no detector
could see that it was frozen. Worse for G: steps are counted by G updates, so a G that
is never updated kept the whole run in one open row, never flushed.

The rule, on host counters only: a model is *idle* when the other one made at least
max(`least` = 200, `factor` = 4 x the largest gap between its own updates so far)
updates since its last one (since attach when it never updated). Gaps are counted in the
other model's updates, so a legitimately infrequent update never reaches it: n_critic 5
or 10, or the original WGAN's 100 critic updates per G update early on (after which the
limit is 400).

While a model is idle:
- G idle: each D update ends a step, so rows are committed and flushed again; its row
  stays open (for the values logged after it) until the next update begins. The D
  updates made before G was found idle stay one row, tagged with the step it would have
  had with one step per D update, so that steps keep counting the loop's iterations.
  A G update ends the idle stretch (its row is a new one) and raises G's limit.
- At each step that measures weights (every `weight_every`; none when it is 0), a model
  that is idle, *armed*, and made no update since the previous such step records
  `<role>/idle/steps` (steps since its last update) and `<role>/idle/other_updates` (the
  other model's updates since). The layout decodes such a row as
  `<role>/update_ratio/total` = 0.0, its weights did not change: what `frozen_model`
  reads, and it names the cause from the `idle` keys.

Armed: G always (a GAN loop that never updates G trains nothing); D when `opt_d` was
given to attach or D was updated once (a G trained against a fixed, pretrained D is a
legitimate loop, and its D optimizer is neither given nor found).

Cost: a few integer operations on the host per update; no sync, and no device op except
putting two numbers into the staging row at the weight steps of an idle model.

    >>> watch = IdleWatch(armed={"G"})
    >>> [watch.updated("D", step=0) for _ in range(199)][-1], watch.idle("G")
    (None, False)
    >>> watch.updated("D", step=0)   # found idle: the open row's 199 D updates, 199 steps
    199
    >>> watch.idle("G"), watch.updated("D", step=199)   # then each D update ends one step
    (True, 0)
    >>> watch.updated("G", step=200), watch.limit["G"]  # G is back: the limit is 4 x 201
    (0, 804)
    >>> watch.updated("D", step=201), watch.idle("G")
    (None, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from gandiag.hooks.buffer import DeviceBuffer
    from gandiag.hooks.layout import Layout

_OTHER = {"D": "G", "G": "D"}


class IdleWatch:
    """Counts each model's updates and the other's in between (see the module doc)."""

    def __init__(self, armed: Iterable[str], *, least: int = 200, factor: int = 4) -> None:
        self.armed = set(armed)
        self.least, self.factor = least, factor
        self.since = {"D": 0, "G": 0}     # the other model's updates since each one's last
        self.limit = {"D": least, "G": least}  # idle at this many
        self.updates = {"D": 0, "G": 0}   # updates seen, per model
        self.last_step = {"D": 0, "G": 0}  # the step of each model's last update
        self._weighed = {"D": 0, "G": 0}  # updates seen at the previous weight step
        self._standing_in = False         # D's updates end the steps (G idle), since when noticed

    def updated(self, role: str, *, step: int) -> int | None:
        """`role`'s update (of the step after `step`) is about to run. Returns None, or,
        when the open row must end first (a D update while G is idle, G's first update
        after), the steps it stands for that are not counted yet: at the first D update
        that finds G idle, the D updates it holds (see the module doc), else 0 (the D
        update that ended it counted its step)."""
        gap = self.since[role]
        if gap * self.factor > self.limit[role]:
            self.limit[role] = gap * self.factor
        self.since[role] = 0
        self.since[_OTHER[role]] += 1
        self.updates[role] += 1
        self.last_step[role] = step + 1
        self.armed.add(role)
        if role == "G":
            held, self._standing_in = self._standing_in, False
            return 0 if held else None
        if self.since["G"] < self.limit["G"]:
            return None
        if self._standing_in:
            return 0
        self._standing_in = True
        return self.since["G"] - 1

    def resumed(self, step: int) -> None:
        """A run resumed at `step`: count the steps without an update from there."""
        self.last_step = {role: max(last, step) for role, last in self.last_step.items()}

    def idle(self, role: str) -> bool:
        """True while `role` has made no update for its limit of the other's updates."""
        return self.since[role] >= self.limit[role]

    def weigh(self, step: int, buffer: "DeviceBuffer", layout: "Layout") -> None:
        """At the end of step `step`, one that measures weights: put the idle records of
        every armed, idle model that made no update since the previous weight step."""
        for role in ("D", "G"):
            if role in self.armed and self.idle(role) and self.updates[role] == self._weighed[role]:
                columns = layout.models[role].idle
                buffer.put(columns.start, float(step - self.last_step[role]))
                buffer.put(columns.start + 1, float(self.since[role]))
            self._weighed[role] = self.updates[role]
