"""Is `fit --method rybkin2025` the paper's procedure for B*(σ) and η*(σ), and can the published draw be recovered?

1. The grid-search steps of Rybkin et al. 2025 (qscaled's grid_search code, redone here from its description, not
   copied) straight from qscaled's .npy files: returns scaled by 1000 / (1.25 x the paper's per-task maximum), per
   configuration and resample the seeds drawn with replacement, the isotonic fit of their mean, the first logged step
   at which it reaches J = 800 (never: +inf); per (task, σ, other value) the argmin per resample; the arithmetic mean
   per (task, σ) over resamples and other values; log10 target = exponent·log10 σ + intercept per task by least
   squares. Each configuration's resample draws come from a generator seeded by its name, and our pipeline
   (`launch.scaling import qscaled` run table, `fit_laws` defaults) is given the same draws: the two laws must agree.
2. qscaled draws with numpy's legacy generator (`np.random.seed(42)`, then per configuration 100 x
   `randint(0, seeds, seeds)`) in the order of its zip file, which is not published (the bootstrap was also cached,
   `use_cached=True`). The laws for a few natural orders show how far the published draw is from any of them.

Writes benchmarks/scaling/qscaled/equivalence.md.

Usage: python benchmarks/scaling/qscaled/equivalence.py QSCALED/cache/data RUNS
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import isotonic_regression

import parallel_rl.scaling.fit as fit_module
from parallel_rl.scaling.crossing import bootstrap_crossings

GRID_MAXIMA = {"HalfCheetah-v4": 7300, "Walker2d-v4": 4000, "Ant-v4": 5300, "Humanoid-v4": 5200}
THRESHOLD, RESAMPLES = 800.0, 100
PUBLISHED = {"batch": (0.3096094744219379, [415.84, 412.01, 313.16, 322.79]),
             "lr": (0.28487153742593846, [1.5036e-4, 1.8711e-3, 1.9053e-4, 8.2392e-4])}  # fmt: skip
Config = tuple[str, float, int, float]  # task, σ, batch size, learning rate


def _name(task: str, utd: float, batch: int, lr: float) -> str:
    return f"{task}|{float(utd):g}|{int(batch)}|{float(lr):g}"


def _named_draws(name: str, seeds: int) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(name.encode())).integers(0, seeds, size=(RESAMPLES, seeds))


def load_sweep(data: Path) -> dict[Config, np.ndarray]:
    """(task, σ, B, η) -> the .npy array (column 0 env steps, one column per seed)."""
    out = {}
    for f in sorted((data / "gym_sweep").glob("utd_*/*/episode.return/bs_*_lr_*.npy")):
        _, batch, _, lr = f.stem.split("_")
        out[(f.parts[-3], float(f.parts[-4][4:]), int(batch), float(lr))] = np.load(f)
    return out


def crossings_by_hand(arrays: dict[Config, np.ndarray], draws) -> dict[Config, np.ndarray]:
    out = {}
    for cfg, arr in arrays.items():
        steps, returns = arr[:, 0], arr[:, 1:] * 1000 / (1.25 * GRID_MAXIMA[cfg[0]])
        picks = draws(cfg, returns.shape[1])
        row = np.empty(RESAMPLES)
        for b in range(RESAMPLES):
            above = np.flatnonzero(isotonic_regression(returns[:, picks[b]].mean(axis=1)).x >= THRESHOLD)
            row[b] = steps[above[0]] if above.size else np.inf
        out[cfg] = row
    return out


def laws_by_hand(boot: dict[Config, np.ndarray]) -> dict[str, tuple[float, list[float]]]:
    laws = {}
    for name, axis in (("batch", 2), ("lr", 3)):
        other = 5 - axis
        groups: dict[tuple, list[Config]] = defaultdict(list)
        for cfg in boot:
            groups[(cfg[0], cfg[1], cfg[other])].append(cfg)
        picked: dict[tuple[str, float], list[np.ndarray]] = defaultdict(list)
        for (task, utd, _), cfgs in groups.items():
            cfgs.sort(key=lambda c: c[axis])
            times = np.stack([boot[c] for c in cfgs], axis=1)
            picked[(task, utd)].append(np.array([c[axis] for c in cfgs], dtype=float)[np.argmin(times, axis=1)])
        cells = sorted(picked)
        tasks = sorted({t for t, _ in cells})
        design = np.zeros((len(cells), 1 + len(tasks)))
        target = np.array([np.log10(np.concatenate(picked[c]).mean()) for c in cells])
        for i, (task, utd) in enumerate(cells):
            design[i, 0], design[i, 1 + tasks.index(task)] = np.log10(utd), 1.0
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        laws[name] = (-float(coef[0]), [float(10**c) for c in coef[1:]])
    return laws


def ours_with_named_draws(runs: Path) -> dict[str, tuple[float, list[float]]]:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
            return _named_draws(self.name, high)

    def crossing_table(by_config, thresholds, num_resamples=100, seed=0, interpolate=True, fill_stopped=False):
        return {k: bootstrap_crossings(c, thresholds, num_resamples, Named(_name(k.task, k.utd, k.batch_size, k.lr)),
                                       interpolate, fill_stopped) for k, c in by_config.items()}  # fmt: skip

    original = fit_module.crossing_table
    fit_module.crossing_table = crossing_table
    try:
        fits = fit_module.fit_laws(fit_module.load_rows([runs / "gym_sweep.csv"]), [THRESHOLD], num_resamples=RESAMPLES)
    finally:
        fit_module.crossing_table = original
    return {name: (-fits[law]["exponent"], [fits[law]["coefficients"][t] for t in sorted(fits[law]["coefficients"])])
            for name, law in (("batch", "batch_law"), ("lr", "lr_law"))}  # fmt: skip


def legacy_draws(order: list[Config], arrays: dict[Config, np.ndarray]) -> dict[Config, np.ndarray]:
    rs = np.random.RandomState(42)
    drawn = {}
    for cfg in order:
        seeds = arrays[cfg].shape[1] - 1
        drawn[cfg] = np.stack([rs.randint(0, seeds, size=seeds) for _ in range(RESAMPLES)])
    return drawn


def _fmt(law: tuple[float, list[float]], lr: bool) -> str:
    coefs = " / ".join(f"{c:.4g}" if lr else f"{c:.2f}" for c in law[1])
    return f"{law[0]:.6f} | {coefs}"


def _machine() -> str:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.strip()
    return f"{load}; {' '.join(cpu.split())}"


def main(data: str, runs: str) -> None:
    t0 = time.time()
    arrays = load_sweep(Path(data))
    lines = ["# Our B*(σ), η*(σ) against the paper's procedure on the Gym sweep", "", f"Machine: {_machine()}", "",
             f"{len(arrays)} configurations, threshold J = {THRESHOLD:g}, {RESAMPLES} resamples. Columns: α (minus the "
             "shared exponent) | coefficient at σ = 1 for Ant / HalfCheetah / Humanoid / Walker2d.", "",
             "## 1. Same draws, two implementations", "",
             "| | α_B | B*(1) | α_η | η*(1) |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    by_hand = laws_by_hand(crossings_by_hand(arrays, lambda cfg, n: _named_draws(_name(*cfg), n)))
    ours = ours_with_named_draws(Path(runs))
    for label, laws in (("the paper's steps, by hand", by_hand), ("`fit_laws` defaults", ours)):
        lines.append(f"| {label} | {_fmt(laws['batch'], False)} | {_fmt(laws['lr'], True)} |")
    gap = max(abs(ours[n][0] - by_hand[n][0]) for n in ours)
    rel = max(abs(a / b - 1) for n in ours for a, b in zip(ours[n][1], by_hand[n][1]))
    lines += ["", f"Largest difference: {gap:.1e} in α, {rel:.1e} relative in a coefficient.", "",
              "## 2. numpy's legacy generator, seed 42, in some natural file orders", "",
              "| order | α_B | B*(1) | α_η | η*(1) |", "| --- | --- | --- | --- | --- |",
              f"| published (qscaled's outputs) | {_fmt(PUBLISHED['batch'], False)} | "
              f"{_fmt(PUBLISHED['lr'], True)} |"]  # fmt: skip
    orders = {
        "path, sorted as text": sorted(arrays, key=lambda c: (f"utd_{c[1]:g}", c[0], f"bs_{c[2]}", f"lr_{c[3]:g}")),
        "task, σ, B, η": sorted(arrays),
        "σ, task, B, η": sorted(arrays, key=lambda c: (c[1], c[0], c[2], c[3])),
        "task, B, σ, η": sorted(arrays, key=lambda c: (c[0], c[2], c[1], c[3])),
        "task, B, η, σ": sorted(arrays, key=lambda c: (c[0], c[2], c[3], c[1])),
    }
    for label, order in orders.items():
        drawn = legacy_draws(order, arrays)
        laws = laws_by_hand(crossings_by_hand(arrays, lambda cfg, n, d=drawn: d[cfg]))
        lines.append(f"| {label} | {_fmt(laws['batch'], False)} | {_fmt(laws['lr'], True)} |")
        print(lines[-1], flush=True)
    lines += ["", f"Machine at the end: {_machine()}; {time.time() - t0:.0f} s in all."]
    out = Path(__file__).parent / "equivalence.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1], sys.argv[2])
