"""From run tables to one JSON of fitted laws: crossing times, B*(σ), η*(σ), D_J(σ) (and D_J(σ, N), B*(σ, N) when
several critic sizes ran), compute, and the budget-optimal σ*(F).

The output is a superset of the ``budget --fits`` contract (params, delta, utd_range, utd_grid_points, data_law,
batch_law), so our own fits and published ones go through the same budget code.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parallel_rl.scaling.budget import budget_table
from parallel_rl.scaling.compute import PAPER_K_FLOPS
from parallel_rl.scaling.crossing import CrossingResult, crossing_table
from parallel_rl.scaling.datalaw import DataLaw, fit_data_law, fit_data_law_sigma_n
from parallel_rl.scaling.hyperparams import (
    SharedPowerLaw,
    bootstrap_argmins,
    fit_batch_law_sigma_n,
    fit_hyperparameter_law,
)
from parallel_rl.scaling.runtable import (
    RUN_TABLE_NAME,
    ConfigKey,
    RunTableError,
    concat_run_tables,
    curves,
    normalize_returns,
)


def run_table_paths(sources: Iterable[str | Path]) -> list[Path]:
    """CSV files as given; a directory contributes every ``runs/*/run_table.csv`` below it (a sweep), else its own
    ``run_table.csv`` (a run directory)."""
    paths: list[Path] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            found = sorted(src.glob(f"runs/*/{RUN_TABLE_NAME}")) or sorted(src.glob(RUN_TABLE_NAME))
            if not found:
                raise RunTableError(f"{src}: no {RUN_TABLE_NAME} in it or in its runs/*/ (not a sweep or run dir)")
            paths += found
        else:
            paths.append(src)
    return paths


def load_rows(sources: Iterable[str | Path]) -> list[dict[str, Any]]:
    return concat_run_tables(run_table_paths(sources))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _crossing_record(key: ConfigKey, res: CrossingResult) -> dict[str, Any]:
    return {"task": key.task, "algo": key.algo, "utd": key.utd, "batch_size": key.batch_size, "lr": key.lr,
            "critic_width": key.critic_width, "critic_params": key.critic_params, "seeds": res.num_seeds,
            "point": [_finite_or_none(x) for x in res.point], "mean": [_finite_or_none(x) for x in res.mean],
            "std": [_finite_or_none(x) for x in res.std], "reached": res.reached.tolist()}  # fmt: skip


def _law_or_constant(points, keys: Sequence[ConfigKey], axis: str) -> tuple[SharedPowerLaw, str]:
    """The shared power law when the sweep varied ``axis`` at two or more σ; otherwise the constant the runs used
    (exponent 0), so downstream compute still has a batch size."""
    try:
        return fit_hyperparameter_law(points), "fitted"
    except ValueError as e:
        per_task: dict[str, list[float]] = defaultdict(list)
        for k in keys:
            per_task[k.task].append(float(getattr(k, axis)))
        coefs = {t: float(np.exp(np.mean(np.log(v)))) for t, v in per_task.items()}
        return SharedPowerLaw(0.0, coefs, float("nan"), 0), f"constant (not fitted: {e})"


def best_crossings(
    crossings: Mapping[ConfigKey, CrossingResult], j: int, exclude_sigma: Sequence[float] = ()
) -> dict[tuple[str, float, int], tuple[float, float, ConfigKey]]:
    """Per (task, σ, critic params): the smallest crossing time at threshold j over the batch/lr configurations that
    ran there (one configuration when the sweep took batch and lr from the laws), with its bootstrap std."""
    best: dict[tuple[str, float, int], tuple[float, float, ConfigKey]] = {}
    for key, res in crossings.items():
        if any(math.isclose(key.utd, s, rel_tol=1e-9) for s in exclude_sigma):
            continue
        group = (key.task, key.utd, key.critic_params)
        d = float(res.point[j])
        if group not in best or d < best[group][0]:
            best[group] = (d, float(res.std[j]), key)
    return best


