"""Stand-ins for Isaac Lab and Isaac Gym that follow the real APIs closely enough to test our adapters without them.

What they reproduce, taken from the projects' sources (Isaac Lab 2.x ``ManagerBasedRLEnv`` / ``DirectRLEnv``,
IsaacGymEnvs 1.5 ``VecTask``), and what the adapters rely on:

Isaac Lab
- ``isaaclab.app.AppLauncher(launcher_args=None, **kwargs)`` with ``.app``; ``isaaclab_tasks`` registers the task ids
  with Gymnasium on import; ``isaaclab_tasks.utils.parse_env_cfg(task_name, device="cuda:0", num_envs=None,
  use_fabric=None)`` returns the task's config with ``sim.device`` and ``scene.num_envs`` set.
- ``gym.make(id, cfg=cfg)``; ``env.unwrapped`` has ``num_envs``, ``device``, ``max_episode_length`` (steps),
  ``single_observation_space`` (a Dict of groups ``policy`` and optionally ``critic``), an unbounded
  ``single_action_space``.
- ``step(action)`` order: apply action and simulate; ``episode_length_buf += 1``; terminations (``terminated`` and
  ``time_outs`` = episode_length_buf >= max_episode_length); rewards; ``_reset_idx`` of the ended envs; then the
  observations, with ``update_history=True``; returns ``(obs, reward, terminated, time_outs, extras)`` with
  tensors on the sim device. ``reset(seed)`` resets all envs and returns ``(obs, extras)``.
- Manager-based tasks compute observations with ``observation_manager.compute(update_history=...)``, direct tasks
  with ``_get_observations()``.

Isaac Gym (IsaacGymEnvs)
- ``isaacgym`` must be importable; ``isaacgymenvs.make(seed, task, num_envs, sim_device, rl_device,
  graphics_device_id=-1, headless=False, ...)`` returns a ``VecTask``.
- ``VecTask.step(actions)``: clamp to ``clipActions``; ``pre_physics_step``; simulate; ``post_physics_step`` (here
  Ant-style: ``progress_buf += 1``, reset the envs flagged at the previous step, compute observations, then reward
  and ``reset_buf``); ``timeout_buf = (progress_buf >= max_episode_length - 1) & (reset_buf != 0)``;
  ``extras["time_outs"]``; returns ``({"obs": clamped obs, "states": ...}, rew_buf, reset_buf, extras)`` on
  ``rl_device``. ``reset_buf`` starts at ones; ``reset()`` only returns the current buffers.

The dynamics are a point on a line: position += 0.1 * action[0] per step, terminated beyond |x| > 1, reward x.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

STEP = 0.1
FAKE_LAB_IDS = ("Isaac-Fake-Manager-v0", "Isaac-Fake-Direct-v0")


# ---- Isaac Lab ----------------------------------------------------------------------------------------------------
@dataclass
class _Sim:
    device: str = "cuda:0"
    dt: float = 0.01


@dataclass
class _Scene:
    num_envs: int = 8


@dataclass
class FakeLabCfg:
    sim: _Sim = field(default_factory=_Sim)
    scene: _Scene = field(default_factory=_Scene)
    decimation: int = 2
    episode_length_s: float = 0.2  # 10 steps of 0.02 s
    seed: int | None = None
    is_finite_horizon: bool = False


class _ObservationManager:
    def __init__(self, env: _FakeLabBase) -> None:
        self.env = env
        self.history_updates = 0

    def compute(self, update_history: bool = False) -> dict[str, torch.Tensor]:
        self.history_updates += int(update_history)
        return self.env.observe()


class _FakeLabBase(gym.Env):
    is_vector_env = True

    def __init__(self, cfg: FakeLabCfg, render_mode: str | None = None, **kwargs) -> None:
        self.cfg = cfg
        self.num_envs = cfg.scene.num_envs
        self.device = cfg.sim.device
        self.step_dt = cfg.sim.dt * cfg.decimation
        self.max_episode_length = int(np.ceil(cfg.episode_length_s / self.step_dt))
        self.single_observation_space = gym.spaces.Dict(
            {"policy": gym.spaces.Box(-np.inf, np.inf, (2,)), "critic": gym.spaces.Box(-np.inf, np.inf, (3,))}
        )
        self.single_action_space = gym.spaces.Box(-np.inf, np.inf, (2,))
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed or 0)
        self.x = torch.zeros(self.num_envs, device=self.device)
        self.last_action = torch.zeros(self.num_envs, 2, device=self.device)
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.extras: dict = {}
        self.reset_calls = 0

    def observe(self) -> dict[str, torch.Tensor]:
        progress = self.episode_length_buf.float() / self.max_episode_length
        policy = torch.stack([self.x, self.last_action[:, 1]], -1)
        return {"policy": policy, "critic": torch.stack([self.x, self.last_action[:, 1], progress], -1)}

    def _reset_idx(self, env_ids: torch.Tensor) -> None:
        self.x[env_ids] = torch.rand(len(env_ids), generator=self.generator, device=self.device) * 0.2 - 0.1
        self.last_action[env_ids] = 0.0
        self.episode_length_buf[env_ids] = 0
        self.extras["log"] = {}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.generator.manual_seed(seed)
        self.reset_calls += 1
        self._reset_idx(torch.arange(self.num_envs, device=self.device))
        return self._observations(), self.extras

    def step(self, action: torch.Tensor):
        action = action.to(self.device)
        self.last_action = action.clone()
        self.x = self.x + STEP * action[:, 0]
        self.episode_length_buf += 1
        terminated = self.x.abs() > 1.0
        time_outs = self.episode_length_buf >= self.max_episode_length
        reward = self.x.clone()
        self.reset_terminated, self.reset_time_outs = terminated, time_outs  # as ManagerBasedRLEnv/DirectRLEnv keep
        reset_ids = (terminated | time_outs).nonzero(as_tuple=False).squeeze(-1)
        if len(reset_ids) > 0:
            self._reset_idx(reset_ids)
        return self._observations(update_history=True), reward, terminated, time_outs, self.extras

    def _observations(self, update_history: bool = False) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FakeManagerBasedRLEnv(_FakeLabBase):
    def __init__(self, cfg: FakeLabCfg, render_mode: str | None = None, **kwargs) -> None:
        super().__init__(cfg, render_mode, **kwargs)
        self.observation_manager = _ObservationManager(self)

    def _observations(self, update_history: bool = False) -> dict[str, torch.Tensor]:
        return self.observation_manager.compute(update_history=update_history)


class FakeDirectRLEnv(_FakeLabBase):
    def _get_observations(self) -> dict[str, torch.Tensor]:
        return self.observe()

    def _observations(self, update_history: bool = False) -> dict[str, torch.Tensor]:
        return self._get_observations()


def _register_lab_tasks() -> None:
    for task_id, cls in zip(FAKE_LAB_IDS, (FakeManagerBasedRLEnv, FakeDirectRLEnv)):
        if task_id not in gym.registry:
            gym.register(id=task_id, entry_point=cls, disable_env_checker=True,
                         kwargs={"env_cfg_entry_point": FakeLabCfg})  # fmt: skip


def isaaclab_modules() -> dict[str, types.ModuleType]:
    """``isaaclab``, ``isaaclab.app``, ``isaaclab_tasks`` and ``isaaclab_tasks.utils`` as fake modules."""
    isaaclab = types.ModuleType("isaaclab")
    app = types.ModuleType("isaaclab.app")

    class AppLauncher:
        launches = 0

        def __init__(self, launcher_args=None, **kwargs) -> None:
            AppLauncher.launches += 1
            self.kwargs = kwargs
            self.app = types.SimpleNamespace(close=lambda: None)

    app.AppLauncher = AppLauncher
    isaaclab.app = app
    isaaclab_tasks = types.ModuleType("isaaclab_tasks")
    utils = types.ModuleType("isaaclab_tasks.utils")

    def parse_env_cfg(task_name, device="cuda:0", num_envs=None, use_fabric=None):
        cfg = gym.spec(task_name).kwargs["env_cfg_entry_point"]()
        cfg.sim.device = device
        if num_envs is not None:
            cfg.scene.num_envs = num_envs
        return cfg

    utils.parse_env_cfg = parse_env_cfg
    isaaclab_tasks.utils = utils
    _register_lab_tasks()
    isaaclab_rl = types.ModuleType("isaaclab_rl")
    rsl_rl = types.ModuleType("isaaclab_rl.rsl_rl")
    rsl_rl.RslRlVecEnvWrapper = FakeRslRlVecEnvWrapper
    isaaclab_rl.rsl_rl = rsl_rl
    return {"isaaclab": isaaclab, "isaaclab.app": app, "isaaclab_tasks": isaaclab_tasks,
            "isaaclab_tasks.utils": utils, "isaaclab_rl": isaaclab_rl, "isaaclab_rl.rsl_rl": rsl_rl}  # fmt: skip


class FakeRslRlVecEnvWrapper:
    """Isaac Lab's ``isaaclab_rl.rsl_rl.RslRlVecEnvWrapper`` (rsl_rl's VecEnv): resets once at construction;
    ``get_observations()`` -> TensorDict of groups; ``step`` -> ``(obs, rew, dones, extras)`` with
    ``extras["time_outs"]`` unless the task is finite-horizon; ``episode_length_buf`` is the env's."""

    def __init__(self, env, clip_actions: float | None = None) -> None:
        from tensordict import TensorDict

        self._td = TensorDict
        self.env, self.clip_actions = env, clip_actions
        self.num_envs = self.unwrapped.num_envs
        self.device = self.unwrapped.device
        self.max_episode_length = self.unwrapped.max_episode_length
        self.num_actions = gym.spaces.flatdim(self.unwrapped.single_action_space)
        self.cfg = self.unwrapped.cfg
        self.env.reset()

    @property
    def unwrapped(self):
        return self.env.unwrapped

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.unwrapped.episode_length_buf

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        self.unwrapped.episode_length_buf = value

    def get_observations(self):
        base = self.unwrapped
        groups = (
            base.observation_manager.compute() if hasattr(base, "observation_manager") else base._get_observations()
        )
        return self._td(groups, batch_size=[self.num_envs])

    def step(self, actions: torch.Tensor):
        if self.clip_actions is not None:
            actions = torch.clamp(actions, -self.clip_actions, self.clip_actions)
        obs, rew, terminated, truncated, extras = self.env.step(actions)
        dones = (terminated | truncated).to(dtype=torch.long)
        if not self.unwrapped.cfg.is_finite_horizon:
            extras["time_outs"] = truncated
        return self._td(obs, batch_size=[self.num_envs]), rew, dones, extras

    def close(self) -> None:
        self.env.close()


