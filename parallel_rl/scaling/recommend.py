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
    if not law["coefficients"]:
        column = "batch_size" if key == "batch_law" else "lr"
        raise ValueError(f"the fits have no {key} (the run table has no {column} column); fit again with "
                         "--hyper-laws FITS from a sweep that recorded it")  # fmt: skip
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


def hyperparameters_at(
    fits: dict[str, Any], sigma: float, task: str | None
) -> tuple[float, float, dict[str, dict[str, float]]]:
    """(batch, lr) at σ for ``task``, or without a task their geometric means over the fitted tasks (learning rates
    of different tasks differ tenfold, so an arithmetic mean would be set by the largest), and every task's values."""
    b_law, lr_law = _law(fits, "batch_law", task), _law(fits, "lr_law", task)
    tasks = sorted(set(b_law.coefficients) & set(lr_law.coefficients))
    per_task = {t: {"batch_size": round_batch(float(b_law(sigma, t))), "lr": round_lr(float(lr_law(sigma, t)))}
                for t in tasks}  # fmt: skip
    if task is not None:
        return float(b_law(sigma, task)), float(lr_law(sigma, task)), per_task
    geo = lambda law: float(np.exp(np.mean([np.log(law(sigma, t)) for t in law.coefficients])))  # noqa: E731
    return geo(b_law), geo(lr_law), per_task


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
    batch, lr, per_task = hyperparameters_at(fits, sigma, task)
    width = width_for_params(shapes, params) if shapes else None
    out.update({
        "sigma": sigma, "extrapolated": not lo <= sigma <= hi, "utd_range": [lo, hi],
        "batch_size": round_batch(float(batch)), "lr": round_lr(float(lr)), "critic_width": width,
        "critic_params": params, "per_task": per_task,
        "across_tasks": None if task is not None else "geometric mean over the fitted tasks (pass --task for one)",
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
    if rec.get("across_tasks") and len(rec.get("per_task", {})) > 1:
        lines.append(f"  (batch size and learning rate: {rec['across_tasks']})")
        for t, v in rec["per_task"].items():
            lines.append(f"    {t}: batch {v['batch_size']}, lr {v['lr']:.3g}")
    if rec["critic_width"] is not None:
        lines.append(f"  critic width: {rec['critic_width']} (about {rec['critic_params']:.3g} parameters)")
    if "compute" in rec:
        lines.append(f"  expected compute to the threshold: {rec['compute']:.3g} FLOPs")
    return "\n".join(lines)


# ---- the (σ, N) laws -----------------------------------------------------------------------------------------------
def price_gpu_hours(
    hours: float, seconds_per_update: float, batch: float, params: float, k_flops: float,
    seconds_per_env_step: float = 0.0,
) -> tuple[float, float]:  # fmt: skip
    """(budget F, δ) in FLOPs from accelerator time: one measured update of ``batch`` samples on ``params`` critic
    parameters costs k_flops·N·B FLOPs of the compute model in ``seconds_per_update``, so an hour is worth
    3600·k_flops·N·B / seconds_per_update FLOPs and a transition δ = seconds_per_env_step / seconds_per_update ·
    k_flops·N·B."""
    for name, v in (("--budget-gpu-hours", hours), ("--seconds-per-update", seconds_per_update)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    flops_per_update = k_flops * params * batch
    return (
        3600.0 * hours * flops_per_update / seconds_per_update,
        seconds_per_env_step / seconds_per_update * flops_per_update,
    )


def _sigma_n_law(fits: dict[str, Any], threshold_index: int) -> dict[str, Any]:
    laws = fits.get("data_law_sigma_n") or []
    if not laws:
        skipped = [s for s in fits.get("skipped", []) if "σ, N" in s["result"]]
        why = f" ({skipped[0]['reason']}; {skipped[0]['enable']})" if skipped else ""
        raise ValueError(f"the fits have no D_J(σ, N){why}")
    return laws[threshold_index]


def recommend_sigma_n(
    fits: dict[str, Any], budget: float | None = None, data: float | None = None, delta: float | None = None,
    threshold_index: int = -1, task: str | None = None, grid_points: int = 161, reach: float = 8.0,
) -> dict[str, Any]:  # fmt: skip
    """Compute-optimal (σ, N) of D_J(σ, N) on a log grid reaching ``reach`` times beyond the (σ, N) that ran: for a
    budget the least D_J with C + δ·D_J <= F (C = k·N·B(σ, N)·σ·D_J); for a data target the least C + δ·D_J with
    D_J <= target. B(σ, N) is the fitted B*(σ, N) when there is one, else B*(σ). The predicted D_J comes with the
    5-95% interval of the bootstrap refits of the law."""
    from parallel_rl.scaling.datalaw import DataLawSigmaN
    from parallel_rl.scaling.hyperparams import BatchLawSigmaN

    if (budget is None) == (data is None):
        raise ValueError("give exactly one of a budget (--budget-flops or --budget-gpu-hours) and --data")
    entry = _sigma_n_law(fits, threshold_index)
    law = DataLawSigmaN(entry["d_min"], entry["a"], entry["alpha"], entry["b"], entry["beta"])
    delta = float(fits.get("delta") or 0.0) if delta is None else float(delta)
    k_flops = float(fits.get("k_flops", 10.0))
    cells = np.array(entry["cells"], dtype=float)
    s_lo, s_hi, n_lo, n_hi = cells[:, 0].min(), cells[:, 0].max(), cells[:, 1].min(), cells[:, 1].max()
    sig = np.logspace(np.log10(s_lo / reach), np.log10(s_hi * reach), grid_points)
    par = np.logspace(np.log10(n_lo / reach), np.log10(n_hi * reach), grid_points)
    S, N = np.meshgrid(sig, par, indexing="ij")
    b_fit = fits.get("batch_law_sigma_n") or {}
    if "a" in b_fit:
        batch = BatchLawSigmaN(b_fit["a"], b_fit["alpha"], b_fit["b"], b_fit["c"])(S, N)
        batch_rule = "B*(σ, N)"
    else:
        batch = np.vectorize(lambda s: hyperparameters_at(fits, float(s), task)[0])(S)
        status = fits["batch_law"].get("status", "fitted")
        batch_rule = "the runs' constant batch size" if status.startswith("constant") else f"B*(σ) ({status})"
    D = law(S, N)
    F = k_flops * N * batch * S * D + delta * D
    if budget is not None:
        if not budget > 0:
            raise ValueError(f"the budget must be > 0 FLOPs, got {budget}")
        ok = F <= budget
        if not ok.any():
            raise ValueError(f"budget {budget:.4g} FLOPs is below the cheapest (σ, N) on the grid ({F.min():.4g} FLOPs "
                             f"to J = {entry['threshold']:.4g})")  # fmt: skip
        i = np.unravel_index(np.argmin(np.where(ok, D, np.inf)), D.shape)
    else:
        if not data > law.d_min:
            raise ValueError(f"data target {data:.4g} is at or below D_min = {law.d_min:.4g} env steps for "
                             f"J = {entry['threshold']:.4g}: unreachable")  # fmt: skip
        ok = D <= data
        if not ok.any():
            raise ValueError(f"no (σ, N) within {reach}x of the runs reaches J = {entry['threshold']:.4g} in "
                             f"{data:.4g} env steps")  # fmt: skip
        i = np.unravel_index(np.argmin(np.where(ok, F, np.inf)), F.shape)
    sigma, params = float(S[i]), float(N[i])
    edge = [name for name, k, size in (("σ", i[0], S.shape[0]), ("N", i[1], S.shape[1])) if k in (0, size - 1)]
    draws = [DataLawSigmaN(*b)(sigma, params) for b in entry.get("bootstrap", [])]
    finite = np.array([d for d in draws if np.isfinite(d)])
    interval = [float(np.quantile(finite, 0.05)), float(np.quantile(finite, 0.95))] if finite.size >= 5 else None
    b_val, lr, per_task = hyperparameters_at(fits, sigma, task)
    if "a" in b_fit:
        b_val = float(batch[i])
    shapes = fits.get("critic_shapes") or []
    return {
        "mode": "budget" if budget is not None else "data", "budget": budget, "data": data, "delta": delta,
        "threshold": entry["threshold"], "sigma": sigma, "critic_params": params,
        "critic_width": width_for_params(shapes, params) if shapes else None,
        "batch_size": round_batch(float(b_val)), "batch_rule": batch_rule, "lr": round_lr(float(lr)),
        "per_task": per_task, "predicted_data": float(D[i]), "data_interval": interval,
        "bootstrap_refits": int(finite.size), "compute": float(F[i] - delta * D[i]), "total": float(F[i]),
        "extrapolated": bool(not (s_lo <= sigma <= s_hi and n_lo <= params <= n_hi)),
        "at_grid_edge": edge, "reach": reach,
        "ran": {"sigma": [float(s_lo), float(s_hi)], "critic_params": [float(n_lo), float(n_hi)]},
        "across_tasks": None if task is not None else "geometric mean over the fitted tasks (pass --task for one)",
    }  # fmt: skip


def format_sigma_n(rec: dict[str, Any]) -> str:
    head = (f"budget {rec['budget']:.4g} FLOPs (δ = {rec['delta']:.3g} FLOPs per transition)" if rec["mode"] == "budget"
            else f"data target {rec['data']:.4g} env steps")  # fmt: skip
    lines = [f"{head}, J = {rec['threshold']:.4g}: compute-optimal (σ, N) of D_J(σ, N)"]
    flag = ""
    if rec["extrapolated"]:
        r = rec["ran"]
        flag = (f"  (EXTRAPOLATED: the runs covered σ {r['sigma'][0]:.4g}..{r['sigma'][1]:.4g}, N "
                f"{r['critic_params'][0]:.4g}..{r['critic_params'][1]:.4g})")  # fmt: skip
    lines.append(f"  σ (critic updates per transition): {rec['sigma']:.4g}{flag}")
    if rec.get("at_grid_edge"):
        where = " and ".join(rec["at_grid_edge"])
        lines.append(f"  warning: {where} at the edge of the search ({rec['reach']:g}x beyond the runs): the optimum "
                     "lies further out, where the law is an extrapolation")  # fmt: skip
    lines.append(f"  batch size: {rec['batch_size']} (from {rec['batch_rule']})")
    lines.append(f"  learning rate: {rec['lr']:.3g}")
    width = f"{rec['critic_width']}" if rec["critic_width"] is not None else "n/a (no critic widths in the runs)"
    lines.append(f"  critic width: {width} (about {rec['critic_params']:.3g} parameters)")
    band = rec["data_interval"]
    band_text = (f", 90% bootstrap interval [{band[0]:.4g}, {band[1]:.4g}] over {rec['bootstrap_refits']} refits"
                 if band else " (too few bootstrap refits for an interval)")  # fmt: skip
    lines.append(f"  predicted D_J: {rec['predicted_data']:.4g} env steps{band_text}")
    lines.append(f"  compute C_J {rec['compute']:.3g} FLOPs, total C + δ·D {rec['total']:.3g} FLOPs")
    if rec.get("across_tasks") and len(rec.get("per_task", {})) > 1:
        lines.append(f"  (batch size and learning rate: {rec['across_tasks']})")
    return "\n".join(lines)
