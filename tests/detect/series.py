"""Synthetic recorded series with known answers, shaped like the hooks' records."""

from __future__ import annotations

import numpy as np

STEPS = 6000
WEIGHT_EVERY = 50   # the hooks' default: update ratios (and lr) every 50 steps


def steps(n: int = STEPS) -> np.ndarray:
    return np.arange(1, n + 1)


def healthy(seed: int = 0, n: int = STEPS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A balanced GAN: losses near 1.35 / 0.75 with noise, D near 50 % accuracy, layer
    gradient norms log-normal around fixed levels, spreads equal; every `WEIGHT_EVERY`
    steps update ratios log-normal around 1e-3 and learning rates of 2e-4."""
    rng = np.random.default_rng(seed)
    s = steps(n)
    real_logits = rng.normal(0.1, 0.3, n)
    fake_logits = rng.normal(-0.1, 0.3, n)
    out = {
        "D/loss": (s, 1.35 + 0.05 * rng.standard_normal(n)),
        "G/loss": (s, 0.75 + 0.08 * rng.standard_normal(n)),
        "D/out_real/mean": (s, real_logits),
        "D/out_fake/mean": (s, fake_logits),
        "D/out_real/sign": (s, np.clip(rng.normal(0.1, 0.25, n), -1, 1)),
        "D/out_real/acc": (s, np.clip(rng.normal(0.55, 0.08, n), 0, 1)),
        "D/out_fake/acc": (s, np.clip(rng.normal(0.55, 0.08, n), 0, 1)),
        "D/spread_ratio": (s, np.clip(rng.normal(1.0, 0.08, n), 0, None)),
        "D/in_real/spread": (s, np.full(n, 1.3)),
        "D/in_fake/spread": (s, np.full(n, 1.3)),
    }
    for role, levels in (("D", (0.05, 0.3, 0.25, 0.35)), ("G", (0.05, 0.2, 0.25, 0.45))):
        layers = [level * np.exp(0.3 * rng.standard_normal(n)) for level in levels]
        for i, norm in enumerate(layers):
            out[f"{role}/grad_norm/net.{2 * i}"] = (s, norm)
        out[f"{role}/grad_norm/total"] = (s, np.sqrt(np.sum(np.square(layers), axis=0)))
        out[f"nonfinite/{role}/grad"] = (s, np.zeros(n))
    for slot in ("D/out_real", "D/out_fake", "G/out_fake"):
        out[f"nonfinite/{slot}"] = (s, np.zeros(n))
    out["nonfinite/loss"] = (s, np.zeros(n))
    weighed = s[s % WEIGHT_EVERY == 0]
    ratios = np.random.default_rng((seed, WEIGHT_EVERY))  # own stream: the series above stay as they were
    for role in ("D", "G"):
        out[f"{role}/update_ratio/total"] = (weighed, 1e-3 * np.exp(0.5 * ratios.standard_normal(len(weighed))))
        out[f"{role}/lr"] = (weighed, np.full(len(weighed), 2e-4))
    return out


def set_from(series: dict, key: str, start: int, values: np.ndarray | float) -> None:
    """Replace `key` from step `start` on (steps are 1..n, so index = step - 1)."""
    s, v = series[key]
    v = v.copy()
    v[start - 1:] = values if np.isscalar(values) else values[: len(v) - start + 1]
    series[key] = (s, v)


def retotal(series: dict, role: str) -> None:
    """Recompute a model's total gradient norm from its layers."""
    keys = [k for k in series if k.startswith(f"{role}/grad_norm/net.")]
    total = np.sqrt(np.sum([np.square(series[k][1]) for k in keys], axis=0))
    series[f"{role}/grad_norm/total"] = (series[keys[0]][0], total)
