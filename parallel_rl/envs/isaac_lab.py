"""Isaac Lab (2.x) tasks as a ``VecEnv``: headless app, observation groups, time-outs, true final observations.

What Isaac Lab gives: ``env.step(action)`` returns ``(obs, reward, terminated, truncated, extras)`` with ``obs`` a
dict of observation groups (``"policy"`` for the actor, ``"critic"`` for a privileged critic when the task defines
one), ``truncated`` = the termination manager's time-outs (``extras["time_outs"]`` in RSL-RL's wrapper), and envs
that ended are reset *inside* the step, so ``obs`` is already the reset observation and the true last one is gone
(FastTD3 therefore bootstraps time-outs from the reset observation).

What this adapter adds (``final_obs="capture"``, the default): just before Isaac Lab resets the envs that ended, it
computes their observations once more, from the state they reached, and returns them as ``final_obs`` (and
``final_critic_obs``). It hooks the env's ``_reset_idx`` and calls the env's own observation code:
``observation_manager.compute(update_history=False)`` for manager-based tasks (no side effect on observation
histories) and ``_get_observations()`` for direct tasks. Observation noise, if the task adds any, is drawn again for
that extra computation. ``final_obs="reset"`` turns this off (bootstrap from the reset observation, as FastTD3 does).

Actions: Isaac Lab's action space is unbounded; the policy's [-1, 1] output is scaled by ``action_scale`` (FastTD3's
``action_bounds``) and the task's own action terms scale it further. Isaac Lab allows one simulation per process.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from tensordict import TensorDict

from parallel_rl.envs._optional import require
from parallel_rl.envs.base import EnvSpec, check_action

FINAL_OBS_MODES = ("capture", "reset")
_APP: Any = None  # the Omniverse app: launched once per process, before any other Isaac Lab import
_ENV_CREATED = False


def launch_app(headless: bool = True, device: str = "cuda:0") -> Any:
    """Start Isaac Sim through Isaac Lab's ``AppLauncher`` (once per process; later calls return the same app)."""
    global _APP
    if _APP is None:
        app_module = require("isaaclab", "isaaclab.app")
        _APP = app_module.AppLauncher(headless=headless, device=device).app
    return _APP


