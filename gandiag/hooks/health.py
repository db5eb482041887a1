"""What the Monitor warns about once: a gradient leak, D calls it cannot place, no steps.

Each warning names the cause and the fix; training goes on and nothing is dropped.

    >>> warnings = health_warnings(None, {"D": ["other"], "G": []}, {"D calls": 3, "real": 1, "fake": 2},
    ...                            step=5, user_loop=True)
    >>> [topic for topic, _, _ in warnings]
    ['leak D']
"""

from __future__ import annotations

from typing import Any


class GradientLeakWarning(UserWarning):
    """An update included gradients left over from another update (a missing zero_grad)."""


def health_warnings(records: Any, leaks: dict[str, list[str]], seen: dict[str, int], *,
                    step: int, user_loop: bool) -> list[tuple[str, str, type[Warning]]]:
    """(topic, message, category) of each problem found at a flush."""
    found: list[tuple[str, str, type[Warning]]] = []
    for role, kinds in leaks.items():
        if kinds:
            other = "G" if role == "D" else "D"
            cause = (f"gradients left over from the {other} update" if kinds[0] == "other"
                     else "gradients from earlier steps (they are never zeroed)")
            found.append((f"leak {role}", (
                f"gandiag: {role}'s update includes {cause}. Call opt_{role.lower()}.zero_grad() "
                f"(or {role}.zero_grad()) right before {role}'s backward in every step"),
                GradientLeakWarning))
    if step > 0 and seen["D calls"] >= 2:
        if seen["real"] == 0:
            found.append(("no real", (
                "gandiag: no call of D on real data was recognised; all D calls look like "
                "fakes. If real batches are built from G's output, wrap those calls in "
                "`with monitor.phase('real'):`"), UserWarning))
        if seen["fake"] == 0:
            found.append(("no fake", (
                "gandiag: no call of D on G's samples was recognised (D/out_fake stays "
                "empty). If the loop transforms fakes before D (augmentation, packing, "
                "torch.cat), wrap those calls in `with monitor.phase('fake'):`"), UserWarning))
    if user_loop and step == 0 and seen["D calls"] > 0 and not records:
        found.append(("no G step", (
            "gandiag: D was called but no G update was seen, so no step was recorded. Steps "
            "are counted by G's optimizer steps: pass attach(..., opt_g=..., opt_d=...), or "
            "call monitor.update_done('D') / ('G') after updates made without a torch.optim "
            "optimizer"), UserWarning))
    return found
