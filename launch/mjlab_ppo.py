"""mjlab's own PPO (its rsl_rl runner, as ``mjlab.scripts.train`` runs it) under a wall-clock budget: the baseline of
the head-to-head benchmark.

``run_mjlab_ppo(task, seed, time_budget_s, env_step_budget, run_dir, device)`` is the benchmark's external-runner
signature and returns rows ``{env_steps, wall_seconds, return}``. It trains in a child process
(``python -m launch.mjlab_ppo --task ... --run-dir ...``) so that what mjlab sets process-wide (TF32 matmuls, the
global RNG seeds, Warp's state) never leaks into the runs measured after it.

What is run, and how it is read:

- the task's registered env config, PPO config and runner class, with ``num_envs`` (4096 on CUDA, as mjlab's users
  train the G1; 4 on CPU), the given seed for env and agent, actions clipped as the task's config says, and
  ``init_at_random_ep_len=True``, as mjlab's train script does. Two departures, both so neither side pays for
  things the other does not do: the TensorBoard logger instead of W&B (offline), and no periodic checkpoints.
- the budget is checked after every PPO iteration (a hook on rsl_rl's logger, the only per-iteration callback the
  runner has); the run stops at the first iteration that reaches the wall-clock or env-step budget. The clock starts
  when learning starts (env built, kernels compiled), as the trainer's ``wall_seconds`` does.
- returns are rsl_rl's own ``Train/mean_reward`` from its TensorBoard log: the mean undiscounted return of the last
  100 training episodes (stochastic policy), in mjlab's dt-scaled reward units, the same units our adapter keeps.
  ``env_steps`` = (iteration + 1) x ``num_steps_per_env`` x ``num_envs``; ``wall_seconds`` = the event's time since
  learning started.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

RETURN_TAG = "Train/mean_reward"
PPO_NUM_ENVS = {"cuda": 4096, "cpu": 4}
"""Default PPO env count by device type."""


class _BudgetReached(Exception):
    """Raised from the per-iteration hook to leave rsl_rl's learn loop when the budget is spent."""


def ppo_num_envs(device: str) -> int:
    return PPO_NUM_ENVS["cuda" if device.startswith("cuda") else "cpu"]


