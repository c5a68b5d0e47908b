"""Recommendations from a ``fit`` output: (σ, batch, lr, critic width) for a compute budget or a data target.

- Budget F: σ = σ*(F) = k·F^e (fitted at the sweep's critic size), batch and lr from B*(σ), η*(σ); the largest
  threshold whose budget-optimal cost fits in F is reported beside it.
- Data target D₀ at threshold J: with a D_J(σ, N) law, the compute-optimal (σ*, N*) in closed form and the critic
  width whose parameter count is nearest N*; otherwise the σ at which D_J(σ) = D₀ at the sweep's critic size.

Values outside the σ range that was run are extrapolations and are flagged as such.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from parallel_rl.scaling.compute import compute_to_threshold
from parallel_rl.scaling.datalaw import DataLaw, DataLawSigmaN
from parallel_rl.scaling.hyperparams import SharedPowerLaw, round_batch, round_lr


def _law(fits: dict[str, Any], key: str, task: str | None) -> SharedPowerLaw:
    law = fits.get(key)
    if not law or "exponent" not in law or "coefficients" not in law:
        raise ValueError(f"the fits have no {key!r} (exponent and coefficients); run `fit` on a sweep")
    if task is not None and task not in law["coefficients"]:
        raise ValueError(f"task {task!r} not in {key}; fitted tasks: {', '.join(law['coefficients'])}")
    return SharedPowerLaw(float(law["exponent"]), {t: float(c) for t, c in law["coefficients"].items()})


def width_for_params(shapes: list[list[int]], params: float) -> int:
    """Critic width with about ``params`` parameters, from the (width, params) pairs that ran: a power law through
    them in log-log (params ∝ width² for one pair), rounded to a multiple of 8."""
    w = np.array([s[0] for s in shapes], dtype=float)
    p = np.array([s[1] for s in shapes], dtype=float)
    if len(np.unique(w)) >= 2:
        slope, icpt = np.polyfit(np.log(w), np.log(p), 1)
    else:
        slope, icpt = 2.0, float(np.log(p[0]) - 2.0 * np.log(w[0]))
    width = math.exp((math.log(params) - icpt) / slope)
    return max(8, int(round(width / 8)) * 8)


def recommend(
    fits: dict[str, Any], budget: float | None = None, data: float | None = None, threshold_index: int = -1,
    task: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Recommended settings; exactly one of ``budget`` and ``data``."""
    if (budget is None) == (data is None):
        raise ValueError("give exactly one of --budget (FLOPs) and --data (env steps)")
    lo, hi = fits["utd_range"]
    shapes = fits.get("critic_shapes") or []
    params = float(fits["params"])
    out: dict[str, Any] = {}
    if budget is not None:
        if not budget > 0:
            raise ValueError(f"--budget must be > 0 FLOPs, got {budget}")
        b = fits.get("budget")
        if not b:
            raise ValueError("the fits have no σ*(F) law (no δ, or fewer than 2 fitted thresholds)")
        sigma = float(b["k"] * budget ** b["e"])
        out.update({"mode": "budget", "budget": budget, "sigma_law": f"σ*(F) = {b['k']:.4g}·F^{b['e']:.4g}"})
        affordable = [r for r in b["table"] if r["budget_star"] <= budget]
        out["reaches_threshold"] = affordable[-1].get("threshold") if affordable else None
    else:
        if not data > 0:
            raise ValueError(f"--data must be > 0 env steps, got {data}")
        per = fits["data_law"]["per_threshold"]
        fitted = [e for e in per if e.get("status") == "fitted"]
        if not fitted:
            raise ValueError("the fits have no fitted data law")
        entry = fitted[threshold_index]
        out.update({"mode": "data", "data": data, "threshold": entry["threshold"]})
        law2 = next((x for x in fits.get("data_law_sigma_n") or [] if x and x.get("threshold") == entry["threshold"]
                     and "d_min" in x), None)  # fmt: skip
        if law2 is not None:
            law_n = DataLawSigmaN(law2["d_min"], law2["a"], law2["alpha"], law2["b"], law2["beta"])
            sigma, params = law_n.compute_optimal(data)
            out["rule"] = "compute-optimal split of D_J(σ, N)"
        else:
            sigma = DataLaw(entry["a"], entry["b"], entry["c"], entry["m"]).inverse(data)
            out["rule"] = "σ where D_J(σ) = data at the sweep's critic size"
            if not math.isfinite(sigma):
                raise ValueError(f"data target {data:.4g} is below D_min = {entry['d_min']:.4g} env steps for "
                                 f"J = {entry['threshold']:.4g}: more UTD alone cannot reach it")  # fmt: skip
    batch = _law(fits, "batch_law", task)(sigma, task)
    lr = _law(fits, "lr_law", task)(sigma, task)
    width = width_for_params(shapes, params) if shapes else None
    out.update({
        "sigma": sigma, "extrapolated": not lo <= sigma <= hi, "utd_range": [lo, hi],
        "batch_size": round_batch(float(batch)), "lr": round_lr(float(lr)), "critic_width": width,
        "critic_params": params,
    })  # fmt: skip
    if out["mode"] == "data":
        out["compute"] = float(compute_to_threshold(sigma, data, batch, params, fits.get("k_flops", 10.0)))
    return out


def format_recommendation(rec: dict[str, Any]) -> str:
    lines = []
    if rec["mode"] == "budget":
        lines.append(f"budget {rec['budget']:.4g} FLOPs ({rec['sigma_law']})")
        if rec.get("reaches_threshold") is not None:
            lines.append(f"  highest threshold whose budget-optimal cost fits: J = {rec['reaches_threshold']:.4g}")
    else:
        lines.append(f"data target {rec['data']:.4g} env steps to J = {rec['threshold']:.4g} ({rec['rule']})")
    flag = "  (EXTRAPOLATED: outside the σ range that ran, {:.4g}..{:.4g})".format(*rec["utd_range"])
    lines.append(f"  σ (critic updates per transition): {rec['sigma']:.4g}" + (flag if rec["extrapolated"] else ""))
    lines.append(f"  batch size: {rec['batch_size']}")
    lines.append(f"  learning rate: {rec['lr']:.3g}")
    if rec["critic_width"] is not None:
        lines.append(f"  critic width: {rec['critic_width']} (about {rec['critic_params']:.3g} parameters)")
    if "compute" in rec:
        lines.append(f"  expected compute to the threshold: {rec['compute']:.3g} FLOPs")
    return "\n".join(lines)
