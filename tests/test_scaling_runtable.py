"""Run tables, crossing times by hand, a run directory turned into rows, and the sweep/fit/predict/plot CLI."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest
from scaling_synthetic import config, curve_rows

from launch.scaling import main
from parallel_rl.runtime import Trainer
from parallel_rl.scaling.compute import flops_per_param_sample
from parallel_rl.scaling.crossing import crossing_times, first_crossing, isotonic_increasing, seed_average
from parallel_rl.scaling.datalaw import DataLaw
from parallel_rl.scaling.hyperparams import round_batch, round_lr
from parallel_rl.scaling.runtable import (
    RUN_TABLE_COLUMNS,
    Curve,
    RunTableError,
    flops_constant_from_run_dir,
    read_run_table,
    rows_from_run_dir,
    write_run_table,
)
from parallel_rl.scaling.sweep import env_steps_for, grid_cells
from tasks import env_factory


# ---- crossing times by hand ----------------------------------------------------------------------------------------
def _isotonic_brute_force(y: np.ndarray) -> np.ndarray:
    """The min-max formula of the monotone least-squares fit: f_i = max_{j<=i} min_{k>=i} mean(y_j..y_k)."""
    n = len(y)
    return np.array([max(min(y[j : k + 1].mean() for k in range(i, n)) for j in range(i + 1)) for i in range(n)])


def test_isotonic_fit_by_hand_and_against_brute_force():
    np.testing.assert_allclose(isotonic_increasing(np.array([0.0, 2.0, 1.0, 3.0])), [0.0, 1.5, 1.5, 3.0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.normal(size=7).cumsum() + rng.normal(size=7)
        np.testing.assert_allclose(isotonic_increasing(y), _isotonic_brute_force(y), atol=1e-12)


def test_first_crossing_interpolates_the_isotonic_curve():
    steps = np.array([10, 20, 30, 40])
    monotone = isotonic_increasing(np.array([0.0, 2.0, 1.0, 3.0]))  # [0, 1.5, 1.5, 3]
    assert first_crossing(steps, monotone, 2.0) == pytest.approx(30 + (2.0 - 1.5) / (3.0 - 1.5) * 10)
    assert first_crossing(steps, monotone, 0.0) == 10  # already reached at the first evaluation
    assert first_crossing(steps, monotone, 3.5) == float("inf")  # never reached


def test_seed_average_uses_the_steps_every_seed_has():
    a = Curve(np.array([10, 20, 30]), np.array([1.0, 2.0, 3.0]), np.zeros(3))
    b = Curve(np.array([10, 20]), np.array([3.0, 4.0]), np.zeros(2))  # stopped early by its time box
    steps, mean = seed_average([a, b])
    assert steps.tolist() == [10, 20] and mean.tolist() == [2.0, 3.0]
    # A dip after a high evaluation is pooled with it: isotonic [0, 5, 1, 6] = [0, 3, 3, 6], so J = 2 is crossed
    # between steps 10 and 20 and J = 5.5 between 30 and 40 (not at step 20, where one noisy evaluation reached 5).
    c = Curve(np.array([10, 20, 30, 40]), np.array([0.0, 5.0, 1.0, 6.0]), np.zeros(4))
    assert crossing_times([c], [2.0, 5.5]).tolist() == pytest.approx([10 + 2 / 3 * 10, 30 + 2.5 / 3 * 10])


# ---- run tables ----------------------------------------------------------------------------------------------------
def test_run_table_round_trip_and_missing_columns_are_named(tmp_path):
    rows = curve_rows(config(), [100.0, 200.0], [400.0, 800.0], 2, np.random.default_rng(0), num_evals=5)
    path = write_run_table(tmp_path / "t.csv", rows)
    back = read_run_table(path)
    assert len(back) == len(rows) and back[0]["seed"] == 0 and back[0]["return"] == pytest.approx(rows[0]["return"])
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as f:
        w = csv.writer(f)
        kept = [c for c in RUN_TABLE_COLUMNS if c not in ("seed", "return")]
        w.writerow(kept)
        w.writerow(["x"] * len(kept))
    with pytest.raises(RunTableError, match=r"missing column\(s\) seed, return"):
        read_run_table(bad)


def test_a_finished_run_directory_becomes_run_table_rows(tmp_path):
    from tests.conftest import tiny_config

    cfg = tiny_config(total_env_steps=4 * 20, eval_every=40, num_envs=4)
    trainer = Trainer(cfg, env_factory("pendulum"))
    trainer.run(tmp_path)
    rows = rows_from_run_dir(tmp_path)
    assert [r["env_step"] for r in rows] == [40, 80]  # the evaluation rows
    assert rows[0]["utd"] == cfg.schedule.utd / cfg.num_envs
    assert rows[0]["critic_params"] == sum(p.numel() for p in trainer.algo.critic.parameters())
    assert rows[0]["critic_width"] == 16 and rows[0]["batch_size"] == 16 and rows[0]["lr"] == cfg.agent.critic_lr
    n_actor = sum(p.numel() for p in trainer.algo.policy.parameters())
    assert flops_constant_from_run_dir(tmp_path) == pytest.approx(
        flops_per_param_sample(rows[0]["critic_params"], n_actor, cfg.schedule.policy_ratio)
    )
    with pytest.raises(RunTableError, match="config.json is missing"):
        rows_from_run_dir(tmp_path / "nowhere")


# ---- the command line ----------------------------------------------------------------------------------------------
def test_sweep_runs_two_short_runs_and_resumes(tmp_path):
    """Two tiny runs as separate processes in parallel; a rerun skips both (they are done)."""
    out = tmp_path / "sweep"
    args = ["sweep", "--sigma", "0.5", "1", "--seeds", "0", "--out", str(out), "--workers", "2", "--no-progress",
            "--max-critic-updates", "40", "--min-env-steps", "40", "--", "--task", "pendulum", "--num-envs", "4",
            "--critic-hidden", "16", "16", "--actor-hidden", "16", "16", "--batch-size", "16", "--eval-envs", "2",
            "--num-atoms", "11", "--learning-starts", "2", "--device", "cpu"]  # fmt: skip
    record = main(args)
    assert record["done"] == 2 and record["failed"] == 0, record
    rows = read_run_table(out / "run_table.csv")
    assert sorted({r["utd"] for r in rows}) == [0.5, 1.0]
    assert {r["env_step"] for r in rows if r["utd"] == 1.0} >= {40}  # 40 updates at σ = 1 -> 40 transitions
    again = main(args)
    assert again["skipped"] == 2 and again["done"] == 0
    with pytest.raises(SystemExit):
        main([*args[:-2], "--seed", "3"])  # a flag the sweep sets itself is refused


def _synthetic_sweep(path) -> None:
    rng = np.random.default_rng(7)
    rows = []
    for s, b in itertools.product([0.25, 0.5, 1, 2, 4, 8], [128, 256]):
        truth = [(1.3 if b == 128 else 1.0) * DataLaw(a, bb, c, 1e5)(s) for a, bb, c in
                 [(0.8, 0.2, 0.3), (0.7, 0.7, 0.6), (0.7, 2.0, 1.0)]]  # fmt: skip
        rows += curve_rows(config(task="pendulum", utd=s, batch_size=b), truth, [400.0, 600.0, 800.0], 3, rng)
    write_run_table(path, rows)


def test_fit_predict_plot_on_a_synthetic_sweep(tmp_path, capsys):
    table, fits_path = tmp_path / "runs.csv", tmp_path / "fits.json"
    _synthetic_sweep(table)
    fits = main(["fit", "--runs", str(table), "--out", str(fits_path), "--raw-returns", "--thresholds", "400", "600",
                 "800", "--resamples", "20", "--delta", "1e9", "--hold-out", "1", "--exclude-sigma", "8"])  # fmt: skip
    saved = json.loads(fits_path.read_text())
    assert saved["batch_law"]["coefficients"]["pendulum"] == pytest.approx(256, rel=0.05)  # 256 is 1.3x faster
    assert [e["status"] for e in saved["data_law"]["per_threshold"]] == ["fitted"] * 3
    assert saved["utd_range"] == [0.25, 4]  # σ = 8 held out
    assert {h["utd"] for h in saved["held_out"]} == {8}
    assert all(abs(h["relative_error"]) < 0.25 for h in saved["held_out"])
    assert fits["budget"]["held_out_thresholds"] == [2]
    rec = main(["predict", "--fits", str(fits_path), "--data", "1.5e5"])
    assert rec["batch_size"] == 256 and 0.25 <= rec["sigma"]
    assert DataLaw(**{k: saved["data_law"]["per_threshold"][-1][k] for k in "abcm"})(rec["sigma"]) == pytest.approx(
        1.5e5, rel=1e-6
    )
    budget_rec = main(["predict", "--fits", str(fits_path), "--budget", "1e16"])
    assert budget_rec["sigma"] == pytest.approx(fits["budget"]["k"] * 1e16 ** fits["budget"]["e"])
    # A sweep that followed these laws keeps them in its own fit instead of refitting constants.
    refit = main(["fit", "--runs", str(table), "--out", str(tmp_path / "refit.json"), "--raw-returns",
                  "--thresholds", "400", "600", "800", "--resamples", "5", "--delta", "1e9",
                  "--hyper-laws", str(fits_path)])  # fmt: skip
    assert refit["batch_law"]["coefficients"] == saved["batch_law"]["coefficients"]
    assert refit["batch_law"]["status"] == f"from {fits_path}"
    made = main(["plot", "--fits", str(fits_path), "--out", str(tmp_path / "plots")])
    assert sorted(p.name for p in made) == ["data_vs_sigma.png", "hyperparameters.png", "pareto.png",
                                            "sigma_star_vs_budget.png"]  # fmt: skip
    assert all(p.stat().st_size > 10_000 for p in made)
    out = capsys.readouterr().out
    assert "critic updates per transition" in out and "held-out σ=8" in out


def test_sweep_grid_and_compute_box_by_hand():
    # 4000 updates at σ = 0.5 -> 8000 transitions; at σ = 8 -> 500, raised to the 1000 floor; rounded up to 8 envs
    assert env_steps_for(0.5, 32_000, 4000, 1000, 8) == 8000
    assert env_steps_for(8.0, 32_000, 4000, 1000, 8) == 1000
    assert env_steps_for(0.01, 32_000, 4000, 1000, 8) == 32_000  # capped by the training length
    assert env_steps_for(0.3, 1001, 0, 0, 8) == 1008  # no compute box: whole vectorized steps
    cells = grid_cells([0.25, 1.0], lambda s: round_batch(300 * s**-0.3), lambda s: round_lr(1e-3 * s**0.1), [64],
                       [0, 1], lambda s: 100)  # fmt: skip
    # batch 300·0.25^-0.3 = 454.7 -> 448 (multiple of 16); lr 1e-3·0.25^0.1 = 8.7055e-4 -> 8.71e-4 (3 figures)
    assert [(c.sigma, c.batch_size, c.lr, c.seed) for c in cells] == [
        (0.25, 448, 0.000871, 0), (0.25, 448, 0.000871, 1), (1.0, 304, 0.001, 0), (1.0, 304, 0.001, 1)
    ]  # fmt: skip


def test_without_evaluations_training_episode_returns_are_used(tmp_path):
    cfg = {"task": "pendulum", "algo": "pql", "num_envs": 4, "seed": 3, "schedule": {"utd": 2.0},
           "buffer": {"batch_size": 32}, "agent": {"critic_lr": 1e-3, "critic_hidden": [128, 64]}}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "metrics.csv").write_text(
        "env_step,wall_seconds,episode_return\n100,1.0,\n200,2.0,-900.5\n300,3.0,nan\n400,4.0,-400.0\n"
    )
    rows = rows_from_run_dir(tmp_path, critic_params=1234)
    assert [(r["env_step"], r["return"]) for r in rows] == [(200, -900.5), (400, -400.0)]
    assert rows[0]["utd"] == 0.5 and rows[0]["critic_width"] == 128 and rows[0]["critic_params"] == 1234
    assert rows[0]["algo"] == "pql" and rows[0]["seed"] == 3 and rows[0]["wall_seconds"] == 2.0
