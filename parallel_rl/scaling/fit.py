"""From run tables to one JSON of fitted laws: crossing times, B*(σ), η*(σ), D_J(σ) (and D_J(σ, N), B*(σ, N) when
several critic sizes ran, D_J(num_envs) when several env counts ran), compute, and the budget-optimal σ*(F).

Methods (``METHODS``): ``rybkin2025`` (the default) is the papers' procedure as their code runs it: crossing times at
the logged steps, hyperparameter targets averaged arithmetically per (task, σ), data laws fitted by plain squared
error (D_J(σ) in units of the task medians, D_J(σ, N) over each threshold's median). ``robust`` is this toolkit's
earlier variant: interpolated crossing times, per-group geometric means of the argmins, and log-space losses (less
sensitive to multiplicative seed noise and to the few large crossing times at low σ, but not the paper's numbers).
Each choice is also its own option (``crossing``, ``argmin_average``, ``log_space``).

Every result that could not be computed is listed under ``skipped`` with the reason and the flag that would enable
it. The output is a superset of the ``budget --fits`` contract (params, delta, utd_range, utd_grid_points, data_law,
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
from parallel_rl.scaling.datalaw import DataLaw, fit_data_law, fit_data_law_sigma_n_shared, fit_power_law_with_constant
from parallel_rl.scaling.hyperparams import (
    SharedPowerLaw,
    averaged_argmins,
    bootstrap_argmins,
    fit_batch_law_sigma_n,
    fit_hyperparameter_law,
)
from parallel_rl.scaling.runtable import (
    MISSING,
    RUN_TABLE_NAME,
    ConfigKey,
    Curve,
    RunTableError,
    concat_run_tables,
    curves,
    normalize_returns,
)

METHODS: dict[str, dict[str, Any]] = {
    "rybkin2025": {"crossing": "logged", "argmin_average": "arithmetic", "log_space": False},
    "robust": {"crossing": "interpolated", "argmin_average": "geometric", "log_space": True},
}
"""What each ``--method`` sets; any of the three can be overridden on its own."""


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


def _unknown_as_none(value: float) -> float | None:
    return None if value == MISSING else value


def _crossing_record(key: ConfigKey, res: CrossingResult) -> dict[str, Any]:
    return {"task": key.task, "algo": key.algo, "utd": key.utd, "batch_size": _unknown_as_none(key.batch_size),
            "lr": _unknown_as_none(key.lr), "critic_width": _unknown_as_none(key.critic_width),
            "critic_params": _unknown_as_none(key.critic_params), "num_envs": _unknown_as_none(key.num_envs),
            "seeds": res.num_seeds,
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
            if getattr(k, axis) != MISSING:
                per_task[k.task].append(float(getattr(k, axis)))
        coefs = {t: float(np.exp(np.mean(np.log(v)))) for t, v in per_task.items()}
        return SharedPowerLaw(0.0, coefs, float("nan"), 0), f"constant (not fitted: {e})"


def best_crossings(
    crossings: Mapping[ConfigKey, CrossingResult], j: int, exclude_sigma: Sequence[float] = ()
) -> dict[tuple[str, float, int, int], tuple[float, float, ConfigKey]]:
    """Per (task, σ, critic params, num_envs): the smallest crossing time at threshold j over the batch/lr
    configurations that ran there (one configuration when the sweep took batch and lr from the laws), with its
    bootstrap std."""
    best: dict[tuple[str, float, int, int], tuple[float, float, ConfigKey]] = {}
    for key, res in crossings.items():
        if any(math.isclose(key.utd, s, rel_tol=1e-9) for s in exclude_sigma):
            continue
        group = (key.task, key.utd, key.critic_params, key.num_envs)
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
        if r.get("wall_seconds") is None or r.get("batch_size") is None:
            continue
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


def resolve_return_ranges(
    rows: Sequence[Mapping[str, Any]], given: Mapping[str, tuple[float, float]] | None = None,
    defaults: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:  # fmt: skip
    """Each task's return range and where it came from: ``given`` (--return-range) over the run table's
    ``return_lo``/``return_hi`` columns over ``defaults`` (built-in tasks)."""
    tasks = sorted({r["task"] for r in rows})
    from_table: dict[str, tuple[float, float]] = {}
    for r in rows:
        if r.get("return_lo") is not None and r.get("return_hi") is not None:
            from_table.setdefault(r["task"], (float(r["return_lo"]), float(r["return_hi"])))
    ranges, source = {}, {}
    for t in tasks:
        for name, table in (("--return-range", given or {}), ("run table", from_table), ("built-in", defaults or {})):
            if t in table:
                ranges[t], source[t] = tuple(table[t]), name
                break
    return ranges, source


def check_return_scales(rows: Sequence[Mapping[str, Any]], ranges: Mapping[str, tuple[float, float]]) -> list[str]:
    """Refuse to pool tasks whose raw returns are on different scales. A task without a range whose returns leave
    the papers' 0-1000 scale (1st-99th percentile outside [-100, 1100]) cannot be compared with other tasks at one
    threshold; with several tasks that is an error naming every unranged task and its returns, with one task a
    warning (returned)."""
    by_task: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(float(r["return"]))
    spans = {t: (float(np.percentile(v, 1)), float(np.percentile(v, 99))) for t, v in by_task.items()}
    off = {t: span for t, span in spans.items() if t not in ranges and (span[0] < -100 or span[1] > 1100)}
    if not off:
        return []
    listed = "; ".join(f"{t} (returns {lo:.4g} to {hi:.4g})" for t, (lo, hi) in sorted(off.items()))
    if len(by_task) > 1:
        unranged = ", ".join(sorted(t for t in by_task if t not in ranges))
        raise RunTableError(
            f"tasks on different return scales: {listed} have no return range, so one threshold J means different "
            f"things per task; give --return-range TASK=LO,HI for each of {unranged} (LO -> 0, HI -> 1000), or "
            "--no-normalize to fit raw returns as they are"
        )
    return [f"{listed}: no return range; the thresholds apply to raw returns (give --return-range TASK=LO,HI "
            "for the papers' 0-1000 scale)"]  # fmt: skip


def _skip(out: dict[str, Any], result: str, reason: str, enable: str) -> None:
    out["skipped"].append({"result": result, "reason": reason, "enable": enable})


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
    log_space: bool | None = None,
    hyper_laws: Mapping[str, Any] | None = None,
    method: str = "rybkin2025",
    crossing: str | None = None,
    argmin_average: str | None = None,
    normalize: bool = True,
    default_ranges: Mapping[str, tuple[float, float]] | None = None,
    params: float | None = None,
    fill_stopped: bool = False,
    law_resamples: int = 40,
    exclude_cells: Sequence[tuple[float, int]] = (),
    exclude_num_envs: Sequence[int] = (),
) -> dict[str, Any]:
    """Everything ``fit`` writes.

    ``method`` picks the crossing times, argmin averaging and data-law loss (``METHODS``); ``crossing``
    ('logged'/'interpolated'), ``argmin_average`` ('arithmetic'/'geometric') and ``log_space`` override one each.
    Returns are normalised to 0-1000 by ``return_ranges`` (task -> (lo, hi)), else the run table's
    ``return_lo``/``return_hi``, else ``default_ranges``; tasks on different raw scales are refused unless
    ``normalize`` is False. ``exclude_sigma`` keeps those σ out of every law and reports the data law's prediction
    there against the measured crossing time (the held-out extrapolation test); ``exclude_cells`` ((σ, critic
    width) pairs) and ``exclude_num_envs`` do the same for D_J(σ, N) and D_J(num_envs). ``hyper_laws`` (an earlier
    fit's output) supplies B*(σ) and η*(σ) when the runs took their batch size and learning rate from it.
    ``params`` is the critic size N of the compute model when the runs do not record it. ``fill_stopped`` carries a
    seed's last return forward after it stopped (runs stopped by ``--stop-at-return``)."""
    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    choice = dict(METHODS[method])
    for name, value, valid in (("crossing", crossing, ("logged", "interpolated")),
                               ("argmin_average", argmin_average, ("arithmetic", "geometric"))):  # fmt: skip
        if value is not None:
            if value not in valid:
                raise ValueError(f"--{name.replace('_', '-')} must be one of {', '.join(valid)}, got {value!r}")
            choice[name] = value
    if log_space is not None:
        choice["log_space"] = bool(log_space)
    interpolate, log_loss = choice["crossing"] == "interpolated", choice["log_space"]
    thresholds = [float(j) for j in thresholds]
    if not thresholds or any(b <= a for a, b in zip(thresholds, thresholds[1:])):
        raise ValueError(f"thresholds must be a non-empty ascending list, got {thresholds}")
    if not rows:
        raise RunTableError("the run table is empty")
    warnings: list[str] = []
    if normalize:
        ranges, range_source = resolve_return_ranges(rows, return_ranges, default_ranges)
        warnings += check_return_scales(rows, ranges)
    else:
        ranges, range_source = {}, {}
    table = normalize_returns(rows, ranges)
    crossings = crossing_table(curves(table), thresholds, num_resamples, seed, interpolate, fill_stopped)
    excluded_envs = {int(n) for n in exclude_num_envs}
    keys = [k for k in crossings if not any(math.isclose(k.utd, s, rel_tol=1e-9) for s in exclude_sigma)
            and not _in_cells(k, exclude_cells) and k.num_envs not in excluded_envs]  # fmt: skip
    fitted_crossings = {k: crossings[k] for k in keys}
    out: dict[str, Any] = {
        "method": method,
        "choices": {**choice, "fill_stopped": fill_stopped},
        "data_law_loss": "squared error of log D" if log_loss else "squared error of D / m",
        "thresholds_requested": thresholds,
        "return_ranges": {t: list(v) for t, v in ranges.items()},
        "return_range_source": {
            t: range_source.get(t, "none (raw returns)") for t in sorted({k.task for k in crossings})
        },
        "tasks": sorted({k.task for k in crossings}),
        "crossings": [_crossing_record(k, r) for k, r in crossings.items()],
        "excluded_sigma": list(exclude_sigma),
        "k_flops": k_flops,
        "warnings": warnings,
        "skipped": [],
    }

    # Hyperparameter laws.
    hj = hyper_threshold if hyper_threshold >= 0 else len(thresholds) + hyper_threshold
    hyper_note = "or --hyper-laws FITS (a fit of the sweep whose laws these runs followed)"
    for axis, name, column in (("batch_size", "batch_law", "batch size"), ("lr", "lr_law", "learning rate")):
        if choice["argmin_average"] == "arithmetic":
            points = averaged_argmins(fitted_crossings, axis, hj, unreached="smallest")
        else:
            points = bootstrap_argmins(fitted_crossings, axis, hj)
        law, how = _law_or_constant(points, keys, axis)
        out[name] = {**law.to_json(), "status": how, "threshold": thresholds[hj], "average": choice["argmin_average"],
                     "points": [{"task": p.task, "utd": p.utd, "critic_params": _unknown_as_none(p.critic_params),
                                 "other": _finite_or_none(p.other), "best": 10**p.log10_best, "resamples": p.resamples,
                                 "at_edge": p.at_edge, "swept": list(p.swept)}
                                for p in points]}  # fmt: skip
        if hyper_laws is not None and name in hyper_laws:
            # The sweep took batch and lr from these laws: keep them (compute and recommendations follow the laws
            # the runs used, not a constant refitted from one configuration per σ).
            out[name] = {**hyper_laws[name], "status": f"from {hyper_laws.get('_source', 'the given laws')}"}
        elif how != "fitted":
            known = bool(law.coefficients)
            _skip(out, f"{'B' if axis == 'batch_size' else 'η'}*(σ) ({column} law)",
                  how.removeprefix("constant (not fitted: ").rstrip(")")
                  + ("; kept the runs' constant " + column if known else f"; the run table has no {axis} column"),
                  f"sweep two or more {column}s at two or more σ, {hyper_note}")  # fmt: skip
    batch_law = SharedPowerLaw(out["batch_law"]["exponent"], out["batch_law"]["coefficients"])

    # Data law per threshold at the most common critic size and env count.
    shape_count = Counter((k.critic_params, k.num_envs) for k in keys)
    params_key, envs_key = shape_count.most_common(1)[0][0]
    bests = [best_crossings(fitted_crossings, j) for j in range(len(thresholds))]
    per_task_all: dict[str, list[float]] = defaultdict(list)
    for best in bests:
        for (task, _s, n, e), (d, _std, _k) in best.items():
            if (n, e) == (params_key, envs_key) and math.isfinite(d):
                per_task_all[task].append(d)
    if not per_task_all:
        raise ValueError("no configuration reached any threshold: lower the thresholds or train longer")
    medians = {t: float(np.median(v)) for t, v in per_task_all.items()}
    m = float(np.median(list(medians.values())))
    laws: list[dict[str, Any]] = []
    for j, best in enumerate(bests):
        by_sigma: dict[float, list[float]] = defaultdict(list)
        raw: list[dict[str, Any]] = []
        for (task, s, n, e), (d, std, key) in sorted(best.items()):
            if (n, e) != (params_key, envs_key):
                continue
            raw.append({"task": task, "utd": s, "data": _finite_or_none(d), "std": _finite_or_none(std),
                        "batch_size": _unknown_as_none(key.batch_size), "lr": _unknown_as_none(key.lr)})  # fmt: skip
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
            entry.update(fit_data_law(sig, y, m, log_space=log_loss).to_json())
            entry["status"] = "fitted"
        except ValueError as e:
            entry["status"] = f"not fitted: {e}"
            _skip(
                out,
                f"D_J(σ) at J = {thresholds[j]:.4g}",
                str(e),
                "run more σ values, train longer, or lower the thresholds (--thresholds)",
            )
        laws.append(entry)
    fitted = [e for e in laws if e["status"] == "fitted"]
    known_params = params_key != MISSING
    n_model = float(params) if params is not None else (float(params_key) if known_params else None)
    out["params"] = n_model
    out["params_source"] = "--params" if params is not None else ("runs" if known_params else "unknown")
    out["num_envs"] = _unknown_as_none(envs_key)
    out["critic_shapes"] = sorted({(k.critic_width, k.critic_params) for k in keys
                                   if k.critic_width != MISSING and k.critic_params != MISSING})  # fmt: skip
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
            at_s = {k: r for k, r in crossings.items() if math.isclose(k.utd, s, rel_tol=1e-9)}
            for (task, _s, n, en), (d, std, _k) in best_crossings(at_s, j).items():
                if (n, en) != (params_key, envs_key):
                    continue
                pred = float(law(s)) * medians.get(task, m) / m
                held.append({"task": task, "utd": s, "threshold": thresholds[j], "measured": _finite_or_none(d),
                             "measured_std": _finite_or_none(std), "predicted": pred,
                             "relative_error": (pred - d) / d if math.isfinite(d) else None})  # fmt: skip
    out["held_out"] = held

    _fit_sigma_n(out, crossings, fitted_crossings, thresholds, log_loss, law_resamples, exclude_cells, seed)
    _fit_num_envs(out, crossings, fitted_crossings, thresholds, log_loss, excluded_envs, table, fill_stopped)

    # Compute and budget.
    if delta is None:
        usable = [r for r in rows if r.get("critic_params") == params_key or not known_params]
        delta = estimate_delta(usable, k_flops) if n_model is not None and known_params else None
        out["delta_source"] = "estimated from wall-clock" if delta is not None else "unavailable"
    else:
        out["delta_source"] = "given"
    out["delta"] = delta
    if delta is None:
        why = ("--delta not given, and δ cannot be estimated from wall-clock: "
               + ("the runs' wall_seconds or batch_size are missing or do not separate env time from update time"
                  if known_params else "the runs do not record critic_params"))  # fmt: skip
        _skip(
            out,
            "σ*(F) (budget-optimal UTD)",
            why,
            "--delta FLOPS_PER_TRANSITION (the papers' Gym value is 4e9) with --params N if critic_params is missing",
        )
    elif n_model is None:
        _skip(
            out,
            "σ*(F) (budget-optimal UTD)",
            "the critic size N is unknown (no critic_params column)",
            "--params N (critic parameters; the papers' Gym value is 1.5e5)",
        )
    elif not batch_law.coefficients:
        _skip(
            out,
            "σ*(F) (budget-optimal UTD)",
            "no batch size: the compute C_J needs B(σ)",
            f"a batch_size column in the run table, {hyper_note}",
        )
    elif len(fitted) < 2:
        _skip(
            out,
            "σ*(F) (budget-optimal UTD)",
            f"{len(fitted)} data law(s) fitted, 2 or more are needed",
            "more thresholds reached (lower --thresholds or train longer)",
        )
    else:
        contract = {k: out[k] for k in ("params", "delta", "utd_range", "utd_grid_points", "k_flops", "thresholds")}
        contract["data_law"] = {"m": m, "abc": out["data_law"]["abc"]}
        contract["batch_law"] = {"exponent": batch_law.exponent, "coefficients": batch_law.coefficients}
        contract["hold_out"] = min(hold_out, len(fitted) - 2)
        out["hold_out"] = contract["hold_out"]
        out["budget"] = {k: v for k, v in budget_table(contract).items() if k != "inputs"}
        stars = {round(r["sigma_star"], 12) for r in out["budget"]["table"]}
        if stars <= {round(sigmas[0], 12), round(sigmas[-1], 12)}:
            out["warnings"].append(
                f"σ* is at the edge of the σ range that ran ({sigmas[0]:g}..{sigmas[-1]:g}) for every threshold, so "
                "σ*(F) is not a law: the budget optimum lies outside the runs (run σ beyond it, or check --delta)"
            )
    return out


def _in_cells(key: ConfigKey, cells: Sequence[tuple[float, int]]) -> bool:
    """Whether ``key`` is one of the (σ, critic width) cells."""
    return any(math.isclose(key.utd, s, rel_tol=1e-9) and key.critic_width == int(w) for s, w in cells)


def _cell_table(
    crossings: Mapping[ConfigKey, CrossingResult], thresholds: Sequence[float], envs_key: int
) -> tuple[list[tuple[float, int]], np.ndarray, np.ndarray, dict[str, float]]:
    """Per (σ, N) cell: the task-median-normalised best crossing times (point [T, cells] and bootstrap [R, T, cells]),
    averaged over tasks as for D_J(σ); returns the cells, both arrays and the task medians."""
    best: dict[tuple[str, float, int], list[CrossingResult]] = defaultdict(list)
    for key, res in crossings.items():
        if key.num_envs == envs_key and key.critic_params != MISSING:
            best[(key.task, key.utd, key.critic_params)].append(res)
    picked = {g: min(rs, key=lambda r: float(r.point[-1]) if math.isfinite(r.point[-1]) else math.inf)
              for g, rs in best.items()}  # fmt: skip
    finite = defaultdict(list)
    for (task, _s, _n), r in picked.items():
        finite[task] += [float(x) for x in r.point if math.isfinite(x)]
    medians = {t: float(np.median(v)) for t, v in finite.items() if v}
    cells = sorted({(s, n) for (_t, s, n) in picked})
    tasks = sorted(medians)
    resamples = min(r.boot.shape[0] for r in picked.values())
    point = np.full((len(tasks), len(thresholds), len(cells)), np.nan)
    boot = np.full((len(tasks), resamples, len(thresholds), len(cells)), np.nan)
    for (task, s, n), r in picked.items():
        if task in medians:
            i, c = tasks.index(task), cells.index((s, n))
            point[i, :, c] = r.point / medians[task]
            boot[i, :, :, c] = r.boot[:resamples] / medians[task]
    with np.errstate(invalid="ignore"):
        return cells, np.nanmean(point, axis=0), np.nanmean(boot, axis=0), medians


def _fit_sigma_n(
    out: dict[str, Any], crossings: Mapping[ConfigKey, CrossingResult], fitted: Mapping[ConfigKey, CrossingResult],
    thresholds: Sequence[float], log_loss: bool, law_resamples: int, exclude_cells: Sequence[tuple[float, int]],
    seed: int,
) -> None:  # fmt: skip
    """D_J(σ, N) with exponents shared by the thresholds, its bootstrap, the held-out cells, and B*(σ, N)."""
    sizes = {k.critic_params for k in fitted if k.critic_params != MISSING}
    if len(sizes) < 2:
        reason = "the run table has no critic_params column" if not sizes else "the runs have one critic size"
        _skip(
            out,
            "D_J(σ, N) and B*(σ, N) (model-size laws)",
            reason,
            "runs at two or more critic widths (sweep --critic-width W1 W2 ...) with critic_params recorded",
        )
        return
    envs_key = Counter(k.num_envs for k in fitted).most_common(1)[0][0]
    cells, point, boot, medians = _cell_table(fitted, thresholds, envs_key)
    m = float(np.median(list(medians.values())))
    sig, par = np.array([c[0] for c in cells]), np.array([c[1] for c in cells], dtype=float)
    usable = [j for j in range(len(thresholds)) if np.isfinite(point[j]).sum() >= 4]
    if not usable:
        _skip(
            out, "D_J(σ, N)", "fewer than 4 (σ, N) cells reached every threshold", "train longer or lower --thresholds"
        )
        return
    try:
        laws = fit_data_law_sigma_n_shared(sig, par, point[usable] * m, log_space=log_loss)
    except ValueError as e:
        _skip(out, "D_J(σ, N)", str(e), "more (σ, N) cells")
        return
    rng = np.random.default_rng(seed)
    draws = []
    for r in rng.choice(boot.shape[0], size=min(law_resamples, boot.shape[0]), replace=False):
        try:
            fits_r = fit_data_law_sigma_n_shared(sig, par, boot[r][usable] * m, log_loss, (laws[0].alpha, laws[0].beta))
            draws.append([[f.d_min, f.a, f.alpha, f.b, f.beta] for f in fits_r])
        except ValueError:
            continue
    entries = []
    for i, j in enumerate(usable):
        law = laws[i]
        entries.append({"threshold": thresholds[j], **law.to_json(), "shared_exponents": True,
                        "bootstrap": [d[i] for d in draws], "cells": [list(c) for c in cells],
                        "normalised": [_finite_or_none(x) for x in point[j]], "m": m})  # fmt: skip
    out["data_law_sigma_n"] = entries
    out["data_law_sigma_n_note"] = ("D_J(σ, N) = D_min + (a/σ)^α + (b/N)^β, α and β shared by the thresholds; "
                                    "crossing times in units of the task medians x m")  # fmt: skip
    held = []
    for s, w in exclude_cells:
        at = {k: r for k, r in crossings.items() if math.isclose(k.utd, s, rel_tol=1e-9) and k.critic_width == int(w)}
        for entry in entries:
            j = thresholds.index(entry["threshold"])
            for key, res in at.items():
                d, n = float(res.point[j]), key.critic_params
                law = _sigma_n_law_of(entry)
                pred = float(law(s, n)) * medians.get(key.task, m) / m
                lo, hi = _interval([_sigma_n_law_of(dict(zip(("d_min", "a", "alpha", "b", "beta"), b)))(s, n)
                                    for b in entry["bootstrap"]])  # fmt: skip
                scale = medians.get(key.task, m) / m
                held.append({"task": key.task, "utd": s, "critic_params": int(n), "critic_width": key.critic_width,
                             "threshold": entry["threshold"], "measured": _finite_or_none(d),
                             "measured_std": _finite_or_none(float(res.std[j])), "predicted": pred,
                             "predicted_interval": [_finite_or_none(lo * scale), _finite_or_none(hi * scale)],
                             "relative_error": (pred - d) / d if math.isfinite(d) else None})  # fmt: skip
    out["held_out_sigma_n"] = held
    pts_b = [p for p in out["batch_law"].get("points", []) if p.get("critic_params")]
    try:
        law_b = fit_batch_law_sigma_n([p["utd"] for p in pts_b], [p["critic_params"] for p in pts_b],
                                      [p["best"] for p in pts_b])  # fmt: skip
        out["batch_law_sigma_n"] = law_b.to_json()
    except ValueError as e:
        out["batch_law_sigma_n"] = {"status": f"not fitted: {e}"}
        _skip(out, "B*(σ, N)", str(e), "sweep batch sizes at two or more σ and critic sizes")


def _sigma_n_law_of(entry: Mapping[str, Any]):
    from parallel_rl.scaling.datalaw import DataLawSigmaN

    return DataLawSigmaN(entry["d_min"], entry["a"], entry["alpha"], entry["b"], entry["beta"])


def _interval(values: Sequence[float], level: float = 0.9) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(np.quantile(v, (1 - level) / 2)), float(np.quantile(v, (1 + level) / 2))


def wall_seconds_at(seed_curves: Mapping[int, Curve], env_step: float) -> float:
    """Mean over seeds of the training wall-clock at the first evaluation at or after ``env_step`` (nan when a seed
    has no wall-clock there)."""
    times = []
    for c in seed_curves.values():
        i = int(np.searchsorted(c.env_step, env_step - 1e-9))
        times.append(float(c.wall_seconds[i]) if i < c.env_step.size else float("nan"))
    return float(np.mean(times)) if times else float("nan")


def _fit_num_envs(
    out: dict[str, Any], crossings: Mapping[ConfigKey, CrossingResult], fitted: Mapping[ConfigKey, CrossingResult],
    thresholds: Sequence[float], log_loss: bool, excluded: set[int], table: Sequence[Mapping[str, Any]],
    fill_stopped: bool,
) -> None:  # fmt: skip
    """D_J(num_envs) and the wall-clock time to J against num_envs, at the most common σ and critic size."""
    counts = {k.num_envs for k in fitted if k.num_envs != MISSING}
    if len(counts) < 3:
        reason = "the run table has no num_envs column" if not counts else f"the runs have {len(counts)} env count(s)"
        _skip(out, "D_J(num_envs) (parallel-env law)", reason, "runs at three or more --num-envs values")
        return
    by_config = curves(table)
    groups = Counter((k.utd, k.critic_params) for k in fitted if k.num_envs != MISSING)
    utd, params_key = groups.most_common(1)[0][0]
    entries = []
    for j, J in enumerate(thresholds):
        pts = {}
        for key, res in crossings.items():
            if key.utd != utd or key.critic_params != params_key or key.num_envs == MISSING:
                continue
            d = float(res.point[j])
            prev = pts.get(key.num_envs)
            if prev is None or d < prev[0]:
                wall = wall_seconds_at(by_config[key], d) if math.isfinite(d) else float("nan")
                pts[key.num_envs] = (d, float(res.std[j]), wall, key)
        envs = sorted(pts)
        fit_envs = [n for n in envs if n not in excluded]
        entry: dict[str, Any] = {"threshold": J, "points": [
            {"num_envs": n, "data": _finite_or_none(pts[n][0]), "std": _finite_or_none(pts[n][1]),
             "wall_seconds": _finite_or_none(pts[n][2]), "held_out": n in excluded} for n in envs]}  # fmt: skip
        for name, idx in (("data_law", 0), ("wall_law", 2)):
            x = np.array(fit_envs, dtype=float)
            y = np.array([pts[n][idx] for n in fit_envs])
            try:
                law = fit_power_law_with_constant(x, y, log_space=log_loss)
                entry[name] = law.to_json()
                entry[name + "_held_out"] = [
                    {"num_envs": n, "predicted": float(law(n)), "measured": _finite_or_none(pts[n][idx]),
                     "relative_error": (float(law(n)) - pts[n][idx]) / pts[n][idx]
                     if math.isfinite(pts[n][idx]) else None} for n in envs if n in excluded]  # fmt: skip
            except ValueError as e:
                entry[name] = {"status": f"not fitted: {e}"}
        entries.append(entry)
    out["num_envs_law"] = {"utd": utd, "critic_params": _unknown_as_none(params_key), "per_threshold": entries,
                           "form": "D_J(n) = c + (n/b)^e and T_J(n) = c + (n/b)^e (e of either sign)"}  # fmt: skip
    if all(math.isnan(p["wall_seconds"] or float("nan")) for e in entries for p in e["points"]):
        _skip(
            out,
            "wall-clock time to threshold vs num_envs",
            "the run table has no wall_seconds",
            "runs that record wall_seconds (our trainer does)",
        )
