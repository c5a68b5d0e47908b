"""The paper's own Gym runs (a committed subset of prestonfu/qscaled's data) reproduce its published fits."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from launch.scaling import main
from parallel_rl.scaling.crossing import crossing_table
from parallel_rl.scaling.fit import load_rows, resolve_return_ranges
from parallel_rl.scaling.runtable import curves, normalize_returns

SUBSET = Path(__file__).parent / "data" / "qscaled_gym_subset.zip"
# Published Gym/SAC fits (Rybkin et al. 2025; REFERENCE.md): shared slopes, B*(σ = 1) per task, and the data law's
# (a, b, c) per threshold J = 1000 - logspace(log10 700, log10 200, 10) on gym_ours with m = 2.105e5.
ALPHA_B, ALPHA_LR = 0.310, 0.285
BATCH_AT_1 = {"Ant-v4": 416, "HalfCheetah-v4": 412, "Humanoid-v4": 313, "Walker2d-v4": 323}
PUBLISHED_ABC = [(0.7572, 0.11823, 0.31918), (0.8240, 0.18996, 0.37011), (0.7830, 0.27005, 0.40915),
                 (0.7521, 0.35676, 0.46996), (0.7448, 0.46362, 0.52768), (0.6912, 0.66936, 0.56519),
                 (0.7014, 0.91035, 0.66747), (0.5795, 1.59090, 0.65879), (0.7559, 1.62825, 0.89902),
                 (0.7004, 2.28952, 1.03081)]  # fmt: skip
# qscaled's own shared-slope batch law on the full sweep (experiments/outputs/grid_proposed_fits/gym_sweep).
QSCALED_LOG10_BATCH_AT_1 = {"Ant-v4": 2.6189244030305345, "HalfCheetah-v4": 2.6149104523286484,
                            "Humanoid-v4": 2.4957687292062407, "Walker2d-v4": 2.50891726620878}  # fmt: skip
QSCALED_BATCH_LAW = {
    "exponent": -0.3096094744219379,
    "coefficients": {t: 10**v for t, v in QSCALED_LOG10_BATCH_AT_1.items()},
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qscaled") / "runs"
    record = main(["import", "qscaled", str(SUBSET), "--out", str(out)])
    assert sorted(record) == ["gym_ours", "gym_sweep"]
    return out


@pytest.fixture(scope="module")
def sweep_fit(imported, tmp_path_factory) -> dict:
    """``fit`` with its defaults on the sweep (bootstrap seed 0, 100 resamples)."""
    return main(["fit", "--runs", str(imported / "gym_sweep.csv"), "--out",
                 str(tmp_path_factory.mktemp("fits") / "sweep.json")])  # fmt: skip


def test_hyperparameter_laws_of_the_gym_sweep_with_the_defaults(sweep_fit):
    """α_B, α_η and B*(σ = 1) per task from the grid search (every 5th logged step of every seed)."""
    fits = sweep_fit
    assert fits["method"] == "rybkin2025"
    assert abs(-fits["batch_law"]["exponent"] - ALPHA_B) < 0.02, fits["batch_law"]["exponent"]
    assert abs(-fits["lr_law"]["exponent"] - ALPHA_LR) < 0.02, fits["lr_law"]["exponent"]
    for task, batch in BATCH_AT_1.items():
        assert fits["batch_law"]["coefficients"][task] == pytest.approx(batch, rel=0.05), task
    # The robust variant's geometric per-group averaging is what moved α_B to 0.34 before (kept as an option).
    assert fits["batch_law"]["average"] == "arithmetic"


def test_data_law_and_budget_of_gym_ours(imported, tmp_path):
    """D_J(σ) per threshold equals the published fits to 4 digits; with qscaled's batch law (N = 1.5e5, δ = 4e9)
    σ*(F) = 2.62e-9·F^0.62. (With our own refit of the batch law the grid argmin of σ* moves for some thresholds:
    see README, 'The paper's Gym numbers'.)"""
    laws = tmp_path / "qscaled_batch_law.json"
    laws.write_text(json.dumps({"batch_law": QSCALED_BATCH_LAW}))
    fits = main(["fit", "--runs", str(imported / "gym_ours.csv"), "--out", str(tmp_path / "ours.json"), "--hyper-laws",
                 str(laws), "--params", "1.5e5", "--delta", "4e9", "--resamples", "5"])  # fmt: skip
    assert fits["data_law"]["m"] == pytest.approx(2.105e5, rel=1e-3)
    np.testing.assert_allclose(fits["data_law"]["abc"], PUBLISHED_ABC, rtol=2e-4)
    assert fits["budget"]["k"] == pytest.approx(2.62e-9, rel=0.10)
    assert fits["budget"]["e"] == pytest.approx(0.62, abs=0.02)
    assert fits["delta_source"] == "given" and fits["params_source"] == "--params"


def test_sweep_laws_are_the_papers_procedure_by_hand(imported, sweep_fit):
    """The default fit's B*(σ) and η*(σ) equal the paper's procedure redone here from the same bootstrap crossing
    times (seed 0, 100 resamples, threshold 800, logged steps): per (task, σ, other value) the argmin per resample
    (never reached = +inf, so an all-unreached resample picks the smallest value, as argmin does in qscaled),
    averaged arithmetically over resamples and other values per (task, σ), then log10 target = exponent·log10 σ +
    intercept per task by least squares. A geometric or per-group average is what moved α_B to 0.34 before; what
    is left against the published 0.310 is the bootstrap's random draw (benchmarks/scaling/qscaled/README.md)."""
    rows = load_rows([imported / "gym_sweep.csv"])
    ranges, _ = resolve_return_ranges(rows)
    crossings = crossing_table(curves(normalize_returns(rows, ranges)), [800.0], 100, 0, interpolate=False)
    for axis, law in (("batch_size", "batch_law"), ("lr", "lr_law")):
        other = "lr" if axis == "batch_size" else "batch_size"
        groups: dict[tuple, list] = defaultdict(list)
        for key in crossings:
            groups[(key.task, key.utd, getattr(key, other))].append(key)
        picked: dict[tuple, list[np.ndarray]] = defaultdict(list)
        for (task, utd, _), keys in groups.items():
            keys.sort(key=lambda k: getattr(k, axis))
            times = np.stack([crossings[k].boot[:, 0] for k in keys], axis=1)  # [resamples, values]
            values = np.array([getattr(k, axis) for k in keys], dtype=float)
            picked[(task, utd)].append(values[np.argmin(times, axis=1)])
        cells = sorted(picked)
        tasks = sorted({t for t, _ in cells})
        design = np.zeros((len(cells), 1 + len(tasks)))
        target = np.zeros(len(cells))
        for i, (task, utd) in enumerate(cells):
            design[i, 0], design[i, 1 + tasks.index(task)] = np.log10(utd), 1.0
            target[i] = np.log10(np.concatenate(picked[(task, utd)]).mean())
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        fitted = sweep_fit[law]
        assert fitted["exponent"] == pytest.approx(coef[0], rel=1e-9), law
        for i, task in enumerate(tasks):
            assert fitted["coefficients"][task] == pytest.approx(10 ** coef[1 + i], rel=1e-9), (law, task)
        got = {(p["task"], p["utd"]): p["best"] for p in fitted["points"]}
        assert got == pytest.approx({c: 10**t for c, t in zip(cells, target)}, rel=1e-9), law
