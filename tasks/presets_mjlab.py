"""mjlab tasks (``mjlab:<task id>``) in the task registry: env factory and presets for the Unitree G1 velocity tasks.

The numbers (FastTD3's Isaac Lab velocity recipe, PQL's paper, mjlab's dt-scaled rewards with C51 on [-10, 15]) are
``parallel_rl.integrations.mjlab.G1_RECIPES``, shared with the ``<task id>-FastTD3`` tasks that mjlab's own train
script runs; their reasons are written there. Here they become typed presets.

- **Asymmetric critic.** Both tasks have a privileged ``critic`` observation group (unbiased joint positions, foot
  contacts and heights, and the terrain scan on rough); the trainer feeds it to the critic whenever the env's spec
  has ``critic_obs_dim``, so no preset field is needed.
- **cpu** presets are sized to show the path works on a laptop CPU (a few envs, small networks), not to learn.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from parallel_rl.config import ConfigError, suggest
from parallel_rl.integrations.mjlab import G1_RECIPES
from tasks import TaskEntry
from tasks.backend import PQL_OWN, CpuScale, Preset, cpu_preset, merge
from tasks.recipes import sac_presets

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    import torch

    from parallel_rl.envs.base import VecEnv

PREFIX = "mjlab:"
G1_TASKS = ("Mjlab-Velocity-Flat-Unitree-G1", "Mjlab-Velocity-Rough-Unitree-G1")
"""mjlab task ids these presets were written for; other mjlab tasks get the generic presets below."""

_FASTTD3_G1 = Preset(G1_RECIPES["fasttd3"])
_PQL_G1 = merge(PQL_OWN, G1_RECIPES["pql"])  # PQL keeps its own rules (docs/algorithms.md)


#: CPU size: 4 envs, small networks, a few thousand transitions (one G1 step costs ~20 ms per env on a CPU).
CPU_SCALE = CpuScale(num_envs=4, total_env_steps=4000, eval_envs=2, buffer_size=40_000, num_atoms=51,
                     extra={"log_every": 10})  # fmt: skip


PRESETS: dict[str, dict[str, Preset]] = {
    "fasttd3": {"default": _FASTTD3_G1, "cpu": cpu_preset(_FASTTD3_G1, "fasttd3", CPU_SCALE)},
    "pql": {"default": _PQL_G1, "cpu": cpu_preset(_PQL_G1, "pql", CPU_SCALE)},
    # FastSAC: holosoma's recipe unchanged (gamma 0.97, C51 on [-20, 20]: tuned on G1 locomotion) at G1's scale;
    # CrossQ + WN (not published for mjlab): CrossQ's rules at the same scale.
    **sac_presets(_FASTTD3_G1, keep_values=False, scale=CPU_SCALE, eval_every=_FASTTD3_G1["eval_every"]),
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
    except MjlabMissingError as e:  # tasks.check_installed puts "--task <name>: " in front
        raise ConfigError(str(e)) from None
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