def estimate_delta(rows: Sequence[Mapping[str, Any]], k_flops: float) -> float | None:
    """δ that prices one transition as these runs did: per critic size N, regress training seconds per transition on
    the samples updated per transition, seconds/transition = t_env + t_sample·σ·B; one sample costs k_flops·N FLOPs,
    so a transition's time is worth δ = k_flops·N·t_env/t_sample FLOPs. None when the runs cannot separate the two
    (a single σ·B, or a fit without a positive intercept and slope)."""
    final: dict[tuple, tuple[float, float]] = {}
    for r in rows:
        run = (r["task"], r["utd"], r["batch_size"], r["lr"], r["critic_params"], r["seed"])
        if run not in final or r["env_step"] > final[run][0]:
            final[run] = (float(r["env_step"]), float(r["wall_seconds"]))
    groups: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for (_t, utd, batch, _lr, params, _s), (steps, secs) in final.items():
        if steps > 0 and math.isfinite(secs):
            groups[params].append((utd * batch, secs / steps))
    deltas = []
    for params, pts in groups.items():
        samples = np.array([p[0] for p in pts])
        if len(np.unique(samples)) < 2:
            continue
        t_sample, t_env = np.polyfit(samples, np.array([p[1] for p in pts]), 1)
        if t_sample > 0 and t_env > 0:
            deltas.append(k_flops * params * t_env / t_sample)
    return float(np.exp(np.mean(np.log(deltas)))) if deltas else None


