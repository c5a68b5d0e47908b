"""Built-in torch-native tasks, the task registry, and per-task, per-algorithm presets.

Presets are nested override dicts applied on top of ``TrainConfig``'s defaults; flags on the command line override
them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from parallel_rl.config import ConfigError, suggest
from parallel_rl.envs import VecEnv
from tasks.cartpole_swingup import CartpoleSwingup
from tasks.pendulum import Pendulum
from tasks.reacher import Reacher3


@dataclass(frozen=True)
class TaskEntry:
    make: Callable[..., VecEnv]
    description: str
    presets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """algo -> preset name -> overrides."""


# CPU-sized presets: few envs, many updates per env step (utd), small networks. PQL differs from FastTD3 as in
# its paper: 3-step returns, tau 0.05, gradient clipping 0.5, no target policy smoothing.
_PQL = {"n_step": 3, "tau": 0.05, "target_noise": 0.0, "max_grad_norm": 0.5}


def _cpu_presets(total_env_steps: int, agent: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    run = {"num_envs": 32, "total_env_steps": total_env_steps, "schedule": {"utd": 4, "policy_ratio": 0.5},
           "buffer": {"batch_size": 256}}  # fmt: skip
    return {"fasttd3": {"default": {**run, "agent": agent}}, "pql": {"default": {**run, "agent": {**agent, **_PQL}}}}


TASKS: dict[str, TaskEntry] = {
    # Rewards in [-16.3, 0]; scaled by 0.1, the discounted values of a competent policy lie within [-50, 1].
    "pendulum": TaskEntry(
        Pendulum,
        "Gymnasium Pendulum-v1 in torch (obs 3, act 1, 200 steps)",
        _cpu_presets(40_000, {"reward_scale": 0.1, "v_min": -50.0, "v_max": 1.0, "std_min": 0.05, "std_max": 0.8}),
    ),
    # Rewards in [0, 1]: discounted values lie in [0, 100].
    "cartpole-swingup": TaskEntry(
        CartpoleSwingup,
        "cart-pole swing-up, continuous force (obs 5, act 1, 200 steps, terminates off the track)",
        _cpu_presets(80_000, {"v_min": -1.0, "v_max": 101.0, "std_min": 0.05, "std_max": 0.8}),
    ),
    # Rewards in about [-1.3, 0]; gamma 0.97 keeps values within [-45, 0].
    "reacher3": TaskEntry(
        Reacher3,
        "planar 3-link arm reaching a random target (obs 13, act 3, 100 steps)",
        _cpu_presets(100_000, {"gamma": 0.97, "v_min": -45.0, "v_max": 1.0, "std_min": 0.05, "std_max": 0.6}),
    ),
}


def task_entry(name: str) -> TaskEntry:
    # --- mjlab backend (issue 7): `mjlab:<task id>` resolves through tasks/presets_mjlab.py. To fold into the
    # prefixed-backend table when merging. ---
    if name.startswith("mjlab:"):
        from tasks.presets_mjlab import mjlab_task_entry

        return mjlab_task_entry(name)
    # --- end mjlab ---
    if name not in TASKS:
        raise ConfigError(f"--task: unknown task {name!r}{suggest(name, list(TASKS))} (known: {', '.join(TASKS)})")
    return TASKS[name]


def make_env(name: str, num_envs: int, device: torch.device | str = "cpu", seed: int = 0) -> VecEnv:
    return task_entry(name).make(num_envs=num_envs, device=device, seed=seed)


def preset(task: str, algo: str, name: str = "default") -> dict[str, Any]:
    presets = task_entry(task).presets.get(algo, {"default": {}})
    if name not in presets:
        raise ConfigError(
            f"--preset: no preset {name!r} for task {task!r} with algo {algo!r}{suggest(name, list(presets))} "
            f"(available: {', '.join(presets)})"
        )
    return presets[name]


def env_factory(name: str):
    """The (num_envs, device, seed) -> VecEnv callable the trainer takes."""
    task_entry(name)
    return lambda num_envs, device, seed: make_env(name, num_envs, device, seed)
