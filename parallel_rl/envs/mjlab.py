"""mjlab backend: the Isaac Lab manager-based API on MuJoCo Warp (PyPI ``mjlab``), e.g. the Unitree G1 velocity tasks.

Task names are ``mjlab:<task id>`` (``mjlab:Mjlab-Velocity-Flat-Unitree-G1``); the ids are mjlab's own registry.

How this adapter meets the VecEnv protocol, and why each choice:

- **True final observations.** mjlab's auto-reset returns the post-reset observation of an env whose episode just
  ended, so a time-out would bootstrap from the wrong state. The env is built with ``auto_reset=False``: ``step``
  then returns the terminal observation of every env, and this adapter resets only the finished envs itself
  (``reset(env_ids=...)``), keeping the terminal rows as ``final_obs`` and splicing the reset rows into ``obs``.
  Rows of envs that did not finish are the tensors ``step`` computed (mjlab recomputes every row on a partial reset,
  redrawing observation noise; those recomputed rows are discarded so each step has exactly one noise draw).
- **terminated vs truncated.** mjlab's ``terminated`` (falls) and ``time_outs`` (time limit; on rough terrain also
  leaving the terrain, which mjlab classes as a time-out) map to ``terminated`` and ``truncated``. Tasks declared
  finite-horizon (``is_finite_horizon=True``) have no future past the limit, so their time-outs are terminal.
- **Buffers.** mjlab writes rewards and termination flags into buffers it reuses every step; they are cloned before
  they leave here. Observations are fresh tensors each step (mjlab concatenates the terms), so they are passed
  through without a copy, on the simulator's device.
- **Reward scale.** mjlab multiplies rewards by the control step ``dt`` (0.02 s on the G1) by default; this adapter
  keeps it (``scale_rewards_by_dt=True``) so that episode returns are the same numbers mjlab's PPO logs
  (``Train/mean_reward``), which the head-to-head benchmark compares directly. Agents size their value range for it
  (the G1 presets: per-step rewards of at most about 0.12, so discounted values stay within about [-10, 15]).
- **Actions.** mjlab's action space is unbounded (joint targets = default pose + per-joint scale * action). The agent
  needs bounds; ``action_bound`` (default 1.0) spans about +-0.35..0.55 rad around the default pose on the G1's legs,
  the range FastTD3's tanh policies used on Isaac Lab's G1 (scale 0.5, actions in [-1, 1]).
- **Seeding.** mjlab draws its randomness (resets, commands, observation noise, pushes) from torch's global RNG and
  reseeds it at construction and on ``reset(seed=...)``. Each adapter keeps its own copy of that RNG state and
  swaps it in around every call into mjlab, so an evaluation env reseeded every evaluation does not rewind the
  training env's stream (nor the caller's): a rollout depends only on its env's seed and the actions.
  (mjlab's constructor also seeds Python's and numpy's RNGs; nothing here uses them.)
- **Host syncs.** Finding the finished envs costs one host sync per step; mjlab's own ``step`` already syncs the
  same way (it looks for envs to reset), so the adapter adds no new kind of wait.

Install with ``pip install 'parallel-rl[mjlab]'``. Kernels compile on first use (about 30-60 s on CPU) and are
cached on disk by Warp (``~/.cache/warp/<version>``), so later processes start in a second or two.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import torch
from tensordict import TensorDict

from parallel_rl.envs.base import EnvSpec, check_action

INSTALL_HINT = (
    "pip install 'parallel-rl[mjlab]' (from a clone, as in the README: python -m pip install -e \".[mjlab]\" "
    "torch==2.13.0)"
)
ACTOR_GROUPS = ("actor", "policy")
"""Observation groups read as the actor's observation, first match wins (mjlab names it 'actor'; Isaac Lab-style
configs use 'policy')."""
CRITIC_GROUP = "critic"


class MjlabMissingError(ImportError):
    """mjlab is not installed; the message names the extra that installs it."""


def import_mjlab() -> tuple[Any, Any]:
    """Import mjlab lazily (it pulls MuJoCo Warp) and return (ManagerBasedRlEnv, registry module)."""
    try:
        import mjlab.tasks  # noqa: F401  (importing the package registers the built-in tasks)
        from mjlab.envs import ManagerBasedRlEnv
        from mjlab.tasks import registry
    except ImportError as e:
        raise MjlabMissingError(
            f"mjlab tasks need the 'mjlab' package, which failed to import ({e}); install it with: {INSTALL_HINT}"
        ) from e
    return ManagerBasedRlEnv, registry


def list_mjlab_tasks() -> list[str]:
    """Task ids in mjlab's registry (imports mjlab)."""
    return list(import_mjlab()[1].list_tasks())


