"""An off-policy runner with rsl_rl's runner contract, for the train/play scripts of mjlab and Isaac Lab.

Those scripts build ``runner_cls(env, agent_cfg_dict, log_dir, device)``, maybe ``load(path)``, and call
``learn(max_iterations, init_at_random_ep_len=True)``; ``play`` calls ``load(path, load_cfg={"actor": True})`` and
``get_inference_policy(device)``. ``OffPolicyRunner`` keeps that contract and trains one of our algorithms with our
runtime (replay buffer, V-/P-learners, exact UTD): one learning iteration is ``num_steps_per_env`` vectorized env
steps (default 1) with the updates due for them.

The env is rsl_rl's ``VecEnv``: ``get_observations()`` -> TensorDict of observation groups, ``step(actions)`` ->
``(obs, rewards, dones, extras)`` with ``extras["time_outs"]``. ``obs_groups`` of the config pick the actor's groups
(``"actor"`` or ``"policy"``) and the critic's (``"critic"``, an asymmetric critic when they differ).

True final observations (a time-out bootstraps from the state the episode reached, not from the reset one): rsl_rl's
wrappers return the reset observation of an env that ended. The runner recovers the true one where the env allows:

- mjlab (``env.unwrapped.cfg.auto_reset``): auto-reset is switched off; ``step`` then returns the terminal
  observations and the runner resets the ended envs itself (``unwrapped.reset(env_ids=...)``);
- Isaac Lab (``env.unwrapped._reset_idx``): the observations are computed once more just before the env resets the
  ended envs inside its step (the same hook as ``parallel_rl.envs.isaac_lab``);
- other envs: the reset observation is used, with a warning.

Train config keys (``train_cfg``, a dict such as ``dataclasses.asdict`` of mjlab's agent config): ``algo``
(``fasttd3``, ``pql``, ...; or rsl_rl's ``algorithm.class_name``); ``algorithm`` (our ``AgentConfig`` fields; an
on-policy section such as Isaac Lab's PPO config is ignored with a warning, so its train script runs unchanged);
``schedule``, ``buffer``, ``speed`` (sections of our ``TrainConfig``); ``transitions_per_env`` (replay capacity per
env), ``num_steps_per_env``, ``save_interval``, ``log_interval`` (iterations per TensorBoard row), ``seed``,
``obs_groups``, ``action_bound``, ``clip_actions``, ``experiment_name``. Unknown names in the sections fail with
the valid ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import statistics
import time
import warnings
from collections import deque
from collections.abc import Mapping
from typing import Any

import torch
from tensordict import TensorDict

from parallel_rl.config import ALGOS, ConfigError, TrainConfig, replace_nested, validate
from parallel_rl.envs.base import EnvSpec, check_action

#: Sections of ``train_cfg`` that map onto our ``TrainConfig`` (``algorithm`` is its ``agent`` section).
SECTIONS = {"algorithm": "agent", "schedule": "schedule", "buffer": "buffer", "speed": "speed"}
ACTOR_SETS = ("actor", "policy")


def _groups(obs_groups: Mapping[str, Any], available: list[str]) -> tuple[list[str], list[str] | None]:
    actor = next((list(obs_groups[k]) for k in ACTOR_SETS if k in obs_groups), None)
    if actor is None:
        actor = [next((g for g in ACTOR_SETS if g in available), available[0])]
    critic = list(obs_groups["critic"]) if "critic" in obs_groups else (["critic"] if "critic" in available else None)
    for group in actor + (critic or []):
        if group not in available:
            raise ConfigError(f"obs_groups: observation group {group!r} is not provided by the env ({available})")
    return actor, (critic if critic != actor else None)


class RslRlEnvAdapter:
    """rsl_rl's ``VecEnv`` as our ``VecEnv`` (``obs``/``critic_obs``, ``final_obs``, terminated vs truncated)."""

    def __init__(self, env: Any, obs_groups: Mapping[str, Any], action_bound: float, device: str | torch.device):
        self.env = env
        self.device = torch.device(device)
        obs = env.get_observations()
        self.actor_groups, self.critic_groups = _groups(obs_groups, list(obs.keys()))
        views = self._views(obs)
        self.spec = EnvSpec(
            obs_dim=views["obs"].shape[-1],
            act_dim=int(env.num_actions),
            num_envs=int(env.num_envs),
            device=self.device,
            action_low=(-float(action_bound),) * int(env.num_actions),
            action_high=(float(action_bound),) * int(env.num_actions),
            max_episode_steps=int(torch.as_tensor(env.max_episode_length).max()),
            critic_obs_dim=views["critic_obs"].shape[-1] if "critic_obs" in views else None,
        )
        self._low, self._high = self.spec.action_bounds(self.device)
        self.unwrapped = getattr(env, "unwrapped", env)
        self._captured: dict[str, torch.Tensor] | None = None
        self._capturing = False
        self.final_obs_source = self._install_final_obs()
        self.episode_logs: list[dict[str, Any]] = []

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    def _views(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        def cat(groups: list[str]) -> torch.Tensor:
            return torch.cat([obs[g].reshape(obs[g].shape[0], -1).float() for g in groups], -1).to(self.device)

        out = {"obs": cat(self.actor_groups)}
        if self.critic_groups is not None:
            out["critic_obs"] = cat(self.critic_groups)
        return out

    def _install_final_obs(self) -> str:
        base = self.unwrapped
        env_cfg = getattr(base, "cfg", None)
        if hasattr(env_cfg, "auto_reset") and hasattr(base, "reset"):  # mjlab: reset the ended envs ourselves
            env_cfg.auto_reset = False
            return "manual_reset"
        if hasattr(base, "_reset_idx"):  # Isaac Lab: observe the ended envs just before the env resets them
            reset_idx = base._reset_idx

            def reset_idx_keeping_final_obs(env_ids, *args, **kwargs):
                if self._capturing:
                    manager = getattr(base, "observation_manager", None)
                    if manager is None:
                        groups = base._get_observations()
                    elif "update_history" in inspect.signature(manager.compute).parameters:
                        groups = manager.compute(update_history=False)
                    else:
                        groups = manager.compute()
                    self._captured = {k: v.clone() for k, v in groups.items() if isinstance(v, torch.Tensor)}
                return reset_idx(env_ids, *args, **kwargs)

            base._reset_idx = reset_idx_keeping_final_obs
            return "capture"
        warnings.warn("OffPolicyRunner: this env gives no final observations; time-outs bootstrap from the reset "
                      "observation", stacklevel=3)  # fmt: skip
        return "reset"

    def reset(self, seed: int | None = None) -> TensorDict:
        """rsl_rl's wrappers reset at construction and the runner never resets: the current observations."""
        return TensorDict(self._views(self.env.get_observations()), batch_size=[self.num_envs], device=self.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        action = torch.maximum(torch.minimum(action, self._high), self._low)
        self._captured, self._capturing = None, self.final_obs_source == "capture"
        try:
            obs, reward, dones, extras = self.env.step(action.to(self.env.device))
        finally:
            self._capturing = False
        step_log = extras.get("episode", extras.get("log"))
        if step_log:  # copied now: mjlab's reset below replaces extras["log"]
            self.episode_logs.append(dict(step_log))
        done = dones.to(self.device).bool().reshape(self.num_envs)
        time_outs = extras.get("time_outs")
        time_outs = torch.zeros_like(done) if time_outs is None else time_outs.to(self.device).bool().reshape(-1)
        flags = getattr(self.unwrapped, "reset_terminated", None)  # Isaac Lab's and mjlab's envs keep it
        if isinstance(flags, torch.Tensor):  # an episode that both failed and timed out is terminal
            terminated = done & flags.to(self.device).bool().reshape(-1)
        else:  # rsl_rl's convention: a time-out bootstraps
            terminated = done & ~time_outs
        truncated = done & ~terminated
        views = self._views(obs)
        column = done.unsqueeze(-1)
        if self.final_obs_source == "manual_reset":
            final = views
            done_ids = done.nonzero().squeeze(-1)
            if done_ids.numel() > 0:
                reset_obs, reset_extras = self.unwrapped.reset(env_ids=done_ids.to(self.unwrapped.device))
                if isinstance(reset_extras, Mapping) and reset_extras.get("log"):  # episode sums logged at reset
                    self.episode_logs.append(dict(reset_extras["log"]))
                views = {k: torch.where(column, v, final[k]) for k, v in self._views(reset_obs).items()}
        elif self._captured is not None:
            final = {k: torch.where(column, v, views[k]) for k, v in self._views(self._captured).items()}
        else:
            final = views
        out = {**views, "final_obs": final["obs"], "reward": reward.to(self.device).float().reshape(-1),
               "terminated": terminated, "truncated": truncated}  # fmt: skip
        if "critic_obs" in final:
            out["final_critic_obs"] = final["critic_obs"]
        return TensorDict(out, batch_size=[self.num_envs], device=self.device)


def train_config(train_cfg: Mapping[str, Any], num_envs: int, device: str, check: bool = True) -> TrainConfig:
    """Our ``TrainConfig`` from an rsl_rl-style train config dict (see the module docstring for the keys);
    ``check=False`` leaves ``validate`` for later (playing a policy needs no valid replay settings)."""
    overrides: dict[str, Any] = {}
    algo = train_cfg.get("algo")
    algorithm = dict(train_cfg.get("algorithm") or {})
    if "class_name" in algorithm:  # rsl_rl's convention: cfg["algorithm"]["class_name"] names the algorithm
        name = str(algorithm.pop("class_name")).lower()
        if name in ALGOS:
            algo = algo or name
        else:  # an on-policy config (Isaac Lab's PPO agent cfg): its hyperparameters do not apply here
            warnings.warn(f"OffPolicyRunner: train_cfg['algorithm'] is for {name!r}, not one of ours "
                          f"({', '.join(ALGOS)}); using {algo or 'fasttd3'}'s defaults", stacklevel=3)  # fmt: skip
            algorithm = {}
    train_cfg = {**train_cfg, "algorithm": algorithm}
    for key, section in SECTIONS.items():
        value = train_cfg.get(key)
        if value is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"train_cfg[{key!r}] must be a dict of {section} fields, got {type(value).__name__}")
            overrides[section] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if train_cfg.get("transitions_per_env"):  # FastTD3's per-env replay capacity
        overrides.setdefault("buffer", {})["buffer_size"] = int(train_cfg["transitions_per_env"]) * num_envs
    steps = int(train_cfg.get("num_steps_per_env", 1))
    iterations = int(train_cfg.get("max_iterations", 1))
    base = TrainConfig(
        task=f"rsl_rl:{train_cfg.get('experiment_name', 'env')}",
        algo=algo or "fasttd3",
        seed=int(train_cfg.get("seed", 0)),
        device=str(device),
        num_envs=num_envs,
        eval_envs=num_envs,
        total_env_steps=max(num_envs, num_envs * steps * iterations),
        progress=False,
    )
    try:
        cfg = replace_nested(base, overrides)
    except ConfigError as e:
        raise ConfigError(f"train_cfg: {e}") from None
    cfg = dataclasses.replace(cfg, logging=dataclasses.replace(cfg.logging, tensorboard=False))
    if check:
        validate(cfg)
    return cfg


class InferencePolicy(torch.nn.Module):
    """Observation groups (a TensorDict, as rsl_rl's envs return them) or a flat tensor -> actions."""

    def __init__(self, policy: torch.nn.Module, actor_groups: list[str]) -> None:
        super().__init__()
        self.policy, self.actor_groups = policy, actor_groups

    @torch.no_grad()
    def forward(self, obs: Any) -> torch.Tensor:
        if not isinstance(obs, torch.Tensor):
            obs = torch.cat([obs[g].reshape(obs[g].shape[0], -1).float() for g in self.actor_groups], -1)
        return self.policy(obs)


class OffPolicyRunner:
    """rsl_rl's runner contract around our off-policy runtime (see the module docstring)."""

    def __init__(self, env: Any, train_cfg: dict, log_dir: str | None = None, device: str = "cpu") -> None:
        self.env, self.cfg, self.log_dir, self.device = env, train_cfg, log_dir, device
        self.train_cfg = train_config(train_cfg, int(env.num_envs), device, check=False)  # checked when training
        bound = train_cfg.get("action_bound") or train_cfg.get("clip_actions") or 1.0
        self.vec_env = RslRlEnvAdapter(env, train_cfg.get("obs_groups") or {}, float(bound), device)
        self.steps_per_iteration = int(train_cfg.get("num_steps_per_env", 1))
        self.current_learning_iteration = 0
        self.git_status_repos: list[str] = []
        self.writer: Any = None
        self._trainer: Any = None
        self._pending_state: dict[str, Any] | None = None
        self._loaded_policy: torch.nn.Module | None = None
        self.rewbuffer: deque[float] = deque(maxlen=100)
        self.lenbuffer: deque[float] = deque(maxlen=100)

    # ---- the runtime, built on first use (play only needs the policy) ------------------------------------------
    @property
    def trainer(self) -> Any:
        if self._trainer is None:
            from parallel_rl.runtime import Trainer

            self._trainer = Trainer(self.train_cfg, lambda num_envs, device, seed: self.vec_env)
            if self._pending_state is not None:
                self._trainer.load_state_dict(self._pending_state)
                self._pending_state = None
        return self._trainer

    def learn(self, num_learning_iterations: int, init_at_random_ep_len: bool = False) -> None:
        trainer = self.trainer
        if init_at_random_ep_len:
            self.env.episode_length_buf = torch.randint_like(
                self.env.episode_length_buf, high=int(torch.as_tensor(self.env.max_episode_length).max())
            )
        self._init_writer()
        start_it = self.current_learning_iteration
        save_interval = int(self.cfg.get("save_interval", 50))
        log_interval, seconds = max(1, int(self.cfg.get("log_interval", 1))), 0.0
        for it in range(start_it, start_it + num_learning_iterations):
            start = time.time()
            for _ in range(self.steps_per_iteration):
                trainer.iteration()
            self.current_learning_iteration = it + 1
            seconds += time.time() - start
            if (it + 1 - start_it) % log_interval == 0:  # metrics cost a host sync: not every env step
                self._log(it, seconds / log_interval)
                seconds = 0.0
            if self.log_dir is not None and save_interval > 0 and it % save_interval == 0:
                self.save(os.path.join(self.log_dir, f"model_{it}.pt"))
        trainer.finish()
        if self.log_dir is not None:
            self.save(os.path.join(self.log_dir, f"model_{self.current_learning_iteration}.pt"))
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    # ---- logging in rsl_rl's layout ------------------------------------------------------------------------------
    def _init_writer(self) -> None:
        if self.log_dir is None or self.writer is not None:
            return
        os.makedirs(self.log_dir, exist_ok=True)
        logger = self.cfg.get("logger", "tensorboard")
        if logger != "tensorboard":
            warnings.warn(f"OffPolicyRunner logs to TensorBoard only; logger={logger!r} ignored", stacklevel=3)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=self.log_dir, flush_secs=10)
        self._store_code_state()

    def _log(self, it: int, seconds: float) -> None:
        metrics = self.trainer.metrics()
        if "episode_return" in metrics:
            self.rewbuffer.append(metrics["episode_return"])
            self.lenbuffer.append(metrics["episode_length"])
        logs, self.vec_env.episode_logs = self.vec_env.episode_logs, []
        if self.writer is None:
            return
        for key in {k for log in logs for k in log}:
            values = [float(torch.as_tensor(log[key]).float().mean()) for log in logs if key in log]
            self.writer.add_scalar(key if "/" in key else f"Episode/{key}", statistics.mean(values), it)
        for key, value in metrics.items():
            if key.endswith("loss") or key.startswith("loss"):
                self.writer.add_scalar(f"Loss/{key}", value, it)
        steps = self.steps_per_iteration * self.vec_env.num_envs
        self.writer.add_scalar("Perf/total_fps", steps / max(seconds, 1e-9), it)
        self.writer.add_scalar("Perf/iteration_time", seconds, it)
        if self.rewbuffer:
            self.writer.add_scalar("Train/mean_reward", statistics.mean(self.rewbuffer), it)
            self.writer.add_scalar("Train/mean_episode_length", statistics.mean(self.lenbuffer), it)
        for key in ("critic_updates_per_env_step", "replay_ratio"):
            if key in metrics:
                self.writer.add_scalar(f"Perf/{key}", metrics[key], it)

    def add_git_repo_to_log(self, repo_file_path: str) -> None:
        """Record the git state of the repository holding this file in ``<log_dir>/git`` (as rsl_rl does)."""
        self.git_status_repos.append(repo_file_path)

    def _store_code_state(self) -> None:
        """``<log_dir>/git/<repo>.diff``: commit, status and diff of parallel_rl's checkout and the added repos."""
        import subprocess

        import parallel_rl
        from parallel_rl.io.run_record import _git

        git_dir = os.path.join(self.log_dir, "git")
        for path in [parallel_rl.__file__, *self.git_status_repos]:
            folder = os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else path
            try:
                root = _git(folder, "rev-parse", "--show-toplevel").strip()
                commit, status, diff = (_git(root, *a) for a in (("rev-parse", "HEAD"), ("status", "--short"),
                                                                  ("diff", "HEAD")))  # fmt: skip
                text = f"--- git commit ---\n{commit}\n\n--- git status ---\n{status}\n\n--- git diff ---\n{diff}"
            except (OSError, subprocess.SubprocessError):
                continue  # not a git checkout (an installed package): nothing to record
            os.makedirs(git_dir, exist_ok=True)
            target = os.path.join(git_dir, f"{os.path.basename(root)}.diff")
            if not os.path.exists(target):
                with open(target, "w", encoding="utf-8") as f:
                    f.write(text)

    # ---- checkpoints ---------------------------------------------------------------------------------------------
    def save(self, path: str, infos: dict | None = None) -> None:
        """The whole training state (networks, optimizers, normalizers, counters) and ``iter``/``infos``."""
        from parallel_rl.io.checkpoint import save_checkpoint

        state = self.trainer.state_dict()
        state.update(iter=self.current_learning_iteration, infos=infos, train_cfg=_plain(self.cfg))
        save_checkpoint(path, state)

    def load(self, path: str, load_cfg: dict | None = None, strict: bool = True, map_location: str | None = None):
        """Everything (to continue training), or only the policy when ``load_cfg`` asks for the actor alone (as
        mjlab's ``play`` does) or the saved run had another configuration."""
        from parallel_rl.config import config_differences
        from parallel_rl.io.checkpoint import load_checkpoint, load_policy

        state = load_checkpoint(path, map_location=map_location or "cpu")
        actor_only = load_cfg is not None and not any(v for k, v in load_cfg.items() if k != "actor")
        if not actor_only and not config_differences(state["config"], self.train_cfg):
            if self._trainer is None:
                self._pending_state = state
            else:
                self._trainer.load_state_dict(state)
            self.current_learning_iteration = int(state.get("iter", 0))
        elif actor_only or not strict:
            self._loaded_policy = load_policy(path, map_location or self.device)
        else:
            raise ConfigError(f"{path}: trained with another configuration: "
                              + "; ".join(config_differences(state["config"], self.train_cfg)))  # fmt: skip
        return state.get("infos")

    def get_inference_policy(self, device: str | None = None) -> InferencePolicy:
        if self._loaded_policy is not None and self._trainer is None:
            policy = self._loaded_policy
        else:
            policy = self.trainer.deployed_policy()
        return InferencePolicy(policy, self.vec_env.actor_groups).to(device or self.device).eval()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)
