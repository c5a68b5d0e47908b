"""torchrl environments (``torchrl:<module>:<factory>[,option=value,...]``): the backend row and its presets.

``<module>:<factory>`` names a function ``factory(num_envs, device, **options) -> EnvBase`` returning a batched
torchrl env (batch size ``[num_envs]``); the adapter seeds it with ``set_seed``. Options ``max_episode_steps``,
``obs_key`` and ``critic_obs_key`` configure the adapter (``parallel_rl.integrations.torchrl.TorchRLVecEnv``), the
others go to the factory. Example: ``torchrl:parallel_rl.integrations.torchrl:gym_envs,env_id=Pendulum-v1``.

No published numbers exist for arbitrary torchrl envs: ``default`` is FastTD3's recipe at 128 envs with C51 on
[-100, 100] (set --v-min/--v-max/--reward-scale for the task); ``cpu`` is ``tasks.backend.cpu_preset``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parallel_rl.config import ConfigError
from parallel_rl.envs._optional import check_backend
from tasks.backend import Backend, Presets
from tasks.recipes import cpu_presets, fasttd3, pql_for, sac_presets

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

ADAPTER_OPTIONS = ("max_episode_steps", "obs_key", "critic_obs_key")


def presets(task: str) -> Presets:
    default = fasttd3(
        128, 10_240, 100_000, agent={"gamma": 0.99, "n_step": 1, "v_min": -100.0, "v_max": 100.0}, eval_envs=16
    )
    cpu = cpu_presets(default)
    return {
        "fasttd3": {"default": default, "cpu": cpu["fasttd3"]},
        "pql": {"default": pql_for(default, num_envs=128, eval_envs=16), "cpu": cpu["pql"]},
        **sac_presets(default),
    }


def factory(task: str):
    """The ``<module>:<factory>`` callable, with one message naming what is wrong."""
    module_name, sep, attr = task.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"torchrl task {task!r} must read <module>:<factory>, e.g. "
                          "torchrl:parallel_rl.integrations.torchrl:gym_envs,env_id=Pendulum-v1")  # fmt: skip
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"torchrl task {task!r}: cannot import module {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"torchrl task {task!r}: module {module_name!r} has no callable {attr!r}")
    return fn


def check(task: str) -> None:
    check_backend("torchrl")
    factory(task)


def make(task: str, num_envs: int, device: Any, seed: int, **options: Any) -> VecEnv:
    from parallel_rl.integrations.torchrl import TorchRLVecEnv

    adapter = {k: options.pop(k) for k in ADAPTER_OPTIONS if k in options}
    env = factory(task)(num_envs=num_envs, device=device, **options)
    env.set_seed(seed)
    return TorchRLVecEnv(env, device=device, **adapter)


BACKEND = Backend(
    make=make,
    presets=presets,
    check=check,
    description="any batched torchrl EnvBase from a factory <module>:<factory>(num_envs, device, **options); "
    "options: max_episode_steps, obs_key, critic_obs_key and the factory's",
)
