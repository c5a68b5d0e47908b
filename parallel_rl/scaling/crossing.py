"""Crossing times D_J: the env steps a configuration needs to first reach return J.

Procedure (Rybkin et al. 2025): average the seeds' returns at each evaluation step, fit a monotone non-decreasing
(isotonic) curve to the average so that evaluation noise cannot make a configuration cross early and "un-cross",
and take the first step at which the curve reaches J. The paper (and its code) takes that step as logged
(``interpolate=False``, the default of ``fit``); ``interpolate=True`` (``fit --method robust`` or ``--crossing
interpolated``) interpolates the isotonic curve linearly between evaluation steps, which removes most of the
quantisation by the evaluation interval. Bootstrapping over seeds gives the spread; a threshold never reached is
+inf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from parallel_rl.scaling.runtable import ConfigKey, Curve


def paper_thresholds(num: int = 10, low_gap: float = 700.0, high_gap: float = 200.0) -> np.ndarray:
    """``1000 - logspace(log10 low_gap, log10 high_gap, num)`` on the 0-1000 scale: denser near the top, where
    thresholds are hard to reach (the papers' Gym choice is the default: 300 ... 800)."""
    return 1000.0 - np.logspace(np.log10(low_gap), np.log10(high_gap), num)


def isotonic_increasing(values: np.ndarray) -> np.ndarray:
    """Least-squares monotone non-decreasing fit (pool adjacent violators, via scipy)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    return np.asarray(isotonic_regression(values, increasing=True).x)


def first_crossing(steps: np.ndarray, monotone: np.ndarray, threshold: float, interpolate: bool = True) -> float:
    """First step where the (non-decreasing) curve reaches ``threshold``: the logged step, or (``interpolate``)
    linearly interpolated between the last point below and the first point at or above it; +inf if it never does."""
    above = np.flatnonzero(monotone >= threshold)
    if above.size == 0:
        return float("inf")
    i = int(above[0])
    if i == 0 or not interpolate:
        return float(steps[i])
    y0, y1 = monotone[i - 1], monotone[i]
    frac = (threshold - y0) / (y1 - y0)  # y0 < threshold <= y1, so y1 > y0
    return float(steps[i - 1] + frac * (steps[i] - steps[i - 1]))


def seed_matrix(seed_curves: Sequence[Curve], fill_stopped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Returns of every seed at common env steps, [seeds, steps].

    By default the steps every seed evaluated (a seed stopped early by a time box shortens the curve rather than
    biasing its tail). ``fill_stopped``: the steps of the longest seed, a shorter seed carrying its last return
    forward; right for runs stopped on reaching a return (``--stop-at-return``), wrong for runs cut by a time box.
    """
    if fill_stopped:
        longest = max(seed_curves, key=lambda c: c.env_step[-1] if c.env_step.size else -1).env_step
        rows = []
        for c in seed_curves:
            inside = longest[longest <= c.env_step[-1]]
            idx = np.searchsorted(c.env_step, inside)
            if not np.array_equal(c.env_step[np.minimum(idx, c.env_step.size - 1)], inside):
                raise ValueError("fill_stopped needs seeds evaluated at the same env steps (up to where each stopped)")
            rows.append(np.concatenate([c.returns[idx], np.full(longest.size - inside.size, c.returns[-1])]))
        return longest, np.stack(rows)
    common = seed_curves[0].env_step
    for c in seed_curves[1:]:
        common = np.intersect1d(common, c.env_step)
    return common, np.stack([c.returns[np.searchsorted(c.env_step, common)] for c in seed_curves])


def seed_average(seed_curves: Sequence[Curve], fill_stopped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean return over seeds at common env steps (see ``seed_matrix``)."""
    steps, stacked = seed_matrix(seed_curves, fill_stopped)
    return steps, stacked.mean(axis=0)


def crossing_times(
    seed_curves: Sequence[Curve], thresholds: Sequence[float], interpolate: bool = True, fill_stopped: bool = False
) -> np.ndarray:
    """D_J for each threshold from the seed-averaged isotonic curve."""
    steps, mean = seed_average(seed_curves, fill_stopped)
    monotone = isotonic_increasing(mean)
    return np.array([first_crossing(steps, monotone, j, interpolate) for j in thresholds])


def _crossings_of_curves(steps: np.ndarray, means: np.ndarray, thresholds: np.ndarray, interpolate: bool) -> np.ndarray:
    """Crossing times of many seed-averaged curves at once: [curves, steps] -> [curves, thresholds]."""
    out = np.empty((means.shape[0], thresholds.size))
    for r, mean in enumerate(means):
        monotone = isotonic_increasing(mean)
        above = monotone[:, None] >= thresholds[None, :]  # [steps, thresholds]
        first = np.argmax(above, axis=0)
        reached = above[first, np.arange(thresholds.size)]
        row = np.where(reached, steps[first].astype(float), np.inf)
        if interpolate:
            for j in np.flatnonzero(reached & (first > 0)):
                i = first[j]
                y0, y1 = monotone[i - 1], monotone[i]
                row[j] = steps[i - 1] + (thresholds[j] - y0) / (y1 - y0) * (steps[i] - steps[i - 1])
        out[r] = row
    return out


@dataclass
class CrossingResult:
    """Crossing times of one configuration: ``point`` from all seeds, ``boot`` [resamples, thresholds]."""

    thresholds: np.ndarray
    point: np.ndarray
    boot: np.ndarray
    num_seeds: int

    @property
    def reached(self) -> np.ndarray:
        """Fraction of bootstrap resamples that reach each threshold."""
        return np.isfinite(self.boot).mean(axis=0)

    @property
    def mean(self) -> np.ndarray:
        """Bootstrap mean; +inf where any resample never reaches the threshold."""
        return self.boot.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        """Bootstrap standard deviation over the resamples that reach the threshold (nan if fewer than two)."""
        out = np.full(self.boot.shape[1], np.nan)
        for j in range(self.boot.shape[1]):
            finite = self.boot[np.isfinite(self.boot[:, j]), j]
            if finite.size >= 2:
                out[j] = finite.std()
        return out


def bootstrap_crossings(
    seed_curves: Mapping[int, Curve] | Sequence[Curve],
    thresholds: Sequence[float],
    num_resamples: int = 100,
    rng: np.random.Generator | None = None,
    interpolate: bool = True,
    fill_stopped: bool = False,
) -> CrossingResult:
    """Resample seeds with replacement ``num_resamples`` times and recompute D_J for each resample."""
    curves_list = list(seed_curves.values()) if isinstance(seed_curves, Mapping) else list(seed_curves)
    if not curves_list:
        raise ValueError("bootstrap_crossings: no seeds")
    rng = rng if rng is not None else np.random.default_rng(0)
    thresholds = np.asarray(thresholds, dtype=float)
    n = len(curves_list)
    steps, stacked = seed_matrix(curves_list, fill_stopped)
    picks = rng.integers(0, n, size=(num_resamples, n))
    boot = _crossings_of_curves(steps, stacked[picks].mean(axis=1), thresholds, interpolate)
    point = _crossings_of_curves(steps, stacked.mean(axis=0, keepdims=True), thresholds, interpolate)[0]
    return CrossingResult(thresholds, point, boot, n)


def crossing_table(
    curves_by_config: Mapping[ConfigKey, Mapping[int, Curve]],
    thresholds: Sequence[float],
    num_resamples: int = 100,
    seed: int = 0,
    interpolate: bool = True,
    fill_stopped: bool = False,
) -> dict[ConfigKey, CrossingResult]:
    """Crossing times of every configuration, with one seeded generator so the whole table is reproducible."""
    rng = np.random.default_rng(seed)
    return {key: bootstrap_crossings(c, thresholds, num_resamples, rng, interpolate, fill_stopped)
            for key, c in curves_by_config.items()}  # fmt: skip
