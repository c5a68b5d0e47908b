"""``launch.benchmark`` plugin: run our algorithms in the benchmark's own process instead of one ``launch.train``
subprocess per run. On a small, loaded CPU the per-run start-up (imports, JAX compilation of the Playground task)
costs more than a CPU-sized run itself; in-process, torch is imported once and JAX compiles each Playground task
once per worker. The training and evaluation are exactly ``launch.train``'s (same parser, same ``Trainer``).

    python -m launch.benchmark --suite algorithms --plugins benchmarks.algorithms.inprocess ...
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from launch import benchmark


def _runner(algo: str) -> benchmark.Runner:
    def run(task: str, seed: int, time_budget_s: float, env_step_budget: int, run_dir: Path, device: str, *,
            overrides: dict[str, Any] | None = None, preset: str = "default") -> list[dict[str, float]]:  # fmt: skip
        from launch.train import parse
        from parallel_rl.runtime import Trainer
        from tasks import env_factory

        args = benchmark.train_args(
            algo, task, seed, time_budget_s, env_step_budget, run_dir, device, overrides, preset
        )
        train_dir = run_dir / "train"
        (run_dir / "command.txt").write_text("python -m launch.train " + shlex.join(args) + "\n")
        Trainer(parse(args), env_factory(task)).run(train_dir)
        return benchmark.read_eval_rows(train_dir / "metrics.csv")

    run.__name__ = f"run_{algo}_in_process"
    return run


for _algo in ("fasttd3", "pql", "fastsac", "crossq"):
    benchmark.register_runner(_algo, _runner(_algo), replace=True)
