"""The ``budget --fits FILE`` contract: published (or our own) fits in, budget-optimal UTD per threshold out.

FILE (JSON)::

    {"params": N, "delta": δ, "utd_range": [lo, hi], "utd_grid_points": 100,
     "data_law": {"m": m, "abc": [[a, b, c], ...]},            # one row per threshold, ascending J
     "batch_law": {"exponent": e_B, "coefficients": {"task": B_at_sigma_1, ...}},
     "k_flops": 10, "thresholds": [J, ...], "hold_out": 2}        # optional

D_J(σ) = m·(c + (σ/b)^(−a)); B(σ) = mean over tasks of coefficient·σ^e_B. The output has ``k`` and ``e`` of
σ*(F) = k·F^e and one row per threshold (σ*, D*, C*, F*, B(σ*)). The file is validated before anything is
computed: every failure names the key and says what would be valid.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from parallel_rl.scaling.compute import (
    PAPER_K_FLOPS,
    budget_optimum,
    fit_sigma_of_budget,
    sigma_grid,
)
from parallel_rl.scaling.datalaw import DataLaw


class FitsError(ValueError):
    """A fits file that does not follow the contract; the message names the key."""


def _get(obj: Any, path: str) -> Any:
    node = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FitsError(f"missing key {path!r}")
        node = node[part]
    return node


def _number(value: Any, key: str, positive: bool = True, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FitsError(f"{key!r} must be a finite number, got {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise FitsError(f"{key!r} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def validate_fits(fits: Any) -> dict[str, Any]:
    """Check the contract and return a normalised copy (floats, lists, defaults filled in)."""
    if not isinstance(fits, dict):
        raise FitsError(f"the fits file must hold a JSON object, got {type(fits).__name__}")
    out: dict[str, Any] = {
        "params": _number(_get(fits, "params"), "params"),
        "delta": _number(_get(fits, "delta"), "delta", allow_zero=True),
        "k_flops": _number(fits.get("k_flops", PAPER_K_FLOPS), "k_flops"),
    }
    rng = _get(fits, "utd_range")
    if not isinstance(rng, list) or len(rng) != 2:
        raise FitsError(f"'utd_range' must be [lo, hi], got {rng!r}")
    lo, hi = (_number(v, f"utd_range[{i}]") for i, v in enumerate(rng))
    if lo > hi:
        raise FitsError(f"'utd_range' must have lo <= hi, got {rng!r}")
    out["utd_range"] = [lo, hi]
    points = _get(fits, "utd_grid_points")
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise FitsError(f"'utd_grid_points' must be an integer >= 1 (the σ grid is empty otherwise), got {points!r}")
    out["utd_grid_points"] = points
    m = _number(_get(fits, "data_law.m"), "data_law.m")
    abc = _get(fits, "data_law.abc")
    if not isinstance(abc, list) or not abc:
        raise FitsError(f"'data_law.abc' must be a non-empty list of [a, b, c] rows (one per threshold), got {abc!r}")
    rows = []
    for i, row in enumerate(abc):
        if not isinstance(row, list) or len(row) != 3:
            raise FitsError(f"'data_law.abc[{i}]' must be [a, b, c], got {row!r}")
        a = _number(row[0], f"data_law.abc[{i}][0] (a)")
        b = _number(row[1], f"data_law.abc[{i}][1] (b)")
        c = _number(row[2], f"data_law.abc[{i}][2] (c)", allow_zero=True)
        rows.append([a, b, c])
    out["data_law"] = {"m": m, "abc": rows}
    exponent = _number(_get(fits, "batch_law.exponent"), "batch_law.exponent", positive=False)
    coefs = _get(fits, "batch_law.coefficients")
    if not isinstance(coefs, dict) or not coefs:
        raise FitsError(f"'batch_law.coefficients' must be a non-empty {{task: B_at_sigma_1}} object, got {coefs!r}")
    coefficients = {t: _number(v, f"batch_law.coefficients.{t}") for t, v in coefs.items()}
    out["batch_law"] = {"exponent": exponent, "coefficients": coefficients}
    thresholds = fits.get("thresholds")
    if thresholds is not None:
        if not isinstance(thresholds, list) or len(thresholds) != len(rows):
            raise FitsError(f"'thresholds' must list one J per row of data_law.abc ({len(rows)}), got {thresholds!r}")
        thresholds = [_number(j, f"thresholds[{i}]", positive=False) for i, j in enumerate(thresholds)]
    out["thresholds"] = thresholds
    hold_out = fits.get("hold_out", 2)
    if isinstance(hold_out, bool) or not isinstance(hold_out, int) or not 0 <= hold_out <= len(rows) - 2:
        raise FitsError(f"'hold_out' must be an integer in [0, {len(rows) - 2}] (at least two thresholds are "
                        f"fitted), got {hold_out!r}")  # fmt: skip
    out["hold_out"] = hold_out
    return out


def load_fits(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FitsError(f"fits file not found: {path}")
    try:
        fits = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FitsError(f"{path}: not valid JSON ({e})") from None
    try:
        return validate_fits(fits)
    except FitsError as e:
        raise FitsError(f"{path}: {e}") from None


def batch_law(fits: dict[str, Any]):
    """B(σ) = mean over tasks of coefficient·σ^exponent."""
    exponent, coefs = fits["batch_law"]["exponent"], list(fits["batch_law"]["coefficients"].values())
    return lambda sigma: np.mean([c * np.asarray(sigma, dtype=float) ** exponent for c in coefs], axis=0)


def budget_table(fits: dict[str, Any]) -> dict[str, Any]:
    """σ*, D*, C*, F*, B(σ*) per threshold on the σ grid, and σ*(F) = k·F^e fitted without the top thresholds."""
    fits = validate_fits(fits)
    grid = sigma_grid(*fits["utd_range"], fits["utd_grid_points"])
    m, batch = fits["data_law"]["m"], batch_law(fits)
    rows = []
    for i, (a, b, c) in enumerate(fits["data_law"]["abc"]):
        opt = budget_optimum(grid, DataLaw(a, b, c, m), batch, fits["params"], fits["delta"], fits["k_flops"])
        row = {"threshold_index": i, **opt.to_json()}
        if fits["thresholds"] is not None:
            row["threshold"] = fits["thresholds"][i]
        rows.append(row)
    law = fit_sigma_of_budget([r["budget_star"] for r in rows], [r["sigma_star"] for r in rows], fits["hold_out"])
    for r in rows:
        r["sigma_predicted"] = float(law(r["budget_star"]))
        r["held_out"] = r["threshold_index"] in law.held_out
    return {**law.to_json(), "table": rows, "inputs": fits}
