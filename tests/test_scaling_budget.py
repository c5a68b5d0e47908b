"""Compute, Pareto frontier, budget-optimal UTD and the ``budget --fits`` contract (worked example, bad input)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from launch.scaling import main
from parallel_rl.nets import Actor, EnsembleCritic
from parallel_rl.scaling.budget import FitsError, budget_table, load_fits, validate_fits
from parallel_rl.scaling.compute import (
    compute_to_threshold,
    flops_per_param_sample,
    mlp_param_count,
    pareto_mask,
)

# The Gym/SAC worked example of the reference (Rybkin et al. 2025): ten thresholds J = 300 ... 800.
GYM_FITS = {
    "params": 1.5e5,
    "delta": 4e9,
    "utd_range": [0.25, 16],
    "utd_grid_points": 100,
    "data_law": {
        "m": 2.105e5,
        "abc": [
            [0.7572, 0.11823, 0.31918],
            [0.8240, 0.18996, 0.37011],
            [0.7830, 0.27005, 0.40915],
            [0.7521, 0.35676, 0.46996],
            [0.7448, 0.46362, 0.52768],
            [0.6912, 0.66936, 0.56519],
            [0.7014, 0.91035, 0.66747],
            [0.5795, 1.59090, 0.65879],
            [0.7559, 1.62825, 0.89902],
            [0.7004, 2.28952, 1.03081],
        ],
    },  # fmt: skip
    "batch_law": {
        "exponent": -0.310,
        "coefficients": {"Ant": 416, "HalfCheetah": 412, "Humanoid": 313, "Walker2d": 323},
    },  # fmt: skip
}


def test_gym_worked_example_through_the_cli(tmp_path):
    fits, out = tmp_path / "gym.json", tmp_path / "budget.json"
    fits.write_text(json.dumps(GYM_FITS))
    main(["budget", "--fits", str(fits), "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["k"] == pytest.approx(2.62e-9, rel=0.03)
    assert result["e"] == pytest.approx(0.62, abs=0.01)
    j800 = result["table"][-1]
    assert j800["sigma_star"] == pytest.approx(6.35, rel=0.02)
    assert j800["data_star"] == pytest.approx(3.20e5, rel=0.02)
    assert j800["budget_star"] == pytest.approx(1.91e15, rel=0.02)
    assert j800["held_out"] and not result["table"][7]["held_out"]
    assert result["held_out_thresholds"] == [8, 9]


def test_budget_row_is_the_hand_computation():
    """J = 800 at σ* by hand: D = m(c + (σ/b)^-a), B = mean coefficient · σ^-0.31, C = 10·N·B·σ·D, F = C + δD."""
    row = budget_table(GYM_FITS)["table"][-1]
    s = row["sigma_star"]
    a, b, c = GYM_FITS["data_law"]["abc"][-1]
    data = 2.105e5 * (c + (s / b) ** -a)
    batch = np.mean([416, 412, 313, 323]) * s**-0.31
    compute = 10 * 1.5e5 * batch * s * data
    assert row["data_star"] == pytest.approx(data)
    assert row["batch_at_sigma_star"] == pytest.approx(batch)
    assert row["compute_star"] == pytest.approx(compute)
    assert row["budget_star"] == pytest.approx(compute + 4e9 * data)
    # and it is the grid minimum: its neighbours on the 100-point grid cost more
    grid = np.logspace(np.log10(0.25), np.log10(16), 100)
    i = int(np.argmin(np.abs(grid - s)))
    for nb in (grid[i - 1], grid[i + 1]):
        d = 2.105e5 * (c + (nb / b) ** -a)
        assert 10 * 1.5e5 * np.mean([416, 412, 313, 323]) * nb**-0.31 * nb * d + 4e9 * d > row["budget_star"]


def _without(path: str) -> dict:
    fits = copy.deepcopy(GYM_FITS)
    *parents, last = path.split(".")
    node = fits
    for p in parents:
        node = node[p]
    del node[last]
    return fits


def _with(path: str, value) -> dict:
    fits = copy.deepcopy(GYM_FITS)
    *parents, last = path.split(".")
    node = fits
    for p in parents:
        node = node[p]
    node[last] = value
    return fits


@pytest.mark.parametrize(
    "fits, named",
    [
        (_without("params"), "'params'"),
        (_without("delta"), "'delta'"),
        (_without("utd_range"), "'utd_range'"),
        (_without("utd_grid_points"), "'utd_grid_points'"),
        (_without("data_law.m"), "'data_law.m'"),
        (_without("data_law.abc"), "'data_law.abc'"),
        (_without("batch_law"), "'batch_law.exponent'"),
        (_without("batch_law.coefficients"), "'batch_law.coefficients'"),
        (_with("params", -1.5e5), "'params' must be > 0"),
        (_with("delta", -4e9), "'delta' must be >= 0"),
        (_with("utd_range", [-1, 16]), "'utd_range[0]' must be > 0"),
        (_with("data_law.m", 0), "'data_law.m' must be > 0"),
        (_with("data_law.abc", [[0.7, -0.1, 0.3]]), "'data_law.abc[0][1] (b)' must be > 0"),
        (_with("batch_law.coefficients", {"Ant": -416}), "'batch_law.coefficients.Ant' must be > 0"),
        (_with("utd_grid_points", 0), "'utd_grid_points'"),
        (_with("data_law.abc", []), "'data_law.abc' must be a non-empty list"),
        (_with("batch_law.coefficients", {}), "'batch_law.coefficients' must be a non-empty"),
        (_with("utd_range", [16, 0.25]), "'utd_range' must have lo <= hi"),
    ],
)
def test_bad_fits_fail_naming_the_key(fits, named):
    with pytest.raises(FitsError) as err:
        validate_fits(fits)
    assert named in str(err.value)


def test_bad_fits_file_fails_in_the_cli_with_the_file_and_key(tmp_path, capsys):
    path = tmp_path / "fits.json"
    path.write_text(json.dumps(_without("data_law.m")))
    with pytest.raises(SystemExit) as exit_info:
        main(["budget", "--fits", str(path), "--out", str(tmp_path / "out.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'data_law.m'" in err
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(FitsError, match="not found"):
        load_fits(tmp_path / "missing.json")


def test_pareto_mask_by_hand():
    data = [1.0, 2.0, 3.0, 2.5, 4.0]
    compute = [5.0, 3.0, 1.0, 3.5, 1.0]
    # (2.5, 3.5) is dominated by (2, 3); (4, 1) by (3, 1).
    assert pareto_mask(data, compute).tolist() == [True, True, True, False, False]


def test_compute_to_threshold_by_hand():
    assert compute_to_threshold(2.0, 1e5, 256, 1e6) == pytest.approx(10 * 1e6 * 256 * 2.0 * 1e5)
    assert compute_to_threshold(2.0, 1e5, 256, 1e6, k_flops=16) == pytest.approx(16 * 1e6 * 256 * 2.0 * 1e5)


def test_param_and_flop_counts_follow_the_network_shapes():
    critic = EnsembleCritic(17, 6, (64, 32), num_atoms=51, members=2)
    actor = Actor(17, 6, (32, 32))
    n_critic = sum(p.numel() for p in critic.parameters())
    n_actor = sum(p.numel() for p in actor.parameters())
    assert mlp_param_count(23, (64, 32), 51, members=2) == n_critic
    assert mlp_param_count(17, (32, 32), 6) == n_actor
    # TD3 with delayed policy updates: (6N + 2N + 2A + 0.5(6A + 6N)) / N FLOPs per critic parameter per sample
    assert flops_per_param_sample(n_critic, n_actor, 0.5) == pytest.approx((11 * n_critic + 5 * n_actor) / n_critic)


def test_delta_from_wall_clock_by_hand():
    """Runs whose training time is exactly steps·(t_env + t_sample·σ·B): δ = k·N·t_env/t_sample."""
    from parallel_rl.scaling.fit import estimate_delta

    t_env, t_sample, n = 2e-3, 1e-5, 5000
    rows = []
    for sigma, batch in [(0.25, 128), (1.0, 256), (4.0, 64)]:
        for steps in (1000, 2000):
            rows.append({"task": "t", "utd": sigma, "batch_size": batch, "lr": 1e-3, "critic_params": n, "seed": 0,
                         "env_step": steps, "wall_seconds": steps * (t_env + t_sample * sigma * batch)})  # fmt: skip
    assert estimate_delta(rows, k_flops=10) == pytest.approx(10 * n * t_env / t_sample)
    assert estimate_delta([r for r in rows if r["utd"] == 1.0], k_flops=10) is None  # one σ·B: not separable
