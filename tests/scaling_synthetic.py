"""Synthetic learning curves with known crossing times, for testing the scaling fits against the truth.

A configuration's noise-free curve is a smooth monotone (PCHIP) interpolation through (0, 0) and (D_k, J_k) for its
true crossing times D_k of thresholds J_k, then keeps rising. A seed stretches time by exp(ε), ε ~ N(0, time_noise)
(some seeds learn faster), and every evaluation adds N(0, return_noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def curve_rows(
    base: dict, true_crossings: Sequence[float], thresholds: Sequence[float], seeds: int, rng: np.random.Generator,
    time_noise: float = 0.08, return_noise: float = 15.0, num_evals: int = 40,
) -> list[dict]:  # fmt: skip
    """Run-table rows of ``seeds`` runs of one configuration (``base`` holds its config columns)."""
    d = np.asarray(true_crossings, dtype=float)
    j = np.asarray(thresholds, dtype=float)
    assert np.all(np.diff(d) > 0), "crossing times must grow with the threshold"
    knots_t = np.concatenate([[0.0], d, [1.5 * d[-1]]])
    knots_r = np.concatenate([[0.0], j, [j[-1] + 0.5 * (j[-1] - j[-2] if len(j) > 1 else j[-1])]])
    smooth = PchipInterpolator(knots_t, knots_r, extrapolate=True)
    steps = np.linspace(d[-1] * 1.6 / num_evals, d[-1] * 1.6, num_evals).round().astype(int)
    rows = []
    for seed in range(seeds):
        stretch = np.exp(rng.normal(0.0, time_noise))
        returns = smooth(steps / stretch) + rng.normal(0.0, return_noise, steps.size)
        for s, r in zip(steps, returns):
            rows.append({**base, "seed": seed, "env_step": int(s), "wall_seconds": float(s) * 1e-3, "return": float(r)})
    return rows


def config(task: str = "t", utd: float = 1.0, batch_size: int = 256, lr: float = 3e-4, width: int = 256,
           params: int = 100_000) -> dict:  # fmt: skip
    return {"task": task, "algo": "fasttd3", "utd": utd, "batch_size": batch_size, "lr": lr, "critic_width": width,
            "critic_params": params}  # fmt: skip
