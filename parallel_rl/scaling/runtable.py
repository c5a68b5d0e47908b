"""Run tables: the one long-format CSV the scaling toolkit reads (one row per evaluation of one run).

Columns (``RUN_TABLE_COLUMNS``); the required ones are ``REQUIRED_COLUMNS``, any other may be missing from the file
or left empty in a row (unknown), and each result that needs one says so (``COLUMN_NEEDED_BY``):

- ``task``, ``algo``, ``seed``;
- ``utd``: σ, critic updates per environment *transition* (the trainer's ``--utd`` divided by ``--num-envs``), the
  quantity the scaling laws are written in;
- ``batch_size``, ``lr`` (the critic's learning rate), ``critic_width`` (widest hidden layer of one critic),
  ``critic_params`` (parameters of the whole critic ensemble, the N of the compute model), ``num_envs``;
- ``env_step`` (transitions so far), ``wall_seconds`` (training time, evaluation excluded), ``return``;
- ``return_lo``, ``return_hi``: the task's return range for the papers' 0-1000 scale (lo -> 0, hi -> 1000), written
  by importers that know it (``return`` itself stays raw).

``return`` is the deterministic evaluation return when the run evaluated periodically (``--eval-every``), else the
mean return of the training episodes that ended in the logging interval. A multi-task run (``--task multi:...``)
has one row per task and evaluation, ``task`` naming the task, so each task's crossing times are fitted apart.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RUN_TABLE_COLUMNS = (
    "task",
    "algo",
    "utd",
    "batch_size",
    "lr",
    "critic_width",
    "critic_params",
    "seed",
    "env_step",
    "wall_seconds",
    "return",
    "num_envs",
    "return_lo",
    "return_hi",
)
REQUIRED_COLUMNS = ("task", "utd", "seed", "env_step", "return")
RUN_TABLE_NAME = "run_table.csv"
_FLOAT_COLUMNS = ("utd", "lr", "wall_seconds", "return", "return_lo", "return_hi")
_INT_COLUMNS = ("batch_size", "critic_width", "critic_params", "seed", "env_step", "num_envs")
MISSING = -1
"""Value of an unknown integer column (and of an unknown ``lr``) in a configuration key: a run table may leave batch
size, learning rate, critic size or env count empty; those rows still group into one configuration per run."""
COLUMN_NEEDED_BY = {
    "batch_size": "B*(σ) (the batch-size law), the compute C_J = k·N·B·σ·D and σ*(F) (or pass --hyper-laws)",
    "lr": "η*(σ) (the learning-rate law)",
    "critic_params": "the compute C_J and σ*(F) (or pass --params N), and D_J(σ, N), B*(σ, N)",
    "critic_width": "the critic width in recommendations (parameters are reported instead)",
    "wall_seconds": "δ estimated from wall-clock (or pass --delta) and wall-clock time to threshold",
    "num_envs": "the law D_J(num_envs) and wall-clock time to threshold against num_envs",
}


class RunTableError(ValueError):
    """A run table or run directory that cannot be read; the message names the file and the missing piece."""


@dataclass(frozen=True, order=True)
class ConfigKey:
    """One configuration of the sweep grid; its seeds are repetitions of the same experiment."""

    task: str
    algo: str
    utd: float
    batch_size: int
    lr: float
    critic_width: int
    critic_params: int
    num_envs: int = MISSING


@dataclass
class Curve:
    """One run's learning curve: returns at increasing env steps."""

    env_step: np.ndarray
    returns: np.ndarray
    wall_seconds: np.ndarray


