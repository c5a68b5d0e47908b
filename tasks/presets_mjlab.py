"""mjlab tasks (``mjlab:<task id>``) in the task registry: env factory and presets for the Unitree G1 velocity tasks.

Why these numbers:

- **Reward scale and value range.** The adapter keeps mjlab's dt-scaled rewards (so returns equal mjlab PPO's). On
  the G1 velocity tasks the positive terms (velocity tracking 2 + 2, upright 1, pose 1) give at most about
  6 * 0.02 = 0.12 per step, so with gamma 0.99 a perfect policy is worth about 12; penalties (joint limits, action
  rate, foot clearance, self collisions) push early values below 0. The C51 support is [-10, 15] with reward scale 1.
- **FastTD3** follows its published Isaac Lab velocity recipe (4096 envs, 4 critic updates per env step, 8-step
  returns, gamma 0.99, critic 1024-512-256, actor 512-256-128, 251 atoms on Isaac Lab). The buffer holds 5120
  transitions per env in bfloat16 (21M transitions, about 11 GB) instead of 10,240 in fp32, so it fits beside
  the simulator on an 80 GB GPU.
- **PQL** follows its paper (batch 8192, 8 critic updates per env step, 1 policy update per 2, 3-step returns,
  tau 0.05, lr 5e-4, grad clip 0.5, 512-256-128 ELU, mixed exploration std linspace(0.05, 0.8), C51 with 51 atoms,
  buffer 5e6). Its reward scale of 0.01 was for unscaled Isaac Gym rewards; these are already dt-scaled.
- **Asymmetric critic.** Both tasks have a privileged ``critic`` observation group (unbiased joint positions, foot
  contacts and heights, and the terrain scan on rough); the trainer feeds it to the critic whenever the env's spec
  has ``critic_obs_dim``, so no preset field is needed.
- **cpu** presets are sized to show the path works on a laptop CPU (a few envs, small networks), not to learn.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from parallel_rl.config import ConfigError, suggest
from parallel_rl.envs.base import VecEnv
from tasks import TaskEntry
from tasks.backend import CpuScale, Preset, cpu_preset

PREFIX = "mjlab:"
G1_TASKS = ("Mjlab-Velocity-Flat-Unitree-G1", "Mjlab-Velocity-Rough-Unitree-G1")
"""mjlab task ids these presets were written for; other mjlab tasks get the generic presets below."""

_G1_VALUE_RANGE = {"reward_scale": 1.0, "v_min": -10.0, "v_max": 15.0}

_FASTTD3_G1 = Preset(
    {
        "num_envs": 4096,
        "total_env_steps": 500_000_000,  # a ceiling: benchmarks stop on --max-wall-seconds
        "eval_envs": 256,
        "eval_every": 10_000_000,
        "schedule": {"utd": 4, "policy_ratio": 0.5},
        "buffer": {"buffer_size": 4096 * 5120, "batch_size": 32_768, "storage_dtype": "bfloat16"},
        "agent": {
            **_G1_VALUE_RANGE,
            "gamma": 0.99,
            "n_step": 8,
            "tau": 0.1,
            "critic_hidden": (1024, 512, 256),
            "actor_hidden": (512, 256, 128),
            "activation": "relu",
            "num_atoms": 251,
            "std_min": 0.001,
            "std_max": 0.4,
        },
    }
)

_PQL_G1 = Preset(
    {
        "num_envs": 4096,
        "total_env_steps": 500_000_000,
        "eval_envs": 256,
        "eval_every": 10_000_000,
        "schedule": {"utd": 8, "policy_ratio": 0.5},
        "buffer": {"buffer_size": 5_000_000, "batch_size": 8192},
        "agent": {
            **_G1_VALUE_RANGE,
            "gamma": 0.99,
            "n_step": 3,
            "tau": 0.05,
            "critic_lr": 5e-4,
            "actor_lr": 5e-4,
            "max_grad_norm": 0.5,
            "critic_hidden": (512, 256, 128),
            "actor_hidden": (512, 256, 128),
            "activation": "elu",
            "num_atoms": 51,
            "std_min": 0.05,
            "std_max": 0.8,
            "target_noise": 0.0,
        },
    }
)


#: CPU size: 4 envs, small networks, a few thousand transitions (one G1 step costs ~20 ms per env on a CPU).
CPU_SCALE = CpuScale(num_envs=4, total_env_steps=4000, eval_envs=2, buffer_size=40_000, num_atoms=51,
                     extra={"log_every": 10})  # fmt: skip


PRESETS: dict[str, dict[str, Preset]] = {
    "fasttd3": {"default": _FASTTD3_G1, "cpu": cpu_preset(_FASTTD3_G1, "fasttd3", CPU_SCALE)},
    "pql": {"default": _PQL_G1, "cpu": cpu_preset(_PQL_G1, "pql", CPU_SCALE)},
}
"""algo -> preset name -> overrides; the same for the flat and rough G1 tasks (rough only adds critic inputs)."""


def _task_id(name: str) -> str:
    return name.removeprefix(PREFIX)


def make_mjlab_env(task_id: str, num_envs: int, device: torch.device | str = "cpu", seed: int = 0) -> VecEnv:
    """The registry's factory for ``mjlab:<task id>`` (the prefix is optional here)."""
    from parallel_rl.envs.mjlab import MjlabVecEnv

    return MjlabVecEnv(_task_id(task_id), num_envs, device, seed)


