"""Gymnasium environments (``gym:<id>``, CPU MuJoCo such as Humanoid-v5): the backend row and its presets.

No published FastTD3/PQL numbers exist for these; the presets are ours, stated here:

- ``default``: FastTD3's HumanoidBench scale (128 envs, 51,200 transitions per env, 2 updates per step, batch
  32,768, gamma 0.99, 1-step returns), 100k vectorized steps (12.8M transitions). Rewards are scaled by 0.1 so that
  discounted returns fit the C51 support: Humanoid-v5 earns about 5-10 per step ([-10, 110] after scaling),
  HalfCheetah-v5 up to about 15 ([-20, 160]). Other ids get [-100, 100] unscaled; set --v-min/--v-max for them.
- ``cpu``: 16 envs and small networks. Stepping 128 CPU MuJoCo envs in one process is slow; pass
  ``gym:<id>,vectorization=async`` to step them in subprocesses on a many-core machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parallel_rl.envs._optional import check_backend
from tasks.backend import Backend, Presets
from tasks.recipes import cpu_presets, fasttd3, pql_for, sac_presets

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

_VALUES = {
    "Humanoid-v5": {"reward_scale": 0.1, "v_min": -10.0, "v_max": 110.0},
    "HalfCheetah-v5": {"reward_scale": 0.1, "v_min": -20.0, "v_max": 160.0},
}
TUNED = tuple(_VALUES)


def presets(task: str) -> Presets:
    values = _VALUES.get(task, {"v_min": -100.0, "v_max": 100.0})
    default = fasttd3(128, 51_200, 100_000, agent={"gamma": 0.99, "n_step": 1, **values}, eval_envs=16)
    cpu = cpu_presets(default)
    return {
        "fasttd3": {"default": default, "cpu": cpu["fasttd3"]},
        "pql": {"default": pql_for(default, num_envs=128, eval_envs=16), "cpu": cpu["pql"]},
        **sac_presets(default),
    }


def check(task: str) -> None:
    """Gymnasium is needed for every id; MuJoCo only for MuJoCo envs (classic control runs without it)."""
    from parallel_rl.envs._optional import INSTALL_HINTS, BackendUnavailable, missing_modules

    if "gymnasium" in missing_modules("gym"):
        check_backend("gym")
    import gymnasium

    try:
        entry_point = str(gymnasium.spec(task).entry_point)
    except gymnasium.error.Error as e:  # an unknown id: say so now, with the nearest registered id
        from parallel_rl.config import ConfigError, suggest

        if ":" in task:  # "module:Env-v0" registers on import; let the adapter report it
            return
        hint = suggest(task, list(gymnasium.registry)) or f"; {str(e).strip().rstrip('.')}"
        raise ConfigError(f"unknown Gymnasium id {task!r}{hint} (see gymnasium.pprint_registry())") from None
    if "mujoco" in entry_point and "mujoco" in missing_modules("gym"):
        raise BackendUnavailable(f"{INSTALL_HINTS['gym']} (missing module: mujoco)")


def make(task: str, num_envs: int, device: Any, seed: int, **options: Any) -> VecEnv:
    from parallel_rl.envs.gym_vector import GymVecEnv

    return GymVecEnv(task, num_envs, device, seed, **options)


BACKEND = Backend(
    make=make,
    presets=presets,
    check=check,
    description="Gymnasium vector envs (SAME_STEP autoreset); options: vectorization=sync|async, max_episode_steps, "
    "env constructor arguments",
    tuned=TUNED,
)
