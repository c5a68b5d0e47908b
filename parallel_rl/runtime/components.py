"""The three components of a run. They never call each other: they share the replay buffer and *published copies*
of each other's parameters, so that a later scheduler can run them on separate CUDA streams unchanged.

- ``Actor``: steps the envs with the published policy plus exploration noise, writes the buffer, owns the
  observation normalizer (statistics come from rollouts).
- ``VLearner``: critic updates; reads the published policy (target actions) and normalizer.
- ``PLearner``: policy updates; reads the published critic and normalizer; owns the policy that is trained.
"""

from __future__ import annotations

import copy
from types import ModuleType

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.common import soft_update
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import AgentConfig
from parallel_rl.envs import VecEnv
from parallel_rl.nets import Actor, EnsembleCritic, RunningNorm


class Published:
    """A consumer-owned copy of a module, refreshed by ``publish()``.

    The copy is a separate set of tensors, so a reader never sees the owner mid-update; on one stream ``publish``
    is an ordinary fused copy, and it is the one place a stream-aware runtime has to add its event.
    """

    def __init__(self, source: nn.Module) -> None:
        self.source = source
        self.copy = copy.deepcopy(source).requires_grad_(False)
        self._src = TensorDict.from_module(source)
        self._dst = TensorDict.from_module(self.copy)

    @torch.no_grad()
    def publish(self) -> None:
        self._dst.data.update_(self._src.data)


def frozen(module: nn.Module) -> nn.Module:
    return module.requires_grad_(False)


