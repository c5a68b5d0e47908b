"""Other people's runs as run tables: qscaled's ``.npy`` curves, long CSV files, TensorBoard event files and W&B chart
exports.

Every importer returns run-table rows (``runtable.RUN_TABLE_COLUMNS``). What a source does not record (batch size,
critic width or parameter count, wall-clock, number of envs) is left empty, and ``describe_missing`` says which
later result needs which column. Configuration values that live outside the data (a run directory's name, a W&B
run name) come from ``--pattern`` (a regular expression with named groups, matched against the name) and ``--set
COLUMN=VALUE`` (one value for every row). Bad input fails with one message naming the file (and line).
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from parallel_rl.scaling.runtable import COLUMN_NEEDED_BY, REQUIRED_COLUMNS, RUN_TABLE_COLUMNS, RunTableError

# Per-task maxima that normalise the returns of Rybkin et al. 2025's Gym runs to 0-1000 (from the experiment code of
# prestonfu/qscaled): the grid search used 1.25 x an eyeballed maximum, the runs that followed the fitted laws (and
# their constant-hyperparameter baseline) used a second set.
QSCALED_MAX_RETURNS: dict[str, dict[str, float]] = {
    "gym_sweep": {"HalfCheetah-v4": 7300 * 1.25, "Walker2d-v4": 4000 * 1.25, "Ant-v4": 5300 * 1.25,
                  "Humanoid-v4": 5200 * 1.25},
    "gym_ours": {"HalfCheetah-v4": 9800, "Walker2d-v4": 4950, "Ant-v4": 6625, "Humanoid-v4": 6450},
    "gym_baseline_utd2": {"HalfCheetah-v4": 9800, "Walker2d-v4": 4950, "Ant-v4": 6625, "Humanoid-v4": 6450},
}  # fmt: skip

_QSCALED_FILE = re.compile(r"^bs_(?P<batch>\d+)_lr_(?P<lr>[0-9.eE+-]+)\.npy$")

# Column names other tools use for the run-table columns (lower case).
ALIASES: dict[str, tuple[str, ...]] = {
    "task": ("task", "env", "env_name", "env_id", "environment"),
    "algo": ("algo", "algorithm", "agent"),
    "utd": ("utd", "sigma", "utd_ratio", "updates_per_transition"),
    "batch_size": ("batch_size", "batch", "bs"),
    "lr": ("lr", "learning_rate", "critic_lr"),
    "critic_width": ("critic_width", "width", "hidden_dim", "critic_hidden_dim"),
    "critic_params": ("critic_params", "params", "num_params", "n_params", "model_size"),
    "num_envs": ("num_envs", "n_envs", "envs"),
    "seed": ("seed", "run_seed"),
    "env_step": ("env_step", "env_steps", "step", "steps", "training_step", "global_step", "timesteps", "frames"),
    "wall_seconds": ("wall_seconds", "wall_time", "time", "seconds", "elapsed"),
    "return": ("return", "episode_return", "eval_return", "mean_return", "episode_reward", "returns"),
    "return_lo": ("return_lo",),
    "return_hi": ("return_hi",),
}


class SourceError(RunTableError):
    """Input another tool wrote that cannot be turned into a run table; the message names the file (and line)."""


# ---- shared helpers ------------------------------------------------------------------------------------------------
def parse_assignments(items: Sequence[str], flag: str) -> dict[str, str]:
    """COLUMN=VALUE items (``--set``, ``--column``) into a dict; a bad item names the flag."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SourceError(f"{flag}: expected COLUMN=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _check_columns(names: Iterable[str], flag: str) -> None:
    unknown = [n for n in names if n not in RUN_TABLE_COLUMNS]
    if unknown:
        raise SourceError(f"{flag}: unknown run-table column(s) {', '.join(unknown)}; valid: "
                           f"{', '.join(RUN_TABLE_COLUMNS)}")  # fmt: skip


def config_from_name(name: str, pattern: str | None, constants: Mapping[str, str], where: str) -> dict[str, str]:
    """Config values of one run: ``constants`` (``--set``) overridden by the named groups of ``pattern`` searched in
    ``name``; a pattern that does not match names the run."""
    values = dict(constants)
    if pattern:
        match = re.search(pattern, name)
        if match is None:
            raise SourceError(f"{where}: --pattern {pattern!r} does not match the run name {name!r}")
        values.update({k: v for k, v in match.groupdict().items() if v is not None})
    return values


