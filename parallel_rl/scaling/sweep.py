"""Sweeps: the trainer over a grid of (σ, batch, lr, critic width) x seeds, one separate process per run.

Separate processes keep runs independent (no shared torch state, threads or memory growth), let a worker pool run
several at once, and let a crashed or hung run fail alone. The sweep is resumable: a cell whose run directory holds
``run_table.csv`` is done and skipped; a directory without it is an interrupted run and is started again. The
library does not know how to start a run: the caller passes ``command(cell, run_dir) -> argv``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from parallel_rl.scaling.runtable import RUN_TABLE_NAME, concat_run_tables, write_run_dir_table, write_run_table


@dataclass(frozen=True)
class SweepCell:
    """One run: σ (critic updates per transition), batch size, learning rate, critic width, seed, and its length."""

    sigma: float
    batch_size: int
    lr: float
    critic_width: int
    seed: int
    total_env_steps: int
    num_envs: int = 0
    """Parallel envs of this run (0: the training config's; set when the sweep varies them)."""

    @property
    def name(self) -> str:
        envs = f"_n{self.num_envs}" if self.num_envs else ""
        return f"utd{self.sigma:g}_bs{self.batch_size}_lr{self.lr:g}_w{self.critic_width}{envs}_seed{self.seed}"


def env_steps_for(
    sigma: float, total_env_steps: int, max_critic_updates: int, min_env_steps: int, num_envs: int
) -> int:
    """Run length in transitions: ``total_env_steps``, shortened so that a high-σ run stops after
    ``max_critic_updates`` critic updates (0 = no cap) but never below ``min_env_steps``; whole vectorized steps."""
    steps = total_env_steps
    if max_critic_updates > 0:
        steps = min(steps, max(min_env_steps, math.ceil(max_critic_updates / sigma)))
    return max(num_envs, math.ceil(steps / num_envs) * num_envs)


def grid_cells(
    sigmas: Sequence[float], batch_sizes: Sequence[int] | Callable[[float], int],
    lrs: Sequence[float] | Callable[[float], float], widths: Sequence[int], seeds: Sequence[int],
    env_steps: Callable[[float], int],
) -> list[SweepCell]:  # fmt: skip
    """The full grid. ``batch_sizes``/``lrs`` are lists (swept) or functions of σ (taken from fitted laws)."""
    if not sigmas or not widths or not seeds:
        raise ValueError("a sweep needs at least one σ, one critic width and one seed")
    cells = []
    for sigma in sigmas:
        if not sigma > 0:
            raise ValueError(f"σ must be > 0, got {sigma}")
        bs = [batch_sizes(sigma)] if callable(batch_sizes) else list(batch_sizes)
        ls = [lrs(sigma)] if callable(lrs) else list(lrs)
        for b in bs:
            for lr in ls:
                for w in widths:
                    for seed in seeds:
                        cells.append(SweepCell(float(sigma), int(b), float(lr), int(w), int(seed), env_steps(sigma)))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise ValueError("the grid repeats a cell (duplicate values in a list?)")
    return cells


@dataclass
class CellResult:
    cell: SweepCell
    status: str  # "done", "skipped" (already done), "failed"
    seconds: float = 0.0
    message: str = ""


def run_sweep(
    cells: Sequence[SweepCell], out_dir: str | Path, command: Callable[[SweepCell, Path], list[str]],
    workers: int = 1, hard_timeout_s: float | None = None, progress: bool = True, env: dict[str, str] | None = None,
) -> list[CellResult]:  # fmt: skip
    """Run every cell not yet done, ``workers`` processes at a time; then write ``out_dir/run_table.csv`` with the
    rows of every finished run in ``out_dir/runs``. Failures are reported, not raised, so one bad cell does not stop
    the others. ``env``: the children's environment (default: this process's)."""
    out_dir = Path(out_dir)
    runs = out_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for c in cells:  # a run that finished (summary.json) but lost its table to an interrupted sweep is recovered
        run_dir = runs / c.name
        if (run_dir / "summary.json").is_file() and not (run_dir / RUN_TABLE_NAME).is_file():
            try:
                write_run_dir_table(run_dir)
            except ValueError:
                pass  # unreadable: it runs again
    finished = {c.name for c in cells if (runs / c.name / RUN_TABLE_NAME).is_file()}
    todo = [c for c in cells if c.name not in finished]
    results = [CellResult(c, "skipped") for c in cells if c.name in finished]
    bar = _bar(len(cells), len(results), progress)
    lock = threading.Lock()

    def one(cell: SweepCell) -> CellResult:
        run_dir = runs / cell.name
        if run_dir.exists():  # interrupted before its run table was written: start it again
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        start = time.perf_counter()
        with (run_dir / "train.log").open("w") as log:
            try:
                proc = subprocess.run(command(cell, run_dir), stdout=log, stderr=subprocess.STDOUT,
                                      timeout=hard_timeout_s, check=False, env=env)  # fmt: skip
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
        seconds = time.perf_counter() - start
        if code != 0:
            why = "killed after the hard timeout" if code is None else f"exit code {code}"
            return CellResult(cell, "failed", seconds, f"{why}; see {run_dir / 'train.log'}")
        try:
            if not (run_dir / RUN_TABLE_NAME).is_file():
                write_run_dir_table(run_dir)
        except ValueError as e:
            return CellResult(cell, "failed", seconds, str(e))
        return CellResult(cell, "done", seconds)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(one, c) for c in todo]
            for fut in as_completed(futures):
                res = fut.result()
                with lock:
                    results.append(res)
                    _report(bar, res, len(results), len(cells))
    finally:
        if bar is not None:
            bar.close()
    # The directory's table holds every finished run under it, so sweeps that extend a grid add up.
    write_run_table(out_dir / RUN_TABLE_NAME, concat_run_tables(sorted(runs.glob(f"*/{RUN_TABLE_NAME}"))))
    order = {c.name: i for i, c in enumerate(cells)}
    return sorted(results, key=lambda r: order[r.cell.name])


def _bar(total: int, done: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="run", dynamic_ncols=True, desc="sweep")


def _report(bar, res: CellResult, finished: int, total: int) -> None:
    line = f"[{finished}/{total}] {res.cell.name}: {res.status} in {res.seconds:.1f} s"
    if res.message:
        line += f" ({res.message})"
    if bar is None:
        print(line, flush=True)
    else:
        bar.update(1)
        bar.write(line)


def summarise(results: Sequence[CellResult]) -> dict:
    """JSON-ready record of a sweep (what ran, what was skipped, what failed and why)."""
    return {
        "cells": [
            {**asdict(r.cell), "name": r.cell.name, "status": r.status, "seconds": r.seconds, "message": r.message}
            for r in results
        ],  # fmt: skip
        "done": sum(r.status == "done" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": sum(r.status == "failed" for r in results),
    }