class ActorComponent:
    """Collects experience: normalize -> act -> explore -> step envs -> store -> track episodes."""

    def __init__(
        self,
        env: VecEnv,
        algo: ModuleType,
        hp: AgentConfig,
        policy: Actor,
        normalizer: RunningNorm,
        buffer: ReplayBuffer,
        seed: int,
        critic_normalizer: RunningNorm | None = None,
    ) -> None:
        self.env, self.algo, self.hp, self.policy, self.buffer = env, algo, hp, policy, buffer
        self.normalizer, self.critic_normalizer = normalizer, critic_normalizer
        spec = env.spec
        self.device = spec.device
        self.low, self.high = spec.action_bounds(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        first = env.reset(seed=seed)
        self.obs = first["obs"]
        self.critic_obs = first.get("critic_obs", None)
        self.noise_std = algo.initial_noise_std(hp, spec.num_envs, self.device, self.generator)
        n = spec.num_envs
        self.episode_return = torch.zeros(n, device=self.device)
        self.episode_length = torch.zeros(n, dtype=torch.int64, device=self.device)
        # Completed-episode statistics accumulated on device and read only when logging (no per-step sync).
        self.finished_return_sum = torch.zeros((), device=self.device)
        self.finished_length_sum = torch.zeros((), device=self.device)
        self.finished_count = torch.zeros((), device=self.device)

    def scale_action(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> env bounds."""
        return self.low + (action + 1) * 0.5 * (self.high - self.low)

    @torch.no_grad()
    def step(self) -> None:
        obs = self.obs
        if self.hp.normalize_obs:
            self.normalizer.update(obs)
            if self.critic_normalizer is not None:
                self.critic_normalizer.update(self.critic_obs)
        mean_action = self.policy(self.normalizer(obs) if self.hp.normalize_obs else obs)
        noise = torch.randn(mean_action.shape, generator=self.generator, device=self.device)
        action = (mean_action + noise * self.noise_std.unsqueeze(-1)).clamp(-1.0, 1.0)
        out = self.env.step(self.scale_action(action))
        terminated, truncated = out["terminated"], out["truncated"]
        done = terminated | truncated
        self.buffer.extend(
            TensorDict(
                {
                    "obs": obs,
                    "action": action,
                    "reward": out["reward"] * self.hp.reward_scale,
                    "terminated": terminated,
                    "truncated": truncated,
                    "final_obs": out["final_obs"],
                    **(
                        {"critic_obs": self.critic_obs, "final_critic_obs": out["final_critic_obs"]}
                        if self.buffer.critic_obs is not None
                        else {}
                    ),
                },  # fmt: skip
                batch_size=[self.env.spec.num_envs],
            )
        )
        self.noise_std = self.algo.noise_std_after_step(self.hp, self.noise_std, done, self.generator)
        self.episode_return += out["reward"]
        self.episode_length += 1
        donef = done.float()
        self.finished_return_sum += (self.episode_return * donef).sum()
        self.finished_length_sum += (self.episode_length * donef).sum()
        self.finished_count += donef.sum()
        self.episode_return *= 1 - donef
        self.episode_length *= (~done).long()
        self.obs = out["obs"]
        self.critic_obs = out.get("critic_obs", None)

    def pop_episode_stats(self) -> dict[str, float]:
        """Mean return/length of episodes finished since the last call (one host sync, at logging time)."""
        count, ret, length = torch.stack(
            [self.finished_count, self.finished_return_sum, self.finished_length_sum.float()]
        ).tolist()
        self.finished_count.zero_()
        self.finished_return_sum.zero_()
        self.finished_length_sum.zero_()
        if count == 0:
            return {}
        return {"episode_return": ret / count, "episode_length": length / count, "episodes": count}


def _normalize_batch(
    batch: TensorDict, normalizer: RunningNorm, critic_normalizer: RunningNorm | None, enabled: bool
) -> TensorDict:
    if enabled:
        batch["obs"] = normalizer(batch["obs"])
        batch["next_obs"] = normalizer(batch["next_obs"])
        if critic_normalizer is not None:
            batch["critic_obs"] = critic_normalizer(batch["critic_obs"])
            batch["next_critic_obs"] = critic_normalizer(batch["next_critic_obs"])
    return batch


def make_optimizer(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    # Fused AdamW is one kernel for all parameters on CUDA; foreach elsewhere.
    fused = device.type == "cuda"
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None, foreach=not fused)


class MetricAccumulator:
    """Sums detached metric TensorDicts on device; ``pop`` averages them with a single host sync."""

    def __init__(self) -> None:
        self.total: TensorDict | None = None
        self.n = 0

    def add(self, metrics: TensorDict) -> None:
        self.total = metrics.clone() if self.total is None else self.total.add_(metrics)
        self.n += 1

    def pop(self) -> dict[str, float]:
        if self.total is None:
            return {}
        keys = list(self.total.keys())
        values = torch.stack([self.total[k].float() for k in keys]).div_(self.n).tolist()
        self.total, self.n = None, 0
        return dict(zip(keys, values))


def _step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], max_norm: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()


class VLearner:
    """Critic updates from replay batches; targets use the published policy and a soft-updated critic target."""

    def __init__(
        self,
        algo: ModuleType,
        hp: AgentConfig,
        critic: EnsembleCritic,
        policy: Published,
        normalizer: Published,
        buffer: ReplayBuffer,
        batch_size: int,
        critic_normalizer: Published | None = None,
    ) -> None:
        self.algo, self.hp, self.critic, self.buffer, self.batch_size = algo, hp, critic, buffer, batch_size
        self.critic_target = frozen(copy.deepcopy(critic))
        self.policy, self.normalizer = policy.copy, normalizer.copy
        self.critic_normalizer = None if critic_normalizer is None else critic_normalizer.copy
        self.params = list(critic.parameters())
        self.optimizer = make_optimizer(self.params, hp.critic_lr, hp.weight_decay, buffer.device)
        self.metrics = MetricAccumulator()

    def update(self) -> None:
        batch = _normalize_batch(
            self.buffer.sample(self.batch_size), self.normalizer, self.critic_normalizer, self.hp.normalize_obs
        )
        loss, metrics = self.algo.critic_loss(self.critic, self.critic_target, self.policy, batch, self.hp)
        _step(loss, self.optimizer, self.params, self.hp.max_grad_norm)
        soft_update(self.critic_target, self.critic, self.hp.tau)
        self.metrics.add(metrics)


class PLearner:
    """Policy updates against the published critic; owns the policy being trained."""

    def __init__(
        self,
        algo: ModuleType,
        hp: AgentConfig,
        policy: Actor,
        critic: Published,
        normalizer: Published,
        buffer: ReplayBuffer,
        batch_size: int,
        critic_normalizer: Published | None = None,
    ) -> None:
        self.algo, self.hp, self.policy, self.buffer, self.batch_size = algo, hp, policy, buffer, batch_size
        self.critic, self.normalizer = critic.copy, normalizer.copy
        self.critic_normalizer = None if critic_normalizer is None else critic_normalizer.copy
        self.params = list(policy.parameters())
        self.optimizer = make_optimizer(self.params, hp.actor_lr, hp.weight_decay, buffer.device)
        self.metrics = MetricAccumulator()

    def update(self) -> None:
        batch = _normalize_batch(
            self.buffer.sample(self.batch_size), self.normalizer, self.critic_normalizer, self.hp.normalize_obs
        )
        loss, metrics = self.algo.actor_loss(self.policy, self.critic, batch, self.hp)
        _step(loss, self.optimizer, self.params, self.hp.max_grad_norm)
        self.metrics.add(metrics)