def read_tensorboard_returns(log_dir: Path, learn_start_epoch: float, steps_per_iteration: int) -> list[dict]:
    """``Train/mean_reward`` events as rows {env_steps, wall_seconds, return}, in iteration order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if RETURN_TAG not in acc.Tags().get("scalars", []):
        return []  # no episode finished within the budget
    return [
        {
            "env_steps": (event.step + 1) * steps_per_iteration,
            "wall_seconds": max(event.wall_time - learn_start_epoch, 0.0),
            "return": float(event.value),
        }
        for event in sorted(acc.Scalars(RETURN_TAG), key=lambda e: e.step)
    ]


def train_ppo(
    task: str, seed: int, time_budget_s: float, env_step_budget: int, run_dir: Path, device: str, num_envs: int,
    episode_length_s: float | None = None,
) -> list[dict]:  # fmt: skip
    """Train in this process (the child's side of ``run_mjlab_ppo``); writes rows.csv and summary.json.
    ``episode_length_s`` overrides the task's episode length (tests use short episodes so that returns appear)."""
    from parallel_rl.envs.mjlab import import_mjlab

    env_cls, registry = import_mjlab()
    from mjlab.rl import MjlabOnPolicyRunner, RslRlVecEnvWrapper
    from mjlab.utils.torch import configure_torch_backends

    task_id = task.removeprefix("mjlab:")
    if task_id not in registry.list_tasks():
        raise SystemExit(f"error: unknown mjlab task {task_id!r}")
    configure_torch_backends()  # as mjlab's train script does
    env_cfg, agent_cfg = registry.load_env_cfg(task_id), registry.load_rl_cfg(task_id)
    env_cfg.scene.num_envs = num_envs
    if episode_length_s is not None:
        env_cfg.episode_length_s = episode_length_s
    env_cfg.seed = agent_cfg.seed = seed
    agent_cfg.logger = "tensorboard"
    agent_cfg.save_interval = 10**9
    agent_cfg.upload_model = False
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir = run_dir / "rsl_rl"
    env = RslRlVecEnvWrapper(env_cls(env_cfg, device=device), clip_actions=agent_cfg.clip_actions)
    runner_cls = registry.load_runner_cls(task_id) or MjlabOnPolicyRunner
    runner = runner_cls(env, asdict(agent_cfg), str(log_dir), device)
    steps_per_iteration = agent_cfg.num_steps_per_env * num_envs

    log_iteration = runner.logger.log
    start = time.perf_counter()
    iterations = 0

    def log_and_check_budget(*args: Any, **kwargs: Any) -> None:
        nonlocal iterations
        log_iteration(*args, **kwargs)
        iterations += 1
        spent = time.perf_counter() - start
        if spent >= time_budget_s or iterations * steps_per_iteration >= env_step_budget:
            raise _BudgetReached

    runner.logger.log = log_and_check_budget
    learn_start_epoch = time.time()
    start = time.perf_counter()
    try:
        runner.learn(num_learning_iterations=agent_cfg.max_iterations, init_at_random_ep_len=True)
    except _BudgetReached:
        pass
    wall = time.perf_counter() - start
    if runner.logger.writer is not None:
        runner.logger.writer.flush()
        runner.logger.writer.close()
    env.close()
    rows = read_tensorboard_returns(log_dir, learn_start_epoch, steps_per_iteration)
    with open(run_dir / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["env_steps", "wall_seconds", "return"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "task": f"mjlab:{task_id}", "algo": "mjlab-ppo", "seed": seed, "device": device, "num_envs": num_envs,
        "iterations": iterations, "env_steps": iterations * steps_per_iteration, "wall_seconds": wall,
        "env_steps_per_s": iterations * steps_per_iteration / max(wall, 1e-9),
        "final_return": rows[-1]["return"] if rows else None, "return_metric": RETURN_TAG,
        "time_budget_s": time_budget_s, "env_step_budget": env_step_budget, "tensorboard": str(log_dir),
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return rows


def run_mjlab_ppo(
    task: str,
    seed: int,
    time_budget_s: float,
    env_step_budget: int,
    run_dir: Path,
    device: str,
    num_envs: int | None = None,
    episode_length_s: float | None = None,
) -> list[dict]:
    """External benchmark runner: mjlab PPO on ``task`` in a child process; rows {env_steps, wall_seconds, return}."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if device == "auto":
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = "cuda:0"  # Warp wants the index
    cmd = [
        sys.executable, "-m", "launch.mjlab_ppo", "--task", task, "--seed", str(seed),
        "--time-budget-s", str(time_budget_s), "--env-step-budget", str(env_step_budget), "--run-dir", str(run_dir),
        "--device", device, "--num-envs", str(num_envs or ppo_num_envs(device)),
    ]  # fmt: skip
    if episode_length_s is not None:
        cmd += ["--episode-length-s", str(episode_length_s)]
    repo_root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))}
    with open(run_dir / "stdout.log", "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=repo_root)
    if done.returncode != 0:
        tail = (run_dir / "stdout.log").read_text()[-2000:]
        raise RuntimeError(f"mjlab PPO failed (exit {done.returncode}); log {run_dir / 'stdout.log'}:\n{tail}")
    with open(run_dir / "rows.csv") as f:
        return [{k: float(v) if k != "env_steps" else int(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train mjlab's PPO (rsl_rl) on an mjlab task within a wall-clock budget.")
    p.add_argument("--task", default="mjlab:Mjlab-Velocity-Flat-Unitree-G1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget-s", type=float, default=600.0)
    p.add_argument("--env-step-budget", type=int, default=10**12)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--device", default="cpu", help="'cpu' or 'cuda:N'")
    p.add_argument("--num-envs", type=int, default=None, help="default: 4096 on CUDA, 4 on CPU")
    p.add_argument("--episode-length-s", type=float, default=None, help="override the task's episode length")
    a = p.parse_args(argv)
    rows = train_ppo(a.task, a.seed, a.time_budget_s, a.env_step_budget, a.run_dir, a.device,
                     a.num_envs or ppo_num_envs(a.device), a.episode_length_s)  # fmt: skip
    last = rows[-1] if rows else None
    print(f"done: {len(rows)} return rows; last {last}; run dir {a.run_dir}")


if __name__ == "__main__":
    from launch._cli import run_cli

    run_cli(main)