def _mjlab_device(device: torch.device | str) -> str:
    """mjlab wants an explicit CUDA index ('cuda:0'), as Warp does."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {dev}: CUDA is not available on this machine; use device 'cpu'")
        return f"cuda:{torch.cuda.current_device() if dev.index is None else dev.index}"
    if dev.type != "cpu":
        raise ValueError(f"device {dev}: mjlab runs on 'cpu' or 'cuda[:N]'")
    return "cpu"


class MjlabVecEnv:
    """An mjlab ``ManagerBasedRlEnv`` as a VecEnv with true final observations and an asymmetric critic view."""

    def __init__(
        self,
        task_id: str,
        num_envs: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        *,
        action_bound: float = 1.0,
        scale_rewards_by_dt: bool = True,
        episode_length_s: float | None = None,
        play: bool = False,
        configure: Callable[[Any], None] | None = None,
        verbose: bool = False,
    ) -> None:
        """Build ``task_id`` from mjlab's registry.

        ``episode_length_s`` overrides the task's episode length (tests use short episodes); ``play`` selects the
        task's evaluation config (no observation noise, no pushes, endless episodes); ``configure`` may edit the
        mjlab env config in place before the env is built; ``verbose`` lets mjlab print its manager tables and
        Warp its kernel loads (silenced by default, Warp's process-wide, so they do not bury the trainer's progress
        bar).
        """
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if not action_bound > 0:
            raise ValueError(f"action_bound must be > 0, got {action_bound}")
        env_cls, registry = import_mjlab()
        known = list(registry.list_tasks())
        if task_id not in known:
            from parallel_rl.config import ConfigError, suggest

            raise ConfigError(
                f"--task: unknown mjlab task {task_id!r}{suggest(task_id, known)} (known: {', '.join(known)})"
            )
        cfg = registry.load_env_cfg(task_id, play=play)  # a deep copy: editing it leaves the registry untouched
        cfg.scene.num_envs = num_envs
        cfg.seed = seed
        cfg.auto_reset = False
        cfg.scale_rewards_by_dt = scale_rewards_by_dt
        if episode_length_s is not None:
            cfg.episode_length_s = float(episode_length_s)
        if configure is not None:
            configure(cfg)
        self.task_id = task_id
        self.verbose = verbose
        if not verbose:
            import warp

            # Process-wide: Warp logs a line per kernel module it loads, even from its cache (log_level since 1.15).
            if hasattr(warp, "LOG_WARNING"):
                warp.config.log_level = max(warp.config.log_level, warp.LOG_WARNING)
            else:
                warp.config.quiet = True
        mj_device = torch.device(_mjlab_device(device))
        self._cuda = mj_device if mj_device.type == "cuda" else None
        caller_rng = self._rng_state()
        with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
            self.env = env_cls(cfg, device=str(mj_device))  # seeds torch's global RNG with ``seed``
        self._own_rng = self._rng_state()
        self._set_rng_state(caller_rng)
        self.device = torch.device(self.env.device)
        groups = self.env.observation_manager.group_obs_dim
        self.actor_group = next((g for g in ACTOR_GROUPS if g in groups), None)
        if self.actor_group is None:
            raise ValueError(f"mjlab task {task_id!r} has no actor observation group ({' or '.join(ACTOR_GROUPS)}); "
                             f"it has {sorted(groups)}")  # fmt: skip
        self.critic_group = CRITIC_GROUP if CRITIC_GROUP in groups else None
        for group in filter(None, (self.actor_group, self.critic_group)):
            if not self.env.observation_manager.group_obs_concatenate[group]:
                raise ValueError(f"mjlab task {task_id!r}: observation group {group!r} is a dict of terms; this "
                                 "adapter needs concatenated groups (concatenate_terms=True)")  # fmt: skip
        act_dim = int(self.env.action_manager.total_action_dim)
        self.finite_horizon = bool(cfg.is_finite_horizon)
        self.spec = EnvSpec(
            obs_dim=int(groups[self.actor_group][-1]),
            act_dim=act_dim,
            num_envs=num_envs,
            device=self.device,
            action_low=(-float(action_bound),) * act_dim,
            action_high=(float(action_bound),) * act_dim,
            max_episode_steps=int(self.env.max_episode_length),
            critic_obs_dim=None if self.critic_group is None else int(groups[self.critic_group][-1]),
        )
        self._low, self._high = self.spec.action_bounds(self.device)

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    @property
    def unwrapped(self) -> Any:
        """The mjlab ``ManagerBasedRlEnv`` (tests and tools reach into its scene and managers)."""
        return self.env

    @property
    def step_dt(self) -> float:
        """Seconds of simulated time per control step (the factor mjlab scales rewards by)."""
        return float(self.env.step_dt)

    def _rng_state(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.get_rng_state(), None if self._cuda is None else torch.cuda.get_rng_state(self._cuda)

    def _set_rng_state(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if self._cuda is not None:
            torch.cuda.set_rng_state(state[1], self._cuda)

    @contextlib.contextmanager
    def _env_rng(self) -> Iterator[None]:
        """Run mjlab on this env's RNG stream, leaving the caller's global RNG as it was (see the module doc)."""
        caller = self._rng_state()
        self._set_rng_state(self._own_rng)
        try:
            yield
        finally:
            self._own_rng = self._rng_state()
            self._set_rng_state(caller)

    def _views(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {"obs": obs[self.actor_group]}
        if self.critic_group is not None:
            out["critic_obs"] = obs[self.critic_group]
        return out

    def reset(self, seed: int | None = None) -> TensorDict:
        quiet = contextlib.nullcontext() if self.verbose else contextlib.redirect_stdout(io.StringIO())
        with self._env_rng(), quiet:
            obs, _ = self.env.reset(seed=seed)  # mjlab prints the seed it sets
        return TensorDict(self._views(obs), batch_size=[self.num_envs], device=self.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        action = torch.maximum(torch.minimum(action, self._high), self._low)
        with self._env_rng():
            return self._step(action)

    def _step(self, action: torch.Tensor) -> TensorDict:
        obs, reward, terminated, time_outs, _ = self.env.step(action)
        # mjlab reuses these buffers on its next step: clone before they leave.
        reward = reward.clone()
        if self.finite_horizon:
            terminated = terminated | time_outs
            truncated = torch.zeros_like(terminated)
        else:
            terminated = terminated.clone()
            truncated = time_outs & ~terminated
        done = terminated | truncated
        final = self._views(obs)
        next_views = final
        done_ids = done.nonzero().squeeze(-1)  # one host sync, as in mjlab's own auto-reset
        if done_ids.numel() > 0:
            reset_obs, _ = self.env.reset(env_ids=done_ids)
            column = done.unsqueeze(-1)
            next_views = {k: torch.where(column, v, final[k]) for k, v in self._views(reset_obs).items()}
        out = {
            **next_views,
            "final_obs": final["obs"],
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
        }
        if self.critic_group is not None:
            out["final_critic_obs"] = final["critic_obs"]
        return TensorDict(out, batch_size=[self.num_envs], device=self.device)

    def close(self) -> None:
        self.env.close()
