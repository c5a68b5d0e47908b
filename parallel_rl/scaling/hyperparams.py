"""Hyperparameter laws: the best batch size B*(σ) and learning rate η*(σ) as power laws in the UTD σ.

Targets are bootstrap-averaged argmins of the crossing time at one threshold (the last by default): for every
bootstrap resample, the argmin over batch size among configurations that share everything else (and likewise over
learning rate). The paper (``average="arithmetic"``, the default of ``fit``) averages those argmins arithmetically
over resamples and over the other axis's values, giving one target per (task, σ); ``average="geometric"`` (``fit
--method robust``) keeps one target per (task, σ, other-axis value), the geometric mean over resamples. A line in
log10-log10 with one slope shared by all tasks and one intercept per task is then fitted by least squares (Rybkin
et al. 2025). The model-size law
B*(σ, N) = a / (σ^α (1 + (b/N)^c)) (Fu et al. 2025) is fitted in log space with L-BFGS-B.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from parallel_rl.scaling.crossing import CrossingResult
from parallel_rl.scaling.runtable import ConfigKey

AXES = ("batch_size", "lr")


@dataclass(frozen=True)
class ArgminPoint:
    """One fitted target: the best value of ``axis`` for a task at σ, given the other axis at ``other``."""

    task: str
    utd: float
    critic_params: int
    other: float
    log10_best: float
    resamples: int
    at_edge: float = 0.0
    """Fraction of resamples whose best value is the smallest or largest swept: then the optimum may lie outside
    the grid and the law is biased toward the grid's edge."""
    swept: tuple[float, ...] = ()
    """The values of ``axis`` that ran in this group."""


def bootstrap_argmins(
    crossings: Mapping[ConfigKey, CrossingResult], axis: str, threshold_index: int = -1
) -> list[ArgminPoint]:
    """Bootstrap-averaged argmin of D_J over ``axis`` ('batch_size' or 'lr') in every group of configurations that
    differ only in that axis (and have at least two values of it); the log10 argmins are averaged over resamples."""
    points = []
    for (task, _algo, utd, _w, params, _n, other), keys, best in _argmin_groups(crossings, axis, threshold_index):
        log_best = np.log10(np.array([getattr(keys[i], axis) for i in best], dtype=float))
        edge = float(np.mean((best == 0) | (best == len(keys) - 1)))
        points.append(ArgminPoint(task, utd, params, float(other), float(log_best.mean()), int(best.size), edge,
                                  tuple(float(getattr(k, axis)) for k in keys)))  # fmt: skip
    return points


