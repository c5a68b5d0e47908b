"""Importers (qscaled, long CSV, TensorBoard, W&B chart CSV) on small files made here, and the fit's safety checks:
mixed return scales refused, skipped results named with their remedy, learning rates averaged geometrically."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scaling_synthetic import config, curve_rows

from launch.scaling import main
from parallel_rl.scaling.datalaw import DataLaw
from parallel_rl.scaling.fit import fit_laws
from parallel_rl.scaling.runtable import RunTableError, read_run_table, write_run_table


# ---- qscaled -------------------------------------------------------------------------------------------------------
def test_qscaled_layout_becomes_a_run_table(tmp_path, capsys):
    root = tmp_path / "my_sweep"
    for utd, batch, lr in [("0.5", 128, "0.0003"), ("2", 256, "1e-04")]:
        folder = root / f"utd_{utd}" / "Hopper-v4" / "episode.return"
        folder.mkdir(parents=True)
        steps = np.array([1000.0, 2000.0, 3000.0])
        np.save(folder / f"bs_{batch}_lr_{lr}.npy", np.stack([steps, [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], axis=1))
    main(["import", "qscaled", str(root), "--out", str(tmp_path / "t.csv"), "--return-range", "Hopper-v4=0,4000"])
    rows = read_run_table(tmp_path / "t.csv")
    assert len(rows) == 2 * 3 * 2
    first = rows[0]
    assert (first["task"], first["utd"], first["batch_size"], first["lr"], first["seed"]) == ("Hopper-v4", 0.5, 128,
                                                                                             3e-4, 0)  # fmt: skip
    assert (first["env_step"], first["return"], first["return_lo"], first["return_hi"]) == (1000, 1.0, 0.0, 4000.0)
    assert {r["seed"] for r in rows} == {0, 1} and {r["lr"] for r in rows if r["utd"] == 2.0} == {1e-4}
    assert first["critic_params"] is None and first["wall_seconds"] is None  # unknown, not zero
    out = capsys.readouterr().out
    assert "critic_params: missing in 12 of 12 rows; needed for the compute C_J and σ*(F) (or pass --params N)" in out


def test_qscaled_bad_file_name_is_named(tmp_path, capsys):
    folder = tmp_path / "ds" / "utd_1" / "Ant-v4" / "episode.return"
    folder.mkdir(parents=True)
    np.save(folder / "batch128.npy", np.zeros((2, 2)))
    with pytest.raises(SystemExit):
        main(["import", "qscaled", str(tmp_path / "ds"), "--out", str(tmp_path / "o.csv")])
    assert "ds/utd_1/Ant-v4/episode.return/batch128.npy: expected utd_<σ>/<task>/<metric>/bs_<B>_lr_<η>.npy" in (
        capsys.readouterr().err
    )


# ---- long CSV ------------------------------------------------------------------------------------------------------
def _write(path, header, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_with_other_column_names_and_missing_optional_columns(tmp_path, capsys):
    src = _write(tmp_path / "runs.csv", ["env", "sigma", "learning_rate", "seed", "global_step", "eval/return"],
                 [["ant", "1", "3e-4", "0", "100", "12.5"], ["ant", "1", "3e-4", "0", "200", ""],
                  ["ant", "1", "3e-4", "1", "100", "9"]])  # fmt: skip
    main(["import", "csv", str(src), "--out", str(tmp_path / "t.csv"), "--column", "return=eval/return", "--set",
          "batch_size=256"])  # fmt: skip
    rows = read_run_table(tmp_path / "t.csv")
    assert [(r["task"], r["utd"], r["lr"], r["seed"], r["env_step"], r["return"], r["batch_size"]) for r in rows] == [
        ("ant", 1.0, 3e-4, 0, 100, 12.5, 256), ("ant", 1.0, 3e-4, 1, 100, 9.0, 256)]  # fmt: skip
    assert rows[0]["critic_width"] is None and rows[0]["num_envs"] is None
    out = capsys.readouterr().out
    assert "num_envs: missing in 2 of 2 rows; needed for the law D_J(num_envs)" in out
    assert "batch_size: missing" not in out


def test_csv_malformed_line_and_missing_column_are_one_message(tmp_path, capsys):
    src = _write(tmp_path / "bad.csv", ["task", "utd", "seed", "step", "return"],
                 [["a", "1", "0", "100", "1.0"], ["a", "1", "0", "2OO", "2.0"]])  # fmt: skip
    with pytest.raises(SystemExit):
        main(["import", "csv", str(src), "--out", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err.strip()
    assert err == f"error: {src}, line 3: env_step = '2OO' is not a number" and "\n" not in err
    no_seed = _write(tmp_path / "noseed.csv", ["task", "utd", "step", "return"], [["a", "1", "100", "1.0"]])
    with pytest.raises(SystemExit):
        main(["import", "csv", str(no_seed), "--out", str(tmp_path / "t.csv")])
    assert "no column for seed" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()


# ---- TensorBoard ---------------------------------------------------------------------------------------------------
def test_tensorboard_event_files_of_any_library(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    for seed in (0, 1):
        writer = SummaryWriter(str(tmp_path / "logs" / "Isaac-Ant" / f"utd0.25_s{seed}"))
        for it in range(1, 4):
            writer.add_scalar("Train/mean_reward", 10.0 * it + seed, it)
            writer.add_scalar("Loss/value", 0.1, it)
        writer.close()
    pattern = r"(?P<task>[^/]+)/utd(?P<utd>[0-9.]+)_s(?P<seed>[0-9]+)"
    main(["import", "tensorboard", str(tmp_path / "logs"), "--tag", "Train/mean_reward", "--pattern", pattern,
          "--set", "num_envs=4096", "--step-scale", "98304", "--out", str(tmp_path / "t.csv")])  # fmt: skip
    rows = read_run_table(tmp_path / "t.csv")
    assert [(r["task"], r["utd"], r["seed"], r["env_step"], r["return"]) for r in rows if r["seed"] == 1] == [
        ("Isaac-Ant", 0.25, 1, 98304 * it, 10.0 * it + 1) for it in range(1, 4)]  # fmt: skip
    assert all(r["num_envs"] == 4096 and r["wall_seconds"] >= 0 for r in rows)
    with pytest.raises(SystemExit):
        main(["import", "tensorboard", str(tmp_path / "logs"), "--tag", "Eval/return", "--set", "utd=1",
              "--out", str(tmp_path / "u.csv")])  # fmt: skip
    assert "no scalar 'Eval/return'; its scalars are: Loss/value, Train/mean_reward" in capsys.readouterr().err


# ---- W&B chart export ----------------------------------------------------------------------------------------------
def test_wandb_chart_csv(tmp_path, capsys):
    header = ["Step", "ant_utd2_seed3 - eval/return", "ant_utd2_seed3 - eval/return__MIN",
              "ant_utd2_seed3 - eval/return__MAX", "ant_utd0.5_seed3 - eval/return"]  # fmt: skip
    src = _write(tmp_path / "wandb.csv", header, [["1000", "5", "4", "6", ""], ["2000", "7", "6", "8", "3.5"]])
    pattern = r"(?P<task>[a-z]+)_utd(?P<utd>[0-9.]+)_seed(?P<seed>[0-9]+)"
    main(["import", "wandb-csv", str(src), "--pattern", pattern, "--out", str(tmp_path / "t.csv")])
    rows = read_run_table(tmp_path / "t.csv")
    assert sorted((r["utd"], r["env_step"], r["return"], r["seed"]) for r in rows) == [
        (0.5, 2000, 3.5, 3), (2.0, 1000, 5.0, 3), (2.0, 2000, 7.0, 3)]  # fmt: skip
    bad = _write(tmp_path / "bad.csv", header, [["1000", "5", "4", "6", ""], ["2000", "x", "6", "8", "3.5"]])
    with pytest.raises(SystemExit):
        main(["import", "wandb-csv", str(bad), "--pattern", pattern, "--out", str(tmp_path / "u.csv")])
    assert f"{bad}, line 3: 'ant_utd2_seed3 - eval/return': 'x' is not a number" in capsys.readouterr().err


# ---- safety of fit ---------------------------------------------------------------------------------------------------
def _two_task_rows(scale_b: float) -> list[dict]:
    """Tasks a (returns 0-1000) and b (returns scaled by ``scale_b``), one batch size, three σ."""
    rng = np.random.default_rng(0)
    rows = []
    for task, scale in (("a", 1.0), ("b", scale_b)):
        for s in (0.5, 1.0, 2.0):
            truth = [DataLaw(0.8, 0.5, c, 1e4)(s) for c in (0.3, 0.6, 1.0)]
            for r in curve_rows(config(task=task, utd=s), truth, [400.0, 600.0, 800.0], 2, rng, num_evals=15):
                rows.append({**r, "return": r["return"] * scale})
    return rows


def test_mixed_return_scales_are_refused_naming_the_tasks(tmp_path):
    rows = _two_task_rows(scale_b=8.0)
    with pytest.raises(
        RunTableError,
        match=r"tasks on different return scales: b \(returns .* to .*\) have no return "
        r"range.*--return-range TASK=LO,HI for each of a, b.*--no-normalize",
    ):
        fit_laws(rows, [400.0, 600.0, 800.0], num_resamples=3)
    fit_laws(rows, [400.0, 600.0, 800.0], num_resamples=3, normalize=False)  # explicit: raw returns as they are
    both = fit_laws(rows, [400.0, 600.0, 800.0], num_resamples=3, return_ranges={"a": (0, 1000), "b": (0, 8000)})
    assert both["return_range_source"] == {"a": "--return-range", "b": "--return-range"}


def test_every_skipped_result_names_its_reason_and_flag(tmp_path, capsys):
    rows = [{k: v for k, v in r.items() if k not in ("wall_seconds", "critic_params")} for r in _two_task_rows(1.0)]
    table = write_run_table(tmp_path / "t.csv", rows)
    fits = main(["fit", "--runs", str(table), "--out", str(tmp_path / "f.json"), "--thresholds", "400", "600", "800",
                 "--resamples", "3"])  # fmt: skip
    skipped = {s["result"]: s for s in fits["skipped"]}
    assert "--hyper-laws" in skipped["B*(σ) (batch size law)"]["enable"]  # one batch size: the constant fallback
    assert "--delta" in skipped["σ*(F) (budget-optimal UTD)"]["enable"] and "budget" not in fits
    assert "critic_params" in skipped["D_J(σ, N) and B*(σ, N) (model-size laws)"]["reason"]
    out = capsys.readouterr().out
    assert "skipped σ*(F) (budget-optimal UTD): --delta not given" in out and "to get it: --delta" in out
    # Given δ and N, σ*(F) is computed.
    fits = main(["fit", "--runs", str(table), "--out", str(tmp_path / "f.json"), "--thresholds", "400", "600", "800",
                 "--resamples", "3", "--delta", "1e9", "--params", "1e5", "--hold-out", "0"])  # fmt: skip
    assert "budget" in fits and fits["params_source"] == "--params"


def test_predict_without_task_takes_geometric_means_of_learning_rates(tmp_path):
    fits = {"utd_range": [0.5, 2.0], "params": 1e5, "critic_shapes": [], "k_flops": 10.0,
            "batch_law": {"exponent": 0.0, "coefficients": {"a": 100.0, "b": 400.0}},
            "lr_law": {"exponent": 0.0, "coefficients": {"a": 1e-4, "b": 1e-3}},
            "budget": {"k": 1e-9, "e": 0.6, "table": []}}  # fmt: skip
    path = tmp_path / "f.json"
    path.write_text(json.dumps(fits))
    rec = main(["predict", "--fits", str(path), "--budget", "1e15"])
    assert rec["lr"] == pytest.approx(3.16e-4)  # sqrt(1e-4·1e-3), not the arithmetic 5.5e-4
    assert rec["batch_size"] == 208  # sqrt(100·400) = 200, rounded to a multiple of 16
    assert rec["per_task"]["b"]["lr"] == pytest.approx(1e-3)
    assert main(["predict", "--fits", str(path), "--budget", "1e15", "--task", "b"])["lr"] == pytest.approx(1e-3)
