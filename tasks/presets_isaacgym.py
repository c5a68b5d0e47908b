"""Isaac Gym tasks (``isaacgym:<IsaacGymEnvs task>``): the backend row and its presets.

Presets (``default`` = published scale for a GPU):

- PQL (published, the paper's Isaac Gym setting): Ant, Humanoid, ShadowHand, AllegroHand with PQL's recipe (4096
  envs, batch 8192, buffer 5e6, 3-step returns, 8 critic updates per env step, PQL-D's 51 atoms on [-10, 10]) and
  reward scale 0.01.
- FastTD3 on Isaac Gym (not published; our choice): FastTD3's Isaac Lab recipe (4096 envs, 2 updates per step,
  gamma 0.99, 1-step returns, batch 32,768) with PQL's reward scale 0.01 and value range [-10, 10], and PQL's 5e6
  buffer (Isaac Gym's hand observations are large), 100k vectorized steps.

Evaluation shares the training simulation (one per process): ``eval_envs`` equals ``num_envs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parallel_rl.envs._optional import check_backend
from tasks.backend import Backend, Preset, Presets, merge
from tasks.recipes import PQL, cpu_presets, fasttd3, sac_presets

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

TUNED = ("Ant", "Humanoid", "ShadowHand", "AllegroHand")
_SCALE = Preset(agent={"reward_scale": 0.01, "v_min": -10.0, "v_max": 10.0, "gamma": 0.99})


def presets(task: str) -> Presets:
    default = fasttd3(4096, 0, 100_000, **merge(_SCALE, {"agent": {"n_step": 1}}))
    default = merge(default, {"buffer": {"buffer_size": 5_000_000}})
    pql = merge(PQL, {"total_env_steps": default["total_env_steps"]}, _SCALE)
    cpu = cpu_presets(default)
    return {
        "fasttd3": {"default": default, "cpu": cpu["fasttd3"]},
        "pql": {"default": pql, "scalar": merge(pql, {"agent": {"num_atoms": 1}}), "cpu": cpu["pql"]},
        **sac_presets(default),
    }


def make(task: str, num_envs: int, device: Any, seed: int, **options: Any) -> VecEnv:
    from parallel_rl.envs.isaac_gym import IsaacGymVecEnv
    from parallel_rl.envs.shared import single_simulation

    return single_simulation(
        "isaacgym", f"isaacgym:{task}", num_envs, lambda: IsaacGymVecEnv(task, num_envs, device, seed, **options)
    )


BACKEND = Backend(
    make=make,
    presets=presets,
    check=lambda task: check_backend("isaacgym"),
    description="Isaac Gym Preview 4 tasks from IsaacGymEnvs (Ant, Humanoid, ShadowHand, ...); options: headless, "
    "graphics_device_id",
    tuned=TUNED,
)
