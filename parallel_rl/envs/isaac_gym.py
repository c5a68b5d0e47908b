"""Isaac Gym tasks (IsaacGymEnvs' ``VecTask``: Ant, Humanoid, ShadowHand, AllegroHand, ...) as a ``VecEnv``.

Import order: Isaac Gym refuses to load once torch is imported. ``python -m launch.train`` and
``python -m launch.benchmark`` import it first when the task is ``isaacgym:...``; a script of your own must start with
``import isaacgym``. This module checks and says so instead of failing deep inside Isaac Gym.

What ``VecTask.step(actions)`` returns: ``(obs_dict, reward, reset_buf, extras)`` with ``obs_dict["obs"]`` (and
``obs_dict["states"]`` for asymmetric tasks), ``reset_buf`` marking episodes that ended, and
``extras["time_outs"]`` marking those that ended by the time limit (``progress >= max_episode_length - 1``). PQL
reads ``TimeLimit.truncated`` instead and so treats every time-out as a termination; here
``truncated = reset_buf & time_outs`` and ``terminated = reset_buf & ~time_outs``.

Resets are lazy: a task resets the envs flagged in ``reset_buf`` at the start of its *next* step (in
``pre_physics_step`` or ``post_physics_step``). So the observation returned with ``reset_buf`` set is the true last
observation of the episode, and it is returned as ``final_obs``. The cost of laziness: that env's next step begins
from its final state and ends in a fresh episode, so one transition per episode spans the reset (the task's own
semantics; IsaacGymEnvs' PPO sees the same). It is stored as an ordinary transition.

``reset()`` flags every env and takes one zero-action step so that every env starts a fresh episode (``VecTask``'s
own ``reset()`` only returns the current buffers). The seed is the one given at construction (Isaac Gym seeds its
simulation once).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import torch
from tensordict import TensorDict

from parallel_rl.envs._optional import INSTALL_HINTS, BackendUnavailable, require
from parallel_rl.envs.base import EnvSpec, check_action

IMPORT_ORDER_MESSAGE = (
    "Isaac Gym must be imported before torch, and torch is already imported in this process. Run through "
    "`python -m launch.train --task isaacgym:...` or `python -m launch.benchmark` (they import Isaac Gym first), or "
    "make `import isaacgym` the first import of your script."
)


def import_isaacgymenvs() -> Any:
    """``isaacgymenvs``, after checking that Isaac Gym is installed and was imported before torch."""
    if "isaacgym" not in sys.modules:
        if importlib.util.find_spec("isaacgym") is None:
            raise BackendUnavailable(f"{INSTALL_HINTS['isaacgym']} (missing module: isaacgym)")
        if "torch" in sys.modules:
            raise RuntimeError(IMPORT_ORDER_MESSAGE)
        require("isaacgym", "isaacgym")
    return require("isaacgym", "isaacgymenvs")


class IsaacGymVecEnv:
    """An IsaacGymEnvs task (name as in its configs: ``Ant``, ``Humanoid``, ``ShadowHand``, ...) as a ``VecEnv``."""

    def __init__(
        self,
        task: str,
        num_envs: int,
        device: str | torch.device = "cuda:0",
        seed: int = 0,
        *,
        headless: bool = True,
        graphics_device_id: int = 0,
    ) -> None:
        isaacgymenvs = import_isaacgymenvs()
        self.device = torch.device(device)
        dev = str(self.device) if self.device.type == "cpu" or self.device.index is not None else "cuda:0"
        self.task_name = task
        self.task = isaacgymenvs.make(
            seed=seed,
            task=task,
            num_envs=num_envs,
            sim_device=dev,
            rl_device=dev,
            graphics_device_id=graphics_device_id,
            headless=headless,
        )
        t = self.task
        if int(t.num_envs) != num_envs:
            raise ValueError(f"isaacgym:{task}: asked for {num_envs} envs, the task has {t.num_envs}")
        act_dim = int(t.num_acts)
        low = torch.as_tensor(t.action_space.low, dtype=torch.float32).reshape(-1).expand(act_dim)
        high = torch.as_tensor(t.action_space.high, dtype=torch.float32).reshape(-1).expand(act_dim)
        self.spec = EnvSpec(
            obs_dim=int(t.num_obs),
            act_dim=act_dim,
            num_envs=num_envs,
            device=torch.device(t.rl_device),
            action_low=tuple(low.tolist()),
            action_high=tuple(high.tolist()),
            max_episode_steps=int(t.max_episode_length),
            critic_obs_dim=int(t.num_states) if int(getattr(t, "num_states", 0)) > 0 else None,
        )
        self._low, self._high = self.spec.action_bounds()

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    def _pack(self, obs_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {"obs": obs_dict["obs"].float()}
        if self.spec.critic_obs_dim is not None:
            out["critic_obs"] = obs_dict["states"].float()
        return out

    def reset(self, seed: int | None = None) -> TensorDict:
        t = self.task
        t.reset_buf[:] = 1  # every env starts a fresh episode at the next step (lazy reset)
        obs_dict, _, _, _ = t.step(t.zero_actions())
        return TensorDict(self._pack(obs_dict), batch_size=[self.num_envs], device=self.spec.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        action = torch.maximum(torch.minimum(action.to(self.spec.device), self._high), self._low)
        obs_dict, reward, reset_buf, extras = self.task.step(action)
        done = reset_buf.to(self.spec.device) != 0
        time_outs = extras["time_outs"].to(self.spec.device).to(torch.bool)
        out = self._pack(obs_dict)
        # Lazy resets: the observation that comes with the done flag is the episode's true last one.
        out["final_obs"] = out["obs"]
        if "critic_obs" in out:
            out["final_critic_obs"] = out["critic_obs"]
        # The task mutates its reward buffer in place at the next step; the runtime may still hold this one.
        out["reward"] = reward.to(self.spec.device, torch.float32, copy=True)
        out["terminated"] = done & ~time_outs
        out["truncated"] = done & time_outs
        return TensorDict(out, batch_size=[self.num_envs], device=self.spec.device)