def _argmin_groups(
    crossings: Mapping[ConfigKey, CrossingResult], axis: str, threshold_index: int, unreached: str = "skip"
):
    """(group, keys sorted by ``axis``, index of the best key per resample) for every group of configurations that
    differ only in ``axis`` (with two or more values of it). A resample in which no key reached the threshold is
    left out (``unreached="skip"``) or counts as the smallest value (``"smallest"``: the papers' code takes the
    argmin of all-infinite times, the first)."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
    other_axis = AXES[1 - AXES.index(axis)]
    groups: dict[tuple, list[ConfigKey]] = defaultdict(list)
    for key in crossings:
        group = (key.task, key.algo, key.utd, key.critic_width, key.critic_params, key.num_envs,
                 getattr(key, other_axis))  # fmt: skip
        groups[group].append(key)
    for group, keys in sorted(groups.items()):
        values = sorted({getattr(k, axis) for k in keys})
        if len(values) < 2:
            continue
        keys = sorted(keys, key=lambda k: getattr(k, axis))
        boot = np.stack([crossings[k].boot[:, threshold_index] for k in keys], axis=1)  # [resamples, values]
        valid = np.isfinite(boot).any(axis=1) if unreached == "skip" else np.ones(boot.shape[0], dtype=bool)
        if unreached == "skip" and not valid.any():
            continue
        yield group, keys, np.argmin(boot[valid], axis=1)  # never-reached (+inf) loses to any finite crossing time


def averaged_argmins(
    crossings: Mapping[ConfigKey, CrossingResult], axis: str, threshold_index: int = -1, unreached: str = "smallest"
) -> list[ArgminPoint]:
    """The paper's targets: per (task, σ, critic size), the arithmetic mean of the best ``axis`` value over every
    bootstrap resample and every value of the other axis (Rybkin et al. 2025 average B* over learning rates and
    resamples, η* over batch sizes and resamples). A resample in which no value reached the threshold counts as the
    smallest value, as in the papers' code (``unreached="skip"`` leaves it out instead; on the Gym sweep that moves
    α_B from 0.319 to 0.347)."""
    pooled: dict[tuple, list[np.ndarray]] = defaultdict(list)
    edges: dict[tuple, list[float]] = defaultdict(list)
    swept: dict[tuple, set[float]] = defaultdict(set)
    groups = _argmin_groups(crossings, axis, threshold_index, unreached)
    for (task, _algo, utd, _w, params, num_envs, _other), keys, best in groups:
        where = (task, utd, params, num_envs)
        pooled[where].append(np.array([getattr(keys[i], axis) for i in best], dtype=float))
        edges[where].append(float(np.mean((best == 0) | (best == len(keys) - 1))))
        swept[where] |= {float(getattr(k, axis)) for k in keys}
    points = []
    for where in sorted(pooled):
        values = np.concatenate(pooled[where])
        task, utd, params, _n = where
        points.append(ArgminPoint(task, utd, params, float("nan"), float(np.log10(values.mean())), int(values.size),
                                  float(np.mean(edges[where])), tuple(sorted(swept[where]))))  # fmt: skip
    return points


@dataclass
class SharedPowerLaw:
    """value(σ, task) = coefficients[task] · σ^exponent (exponent = −α)."""

    exponent: float
    coefficients: dict[str, float]
    residual_std: float = float("nan")
    num_points: int = 0

    def __call__(self, sigma: np.ndarray | float, task: str | None = None) -> np.ndarray:
        """At a task, or averaged over tasks (the papers' B(σ) for compute)."""
        sigma = np.asarray(sigma, dtype=float)
        coefs = [self.coefficients[task]] if task is not None else list(self.coefficients.values())
        return np.mean([c * sigma**self.exponent for c in coefs], axis=0)

    def to_json(self) -> dict:
        return {"exponent": self.exponent, "coefficients": dict(self.coefficients),
                "residual_std_log10": self.residual_std, "num_points": self.num_points}  # fmt: skip


def fit_shared_power_law(tasks: Sequence[str], sigma: Sequence[float], log10_value: Sequence[float]) -> SharedPowerLaw:
    """Least squares of log10 value = log10 coef_task + exponent · log10 σ (one slope, one intercept per task)."""
    tasks, sigma, y = list(tasks), np.asarray(sigma, dtype=float), np.asarray(log10_value, dtype=float)
    names = sorted(set(tasks))
    if len(y) < len(names) + 1 or len(np.unique(sigma)) < 2:
        at = sorted(set(sigma.tolist()))
        raise ValueError(f"need at least two σ values and {len(names) + 1} points to fit a slope and "
                         f"{len(names)} intercept(s); got {len(y)} point(s) at σ = {at}")  # fmt: skip
    design = np.zeros((len(y), 1 + len(names)))
    design[:, 0] = np.log10(sigma)
    for i, t in enumerate(tasks):
        design[i, 1 + names.index(t)] = 1.0
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return SharedPowerLaw(float(coef[0]), {t: float(10 ** coef[1 + i]) for i, t in enumerate(names)},
                          float(np.sqrt(np.mean(resid**2))), len(y))  # fmt: skip


def fit_hyperparameter_law(points: Sequence[ArgminPoint]) -> SharedPowerLaw:
    return fit_shared_power_law([p.task for p in points], [p.utd for p in points], [p.log10_best for p in points])


def round_batch(batch: float, multiple: int = 16) -> int:
    """Proposals round B to a multiple of 16 (at least 16), as in the papers."""
    return max(multiple, int(round(batch / multiple)) * multiple)


def round_lr(lr: float, digits: int = 3) -> float:
    """Proposals round η to three significant figures."""
    return float(f"{lr:.{digits - 1}e}")


# ---- B*(σ, N) ------------------------------------------------------------------------------------------------------
@dataclass
class BatchLawSigmaN:
    """B*(σ, N) = a / (σ^alpha · (1 + (b/N)^c))."""

    a: float
    alpha: float
    b: float
    c: float
    loss: float = float("nan")
    extra: dict = field(default_factory=dict)

    def __call__(self, sigma: np.ndarray | float, params: np.ndarray | float) -> np.ndarray:
        sigma, params = np.asarray(sigma, dtype=float), np.asarray(params, dtype=float)
        return self.a / (sigma**self.alpha * (1.0 + (self.b / params) ** self.c))

    def to_json(self) -> dict:
        return {"a": self.a, "alpha": self.alpha, "b": self.b, "c": self.c, "loss": self.loss}


def fit_batch_law_sigma_n(sigma: Sequence[float], params: Sequence[float], batch: Sequence[float]) -> BatchLawSigmaN:
    """Squared error of log B over (log a, α, log b, log c), N rescaled by its geometric mean so that b is O(1);
    L-BFGS-B from the best points of a coarse grid."""
    s, n, y = (np.asarray(v, dtype=float) for v in (sigma, params, batch))
    if len(y) < 4:
        raise ValueError(f"B*(σ, N) has 4 parameters; need at least 4 points, got {len(y)}")
    n0 = float(np.exp(np.mean(np.log(n))))
    log_y, log_s, log_n = np.log(y), np.log(s), np.log(n / n0)

    def loss(theta: np.ndarray) -> float:
        log_a, alpha, log_b, log_c = theta
        pred = log_a - alpha * log_s - np.logaddexp(0.0, np.exp(log_c) * (log_b - log_n))
        return float(np.mean((pred - log_y) ** 2))

    grid = itertools.product([float(np.log(y.max())), float(np.log(y.max() * 3))], [0.0, 0.3, 0.6],
                             np.log([0.3, 1.0, 3.0]), np.log([0.5, 1.0, 2.0]))  # fmt: skip
    starts = sorted((np.array(g) for g in grid), key=loss)[:5]
    bounds = [(None, None), (-3.0, 3.0), (-12.0, 12.0), (np.log(0.05), np.log(10.0))]
    best = min((minimize(loss, x0, method="L-BFGS-B", bounds=bounds) for x0 in starts), key=lambda r: r.fun)
    log_a, alpha, log_b, log_c = best.x
    return BatchLawSigmaN(float(math.exp(log_a)), float(alpha), float(math.exp(log_b) * n0), float(math.exp(log_c)),
                          float(best.fun))  # fmt: skip
