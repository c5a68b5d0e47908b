"""Data laws: the env steps D_J needed to reach return J as a function of the UTD σ (and of the critic size N).

- Per threshold (Rybkin et al. 2025): D_J(σ) = m·[c + (σ/b)^(−a)] = D_min + (β/σ)^α with D_min = m·c, α = a and
  β = b·m^(1/a). Crossing times are divided by their task's median (so tasks of different lengths weigh the
  same), averaged over tasks at each σ, and fitted in those units by squared error (of log D by default): a
  coarse grid over (a, b) with a least-squares guess of c, then L-BFGS-B from the best grid points. m is the median
  of the per-task medians.
- With model size (Fu et al. 2025): D_J(σ, N) = D_min + (a/σ)^α + (b/N)^β, positive parameters optimised in log
  space with σ and N rescaled by their geometric means, L-BFGS-B from a grid of starts.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass
class DataLaw:
    """D_J(σ) = m·(c + (σ/b)^(−a)) for one threshold."""

    a: float
    b: float
    c: float
    m: float = 1.0
    loss: float = float("nan")

    def __call__(self, sigma: np.ndarray | float) -> np.ndarray:
        return self.m * (self.c + (np.asarray(sigma, dtype=float) / self.b) ** (-self.a))

    @property
    def d_min(self) -> float:
        return self.m * self.c

    @property
    def alpha(self) -> float:
        return self.a

    @property
    def beta(self) -> float:
        """β of D_min + (β/σ)^α in raw env steps (sensitive to a: β = b·m^(1/a)); b is β in units of m."""
        return self.b * self.m ** (1.0 / self.a)

    def inverse(self, data: float) -> float:
        """σ at which D_J(σ) = data; +inf when data is at or below D_min (unreachable by more UTD alone)."""
        excess = data / self.m - self.c
        return float(self.b * excess ** (-1.0 / self.a)) if excess > 0 else float("inf")

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "c": self.c, "m": self.m, "d_min": self.d_min, "alpha": self.alpha,
                "beta": self.beta, "loss": self.loss}  # fmt: skip


def normalise_by_task_median(
    tasks: Sequence[str], sigma: Sequence[float], data: Sequence[float]
) -> tuple[float, np.ndarray, np.ndarray]:
    """Divide each task's finite crossing times by that task's median, average over tasks per σ.

    Returns (m, σ values, normalised mean D per σ) with m the median of the per-task medians. Infinite crossing
    times (threshold not reached) are left out; a σ with none finite is dropped.
    """
    by_task: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t, s, d in zip(tasks, sigma, data):
        if np.isfinite(d):
            by_task[t].append((float(s), float(d)))
    if not by_task:
        raise ValueError("no finite crossing times to fit (no configuration reached the threshold)")
    medians = {t: float(np.median([d for _, d in pts])) for t, pts in by_task.items()}
    per_sigma: dict[float, list[float]] = defaultdict(list)
    for t, pts in by_task.items():
        for s, d in pts:
            per_sigma[s].append(d / medians[t])
    sig = np.array(sorted(per_sigma))
    return float(np.median(list(medians.values()))), sig, np.array([np.mean(per_sigma[s]) for s in sig])


def fit_data_law(sigma: Sequence[float], data_norm: Sequence[float], m: float = 1.0, log_space: bool = True) -> DataLaw:
    """Fit c + (σ/b)^(−a) to normalised crossing times by squared error.

    ``log_space`` (the default) compares log D rather than D, a departure from the papers' plain squared error:
    crossing-time noise is multiplicative (seeds learn some percent faster or slower), and in linear space the few
    large low-σ crossing times dominate the fit. On synthetic curves with known laws it halves the worst parameter
    error (tests/test_scaling_laws.py)."""
    s, y = np.asarray(sigma, dtype=float), np.asarray(data_norm, dtype=float)
    if len(y) < 3:
        raise ValueError(f"D_J(σ) has 3 parameters; need crossing times at 3 or more σ values, got {len(y)}")

    def loss(theta: np.ndarray) -> float:
        a, log_b, c = theta
        pred = c + (s / 10**log_b) ** (-a)
        return float(np.mean((np.log(pred) - np.log(y)) ** 2 if log_space else (pred - y) ** 2))

    lo, hi = np.log10(s.min()), np.log10(s.max())
    # Coarse grid over (a, log10 b), all at once; c is the linear least-squares value for each, clipped at 0.
    a_grid, log_b_grid = np.meshgrid(np.linspace(0.05, 3.0, 60), np.linspace(lo - 4.0, hi + 2.0, 61), indexing="ij")
    term = (s / 10 ** log_b_grid[..., None]) ** (-a_grid[..., None])  # [a, b, points]
    c_grid = np.clip(np.mean(y - term, axis=-1), 0.0, None)
    pred = c_grid[..., None] + term
    grid_loss = np.mean((np.log(pred) - np.log(y)) ** 2 if log_space else (pred - y) ** 2, axis=-1)
    order = np.argsort(grid_loss, axis=None)[:8]
    starts = [np.array([a_grid.flat[i], log_b_grid.flat[i], c_grid.flat[i]]) for i in order]
    bounds = [(1e-3, 10.0), (lo - 12.0, hi + 12.0), (0.0, None)]
    best = min((minimize(loss, th, method="L-BFGS-B", bounds=bounds) for th in starts), key=lambda r: r.fun)
    a, log_b, c = best.x
    return DataLaw(float(a), float(10**log_b), float(c), m, float(best.fun))


# ---- D_J(σ, N) -----------------------------------------------------------------------------------------------------
@dataclass
class DataLawSigmaN:
    """D_J(σ, N) = d_min + (a/σ)^alpha + (b/N)^beta."""

    d_min: float
    a: float
    alpha: float
    b: float
    beta: float
    loss: float = float("nan")

    def __call__(self, sigma: np.ndarray | float, params: np.ndarray | float) -> np.ndarray:
        sigma, params = np.asarray(sigma, dtype=float), np.asarray(params, dtype=float)
        return self.d_min + (self.a / sigma) ** self.alpha + (self.b / params) ** self.beta

    def compute_optimal(self, data_target: float) -> tuple[float, float]:
        """(σ*, N*) reaching ``data_target`` with the least σ·N, hence the least compute 10·B·σ·N·D at a fixed
        batch: with R = D₀ − D_min, (a/σ*)^α = R·β/(α+β) and (b/N*)^β = R·α/(α+β) (Lagrange on σ·N)."""
        excess = data_target - self.d_min
        if not excess > 0:
            raise ValueError(f"data target {data_target:.4g} is at or below D_min = {self.d_min:.4g}: unreachable")
        share = self.alpha + self.beta
        sigma = self.a / (excess * self.beta / share) ** (1.0 / self.alpha)
        params = self.b / (excess * self.alpha / share) ** (1.0 / self.beta)
        return float(sigma), float(params)

    def to_json(self) -> dict:
        return {"d_min": self.d_min, "a": self.a, "alpha": self.alpha, "b": self.b, "beta": self.beta,
                "loss": self.loss}  # fmt: skip


def fit_data_law_sigma_n(
    sigma: Sequence[float], params: Sequence[float], data: Sequence[float], log_space: bool = True
) -> DataLawSigmaN:
    """Fit D_min + (a/σ)^α + (b/N)^β. ``log_space`` compares log D (relative errors), which keeps the many small
    crossing times from being drowned by the few large ones."""
    s, n, d = (np.asarray(v, dtype=float) for v in (sigma, params, data))
    keep = np.isfinite(d)
    s, n, d = s[keep], n[keep], d[keep]
    if len(d) < 5:
        raise ValueError(f"D_J(σ, N) has 5 parameters; need at least 5 finite crossing times, got {len(d)}")
    d0, s0, n0 = float(np.median(d)), float(np.exp(np.mean(np.log(s)))), float(np.exp(np.mean(np.log(n))))
    y, sr, nr = d / d0, s / s0, n / n0

    def predict(theta: np.ndarray) -> np.ndarray:
        log_dmin, log_a, log_alpha, log_b, log_beta = theta
        return (np.exp(log_dmin) + np.exp(np.exp(log_alpha) * (log_a - np.log(sr)))
                + np.exp(np.exp(log_beta) * (log_b - np.log(nr))))  # fmt: skip

    def loss(theta: np.ndarray) -> float:
        pred = predict(theta)
        return float(np.mean((np.log(pred) - np.log(y)) ** 2 if log_space else (pred - y) ** 2))

    grid = itertools.product(np.log([0.05, 0.3, 0.7]) + np.log(y.min()), np.log([0.3, 1.0, 3.0]),
                             np.log([0.3, 0.7, 1.5]), np.log([0.3, 1.0, 3.0]), np.log([0.3, 0.7, 1.5]))  # fmt: skip
    starts = sorted((np.array(g) for g in grid), key=loss)[:8]
    bounds = [(-20.0, 5.0), (-12.0, 12.0), (np.log(0.02), np.log(10.0)), (-12.0, 12.0), (np.log(0.02), np.log(10.0))]
    best = min((minimize(loss, x0, method="L-BFGS-B", bounds=bounds) for x0 in starts), key=lambda r: r.fun)
    log_dmin, log_a, log_alpha, log_b, log_beta = best.x
    alpha, beta = float(np.exp(log_alpha)), float(np.exp(log_beta))
    # Back to raw units: (a'/σ_r)^α · d0 = (a'·s0·d0^(1/α) / σ)^α, likewise for b.
    return DataLawSigmaN(float(np.exp(log_dmin) * d0), float(np.exp(log_a) * s0 * d0 ** (1 / alpha)), alpha,
                         float(np.exp(log_b) * n0 * d0 ** (1 / beta)), beta, float(best.fun))  # fmt: skip


def fit_data_law_sigma_n_shared(
    sigma: Sequence[float], params: Sequence[float], data: Sequence[Sequence[float]], log_space: bool = False,
    start: tuple[float, float] | None = None,
) -> list[DataLawSigmaN]:  # fmt: skip
    """D_J(σ, N) = D_min,J + (a_J/σ)^α + (b_J/N)^β for every threshold J at once, with the exponents α, β shared by
    all thresholds (``data`` is [thresholds, points]; +inf/nan points, never reached, are left out of their J).

    For fixed (α, β) the law is linear in (D_min, a^α, b^β), so each threshold's coefficients are a non-negative
    least-squares solve and only (α, β) are searched: a grid, then Nelder-Mead from its best point (or from
    ``start``, the bootstrap's shortcut). Squared error of D over each threshold's median (Fu et al. 2025) or, with
    ``log_space``, of D relative to itself (weights 1/D, the first-order log error)."""
    from scipy.optimize import nnls

    s, n = np.asarray(sigma, dtype=float), np.asarray(params, dtype=float)
    d = np.atleast_2d(np.asarray(data, dtype=float))
    if d.shape[1] != s.size or n.size != s.size:
        raise ValueError("sigma, params and every row of data must have one value per point")
    keep = [np.isfinite(row) & (row > 0) for row in d]
    if any(k.sum() < 4 for k in keep):
        raise ValueError(f"D_J(σ, N) with shared exponents needs 4 or more finite crossing times per threshold, got "
                         f"{[int(k.sum()) for k in keep]}")  # fmt: skip
    if len(np.unique(s)) < 2 or len(np.unique(n)) < 2:
        raise ValueError("D_J(σ, N) needs two or more σ values and two or more critic sizes")
    s0, n0 = float(np.exp(np.mean(np.log(s)))), float(np.exp(np.mean(np.log(n))))
    scales = [float(np.median(row[k])) for row, k in zip(d, keep)]

    def solve(alpha: float, beta: float) -> tuple[float, list[np.ndarray]]:
        if not (0.01 <= alpha <= 10.0 and 0.01 <= beta <= 10.0):  # beyond: a step, not a power law
            return float("inf"), []
        total, coefs = 0.0, []
        for row, k, d0 in zip(d, keep, scales):
            y = row[k] / d0
            design = np.stack([np.ones(y.size), (s[k] / s0) ** -alpha, (n[k] / n0) ** -beta], axis=1)
            w = 1.0 / y if log_space else np.ones_like(y)
            x, _ = nnls(design * w[:, None], y * w)
            total += float(np.mean(((design @ x - y) * w) ** 2))
            coefs.append(x)
        return total, coefs

    if start is None:
        grid = [(a, b) for a in np.linspace(0.05, 3.0, 24) for b in np.linspace(0.05, 3.0, 24)]
        start = min(grid, key=lambda ab: solve(*ab)[0])
    res = minimize(lambda th: solve(*np.exp(th))[0], np.log(start), method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-12, "maxiter": 400})  # fmt: skip
    alpha, beta = (float(v) for v in np.exp(res.x))
    loss, coefs = solve(alpha, beta)
    laws = []
    for (c0, c1, c2), d0 in zip(coefs, scales):
        # D = d0·(c0 + c1·(σ/s0)^-α + c2·(N/n0)^-β) = D_min + (a/σ)^α + (b/N)^β
        laws.append(DataLawSigmaN(float(d0 * c0), float(s0 * (d0 * c1) ** (1 / alpha)), alpha,
                                  float(n0 * (d0 * c2) ** (1 / beta)), beta, loss))  # fmt: skip
    return laws


@dataclass
class PowerLawWithConstant:
    """y(x) = c + (x/b)^e for either sign of e: the form of D_J and of wall-clock time to a threshold against the
    number of parallel envs (D_J(n) = D_min + (n/ν)^γ when more envs cost data)."""

    c: float
    b: float
    e: float
    loss: float = float("nan")

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.c + (np.asarray(x, dtype=float) / self.b) ** self.e

    @property
    def degenerate(self) -> bool:
        """The exponent sits at the fit's bound (|e| = 10 or ~0): the points do not pin a power law down (e.g. a
        flat stretch then a jump), so predictions between and beyond them are not to be trusted."""
        return abs(self.e) >= 9.99 or abs(self.e) <= 1.01e-3

    def to_json(self) -> dict:
        return {"c": self.c, "b": self.b, "e": self.e, "loss": self.loss, "form": "c + (x/b)^e",
                "degenerate": self.degenerate}  # fmt: skip


def fit_power_law_with_constant(
    x: Sequence[float], y: Sequence[float], log_space: bool = False
) -> PowerLawWithConstant:
    """Fit c + (x/b)^e (c >= 0) with e of either sign: both directions through ``fit_data_law`` (in x and in 1/x),
    the better kept. ``y`` is scaled by its median for the fit and scaled back."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(y) & (y > 0)
    x, y = x[keep], y[keep]
    if len(y) < 3:
        raise ValueError(f"c + (x/b)^e has 3 parameters; need 3 or more finite points, got {len(y)}")
    scale = float(np.median(y))
    falling = fit_data_law(x, y / scale, log_space=log_space)  # c + (x/b)^-a
    rising = fit_data_law(1.0 / x, y / scale, log_space=log_space)  # c + ((1/x)/b)^-a = c + (x·b)^a
    if falling.loss <= rising.loss:
        return PowerLawWithConstant(scale * falling.c, falling.b * scale ** (1 / falling.a), -falling.a, falling.loss)
    return PowerLawWithConstant(scale * rising.c, (1.0 / rising.b) * scale ** (-1 / rising.a), rising.a, rising.loss)