def fit_laws(
    rows: Sequence[Mapping[str, Any]],
    thresholds: Sequence[float],
    return_ranges: Mapping[str, tuple[float, float]] | None = None,
    hyper_threshold: int = -1,
    num_resamples: int = 100,
    seed: int = 0,
    delta: float | None = None,
    k_flops: float = PAPER_K_FLOPS,
    hold_out: int = 2,
    exclude_sigma: Sequence[float] = (),
    utd_grid_points: int = 100,
    log_space: bool = True,
    hyper_laws: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ``fit`` writes. ``exclude_sigma`` keeps those σ out of every law and reports the data law's
    prediction there against the measured crossing time (the held-out extrapolation test). ``log_space`` fits the
    data law to log D (see ``fit_data_law``). ``hyper_laws`` (a earlier fit's output) supplies B*(σ) and η*(σ)
    when the runs took their batch size and learning rate from it."""
    thresholds = [float(j) for j in thresholds]
    if not thresholds or any(b <= a for a, b in zip(thresholds, thresholds[1:])):
        raise ValueError(f"thresholds must be a non-empty ascending list, got {thresholds}")
    if not rows:
        raise RunTableError("the run table is empty")
    ranges = dict(return_ranges or {})
    table = normalize_returns(rows, ranges)
    crossings = crossing_table(curves(table), thresholds, num_resamples, seed)
    keys = [k for k in crossings if not any(math.isclose(k.utd, s, rel_tol=1e-9) for s in exclude_sigma)]
    fitted_crossings = {k: crossings[k] for k in keys}
    out: dict[str, Any] = {
        "data_law_loss": "squared error of log D" if log_space else "squared error of D / m",
        "thresholds_requested": thresholds,
        "return_ranges": {t: list(v) for t, v in ranges.items() if any(k.task == t for k in crossings)},
        "tasks": sorted({k.task for k in crossings}),
        "crossings": [_crossing_record(k, r) for k, r in crossings.items()],
        "excluded_sigma": list(exclude_sigma),
        "k_flops": k_flops,
    }

    # Hyperparameter laws.
    hj = hyper_threshold if hyper_threshold >= 0 else len(thresholds) + hyper_threshold
    for axis, name in (("batch_size", "batch_law"), ("lr", "lr_law")):
        points = bootstrap_argmins(fitted_crossings, axis, hj)
        law, how = _law_or_constant(points, keys, axis)
        out[name] = {**law.to_json(), "status": how, "threshold": thresholds[hj],
                     "points": [{"task": p.task, "utd": p.utd, "critic_params": p.critic_params, "other": p.other,
                                 "best": 10**p.log10_best, "resamples": p.resamples, "at_edge": p.at_edge,
                                 "swept": list(p.swept)}
                                for p in points]}  # fmt: skip
        if hyper_laws is not None and name in hyper_laws:
            # The sweep took batch and lr from these laws: keep them (compute and recommendations follow the laws
            # the runs used, not a constant refitted from one configuration per σ).
            out[name] = {**hyper_laws[name], "status": f"from {hyper_laws.get('_source', 'the given laws')}"}
    batch_law = SharedPowerLaw(out["batch_law"]["exponent"], out["batch_law"]["coefficients"])

    # Data law per threshold at the most common critic size.
    params_count = Counter(k.critic_params for k in keys)
    params = params_count.most_common(1)[0][0]
    per_task_all: dict[str, list[float]] = defaultdict(list)
    bests = [best_crossings(fitted_crossings, j) for j in range(len(thresholds))]
    for best in bests:
        for (task, _s, n), (d, _std, _k) in best.items():
            if n == params and math.isfinite(d):
                per_task_all[task].append(d)
    if not per_task_all:
        raise ValueError("no configuration reached any threshold: lower the thresholds or train longer")
    medians = {t: float(np.median(v)) for t, v in per_task_all.items()}
    m = float(np.median(list(medians.values())))
    laws: list[dict[str, Any]] = []
    for j, best in enumerate(bests):
        by_sigma: dict[float, list[float]] = defaultdict(list)
        raw: list[dict[str, Any]] = []
        for (task, s, n), (d, std, key) in sorted(best.items()):
            if n != params:
                continue
            raw.append({"task": task, "utd": s, "data": _finite_or_none(d), "std": _finite_or_none(std),
                        "batch_size": key.batch_size, "lr": key.lr})  # fmt: skip
            if math.isfinite(d):
                by_sigma[s].append(d / medians[task])
        sig = np.array(sorted(by_sigma))
        y = np.array([np.mean(by_sigma[s]) for s in sig])
        entry: dict[str, Any] = {
            "threshold": thresholds[j],
            "points": raw,
            "utd": sig.tolist(),
            "normalised": y.tolist(),
        }
        try:
            entry.update(fit_data_law(sig, y, m, log_space=log_space).to_json())
            entry["status"] = "fitted"
        except ValueError as e:
            entry["status"] = f"not fitted: {e}"
        laws.append(entry)
    fitted = [e for e in laws if e["status"] == "fitted"]
    out["params"] = params
    out["critic_shapes"] = sorted({(k.critic_width, k.critic_params) for k in keys})
    out["data_law"] = {"m": m, "task_medians": medians, "abc": [[e["a"], e["b"], e["c"]] for e in fitted],
                       "per_threshold": laws}  # fmt: skip
    out["thresholds"] = [e["threshold"] for e in fitted]
    sigmas = sorted({k.utd for k in keys})
    out["utd_range"], out["utd_grid_points"] = [sigmas[0], sigmas[-1]], utd_grid_points

    # Held-out σ: the laws' prediction against the measurement.
    held = []
    for s in exclude_sigma:
        for j, e in enumerate(laws):
            if e["status"] != "fitted":
                continue
            law = DataLaw(e["a"], e["b"], e["c"], m)
            for (task, _s, n), (d, std, _k) in best_crossings(
                {k: r for k, r in crossings.items() if math.isclose(k.utd, s, rel_tol=1e-9)}, j
            ).items():
                if n != params:
                    continue
                pred = float(law(s)) * medians.get(task, m) / m
                held.append({"task": task, "utd": s, "threshold": thresholds[j], "measured": _finite_or_none(d),
                             "measured_std": _finite_or_none(std), "predicted": pred,
                             "relative_error": (pred - d) / d if math.isfinite(d) else None})  # fmt: skip
    out["held_out"] = held

    # Model-size laws when several critic sizes ran.
    if len(params_count) >= 2:
        out["data_law_sigma_n"] = []
        for j, best in enumerate(bests):
            pts = [(s, n, d) for (_t, s, n), (d, _std, _k) in best.items() if math.isfinite(d)]
            try:
                law2 = fit_data_law_sigma_n(*zip(*pts)) if pts else None
                out["data_law_sigma_n"].append({"threshold": thresholds[j], **law2.to_json()} if law2 else None)
            except ValueError as e:
                out["data_law_sigma_n"].append({"threshold": thresholds[j], "status": f"not fitted: {e}"})
        pts_b = [p for p in out["batch_law"]["points"]]
        try:
            law_b = fit_batch_law_sigma_n([p["utd"] for p in pts_b], [p["critic_params"] for p in pts_b],
                                          [p["best"] for p in pts_b])  # fmt: skip
            out["batch_law_sigma_n"] = law_b.to_json()
        except ValueError as e:
            out["batch_law_sigma_n"] = {"status": f"not fitted: {e}"}

    # Compute and budget.
    if delta is None:
        delta = estimate_delta([r for r in rows if r["critic_params"] == params], k_flops)
        out["delta_source"] = "estimated from wall-clock" if delta is not None else "unavailable"
    else:
        out["delta_source"] = "given"
    out["delta"] = delta
    if delta is not None and len(fitted) >= 2:
        contract = {k: out[k] for k in ("params", "delta", "utd_range", "utd_grid_points", "k_flops", "thresholds")}
        contract["data_law"] = {"m": m, "abc": out["data_law"]["abc"]}
        contract["batch_law"] = {"exponent": batch_law.exponent, "coefficients": batch_law.coefficients}
        contract["hold_out"] = min(hold_out, len(fitted) - 2)
        out["hold_out"] = contract["hold_out"]
        out["budget"] = {k: v for k, v in budget_table(contract).items() if k != "inputs"}
    return out
