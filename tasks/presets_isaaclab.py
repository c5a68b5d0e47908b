"""Isaac Lab tasks (``isaaclab:<gym id>``): the backend row and its presets.

Presets (``default`` = published scale for a GPU):

- FastTD3's Isaac Lab recipe: 4096 envs, 10,240 transitions per env, 2 updates per step, gamma 0.99, 1-step returns,
  251 atoms on [-10, 10], actions in [-1, 1] (``action_scale`` 1), 100k vectorized steps.
- Velocity tasks (H1/G1, flat and rough): 8-step returns and 4 updates per step; H1 flat 75k vectorized steps,
  G1 flat 50k; rough terrain 50k with 5,120 transitions per env (memory).
- Shadow and Allegro hand cube reorientation: C51 on [-500, 500].
- Isaac-Humanoid-v0 (not in FastTD3's table; our choice): reward scale 0.01 as PQL uses for humanoids, so that
  returns of a few reward units per step fit [-10, 10].
- PQL on Isaac Lab tasks (not published): PQL's recipe with the task's discount, value range and budget.

Evaluation shares the training simulation (Isaac Lab runs one per process): ``eval_envs`` equals ``num_envs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parallel_rl.envs._optional import check_backend
from tasks.backend import Backend, Preset, Presets, merge
from tasks.recipes import cpu_presets, fasttd3, pql_for, sac_presets

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

VELOCITY = ("Isaac-Velocity-Flat-H1-v0", "Isaac-Velocity-Flat-G1-v0", "Isaac-Velocity-Rough-H1-v0",
            "Isaac-Velocity-Rough-G1-v0")  # fmt: skip
HANDS = ("Isaac-Repose-Cube-Shadow-Direct-v0", "Isaac-Repose-Cube-Allegro-Direct-v0", "Isaac-Repose-Cube-Allegro-v0")
HUMANOID = ("Isaac-Humanoid-v0",)

_ISAAC_LAB = Preset(agent={"gamma": 0.99, "n_step": 1, "num_atoms": 251, "v_min": -10.0, "v_max": 10.0})
_VELOCITY = Preset(agent={"n_step": 8}, schedule={"utd": 4})
_VECTOR_STEPS = {"Isaac-Velocity-Flat-H1-v0": 75_000, "Isaac-Velocity-Flat-G1-v0": 50_000,
                 "Isaac-Velocity-Rough-H1-v0": 50_000, "Isaac-Velocity-Rough-G1-v0": 50_000}  # fmt: skip


def presets(task: str) -> Presets:
    rough = task.startswith("Isaac-Velocity-Rough")
    default = fasttd3(4096, 5_120 if rough else 10_240, _VECTOR_STEPS.get(task, 100_000), **_ISAAC_LAB)
    if task in VELOCITY:
        default = merge(default, _VELOCITY)
    elif task in HANDS:
        default = merge(default, {"agent": {"v_min": -500.0, "v_max": 500.0}})
    elif task in HUMANOID:
        default = merge(default, {"agent": {"reward_scale": 0.01}})
    cpu = cpu_presets(default)
    return {
        "fasttd3": {"default": default, "cpu": cpu["fasttd3"]},
        "pql": {"default": pql_for(default), "cpu": cpu["pql"]},
        **sac_presets(default, keep_values=task not in VELOCITY),
    }


def make(task: str, num_envs: int, device: Any, seed: int, **options: Any) -> VecEnv:
    from parallel_rl.envs.isaac_lab import IsaacLabVecEnv
    from parallel_rl.envs.shared import single_simulation

    return single_simulation(
        "isaaclab", f"isaaclab:{task}", num_envs, lambda: IsaacLabVecEnv(task, num_envs, device, seed, **options)
    )


BACKEND = Backend(
    make=make,
    presets=presets,
    check=lambda task: check_backend("isaaclab"),
    description="Isaac Lab 2.x tasks by Gymnasium id; options: action_scale, final_obs=capture|reset, headless",
    tuned=VELOCITY + HANDS + HUMANOID,
)
