"""The (UTD, model size) laws of Fu et al. end to end, and the parallel-env law, against synthetic truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scaling_synthetic import config, curve_rows

from launch.scaling import main
from parallel_rl.scaling.datalaw import DataLawSigmaN, fit_data_law_sigma_n_shared
from parallel_rl.scaling.recommend import price_gpu_hours
from parallel_rl.scaling.runtable import write_run_table

ALPHA, BETA = 0.8, 0.6
# Per threshold: D_min and both terms about equal at σ = 1, N = 3e4 (so neither dominates the grid).
TRUTH = [DataLawSigmaN(d, (d) ** (1 / ALPHA), ALPHA, 3e4 * d ** (1 / BETA), BETA) for d in (2000.0, 3000.0, 4500.0)]
WIDTHS = {32: 7_000, 64: 25_000, 128: 90_000, 256: 350_000}  # critic width -> parameters
THRESHOLDS = [400.0, 600.0, 800.0]


def test_shared_exponent_fit_recovers_the_truth():
    sigma, params = (g.ravel() for g in np.meshgrid([0.25, 0.5, 1.0, 2.0, 4.0], list(WIDTHS.values())))
    rng = np.random.default_rng(0)
    data = np.stack([law(sigma, params) * np.exp(rng.normal(0, 0.02, sigma.size)) for law in TRUTH])
    got = fit_data_law_sigma_n_shared(sigma, params, data)
    assert got[0].alpha == pytest.approx(ALPHA, rel=0.10) and got[0].beta == pytest.approx(BETA, rel=0.10)
    assert all(g.alpha == got[0].alpha and g.beta == got[0].beta for g in got)  # shared by the thresholds
    check = np.array([0.35, 3.0]), np.array([1.2e4, 2e5])
    for law, fit in zip(TRUTH, got):
        np.testing.assert_allclose(fit(*check), law(*check), rtol=0.05)
        assert fit.d_min == pytest.approx(law.d_min, rel=0.15)


def _sweep_rows() -> list[dict]:
    """Learning curves over σ x critic width whose crossing times follow TRUTH (3 seeds, 5% seed noise)."""
    rng = np.random.default_rng(1)
    rows = []
    for s in (0.5, 1.0, 2.0, 4.0):
        for width, n in WIDTHS.items():
            truth = [law(s, n) for law in TRUTH]
            rows += curve_rows(config(utd=s, width=width, params=n, batch_size=128), truth, THRESHOLDS, 3, rng,
                               time_noise=0.05, return_noise=5, num_evals=30)  # fmt: skip
    return rows


def test_sigma_n_end_to_end_held_out_cell_and_recommend(tmp_path):
    table = write_run_table(tmp_path / "t.csv", _sweep_rows())
    fits_path = tmp_path / "f.json"
    fits = main(["fit", "--runs", str(table), "--out", str(fits_path), "--thresholds", *map(str, THRESHOLDS),
                 "--resamples", "20", "--law-resamples", "10", "--exclude-cell", "4,256", "--delta", "1e6",
                 "--no-normalize"])  # fmt: skip
    laws = fits["data_law_sigma_n"]
    assert [e["threshold"] for e in laws] == THRESHOLDS and len(laws[0]["bootstrap"]) == 10
    assert laws[0]["alpha"] == pytest.approx(ALPHA, rel=0.25) and laws[0]["beta"] == pytest.approx(BETA, rel=0.25)
    held = fits["held_out_sigma_n"]
    assert {(h["utd"], h["critic_width"]) for h in held} == {(4.0, 256)} and len(held) == 3
    assert all(abs(h["relative_error"]) < 0.15 for h in held), held
    # Budget: the least D_J with 10·N·B·σ·D + δ·D <= F; brute force over the same grid the command searches.
    budget = 5e13
    rec = main(["recommend", "--fits", str(fits_path), "--budget-flops", str(budget)])
    assert rec["total"] <= budget and rec["batch_size"] == 128 and rec["critic_width"] is not None
    law = DataLawSigmaN(*(laws[-1][k] for k in ("d_min", "a", "alpha", "b", "beta")))
    sig = np.logspace(np.log10(0.5 / 8), np.log10(4 * 8), 161)
    par = np.logspace(np.log10(7_000 / 8), np.log10(350_000 * 8), 161)
    s, n = np.meshgrid(sig, par, indexing="ij")
    d = law(s, n)
    affordable = 10 * n * 128 * s * d + 1e6 * d <= budget
    assert rec["predicted_data"] == pytest.approx(d[affordable].min(), rel=1e-9)
    lo, hi = rec["data_interval"]
    assert lo <= hi and lo < rec["predicted_data"] * 1.5 and hi > rec["predicted_data"] / 1.5
    # A data target: the least total cost among the grid points that reach it.
    target = 1.2 * law.d_min
    rec_d = main(["recommend", "--fits", str(fits_path), "--data", str(target)])
    cost = 10 * n * 128 * s * d + 1e6 * d
    assert rec_d["total"] == pytest.approx(cost[d <= target].min(), rel=1e-9)


def test_gpu_hours_are_priced_by_the_measured_update():
    # 2 h at 0.01 s per update of 256 samples on 1e5 parameters: 720k updates of 10·1e5·256 FLOPs each.
    budget, delta = price_gpu_hours(2.0, 0.01, 256, 1e5, 10.0, seconds_per_env_step=0.002)
    assert budget == pytest.approx(720_000 * 10 * 1e5 * 256)
    assert delta == pytest.approx(0.2 * 10 * 1e5 * 256)  # a transition takes a fifth of an update's time


def test_num_envs_law_and_held_out_prediction(tmp_path):
    """Crossing times grow with the env count, D_J(n) = D_0 + (n/ν)^γ; n = 128 is held out and predicted."""
    rng = np.random.default_rng(2)
    rows = []
    for n in (16, 32, 64, 128, 256, 1024):
        truth = [c + (n / 4.0) ** 0.9 for c in (1500.0, 2200.0, 3000.0)]
        for r in curve_rows(config(utd=0.5), truth, THRESHOLDS, 3, rng, time_noise=0.03, return_noise=5, num_evals=40):
            rows.append({**r, "num_envs": n, "wall_seconds": r["env_step"] * (1e-3 + 0.05 / n)})
    table = write_run_table(tmp_path / "t.csv", rows)
    fits = main(["fit", "--runs", str(table), "--out", str(tmp_path / "f.json"), "--thresholds", *map(str, THRESHOLDS),
                 "--resamples", "10", "--exclude-num-envs", "128", "--no-normalize"])  # fmt: skip
    for entry in fits["num_envs_law"]["per_threshold"]:
        assert entry["data_law"]["e"] > 0  # more envs, more data
        (held,) = entry["data_law_held_out"]
        assert held["num_envs"] == 128 and abs(held["relative_error"]) < 0.10, held
        assert "c" in entry["wall_law"]
    saved = json.loads((tmp_path / "f.json").read_text())
    made = main(["plot", "--fits", str(tmp_path / "f.json"), "--out", str(tmp_path / "plots")])
    assert "num_envs.png" in {p.name for p in made} and saved["num_envs_law"]["utd"] == 0.5


def test_sweep_cells_over_env_counts_are_named_apart():
    from parallel_rl.scaling.sweep import SweepCell

    base = SweepCell(0.5, 128, 1e-3, 64, 0, 6000)
    assert base.name == "utd0.5_bs128_lr0.001_w64_seed0"  # unchanged when the sweep does not vary num_envs
    assert SweepCell(0.5, 128, 1e-3, 64, 0, 6000, num_envs=256).name == "utd0.5_bs128_lr0.001_w64_n256_seed0"
