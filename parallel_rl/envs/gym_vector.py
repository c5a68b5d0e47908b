"""Gymnasium vector environments (CPU MuJoCo such as Humanoid-v5) as a ``VecEnv``.

Autoreset mode, chosen deliberately: ``SAME_STEP``. Gymnasium 1.x offers three modes. ``NEXT_STEP`` (its default)
returns the true last observation at the step where the episode ends and resets on the *following* ``step`` call,
whose action is ignored: a replay buffer would have to drop that transition. ``DISABLED`` leaves resets to the
caller. ``SAME_STEP`` resets inside the step that ended the episode, returns the reset observation as ``obs`` and
the true last observation in ``info["final_obs"]`` (masked by ``info["_final_obs"]``), which is exactly our
protocol: every step is a real transition, and ``final_obs`` comes from the autoreset info.

Observations are float64 NumPy arrays on the host; they are converted to float32 tensors on ``device`` (one copy,
unavoidable for a CPU simulator). Truncation is Gymnasium's ``TimeLimit``: ``truncated`` where the time limit cut
the episode, ``terminated`` where the task ended it (an episode flagged both counts as terminated).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from parallel_rl.envs._optional import INSTALL_HINTS, BackendUnavailable, require
from parallel_rl.envs.base import EnvSpec, check_action
from parallel_rl.envs.mujoco_render import cached_renderer

VECTORIZATION_MODES = ("sync", "async")


class GymVecEnv:
    """``num_envs`` copies of a Gymnasium environment behind the ``VecEnv`` protocol.

    ``vectorization`` is ``"sync"`` (one process; renderable) or ``"async"`` (one subprocess per env, for slow envs
    on many cores). ``max_episode_steps`` overrides the registered time limit; ``make_kwargs`` go to the env's
    constructor (e.g. ``ctrl_cost_weight``).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        *,
        vectorization: str = "sync",
        max_episode_steps: int | None = None,
        **make_kwargs: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if vectorization not in VECTORIZATION_MODES:
            raise ValueError(f"vectorization must be one of {VECTORIZATION_MODES}, got {vectorization!r}")
        if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
            os.environ["MUJOCO_GL"] = "egl"  # headless rendering (read when mujoco's renderer first loads)
        gym = require("gym", "gymnasium")
        from gymnasium.vector import AutoresetMode

        try:
            spec = gym.spec(env_id)
        except gym.error.Error as e:
            raise ValueError(f"gym:{env_id}: {e}") from None
        if max_episode_steps is not None:
            spec = dataclasses.replace(spec, max_episode_steps=int(max_episode_steps))
        if spec.max_episode_steps is None:
            raise ValueError(
                f"gym:{env_id} has no time limit; give one (gym:{env_id},max_episode_steps=1000) so that episodes end "
                "and evaluation knows how long to run"
            )
        try:
            self.env = gym.make_vec(
                spec,
                num_envs=num_envs,
                vectorization_mode=vectorization,
                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                **make_kwargs,
            )
        except gym.error.DependencyNotInstalled as e:
            raise BackendUnavailable(f"{INSTALL_HINTS['gym']} ({e})") from e
        self.env_id, self.vectorization, self.device = env_id, vectorization, torch.device(device)
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        if not isinstance(obs_space, gym.spaces.Box) or not isinstance(act_space, gym.spaces.Box):
            raise ValueError(
                f"gym:{env_id}: needs Box observation and action spaces, got {obs_space} and {act_space} "
                "(wrap the env with gymnasium.wrappers.FlattenObservation for dict observations)"
            )
        act_dim = int(np.prod(act_space.shape))
        self.spec = EnvSpec(
            obs_dim=int(np.prod(obs_space.shape)),
            act_dim=act_dim,
            num_envs=num_envs,
            device=self.device,
            action_low=tuple(float(x) for x in np.broadcast_to(act_space.low, (act_dim,))),
            action_high=tuple(float(x) for x in np.broadcast_to(act_space.high, (act_dim,))),
            max_episode_steps=int(spec.max_episode_steps),
        )
        self._seed = seed
        self._low = np.asarray(self.spec.action_low, dtype=act_space.dtype)
        self._high = np.asarray(self.spec.action_high, dtype=act_space.dtype)
        self._renderers: dict[tuple[int, int], Any] = {}

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    def reset(self, seed: int | None = None) -> TensorDict:
        """Reset every env; sub-env ``i`` is seeded with ``seed + i`` (Gymnasium's convention)."""
        obs, _ = self.env.reset(seed=self._seed if seed is None else seed)
        return TensorDict({"obs": self._obs(obs)}, batch_size=[self.num_envs], device=self.device)

    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs.reshape(self.num_envs, -1), dtype=torch.float32).to(self.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        act = np.clip(action.detach().cpu().numpy().astype(self._low.dtype), self._low, self._high)
        obs, reward, terminated, truncated, info = self.env.step(act)
        final = obs.copy()
        ended = info.get("_final_obs")
        if ended is not None and ended.any():
            # SAME_STEP autoreset: obs already holds the reset observation; the episode's last one is in the info.
            final[ended] = np.stack([np.asarray(o) for o in info["final_obs"][ended]])
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool) & ~terminated
        return TensorDict(
            {
                "obs": self._obs(obs),
                "final_obs": self._obs(final),
                "reward": torch.as_tensor(reward, dtype=torch.float32).to(self.device),
                "terminated": torch.as_tensor(terminated).to(self.device),
                "truncated": torch.as_tensor(truncated).to(self.device),
            },
            batch_size=[self.num_envs],
            device=self.device,
        )

    def render(self, env_index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """RGB image (uint8 [height, width, 3]) of sub-env ``env_index`` in its current state.

        MuJoCo envs are drawn with MuJoCo's renderer at the requested size (their own tracking camera when the
        model has one); other envs need ``render_mode="rgb_array"`` and are drawn at their own size. Sync mode only
        (async sub-envs live in other processes).
        """
        if self.vectorization != "sync":
            raise NotImplementedError("render() needs vectorization='sync' (async sub-envs live in subprocesses)")
        if not 0 <= env_index < self.num_envs:
            raise IndexError(f"env_index {env_index} out of range for {self.num_envs} envs")
        sub = self.env.envs[env_index].unwrapped
        model, data = getattr(sub, "model", None), getattr(sub, "data", None)
        if model is None or data is None or not hasattr(model, "ncam"):
            frame = self.env.envs[env_index].render()
            if frame is None:
                raise RuntimeError(f"gym:{self.env_id} is not a MuJoCo env; create it with render_mode='rgb_array'")
            return np.asarray(frame, dtype=np.uint8)

        renderer = cached_renderer(self._renderers, model, width, height)
        renderer.update_scene(data, camera=_tracking_camera(sub, model))
        return renderer.render().copy()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.env.close()


def _tracking_camera(sub: Any, model: Any):
    """The env's own default view (Gymnasium MuJoCo envs follow their root body), as a MuJoCo camera."""
    import mujoco

    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    config = getattr(getattr(sub, "mujoco_renderer", None), "default_cam_config", None) or {}
    for key, value in config.items():
        if key == "trackbodyid":
            camera.type, camera.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, int(value)
        elif key == "lookat":
            camera.lookat[:] = value
        elif hasattr(camera, key):
            setattr(camera, key, value)
    return camera
