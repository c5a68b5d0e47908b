"""How much the Gym reproduction's σ*(F) depends on the bootstrap's random draw and on the σ grid of the budget optimum.

- qscaled's own batch law (its shared-slope fit, experiments/outputs/grid_proposed_fits/gym_sweep) with our data law
  on gym_ours, σ*(F) on 100- and 1000-point σ grids, and the same law with its slope or its coefficients moved a
  little (how far σ*(F) moves for a change well inside the bootstrap spread of the batch law);
- for bootstrap seeds 0..SEEDS-1: B*(σ), η*(σ) fitted on gym_sweep by ``fit`` with its defaults (100 resamples, as
  the paper), then σ*(F) = k·F^e on gym_ours with that batch law (N = 1.5e5, δ = 4e9) on both grids;
- the batch law with many resamples (its bootstrap expectation, the draw's noise averaged out) and its σ*(F).

Writes benchmarks/scaling/qscaled/sensitivity.md.

Usage: python benchmarks/scaling/qscaled/sensitivity.py RUNS [SEEDS] [BIG_RESAMPLES]  (RUNS: the folder
`import qscaled` wrote; defaults 40 seeds and 3000 resamples)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from parallel_rl.scaling.budget import budget_table
from parallel_rl.scaling.crossing import paper_thresholds
from parallel_rl.scaling.fit import fit_laws, load_rows

QSCALED_LOG10_BATCH_AT_1 = {"Ant-v4": 2.6189244030305345, "HalfCheetah-v4": 2.6149104523286484,
                            "Humanoid-v4": 2.4957687292062407, "Walker2d-v4": 2.50891726620878}  # fmt: skip
QSCALED_BATCH_LAW = {
    "exponent": -0.3096094744219379,
    "coefficients": {t: 10**v for t, v in QSCALED_LOG10_BATCH_AT_1.items()},
}
PUBLISHED_K, PUBLISHED_E = 2.62e-9, 0.62


def _machine() -> str:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.strip()
    return f"{load}; {' '.join(cpu.split())}"


def _passes(k: float, e: float) -> bool:
    return abs(k / PUBLISHED_K - 1) <= 0.10 and abs(e - PUBLISHED_E) <= 0.02


def main(runs: str, seeds: int = 40, big_resamples: int = 3000) -> None:
    t0 = time.time()
    runs_dir = Path(runs)
    sweep, ours = load_rows([runs_dir / "gym_sweep.csv"]), load_rows([runs_dir / "gym_ours.csv"])
    base = fit_laws(ours, paper_thresholds().tolist(), num_resamples=2, hyper_laws={"batch_law": QSCALED_BATCH_LAW},
                    params=1.5e5, delta=4e9)  # fmt: skip
    contract = {k: base[k] for k in ("params", "delta", "utd_range", "k_flops", "thresholds")}
    contract["data_law"] = {"m": base["data_law"]["m"], "abc": base["data_law"]["abc"]}

    def sigma_of_budget(batch_law: dict, points: int = 100) -> tuple[float, float, list[float]]:
        out = budget_table({**contract, "utd_grid_points": points, "batch_law": batch_law, "hold_out": 2})
        return out["k"], out["e"], [r["sigma_star"] for r in out["table"]]

    lines = ["# Sensitivity of the Gym reproduction's σ*(F)", "",
             f"Machine at the start: {_machine()}", "",
             "Published: α_B = 0.310, α_η = 0.285, B*(1) = 416 / 412 / 313 / 323 (Ant / HalfCheetah / Humanoid / "
             "Walker2d), σ*(F) = 2.62e-9·F^0.62. Acceptance: k within 10%, e within 0.02.", "",
             "## σ*(F) with qscaled's own batch law (our data law, which equals the published one to 4 digits)", "",
             "| σ grid points | k | k / 2.62e-9 | e | σ* of the 8 fitted thresholds |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for points in (100, 1000):
        k, e, s = sigma_of_budget(QSCALED_BATCH_LAW, points)
        lines.append(
            f"| {points} | {k:.4g} | {k / PUBLISHED_K:.2f} | {e:.4f} | {' '.join(f'{x:.3f}' for x in s[:8])} |"
        )
    lines += ["", "The same law moved by much less than its bootstrap spread (100-point grid):", "",
              "| change | k / 2.62e-9 | e | σ* of the 8 fitted thresholds |", "| --- | --- | --- | --- |"]  # fmt: skip
    for d_alpha in (-0.005, -0.0025, 0.0025, 0.005, 0.0075):
        law = {**QSCALED_BATCH_LAW, "exponent": QSCALED_BATCH_LAW["exponent"] - d_alpha}
        k, e, s = sigma_of_budget(law)
        lines.append(
            f"| α_B {d_alpha:+.4f} | {k / PUBLISHED_K:.2f} | {e:.4f} | {' '.join(f'{x:.3f}' for x in s[:8])} |"
        )
    for scale in (0.97, 0.99, 1.01, 1.03):
        law = {
            **QSCALED_BATCH_LAW,
            "coefficients": {t: c * scale for t, c in QSCALED_BATCH_LAW["coefficients"].items()},
        }
        k, e, s = sigma_of_budget(law)
        lines.append(
            f"| B*(1) x{scale:.2f} | {k / PUBLISHED_K:.2f} | {e:.4f} | {' '.join(f'{x:.3f}' for x in s[:8])} |"
        )

    lines += ["", "## Our batch law, refitted on gym_sweep, by bootstrap seed (`fit --seed S`, 100 resamples)", "",
              "| seed | α_B | α_η | B*(1) Ant / HalfCheetah / Humanoid / Walker2d | k | k / 2.62e-9 | e | passes | "
              "k (1000-pt grid) | e (1000-pt grid) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    stats: list[tuple[float, float, float, float, float]] = []
    for seed in range(seeds):
        fits = fit_laws(sweep, [800.0], num_resamples=100, seed=seed)
        law = {"exponent": fits["batch_law"]["exponent"], "coefficients": fits["batch_law"]["coefficients"]}
        k, e, _ = sigma_of_budget(law)
        k1000, e1000, _ = sigma_of_budget(law, 1000)
        coefs = " / ".join(f"{law['coefficients'][t]:.0f}" for t in QSCALED_LOG10_BATCH_AT_1)
        alpha_b, alpha_lr = -law["exponent"], -fits["lr_law"]["exponent"]
        stats.append((alpha_b, alpha_lr, k, e, k1000))
        lines.append(f"| {seed} | {alpha_b:.4f} | {alpha_lr:.4f} | {coefs} | {k:.3g} | {k / PUBLISHED_K:.2f} | "
                     f"{e:.4f} | {'yes' if _passes(k, e) else 'no'} | {k1000:.3g} | {e1000:.4f} |")  # fmt: skip
        print(lines[-1], flush=True)
    a = np.array(stats)
    ratio, ratio1000 = a[:, 2] / PUBLISHED_K, a[:, 4] / PUBLISHED_K
    n_pass = sum(_passes(k, e) for k, e in zip(a[:, 2], a[:, 3]))
    lines += ["", f"Over the {seeds} seeds: α_B {a[:, 0].mean():.4f} ± {a[:, 0].std():.4f} (mean ± std), α_η "
              f"{a[:, 1].mean():.4f} ± {a[:, 1].std():.4f}; k / 2.62e-9 median {np.median(ratio):.2f}, 10th-90th "
              f"percentile {np.percentile(ratio, 10):.2f}-{np.percentile(ratio, 90):.2f}; e {a[:, 3].min():.4f} to "
              f"{a[:, 3].max():.4f}; {n_pass} of {seeds} seeds meet both k within 10% and e within 0.02. On the "
              f"1000-point grid k / 2.62e-9 has median {np.median(ratio1000):.2f} (10th-90th "
              f"{np.percentile(ratio1000, 10):.2f}-{np.percentile(ratio1000, 90):.2f})."]  # fmt: skip

    lines += ["", f"## The batch law's bootstrap expectation ({big_resamples} resamples)", "",
              "| seed | α_B | α_η | B*(1) Ant / HalfCheetah / Humanoid / Walker2d | k / 2.62e-9 | e | "
              "k / 2.62e-9 (1000-pt grid) | e (1000-pt grid) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for seed in (0, 1):
        fits = fit_laws(sweep, [800.0], num_resamples=big_resamples, seed=seed)
        law = {"exponent": fits["batch_law"]["exponent"], "coefficients": fits["batch_law"]["coefficients"]}
        k, e, _ = sigma_of_budget(law)
        k1000, e1000, _ = sigma_of_budget(law, 1000)
        coefs = " / ".join(f"{law['coefficients'][t]:.1f}" for t in QSCALED_LOG10_BATCH_AT_1)
        lines.append(f"| {seed} | {-law['exponent']:.4f} | {-fits['lr_law']['exponent']:.4f} | {coefs} | "
                     f"{k / PUBLISHED_K:.2f} | {e:.4f} | {k1000 / PUBLISHED_K:.2f} | {e1000:.4f} |")  # fmt: skip
        print(lines[-1], flush=True)
    lines += ["", f"Machine at the end: {_machine()}; {time.time() - t0:.0f} s in all."]
    out = Path(__file__).parent / "sensitivity.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