def _typed_config(values: Mapping[str, str], where: str) -> dict[str, Any]:
    """Config strings as typed run-table values (numbers for the numeric columns)."""
    out: dict[str, Any] = {}
    for key, text in values.items():
        if key in ("task", "algo"):
            out[key] = text
            continue
        try:
            number = float(text)
        except ValueError:
            raise SourceError(f"{where}: {key} = {text!r} is not a number") from None
        out[key] = int(number) if key in ("batch_size", "critic_width", "critic_params", "seed", "num_envs") else number
    return out


def _finish(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    if not rows:
        raise SourceError(f"{where}: no data points found")
    for col in REQUIRED_COLUMNS:
        if any(r.get(col) is None for r in rows):
            raise SourceError(f"{where}: no value for the required column {col!r}; set it with --set {col}=VALUE or "
                               f"take it from the run name with --pattern '(?P<{col}>...)'")  # fmt: skip
    return rows


def describe_missing(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per optional column that some rows lack: how many, and which results need it."""
    lines = []
    for col, needed_by in COLUMN_NEEDED_BY.items():
        n = sum(1 for r in rows if r.get(col) is None or r.get(col) == "")
        if n:
            lines.append(f"{col}: missing in {n} of {len(rows)} rows; needed for {needed_by}")
    return lines


def apply_return_ranges(rows: list[dict[str, Any]], ranges: Mapping[str, tuple[float, float]]) -> None:
    """Record each task's return range (``return_lo``/``return_hi``) in its rows; ``fit`` normalises with them."""
    for r in rows:
        if r["task"] in ranges:
            r["return_lo"], r["return_hi"] = ranges[r["task"]]


# ---- qscaled ------------------------------------------------------------------------------------------------------
def _qscaled_entries(src: Path) -> list[tuple[str, str, Callable[[], np.ndarray]]]:
    """(dataset, path inside it, loader) of every ``.npy`` under ``src``: a dataset folder (``utd_*/<Task>/<metric>/
    bs_<B>_lr_<η>.npy``), a folder of datasets (qscaled's ``cache/data``), or one of qscaled's zip files."""
    if src.is_file() and src.suffix == ".zip":
        archive = zipfile.ZipFile(src)
        names = [n for n in archive.namelist() if n.endswith(".npy") and not n.startswith("__MACOSX")]
        out = []
        for n in names:
            parts = n.split("/")
            if len(parts) != 5:
                raise SourceError(f"{src}: {n}: expected <dataset>/utd_<σ>/<task>/<metric>/bs_<B>_lr_<η>.npy")
            out.append((parts[0], "/".join(parts[1:]), lambda n=n: np.load(io.BytesIO(archive.read(n)))))
        return out
    if not src.is_dir():
        raise SourceError(f"{src}: not a qscaled data folder or zip file")
    files = sorted(src.rglob("*.npy"))
    out = []
    for f in files:
        rel = f.relative_to(src).parts
        if len(rel) == 4:  # src is one dataset
            dataset, inside = src.name, "/".join(rel)
        elif len(rel) == 5:  # src holds datasets
            dataset, inside = rel[0], "/".join(rel[1:])
        else:
            raise SourceError(f"{f}: expected utd_<σ>/<task>/<metric>/bs_<B>_lr_<η>.npy below {src}")
        out.append((dataset, inside, lambda f=f: np.load(f)))
    return out


def import_qscaled(
    src: str | Path, metric: str = "episode.return", algo: str = "",
    return_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Rows per dataset from qscaled's layout: ``utd_<σ>/<Task>/<metric>/bs_<B>_lr_<η>.npy`` holding
    [env steps, seed 0, seed 1, ...] per logged step. The paper's datasets get the paper's per-task maxima as
    return ranges (``QSCALED_MAX_RETURNS``); ``return_ranges`` (task -> (lo, hi)) overrides them."""
    src = Path(src)
    entries = [e for e in _qscaled_entries(src) if e[1].split("/")[2] == metric]
    if not entries:
        raise SourceError(f"{src}: no {metric} curves (expected utd_<σ>/<task>/{metric}/bs_<B>_lr_<η>.npy)")
    datasets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for dataset, inside, load in sorted(entries, key=lambda e: (e[0], e[1])):
        where = f"{src}: {dataset}/{inside}"
        utd_dir, task, _metric, name = inside.split("/")
        match = _QSCALED_FILE.match(name)
        if not utd_dir.startswith("utd_") or match is None:
            raise SourceError(f"{where}: expected utd_<σ>/<task>/<metric>/bs_<B>_lr_<η>.npy")
        try:
            utd, lr = float(utd_dir[4:]), float(match["lr"])
        except ValueError:
            raise SourceError(f"{where}: σ or learning rate in the path is not a number") from None
        arr = load()
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise SourceError(f"{where}: expected a [steps, 1 + seeds] array, got shape {arr.shape}")
        base = {"task": task, "algo": algo, "utd": utd, "batch_size": int(match["batch"]), "lr": lr}
        steps = arr[:, 0]
        for seed in range(arr.shape[1] - 1):
            col = arr[:, 1 + seed]
            ok = np.isfinite(col) & np.isfinite(steps)
            for s, r in zip(steps[ok], col[ok]):
                datasets[dataset].append({**base, "seed": seed, "env_step": int(s), "return": float(r)})
    for dataset, rows in datasets.items():
        ranges = {t: (0.0, hi) for t, hi in QSCALED_MAX_RETURNS.get(dataset, {}).items()}
        ranges.update(return_ranges or {})
        apply_return_ranges(rows, ranges)
    return dict(datasets)


# ---- long CSV ------------------------------------------------------------------------------------------------------
def import_csv(
    path: str | Path, columns: Mapping[str, str] | None = None, constants: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """A long CSV (one row per evaluation: task, config columns, seed, env_step, return[, wall_seconds]) whose column
    names may be another tool's (``ALIASES``) or mapped with ``columns`` (run-table column -> file column);
    ``constants`` give columns the file lacks."""
    path = Path(path)
    columns, constants = dict(columns or {}), dict(constants or {})
    _check_columns(columns, "--column")
    _check_columns(constants, "--set")
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(f"{path}: empty file") from None
        lower = {h.strip().lower(): i for i, h in enumerate(header)}
        where: dict[str, int] = {}
        for col in RUN_TABLE_COLUMNS:
            if col in columns:
                name = columns[col].lower()
                if name not in lower:
                    raise SourceError(f"{path}: --column {col}={columns[col]}: no column {columns[col]!r} in the "
                                       f"header ({', '.join(header)})")  # fmt: skip
                where[col] = lower[name]
            elif col not in constants:
                found = next((lower[a] for a in ALIASES[col] if a in lower), None)
                if found is not None:
                    where[col] = found
        missing = [c for c in REQUIRED_COLUMNS if c not in where and c not in constants]
        if missing:
            raise SourceError(
                f"{path}: no column for {', '.join(missing)} (header: {', '.join(header)}); name "
                f"it with --column {missing[0]}=NAME or give one value with --set {missing[0]}=VALUE"
            )
        fixed = _typed_config(constants, f"{path}: --set")
        rows = []
        for line, raw in enumerate(reader, start=2):
            if not any(cell.strip() for cell in raw):
                continue
            if len(raw) != len(header):
                raise SourceError(f"{path}, line {line}: {len(raw)} fields, the header has {len(header)}")
            values = {col: raw[i].strip() for col, i in where.items()}
            if values.get("return", "x") == "" or values.get("env_step", "x") == "":
                continue  # a step without this metric (wide logs leave cells empty)
            try:
                row = {**fixed, **_typed_config({k: v for k, v in values.items() if v != ""}, "")}
            except SourceError as e:
                raise SourceError(f"{path}, line {line}: {str(e).lstrip(': ')}") from None
            if "env_step" in row:
                row["env_step"] = int(row["env_step"])
            rows.append(row)
    return _finish(rows, str(path))


# ---- TensorBoard ---------------------------------------------------------------------------------------------------
def _event_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("events.out.tfevents.*")})


def import_tensorboard(
    root: str | Path, tag: str, pattern: str | None = None, constants: Mapping[str, str] | None = None,
    step_scale: float = 1.0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Scalar ``tag`` of every run (a folder holding event files) under ``root``, as written by any library
    (rsl_rl, FastTD3, Isaac Lab, our trainer). The step times ``step_scale`` is the env step (e.g. rsl_rl logs
    iterations: steps per env x num_envs); ``wall_seconds`` is the event time since the run's first event (it
    includes evaluation and logging). Runs of one configuration without a seed get seeds 0, 1, ... in name order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder")
    constants = dict(constants or {})
    _check_columns(constants, "--set")
    runs = _event_dirs(root)
    if not runs:
        raise SourceError(f"{root}: no TensorBoard event files (events.out.tfevents.*) below it")
    rows: list[dict[str, Any]] = []
    seeds_taken: dict[tuple, int] = defaultdict(int)
    for run in runs:
        name = str(run.relative_to(root)) if run != root else root.name
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        try:
            acc.Reload()
        except Exception as e:  # a truncated or foreign file: name it
            raise SourceError(f"{run}: unreadable event file ({e})") from None
        tags = acc.Tags().get("scalars", [])
        if tag not in tags:
            raise SourceError(f"{run}: no scalar {tag!r}; its scalars are: {', '.join(sorted(tags)) or 'none'}")
        events = acc.Scalars(tag)
        config = _typed_config(config_from_name(name, pattern, constants, str(run)), f"{run} (--set/--pattern)")
        if "seed" not in config:
            group = tuple(sorted(config.items()))
            config["seed"] = seeds_taken[group]
            seeds_taken[group] += 1
        t0 = min(e.wall_time for e in events) if events else 0.0
        for e in events:
            if math.isfinite(e.value):
                rows.append({**config, "env_step": int(round(e.step * step_scale)), "return": float(e.value),
                             "wall_seconds": float(e.wall_time - t0)})  # fmt: skip
    return _finish(rows, str(root))


# ---- W&B chart export ----------------------------------------------------------------------------------------------
_WANDB_COLUMN = re.compile(r"^(?P<run>.+) - (?P<metric>.+?)$")


def import_wandb_csv(
    path: str | Path, tag: str | None = None, pattern: str | None = None,
    constants: Mapping[str, str] | None = None, step_scale: float = 1.0,
) -> list[dict[str, Any]]:  # fmt: skip
    """A CSV exported from a W&B line plot: a step column (``Step``, ``_step`` or ``global_step``) and one column
    ``<run name> - <metric>`` per run (``__MIN``/``__MAX`` columns are skipped). Config values come from the run
    name (``pattern``) and ``constants``; runs of one configuration without a seed get seeds 0, 1, ..."""
    path = Path(path)
    constants = dict(constants or {})
    _check_columns(constants, "--set")
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(f"{path}: empty file") from None
        step_col = next((i for i, h in enumerate(header) if h.strip().lower() in ("step", "_step", "global_step")),
                        None)  # fmt: skip
        if step_col is None:
            raise SourceError(f"{path}: no step column (Step, _step or global_step) in the header")
        runs: dict[int, tuple[str, str]] = {}
        for i, h in enumerate(header):
            m = _WANDB_COLUMN.match(h.strip())
            if m and not h.endswith(("__MIN", "__MAX")) and (tag is None or m["metric"] == tag):
                runs[i] = (m["run"], m["metric"])
        metrics = sorted({m for _r, m in runs.values()})
        if not runs:
            raise SourceError(f"{path}: no '<run> - {tag or '<metric>'}' columns in the header")
        if len(metrics) > 1:
            raise SourceError(f"{path}: several metrics ({', '.join(metrics)}); choose one with --tag")
        configs: dict[int, dict[str, Any]] = {}
        seeds_taken: dict[tuple, int] = defaultdict(int)
        for i, (run, _m) in sorted(runs.items(), key=lambda kv: kv[1][0]):
            config = _typed_config(config_from_name(run, pattern, constants, f"{path}: run {run!r}"),
                                   f"{path}: run {run!r} (--set/--pattern)")  # fmt: skip
            if "seed" not in config:
                group = tuple(sorted(config.items()))
                config["seed"] = seeds_taken[group]
                seeds_taken[group] += 1
            configs[i] = config
        rows = []
        for line, raw in enumerate(reader, start=2):
            if not any(cell.strip() for cell in raw):
                continue
            if len(raw) != len(header):
                raise SourceError(f"{path}, line {line}: {len(raw)} fields, the header has {len(header)}")
            try:
                step = float(raw[step_col])
            except ValueError:
                raise SourceError(f"{path}, line {line}: step {raw[step_col]!r} is not a number") from None
            for i, config in configs.items():
                cell = raw[i].strip()
                if not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    raise SourceError(f"{path}, line {line}: {header[i]!r}: {cell!r} is not a number") from None
                if math.isfinite(value):
                    rows.append({**config, "env_step": int(round(step * step_scale)), "return": value})
    return _finish(rows, str(path))