# ---- Isaac Gym ----------------------------------------------------------------------------------------------------
class FakeVecTask:
    """Ant-style task: lazy resets at the start of ``post_physics_step``."""

    def __init__(self, seed: int, num_envs: int, sim_device: str, rl_device: str, episode_length: int = 20) -> None:
        self.num_envs, self.num_obs, self.num_states, self.num_acts = num_envs, 2, 3, 2
        self.num_observations, self.num_actions = self.num_obs, self.num_acts
        self.device, self.rl_device = sim_device, rl_device
        self.max_episode_length = episode_length
        self.clip_obs, self.clip_actions = 5.0, 1.0
        self.action_space = gym.spaces.Box(-np.ones(2, np.float32), np.ones(2, np.float32))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        dev = self.device
        self.obs_buf = torch.zeros(num_envs, 2, device=dev)
        self.states_buf = torch.zeros(num_envs, 3, device=dev)
        self.rew_buf = torch.zeros(num_envs, device=dev)
        self.reset_buf = torch.ones(num_envs, dtype=torch.long, device=dev)
        self.timeout_buf = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.progress_buf = torch.zeros(num_envs, dtype=torch.long, device=dev)
        self.extras: dict = {}
        self.obs_dict: dict = {}
        self.generator = torch.Generator(device=dev).manual_seed(seed)
        self.x = torch.zeros(num_envs, device=dev)
        self.actions = torch.zeros(num_envs, 2, device=dev)

    def zero_actions(self) -> torch.Tensor:
        return torch.zeros(self.num_envs, self.num_actions, dtype=torch.float32, device=self.rl_device)

    def pre_physics_step(self, actions: torch.Tensor) -> None:
        self.actions = actions.clone().to(self.device)

    def simulate(self) -> None:
        self.x = self.x + STEP * self.actions[:, 0]

    def reset_idx(self, env_ids: torch.Tensor) -> None:
        self.x[env_ids] = torch.rand(len(env_ids), generator=self.generator, device=self.device) * 0.2 - 0.1
        self.progress_buf[env_ids] = 0
        self.reset_buf[env_ids] = 0

    def post_physics_step(self) -> None:
        self.progress_buf += 1
        env_ids = self.reset_buf.nonzero(as_tuple=False).flatten()
        if len(env_ids) > 0:
            self.reset_idx(env_ids)
        self.obs_buf[:] = torch.stack([self.x, self.actions[:, 1]], -1)
        self.states_buf[:] = torch.stack([self.x, self.actions[:, 1], self.progress_buf.float()], -1)
        self.rew_buf[:] = self.x
        ones = torch.ones_like(self.reset_buf)
        reset = torch.where(self.x.abs() > 1.0, ones, torch.zeros_like(self.reset_buf))
        self.reset_buf[:] = torch.where(self.progress_buf >= self.max_episode_length - 1, ones, reset)

    def step(self, actions: torch.Tensor):
        action_tensor = torch.clamp(actions, -self.clip_actions, self.clip_actions)
        self.pre_physics_step(action_tensor)
        self.simulate()
        self.post_physics_step()
        self.timeout_buf = (self.progress_buf >= self.max_episode_length - 1) & (self.reset_buf != 0)
        self.extras["time_outs"] = self.timeout_buf.to(self.rl_device)
        self.obs_dict["obs"] = torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)
        self.obs_dict["states"] = torch.clamp(self.states_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)
        return self.obs_dict, self.rew_buf.to(self.rl_device), self.reset_buf.to(self.rl_device), self.extras

    def reset(self) -> dict[str, torch.Tensor]:
        self.obs_dict["obs"] = torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)
        self.obs_dict["states"] = torch.clamp(self.states_buf, -self.clip_obs, self.clip_obs).to(self.rl_device)
        return self.obs_dict


def isaacgym_modules() -> dict[str, types.ModuleType]:
    isaacgym = types.ModuleType("isaacgym")
    isaacgymenvs = types.ModuleType("isaacgymenvs")
    made: list[FakeVecTask] = []

    def make(seed, task, num_envs, sim_device, rl_device, graphics_device_id=-1, headless=False, multi_gpu=False,
             virtual_screen_capture=False, force_render=True, cfg=None):  # fmt: skip
        if task != "FakeAnt":
            raise KeyError(task)
        made.append(FakeVecTask(seed, num_envs, sim_device, rl_device))
        return made[-1]

    isaacgymenvs.make = make
    isaacgymenvs.made = made
    return {"isaacgym": isaacgym, "isaacgymenvs": isaacgymenvs}


def install(monkeypatch, modules: dict[str, types.ModuleType]) -> None:
    """Put fake modules in ``sys.modules`` for one test (``monkeypatch`` undoes it)."""
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
