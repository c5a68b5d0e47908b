"""How much the Gym reproduction depends on the bootstrap's random draw and on the σ grid of the budget optimum.

For bootstrap seeds 0..7: B*(σ), η*(σ) fitted on gym_sweep (the default method), then σ*(F) = k·F^e on gym_ours with
that batch law (N = 1.5e5, δ = 4e9); and σ*(F) with qscaled's own batch law on 100- and 1000-point σ grids. Writes
benchmarks/scaling/qscaled/sensitivity.md.

Usage: python benchmarks/scaling/qscaled/sensitivity.py RUNS  (RUNS: the folder `import qscaled` wrote)
"""

from __future__ import annotations

import sys
from pathlib import Path

from parallel_rl.scaling.budget import budget_table
from parallel_rl.scaling.crossing import paper_thresholds
from parallel_rl.scaling.fit import fit_laws, load_rows

QSCALED_LOG10_BATCH_AT_1 = {"Ant-v4": 2.6189244030305345, "HalfCheetah-v4": 2.6149104523286484,
                            "Humanoid-v4": 2.4957687292062407, "Walker2d-v4": 2.50891726620878}  # fmt: skip
QSCALED_BATCH_LAW = {
    "exponent": -0.3096094744219379,
    "coefficients": {t: 10**v for t, v in QSCALED_LOG10_BATCH_AT_1.items()},
}  # noqa: E501


def main(runs: str) -> None:
    runs_dir = Path(runs)
    sweep, ours = load_rows([runs_dir / "gym_sweep.csv"]), load_rows([runs_dir / "gym_ours.csv"])
    thresholds = paper_thresholds().tolist()
    base = fit_laws(ours, thresholds, num_resamples=2, hyper_laws={"batch_law": QSCALED_BATCH_LAW}, params=1.5e5,
                    delta=4e9)  # fmt: skip
    contract = {k: base[k] for k in ("params", "delta", "utd_range", "k_flops", "thresholds")}
    contract["data_law"] = {"m": base["data_law"]["m"], "abc": base["data_law"]["abc"]}

    def sigma_of_budget(batch_law: dict, points: int = 100) -> tuple[float, float]:
        out = budget_table({**contract, "utd_grid_points": points, "batch_law": batch_law, "hold_out": 2})
        return out["k"], out["e"]

    lines = ["# Sensitivity of the Gym reproduction", "",
             "Published: α_B = 0.310, α_η = 0.285, B*(1) = 416 / 412 / 313 / 323 (Ant / HalfCheetah / Humanoid / "
             "Walker2d), σ*(F) = 2.62e-9·F^0.62.", "",
             "## σ*(F) with qscaled's own batch law (our data law, which equals the published one to 4 digits)", "",
             "| σ grid points | k | e |", "| --- | --- | --- |"]  # fmt: skip
    for points in (100, 1000):
        k, e = sigma_of_budget(QSCALED_BATCH_LAW, points)
        lines.append(f"| {points} | {k:.4g} | {e:.4f} |")
    lines += ["", "## Our batch law, refitted on gym_sweep, by bootstrap seed (`fit --seed S`)", "",
              "| seed | α_B | α_η | B*(1) Ant / HalfCheetah / Humanoid / Walker2d | σ*(F) k | k / 2.62e-9 | e |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for seed in range(8):
        fits = fit_laws(sweep, [800.0], num_resamples=100, seed=seed)
        law = {"exponent": fits["batch_law"]["exponent"], "coefficients": fits["batch_law"]["coefficients"]}
        k, e = sigma_of_budget(law)
        coefs = " / ".join(f"{law['coefficients'][t]:.0f}" for t in QSCALED_LOG10_BATCH_AT_1)
        lines.append(f"| {seed} | {-law['exponent']:.4f} | {-fits['lr_law']['exponent']:.4f} | {coefs} | {k:.4g} | "
                     f"{k / 2.62e-9:.2f} | {e:.4f} |")  # fmt: skip
        print(lines[-1], flush=True)
    out = Path(__file__).parent / "sensitivity.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1])