class IsaacLabVecEnv:
    """An Isaac Lab task (Gymnasium id such as ``Isaac-Velocity-Flat-H1-v0``) behind the ``VecEnv`` protocol."""

    def __init__(
        self,
        task_id: str,
        num_envs: int,
        device: str | torch.device = "cuda:0",
        seed: int = 0,
        *,
        headless: bool = True,
        action_scale: float = 1.0,
        final_obs: str = "capture",
        obs_group: str = "policy",
        critic_group: str = "critic",
    ) -> None:
        global _ENV_CREATED
        if final_obs not in FINAL_OBS_MODES:
            raise ValueError(f"final_obs must be one of {FINAL_OBS_MODES}, got {final_obs!r}")
        if not action_scale > 0:
            raise ValueError(f"action_scale must be > 0, got {action_scale}")
        if _ENV_CREATED:
            raise RuntimeError(
                f"isaaclab:{task_id}: Isaac Lab runs one simulation per process and one was already created here; "
                "share it (parallel_rl.envs.shared.SharedEnvView) or run another process"
            )
        self.device = torch.device(device)
        launch_app(headless=headless, device=str(self.device))
        gym = require("isaaclab", "gymnasium")
        require("isaaclab", "isaaclab_tasks")  # registers the Isaac-* ids with Gymnasium
        parse_env_cfg = require("isaaclab", "isaaclab_tasks.utils").parse_env_cfg
        cfg = parse_env_cfg(task_id, device=str(self.device), num_envs=num_envs)
        cfg.seed = seed
        self.env = gym.make(task_id, cfg=cfg)
        _ENV_CREATED = True
        self.task_id, self.final_obs_mode = task_id, final_obs
        self.obs_group, self.critic_group = obs_group, critic_group
        base = self.env.unwrapped
        self.base = base
        space = base.single_observation_space
        spaces = dict(space.spaces) if hasattr(space, "spaces") else dict(space)  # a gymnasium Dict of groups
        if obs_group not in spaces:
            raise ValueError(f"isaaclab:{task_id}: observation groups are {list(spaces)}, no {obs_group!r}")
        obs_dim = _flat_dim(spaces[obs_group], task_id, obs_group)
        critic_dim = _flat_dim(spaces[critic_group], task_id, critic_group) if critic_group in spaces else None
        act_dim = _flat_dim(base.single_action_space, task_id, "action")
        if int(base.num_envs) != num_envs:
            raise ValueError(f"isaaclab:{task_id}: asked for {num_envs} envs, the env has {base.num_envs}")
        self.spec = EnvSpec(
            obs_dim=obs_dim,
            act_dim=act_dim,
            num_envs=num_envs,
            device=torch.device(base.device),
            action_low=(-float(action_scale),) * act_dim,
            action_high=(float(action_scale),) * act_dim,
            max_episode_steps=int(base.max_episode_length),
            critic_obs_dim=critic_dim,
        )
        self._low, self._high = self.spec.action_bounds()
        self._captured: dict[str, torch.Tensor] | None = None
        self._capturing = False
        if final_obs == "capture":
            self._install_final_obs_hook()
        else:
            warnings.warn(
                f"isaaclab:{task_id}: final_obs='reset': time-outs bootstrap from the reset observation", stacklevel=2
            )

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    # ---- final observations ---------------------------------------------------------------------------------
    def _compute_observations(self) -> dict[str, torch.Tensor]:
        base = self.base
        manager = getattr(base, "observation_manager", None)
        if manager is not None:  # manager-based task
            if "update_history" in inspect.signature(manager.compute).parameters:
                return manager.compute(update_history=False)
            return manager.compute()
        return base._get_observations()  # direct task

    def _install_final_obs_hook(self) -> None:
        base = self.base
        reset_idx = base._reset_idx

        def reset_idx_keeping_final_obs(env_ids, *args, **kwargs):
            # Runs inside step(), after physics, rewards and terminations, before the ended envs are reset: the
            # observations computed here are those of the states the episodes ended in.
            if self._capturing:
                groups = self._compute_observations()
                self._captured = {k: v.clone() for k, v in groups.items() if isinstance(v, torch.Tensor)}
            return reset_idx(env_ids, *args, **kwargs)

        base._reset_idx = reset_idx_keeping_final_obs

    # ---- protocol -------------------------------------------------------------------------------------------
    def _pack(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {"obs": obs[self.obs_group].float()}
        if self.spec.critic_obs_dim is not None:
            out["critic_obs"] = obs[self.critic_group].float()
        return out

    def reset(self, seed: int | None = None) -> TensorDict:
        obs, _ = self.env.reset(seed=seed)
        return TensorDict(self._pack(obs), batch_size=[self.num_envs], device=self.spec.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        action = torch.maximum(torch.minimum(action.to(self.spec.device), self._high), self._low)
        self._captured = None
        self._capturing = True
        try:
            obs, reward, terminated, truncated, _extras = self.env.step(action)
        finally:
            self._capturing = False
        out = self._pack(obs)
        terminated = terminated.to(torch.bool)
        truncated = truncated.to(torch.bool) & ~terminated
        done = (terminated | truncated).unsqueeze(-1)
        captured = self._captured
        if captured is not None:
            out["final_obs"] = torch.where(done, captured[self.obs_group].float(), out["obs"])
            if "critic_obs" in out:
                out["final_critic_obs"] = torch.where(done, captured[self.critic_group].float(), out["critic_obs"])
        else:  # no env ended this step, or final_obs="reset"
            out["final_obs"] = out["obs"]
            if "critic_obs" in out:
                out["final_critic_obs"] = out["critic_obs"]
        out.update(reward=reward.float(), terminated=terminated, truncated=truncated)
        return TensorDict(out, batch_size=[self.num_envs], device=self.spec.device)

    def close(self) -> None:
        global _ENV_CREATED
        self.env.close()
        _ENV_CREATED = False


def _flat_dim(space: Any, task_id: str, what: str) -> int:
    shape = getattr(space, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(
            f"isaaclab:{task_id}: the {what} space must be a flat Box, got {space} "
            "(set concatenate_terms=True on the observation group)"
        )
    return int(shape[0])
