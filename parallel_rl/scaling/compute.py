"""Compute to a threshold, the data-compute Pareto frontier, and the budget-optimal UTD σ*(F).

C_J(σ) = k_flops · N · B(σ) · σ · D_J(σ): σ·D_J critic updates, each over B samples, each costing k_flops·N FLOPs.
The papers use k_flops = 10; ``flops_per_param_sample`` counts it from the network shapes instead. A budget
F = C_J + δ·D_J prices one environment transition at δ FLOPs, so σ*_J = argmin over σ of F, and the points
(F*_J, σ*_J) over thresholds give σ*(F) = k·F^e.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PAPER_K_FLOPS = 10.0


def mlp_param_count(in_dim: int, hidden: Sequence[int], out_dim: int, members: int = 1) -> int:
    """Weights and biases of ``members`` MLPs in -> hidden... -> out."""
    dims = [in_dim, *hidden, out_dim]
    return members * sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def flops_per_param_sample(critic_params: int, actor_params: int, policy_updates_per_critic_update: float) -> float:
    """k_flops of the compute model, counted for the TD3-family update (one multiply-add = 2 FLOPs; a backward
    pass costs twice the forward):

    - critic update: forward + backward of the critic (6·N per sample), target critic forward (2·N), actor forward
      for the target action (2·A);
    - per actor update (``policy_updates_per_critic_update`` of them per critic update): actor forward + backward
      (6·A), critic forward + backward through to the action (6·N).

    Returned per critic parameter, so that C = k_flops · N · B · σ · D holds with N = ``critic_params``.
    """
    n, a, rho = float(critic_params), float(actor_params), float(policy_updates_per_critic_update)
    return (6 * n + 2 * n + 2 * a + rho * (6 * a + 6 * n)) / n


def compute_to_threshold(
    sigma: np.ndarray | float, data: np.ndarray | float, batch: np.ndarray | float, critic_params: float,
    k_flops: float = PAPER_K_FLOPS,
) -> np.ndarray:  # fmt: skip
    """C_J = k_flops · N · B · σ · D_J in FLOPs."""
    return k_flops * critic_params * np.asarray(batch) * np.asarray(sigma) * np.asarray(data)


def pareto_mask(data: Sequence[float], compute: Sequence[float]) -> np.ndarray:
    """Points not dominated in (data, compute), both to be minimised: no other point is at most as large in both
    and smaller in one."""
    d, c = np.asarray(data, dtype=float), np.asarray(compute, dtype=float)
    keep = np.ones(d.size, dtype=bool)
    for i in range(d.size):
        dominated = (d <= d[i]) & (c <= c[i]) & ((d < d[i]) | (c < c[i]))
        keep[i] = not dominated.any()
    return keep


def sigma_grid(lo: float, hi: float, points: int = 100) -> np.ndarray:
    """Log-spaced σ grid over the range that was run (the papers use 100 points)."""
    if not 0 < lo <= hi:
        raise ValueError(f"σ range must satisfy 0 < lo <= hi, got [{lo}, {hi}]")
    if points < 1:
        raise ValueError(f"σ grid needs at least one point, got {points}")
    return np.logspace(np.log10(lo), np.log10(hi), points)


@dataclass
class BudgetOptimum:
    """The budget-optimal point of one threshold."""

    sigma: float
    data: float
    compute: float
    budget: float
    batch: float

    def to_json(self) -> dict:
        return {"sigma_star": self.sigma, "data_star": self.data, "compute_star": self.compute,
                "budget_star": self.budget, "batch_at_sigma_star": self.batch}  # fmt: skip


def budget_optimum(
    grid: np.ndarray, data_law: Callable[[np.ndarray], np.ndarray], batch_law: Callable[[np.ndarray], np.ndarray],
    critic_params: float, delta: float, k_flops: float = PAPER_K_FLOPS,
) -> BudgetOptimum:  # fmt: skip
    """σ*_J = argmin over the grid of F = C_J(σ) + δ·D_J(σ)."""
    data, batch = np.asarray(data_law(grid), dtype=float), np.asarray(batch_law(grid), dtype=float)
    compute = compute_to_threshold(grid, data, batch, critic_params, k_flops)
    budget = compute + delta * data
    i = int(np.argmin(budget))
    return BudgetOptimum(float(grid[i]), float(data[i]), float(compute[i]), float(budget[i]), float(batch[i]))


@dataclass
class SigmaOfBudget:
    """σ*(F) = k·F^e, fitted in log10-log10 on the thresholds in ``fitted``; ``held_out`` test extrapolation."""

    k: float
    e: float
    fitted: list[int]
    held_out: list[int]

    def __call__(self, budget: np.ndarray | float) -> np.ndarray:
        return self.k * np.asarray(budget, dtype=float) ** self.e

    def to_json(self) -> dict:
        return {"k": self.k, "e": self.e, "fitted_thresholds": self.fitted, "held_out_thresholds": self.held_out}


def fit_sigma_of_budget(budgets: Sequence[float], sigmas: Sequence[float], hold_out: int = 2) -> SigmaOfBudget:
    """Line through (log10 F*, log10 σ*) over all thresholds but the top ``hold_out`` (ascending J order)."""
    f, s = np.asarray(budgets, dtype=float), np.asarray(sigmas, dtype=float)
    n_fit = len(f) - hold_out
    if n_fit < 2:
        raise ValueError(f"σ*(F) needs at least 2 fitted thresholds; got {len(f)} with {hold_out} held out")
    e, log_k = np.polyfit(np.log10(f[:n_fit]), np.log10(s[:n_fit]), 1)
    return SigmaOfBudget(float(10**log_k), float(e), list(range(n_fit)), list(range(n_fit, len(f))))