# ---- reading and writing -----------------------------------------------------------------------------------------
def read_run_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows with typed values; a missing file or missing columns fail with a message that names them."""
    path = Path(path)
    if not path.is_file():
        raise RunTableError(f"run table not found: {path}")
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise RunTableError(
                    f"{path}: missing column(s) {', '.join(missing)}; a run table needs {', '.join(REQUIRED_COLUMNS)} "
                    f"(optional: {', '.join(c for c in RUN_TABLE_COLUMNS if c not in REQUIRED_COLUMNS)})"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                try:
                    rows.append(_typed(raw))
                except ValueError as e:
                    raise RunTableError(f"{path}, line {line}: {e}") from None
                if not rows[-1]["utd"] > 0:  # the laws take log(utd): zero or negative rows would fit nonsense
                    raise RunTableError(f"{path}, line {line}: utd must be > 0 (critic updates per transition), "
                                        f"got {rows[-1]['utd']}")  # fmt: skip
    except UnicodeDecodeError as e:
        raise RunTableError(f"{path}: not a text CSV run table (undecodable byte at offset {e.start})") from None
    return rows


def _typed(raw: Mapping[str, str]) -> dict[str, Any]:
    task = (raw.get("task") or "").strip()
    if not task:
        raise ValueError("column 'task' is empty")
    row: dict[str, Any] = {"task": task, "algo": (raw.get("algo") or "").strip()}
    for col in _FLOAT_COLUMNS:
        row[col] = _number(raw, col, float)
    for col in _INT_COLUMNS:
        row[col] = _number(raw, col, int)
    return row


def _number(raw: Mapping[str, str], col: str, kind: type) -> Any:
    """A typed value; an empty or absent optional column is None (unknown)."""
    text = (raw.get(col) or "").strip()
    if not text:
        if col in REQUIRED_COLUMNS:
            raise ValueError(f"column {col!r} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"column {col!r}: {text!r} is not a number") from None
    if kind is int:
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"column {col!r}: {text!r} is not an integer")
        return int(value)
    return value


def write_run_table(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows (extra keys are dropped) via a temporary file, so a crash never leaves half a table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(RUN_TABLE_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    tmp.replace(path)
    return path


def concat_run_tables(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in paths:
        rows.extend(read_run_table(p))
    return rows


# ---- from a finished training run ----------------------------------------------------------------------------------
def rows_from_run_dir(run_dir: str | Path, critic_params: int | None = None) -> list[dict[str, Any]]:
    """Turn a finished run directory (config.json, metrics.csv, and the checkpoint for the parameter count) into
    run-table rows. ``critic_params`` overrides the count read from ``checkpoints/final.pt``."""
    run_dir = Path(run_dir)
    cfg_path, metrics_path = run_dir / "config.json", run_dir / "metrics.csv"
    for p in (cfg_path, metrics_path):
        if not p.is_file():
            raise RunTableError(f"{run_dir}: not a finished run directory ({p.name} is missing)")
    cfg = json.loads(cfg_path.read_text())
    try:
        agent, schedule, buffer = cfg["agent"], cfg["schedule"], cfg["buffer"]
        hidden = list(agent["critic_hidden"])
        base = {
            "task": cfg["task"],
            "algo": cfg["algo"],
            "utd": float(schedule["utd"]) / int(cfg["num_envs"]),
            "batch_size": int(buffer["batch_size"]),
            "lr": float(agent["critic_lr"]),
            "critic_width": max(hidden) if hidden else 0,
            "seed": int(cfg["seed"]),
            "num_envs": int(cfg["num_envs"]),
        }
    except KeyError as e:
        raise RunTableError(f"{cfg_path}: missing config field {e.args[0]!r}") from None
    base["critic_params"] = critic_params if critic_params is not None else critic_param_count_from_checkpoint(run_dir)
    with metrics_path.open(newline="") as f:
        metrics = list(csv.DictReader(f))
    key = "eval_return" if any(_finite(r.get("eval_return")) for r in metrics) else "episode_return"
    # Multi-task runs log ``<key>/<task>`` columns: one row per task, so crossing times are fitted per task.
    columns = list(metrics[0].keys()) if metrics else []
    per_task = {c[len(key) + 1 :]: c for c in columns if c.startswith(f"{key}/")}
    tasks = per_task or {base["task"]: key}
    rows = []
    for r in metrics:
        for task, column in tasks.items():
            if _finite(r.get(column)):
                rows.append({**base, "task": task, "env_step": int(float(r["env_step"])),
                             "wall_seconds": float(r.get("wall_seconds") or "nan"),
                             "return": float(r[column])})  # fmt: skip
    return rows


def _finite(text: str | None) -> bool:
    try:
        return text is not None and math.isfinite(float(text))
    except ValueError:
        return False


def critic_param_count_from_checkpoint(run_dir: str | Path) -> int:
    """Learnable parameters of the critic ensemble, as counted into the checkpoint (``param_counts``: parameters of
    the algorithm's networks; registered buffers such as the C51 support are not parameters)."""
    from parallel_rl.io.checkpoint import load_checkpoint

    path = Path(run_dir) / "checkpoints" / "final.pt"
    if not path.is_file():
        raise RunTableError(f"{run_dir}: no checkpoints/final.pt to count critic parameters from; pass critic_params")
    return int(load_checkpoint(path)["param_counts"]["critic"])  # restricted loader: no code runs


def flops_constant_from_run_dir(run_dir: str | Path) -> float:
    """k_flops of C = k·N·B·σ·D counted from a run's network shapes (critic and actor parameters from its checkpoint,
    policy updates per critic update from its config); see ``compute.flops_per_param_sample``."""
    from parallel_rl.io.checkpoint import load_checkpoint
    from parallel_rl.scaling.compute import flops_per_param_sample

    run_dir = Path(run_dir)
    path, cfg_path = run_dir / "checkpoints" / "final.pt", run_dir / "config.json"
    if not path.is_file() or not cfg_path.is_file():
        raise RunTableError(f"{run_dir}: counting FLOPs needs checkpoints/final.pt and config.json")
    counts = load_checkpoint(path)["param_counts"]
    ratio = float(json.loads(cfg_path.read_text())["schedule"]["policy_ratio"])
    return flops_per_param_sample(int(counts["critic"]), int(counts["actor"]), ratio)


def write_run_dir_table(run_dir: str | Path, critic_params: int | None = None) -> Path:
    """Write ``run_table.csv`` into a finished run directory; the sweep treats its presence as 'cell done'."""
    return write_run_table(Path(run_dir) / RUN_TABLE_NAME, rows_from_run_dir(run_dir, critic_params))


# ---- grouping and normalising --------------------------------------------------------------------------------------
def _known(value: Any, kind: type) -> Any:
    return kind(MISSING) if value is None or (isinstance(value, float) and math.isnan(value)) else kind(value)


def config_key(row: Mapping[str, Any]) -> ConfigKey:
    """The configuration a row belongs to; unknown columns take ``MISSING``."""
    return ConfigKey(row["task"], row.get("algo") or "", float(row["utd"]), _known(row.get("batch_size"), int),
                     _known(row.get("lr"), float), _known(row.get("critic_width"), int),
                     _known(row.get("critic_params"), int), _known(row.get("num_envs"), int))  # fmt: skip


def missing_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Optional columns unknown in some rows: column -> number of rows without it."""
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        for col in COLUMN_NEEDED_BY:
            v = r.get(col)
            if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
                counts[col] += 1
    return dict(counts)


def curves(rows: Iterable[Mapping[str, Any]]) -> dict[ConfigKey, dict[int, Curve]]:
    """Group rows into learning curves: config -> seed -> curve sorted by env step."""
    grouped: dict[ConfigKey, dict[int, list[tuple[int, float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        wall = r.get("wall_seconds")
        grouped[config_key(r)][int(r["seed"])].append(
            (int(r["env_step"]), float(r["return"]), float("nan") if wall is None else float(wall))
        )
    out: dict[ConfigKey, dict[int, Curve]] = {}
    for key in sorted(grouped):
        out[key] = {}
        for seed, points in sorted(grouped[key].items()):
            points.sort()
            steps = np.array([p[0] for p in points], dtype=np.int64)
            if len(np.unique(steps)) != len(steps):
                raise RunTableError(f"config {key} seed {seed}: the same env_step appears twice (duplicate run?)")
            out[key][seed] = Curve(steps, np.array([p[1] for p in points]), np.array([p[2] for p in points]))
    return out


def normalize_returns(
    rows: Iterable[Mapping[str, Any]], ranges: Mapping[str, tuple[float, float]]
) -> list[dict[str, Any]]:
    """Map each task's returns onto the 0-1000 scale of the papers: ``lo`` -> 0, ``hi`` -> 1000 (not clipped).
    Tasks without a range keep their raw returns."""
    out = []
    for r in rows:
        r = dict(r)
        if r["task"] in ranges:
            lo, hi = ranges[r["task"]]
            if not hi > lo:
                raise ValueError(f"return range of task {r['task']!r}: need lo < hi, got ({lo}, {hi})")
            r["return"] = 1000.0 * (float(r["return"]) - lo) / (hi - lo)
        out.append(r)
    return out
