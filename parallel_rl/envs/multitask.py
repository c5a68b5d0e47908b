"""Several tasks in one vectorized batch: the envs are split among tasks, observations and actions are padded to
the largest dimensions, and each env carries its task id.

Layout (``MultiTaskVecEnv``):

- envs ``[0, n_0)`` run task 0, ``[n_0, n_0 + n_1)`` task 1, and so on (contiguous blocks, so per-task reductions
  and task-balanced sampling are index arithmetic);
- ``obs`` is ``[num_envs, obs_dim]`` with ``obs_dim = max_k obs_dim_k + 1``: the task's observation, zero-padded
  to the largest one, then the task id as a float in the last column. Carrying the id inside the observation makes
  every consumer that stores, samples, shifts (n-step) or exports observations carry it for free; the observation
  normalizer leaves that column alone (``RunningNorm(passthrough=1)``) and the networks split it off again
  (``nets.task.TaskEncoder``);
- actions are ``[num_envs, act_dim]`` in [-1, 1] with ``act_dim = max_k act_dim_k``; each task steps with its
  first ``act_dim_k`` columns scaled to its own bounds, the rest (masked dimensions) never reach its simulator;
- ``step`` returns the sub-envs' outputs concatenated, ``final_obs`` in the same padded layout (so truncations
  bootstrap from true final observations, as each sub-env provides them), and ``task_id`` [num_envs] int64. Time
  limits stay per task: each sub-env keeps its own.

The wrapper also records per-task statistics of finished training episodes (as Gymnasium's
``RecordEpisodeStatistics`` does for one env), read with one host sync by ``pop_task_episode_stats``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import torch
from tensordict import TensorDict

from parallel_rl.envs.base import EnvSpec, VecEnv, check_action

TASK_ID_COLUMNS = 1
"""Observation columns holding the task id (the last ones)."""


def split_envs(num_envs: int, weights: Sequence[float], names: Sequence[str] | None = None) -> list[int]:
    """Envs per task in proportion to ``weights`` (largest remainders get the leftover envs), at least one each."""
    if any(not (w > 0 and math.isfinite(w)) for w in weights):
        raise ValueError(f"--task-weights: every weight must be a positive number, got {list(weights)}")
    if num_envs < len(weights):
        raise ValueError(f"--num-envs: {num_envs} envs cannot be split among {len(weights)} tasks (need >= 1 each)")
    total = sum(weights)
    exact = [num_envs * w / total for w in weights]
    counts = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(weights)), key=lambda k: (counts[k] - exact[k], k))  # largest remainder first
    for k in order[: num_envs - sum(counts)]:
        counts[k] += 1
    for k, n in enumerate(counts):
        if n < 1:  # a tiny weight: take one env from the largest task
            donor = max(range(len(counts)), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[k] = 1
    if names is not None and len(names) != len(weights):
        raise ValueError(f"--task-weights: {len(weights)} weights for {len(names)} tasks ({', '.join(names)})")
    return counts


class MultiTaskVecEnv:
    """One VecEnv made of several (one per task, all on one device); see the module docstring for the layout.

    ``model_tasks`` lists the tasks of the model this env feeds, as ``(name, obs_dim, act_dim)`` indexed by task id
    (default: this env's own tasks), and ``obs_dim``/``act_dim`` its padded input and output sizes (default: the
    largest task's, plus the id column). They let a subset of tasks be presented in the layout of a bigger model:
    evaluating one task of a multi-task policy, or starting a new task (with a new id) from a multi-task checkpoint.
    """

    def __init__(
        self,
        envs: Sequence[VecEnv],
        names: Sequence[str],
        model_tasks: Sequence[tuple[str, int, int]] | None = None,
        obs_dim: int | None = None,
        act_dim: int | None = None,
    ) -> None:
        if not envs or len(envs) != len(names):
            raise ValueError(f"need one env per task name, got {len(envs)} envs for {len(names)} names")
        if len(set(names)) != len(names):
            raise ValueError(f"--task multi: each task may appear once, got {', '.join(names)}")
        specs = [e.spec for e in envs]
        device = specs[0].device
        for name, spec in zip(names, specs):
            if spec.device != device:
                raise ValueError(f"--task multi: task {name!r} runs on {spec.device}, {names[0]!r} on {device}")
            if spec.critic_obs_dim is not None:
                raise ValueError(f"--task multi: task {name!r} has privileged critic observations, which multi-task "
                                 "envs do not pad yet; use tasks without them")  # fmt: skip
        self.envs, self.names = list(envs), list(names)
        own = [(nm, sp.obs_dim, sp.act_dim) for nm, sp in zip(names, specs)]
        self.model_tasks = [(str(nm), int(o), int(a)) for nm, o, a in (own if model_tasks is None else model_tasks)]
        model_names = [t[0] for t in self.model_tasks]
        for name, o, a in own:
            if name not in model_names:
                raise ValueError(f"task {name!r} is not one of the model's tasks ({', '.join(model_names)})")
            if self.model_tasks[model_names.index(name)][1:] != (o, a):
                raise ValueError(f"task {name!r} has obs {o}, act {a}; the model was built for "
                                 f"{self.model_tasks[model_names.index(name)][1:]}")  # fmt: skip
        self.task_ids = [model_names.index(nm) for nm in names]
        largest_obs = max(t[1] for t in self.model_tasks)
        largest_act = max(t[2] for t in self.model_tasks)
        self.base_obs_dim = largest_obs if obs_dim is None else obs_dim - TASK_ID_COLUMNS
        self.base_act_dim = largest_act if act_dim is None else act_dim
        if largest_obs > self.base_obs_dim or largest_act > self.base_act_dim:
            raise ValueError(f"the model's tasks (obs up to {largest_obs}, act up to {largest_act}) do not fit the "
                             f"layout obs {self.base_obs_dim}, act {self.base_act_dim}")  # fmt: skip
        self.counts = [s.num_envs for s in specs]
        self.starts = [sum(self.counts[:k]) for k in range(len(specs))]
        n, d, a = sum(self.counts), self.base_obs_dim, self.base_act_dim
        # Tasks' action bounds differ (pendulum's torque is +-2, the others' +-1), so this env takes actions in
        # [-1, 1] on every dimension and scales each task's columns to that task's own bounds before stepping it.
        self.task_action_low = torch.full((len(specs), a), -1.0)
        self.task_action_high = torch.full((len(specs), a), 1.0)
        for k, spec in enumerate(specs):
            self.task_action_low[k, : spec.act_dim] = torch.tensor(spec.action_low, dtype=torch.float32)
            self.task_action_high[k, : spec.act_dim] = torch.tensor(spec.action_high, dtype=torch.float32)
        self.spec = EnvSpec(
            obs_dim=d + TASK_ID_COLUMNS,
            act_dim=a,
            num_envs=n,
            device=device,
            action_low=(-1.0,) * a,
            action_high=(1.0,) * a,
            max_episode_steps=max(s.max_episode_steps for s in specs),
            task_names=tuple(model_names),
            task_dims=tuple((o, a) for _, o, a in self.model_tasks),
        )
        self.device = device
        group = torch.cat([torch.full((c,), k, dtype=torch.int64) for k, c in enumerate(self.counts)])
        self.group_of_env = group.to(device)
        """Index into ``names`` (0..K-1 of this env) of every env."""
        self.task_of_env = torch.tensor(self.task_ids, dtype=torch.int64)[group].to(device)
        """Task id (row of the model's embedding table) of every env."""
        self.action_mask = torch.zeros(n, a, device=device)
        self.obs_mask = torch.zeros(n, d, device=device)
        for k, spec in enumerate(specs):
            rows = slice(self.starts[k], self.starts[k] + self.counts[k])
            self.action_mask[rows, : spec.act_dim] = 1.0
            self.obs_mask[rows, : spec.obs_dim] = 1.0
        self._low, self._high = self.task_action_low.to(device), self.task_action_high.to(device)
        self._id_column = self.task_of_env.to(torch.float32).unsqueeze(-1)
        # Per-task episode statistics, accumulated on device.
        self.episode_return = torch.zeros(n, device=device)
        self.episode_length = torch.zeros(n, device=device)
        self.finished = torch.zeros(len(specs), 3, device=device)  # count, return sum, length sum
        self._lock = threading.Lock()

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    @property
    def render_fps(self) -> float | None:
        return getattr(self.envs[0], "render_fps", None)

    def _pad(self, parts: list[torch.Tensor]) -> torch.Tensor:
        padded = [torch.nn.functional.pad(p.float(), (0, self.base_obs_dim - p.shape[-1])) for p in parts]
        return torch.cat([torch.cat(padded, dim=0), self._id_column], dim=-1)

    def reset(self, seed: int | None = None) -> TensorDict:
        outs = [e.reset(seed=None if seed is None else seed + 7919 * k) for k, e in enumerate(self.envs)]
        self.episode_return.zero_()
        self.episode_length.zero_()
        obs = self._pad([o["obs"] for o in outs])
        return TensorDict({"obs": obs, "task_id": self.task_of_env.clone()}, batch_size=[self.num_envs],
                          device=self.device)  # fmt: skip

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        outs = []
        action = action.clamp(-1.0, 1.0)
        for k, env in enumerate(self.envs):
            rows, dims = slice(self.starts[k], self.starts[k] + self.counts[k]), env.spec.act_dim
            low, high = self._low[k, :dims], self._high[k, :dims]
            outs.append(env.step(low + (action[rows, :dims] + 1) * 0.5 * (high - low)))
        reward = torch.cat([o["reward"].float() for o in outs])
        terminated = torch.cat([o["terminated"] for o in outs])
        truncated = torch.cat([o["truncated"] for o in outs])
        out = TensorDict(
            {
                "obs": self._pad([o["obs"] for o in outs]),
                "final_obs": self._pad([o["final_obs"] for o in outs]),
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "task_id": self.task_of_env.clone(),
            },
            batch_size=[self.num_envs],
            device=self.device,
        )
        self._record(reward, terminated | truncated)
        return out

    def _record(self, reward: torch.Tensor, done: torch.Tensor) -> None:
        self.episode_return += reward
        self.episode_length += 1
        donef = done.float()
        stats = torch.stack([donef, self.episode_return * donef, self.episode_length * donef], dim=-1)
        with self._lock:
            self.finished.index_add_(0, self.group_of_env, stats)
        self.episode_return *= 1 - donef
        self.episode_length *= 1 - donef

    def pop_task_episode_stats(self) -> dict[str, float]:
        """``episode_return/<task>`` and ``episode_length/<task>`` of the training episodes finished since the last
        call, per task that finished any (one host sync)."""
        with self._lock:
            snapshot = self.finished.clone()
            self.finished.zero_()
        out: dict[str, float] = {}
        for name, (count, ret, length) in zip(self.names, snapshot.tolist()):
            if count > 0:
                out[f"episode_return/{name}"] = ret / count
                out[f"episode_length/{name}"] = length / count
        return out

    def per_task(self, values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a per-env tensor into ``{task: values of its envs}``."""
        return {name: values[s : s + c] for name, s, c in zip(self.names, self.starts, self.counts)}

    def render(self, env_index: int = 0, width: int = 320, height: int = 240):
        """The frame of env ``env_index`` from the sub-env that runs it."""
        for env, s, c in zip(self.envs, self.starts, self.counts):
            if s <= env_index < s + c:
                return env.render(env_index=env_index - s, width=width, height=height)
        raise IndexError(f"env index {env_index} out of range for {self.num_envs} envs")


class SavableMultiTaskVecEnv(MultiTaskVecEnv):
    """A multi-task env whose sub-envs can all save their state (the runtime checks ``hasattr(env, "state_dict")``
    to decide whether a resumed run continues its episodes, so only such envs have the method)."""

    def state_dict(self) -> dict:
        """The sub-envs' states and the episode statistics."""
        return {"envs": [e.state_dict() for e in self.envs], "episode_return": self.episode_return,
                "episode_length": self.episode_length, "finished": self.finished}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for env, saved in zip(self.envs, state["envs"], strict=True):
            env.load_state_dict(saved)
        self.episode_return.copy_(state["episode_return"])
        self.episode_length.copy_(state["episode_length"])
        self.finished.copy_(state["finished"])


def make_multitask_env(
    envs: Sequence[VecEnv],
    names: Sequence[str],
    model_tasks: Sequence[tuple[str, int, int]] | None = None,
    obs_dim: int | None = None,
    act_dim: int | None = None,
) -> MultiTaskVecEnv:
    """A ``MultiTaskVecEnv`` (see there), savable (``state_dict``) when every sub-env is."""
    cls = SavableMultiTaskVecEnv if all(hasattr(e, "state_dict") for e in envs) else MultiTaskVecEnv
    return cls(envs, names, model_tasks, obs_dim, act_dim)


def relayout(env: VecEnv, policy_spec: dict, task: str) -> MultiTaskVecEnv:
    """``env``'s task(s) in the input/output layout of a multi-task model (a checkpoint's ``policy_spec``): padded
    to its dimensions, the model's tasks keeping their ids and tasks new to it appended after them (transfer).
    ``task`` names a single-task ``env``."""
    envs, names = (env.envs, env.names) if isinstance(env, MultiTaskVecEnv) else ([env], [task])
    model_tasks = [(n, int(o), int(a)) for n, (o, a) in zip(policy_spec["task_names"], policy_spec["task_dims"])]
    known = [t[0] for t in model_tasks]
    model_tasks += [(n, e.spec.obs_dim, e.spec.act_dim) for n, e in zip(names, envs) if n not in known]
    return make_multitask_env(envs, names, model_tasks, obs_dim=policy_spec["obs_dim"], act_dim=policy_spec["act_dim"])