def mjlab_preset(task_id: str, algo: str, name: str = "default") -> dict[str, Any]:
    """Config overrides for (task, algo, preset name); raises ConfigError naming the valid presets."""
    presets = PRESETS.get(algo, {"default": {}})
    if name not in presets:
        raise ConfigError(
            f"--preset: no preset {name!r} for task {task_id!r} with algo {algo!r}{suggest(name, list(presets))} "
            f"(available: {', '.join(presets)})"
        )
    return presets[name]


@functools.cache
def mjlab_task_entry(name: str) -> TaskEntry:
    """Registry entry for ``mjlab:<task id>``. Checks that mjlab imports and knows the id, so a typo or a missing
    install fails at parse time with one message (the import costs a few seconds, paid once per process)."""
    from parallel_rl.envs.mjlab import MjlabMissingError, list_mjlab_tasks

    task_id = _task_id(name)
    try:
        known = list_mjlab_tasks()
    except MjlabMissingError as e:
        raise ConfigError(f"--task {name}: {e}") from None
    if task_id not in known:
        raise ConfigError(
            f"--task: unknown mjlab task {task_id!r}{suggest(task_id, known)} (known: "
            + ", ".join(PREFIX + t for t in known)
            + ")"
        )
    return TaskEntry(
        functools.partial(make_mjlab_env, task_id),
        f"mjlab task {task_id} (MuJoCo Warp; actor/critic observation groups)",
        PRESETS,
    )


def _check(task_id: str) -> None:
    """Cheap for the registry's parse-time check: the full check (mjlab imports, the id exists) is ``make``'s."""
    mjlab_task_entry(task_id)


def _make(task_id: str, num_envs: int, device: torch.device | str = "cpu", seed: int = 0, **options: Any) -> VecEnv:
    from parallel_rl.envs.mjlab import MjlabVecEnv

    return MjlabVecEnv(_task_id(task_id), num_envs, device, seed, **options)


def _backend():
    from tasks.backend import Backend

    return Backend(
        make=_make,
        presets=lambda task_id: PRESETS,
        check=_check,
        description="mjlab (Isaac Lab's manager API on MuJoCo Warp): Unitree G1 velocity tasks, offline",
        tuned=("Mjlab-Velocity-Flat-Unitree-G1", "Mjlab-Velocity-Rough-Unitree-G1"),
    )


BACKEND = _backend()
