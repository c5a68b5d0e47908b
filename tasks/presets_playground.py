"""MuJoCo Playground tasks (``playground:<RegistryName>``): the backend row and its presets.

Presets (``default`` = published scale for a GPU; ``cpu`` = the same algorithm sized for a small CPU):

- DM Control suite (CheetahRun, WalkerRun, HumanoidWalk, HumanoidRun and any other suite task): FastTD3's
  Playground recipe (1024 envs, 10,240 transitions per env, 2 updates per step, gamma 0.97) with its DM Control
  settings (3-step returns, C51 on [-500, 500], std from U[0.1, 0.4], target noise 0.1), 150k vectorized steps.
- Humanoid locomotion (G1/T1 joystick, flat and rough): FastTD3's Playground recipe with 1-step returns and C51 on
  [-10, 10], 100k vectorized steps, push perturbations off (FastTD3's default for these tasks).
- Any other Playground task: FastTD3's Playground defaults (as for locomotion, 150k vectorized steps).
- PQL on Playground tasks (not published): PQL's recipe with the task's discount, value range and budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parallel_rl.envs._optional import check_backend
from tasks.backend import Backend, Preset, Presets
from tasks.recipes import cpu_presets, fasttd3, pql_for, sac_presets

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

DM_CONTROL = ("CheetahRun", "WalkerRun", "HumanoidWalk", "HumanoidRun")
HUMANOID_LOCOMOTION = ("G1JoystickFlatTerrain", "G1JoystickRoughTerrain", "T1JoystickFlatTerrain",
                       "T1JoystickRoughTerrain")  # fmt: skip
#: Names of Playground's DM Control suite (known without importing Playground), for the DM Control settings.
_DM_CONTROL_SUITE = frozenset(
    "AcrobotSwingup AcrobotSwingupSparse BallInCup CartpoleBalance CartpoleBalanceSparse CartpoleSwingup "
    "CartpoleSwingupSparse CheetahRun FingerSpin FingerTurnEasy FingerTurnHard FishSwim HopperHop HopperStand "
    "HumanoidStand HumanoidWalk HumanoidRun PendulumSwingup PointMass ReacherEasy ReacherHard SwimmerSwimmer6 "
    "WalkerRun WalkerStand WalkerWalk".split()
)

#: Env options applied before the user's (the user's win): FastTD3 trains the humanoids without pushes.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {"push_config.enable": False, "push_config.magnitude_range": [0.0, 0.0]} for name in HUMANOID_LOCOMOTION
}
#: Options that configure the adapter rather than Playground's task config.
ADAPTER_OPTIONS = ("impl", "obs_key", "critic_obs_key")

_PLAYGROUND = Preset(agent={"gamma": 0.97, "n_step": 1, "v_min": -10.0, "v_max": 10.0})
_DMC = Preset(agent={"gamma": 0.97, "n_step": 3, "v_min": -500.0, "v_max": 500.0, "std_min": 0.1, "target_noise": 0.1})


def presets(task: str) -> Presets:
    if task in _DM_CONTROL_SUITE:
        default = fasttd3(1024, 10_240, 150_000, **_DMC)
    elif task in HUMANOID_LOCOMOTION:
        default = fasttd3(1024, 10_240, 100_000, **_PLAYGROUND)
    else:
        default = fasttd3(1024, 10_240, 150_000, **_PLAYGROUND)
    cpu = cpu_presets(default)
    return {
        "fasttd3": {"default": default, "cpu": cpu["fasttd3"]},
        "pql": {"default": pql_for(default), "cpu": cpu["pql"]},
        **sac_presets(default, keep_values=task not in HUMANOID_LOCOMOTION),
    }


def check(task: str) -> None:
    """Playground installed, and the task exists (imports Playground, and JAX with it: the run needs both anyway)."""
    check_backend("playground")
    from parallel_rl.config import ConfigError
    from parallel_rl.envs.playground import check_task_name

    try:
        check_task_name(task)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def make(task: str, num_envs: int, device: Any, seed: int, **options: Any) -> VecEnv:
    from parallel_rl.envs.playground import PlaygroundVecEnv

    merged = {**ENV_DEFAULTS.get(task, {}), **options}
    adapter = {k: merged.pop(k) for k in ADAPTER_OPTIONS if k in merged}
    return PlaygroundVecEnv(task, num_envs, device, seed, config_overrides=merged, **adapter)


BACKEND = Backend(
    make=make,
    presets=presets,
    check=check,
    description="MuJoCo Playground (MJX/JAX or MuJoCo Warp); options: impl=jax|warp and Playground config keys",
    tuned=DM_CONTROL + HUMANOID_LOCOMOTION,
)
