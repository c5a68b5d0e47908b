"""The three components of a run. They never call each other: they share the replay buffer and read each other's
parameters only through their own ``Channel`` ends, so a runtime can run them one after the other, on separate
CUDA streams, or in separate threads, unchanged.

- ``ActorComponent``: steps the envs with its copy of the policy plus exploration noise, writes the buffer, owns the
  observation normalizer (statistics come from rollouts).
- ``VLearner``: critic updates; reads its copies of the policy (target actions), the normalizer and a buffer view.
- ``PLearner``: policy updates; reads its copies of the critic, the normalizer and a buffer view; owns the policy.

Each component works on its ``Lane``; which channels it pulls before working is set by the runtime (``inputs``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from types import ModuleType

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.common import soft_update
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import AgentConfig, SpeedConfig
from parallel_rl.envs import VecEnv
from parallel_rl.nets import Actor, EnsembleCritic, RunningNorm
from parallel_rl.runtime.accel import GraphedCall, autocast, maybe_compile
from parallel_rl.runtime.streams import Channel, Lane


def frozen(module: nn.Module) -> nn.Module:
    return module.requires_grad_(False)


class ActorComponent:
    """Collects experience: normalize -> act -> explore -> step envs -> store -> track episodes."""

    def __init__(
        self,
        env: VecEnv,
        algo: ModuleType,
        hp: AgentConfig,
        policy: Channel,
        normalizer: RunningNorm,
        buffer: ReplayBuffer,
        seed: int,
        lane: Lane,
        critic_normalizer: RunningNorm | None = None,
        speed: SpeedConfig | None = None,
        val_buffer: ReplayBuffer | None = None,
    ) -> None:
        self.env, self.algo, self.hp, self.buffer, self.lane = env, algo, hp, buffer, lane
        self.val_buffer = val_buffer  # the last envs' transitions go here instead of ``buffer`` (held out)
        self.policy_channel = policy
        self.policy: Actor = policy.module
        self.normalizer, self.critic_normalizer = normalizer, critic_normalizer
        spec = env.spec
        self.device = spec.device
        self.low, self.high = spec.action_bounds(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        with lane.active():
            first = env.reset(seed=seed)
            self.obs = first["obs"]
            self.critic_obs = first.get("critic_obs", None)
            self.noise_std = algo.initial_noise_std(hp, spec.num_envs, self.device, self.generator)
            n = spec.num_envs
            self.episode_return = torch.zeros(n, device=self.device)
            self.episode_length = torch.zeros(n, dtype=torch.int64, device=self.device)
            # Completed-episode statistics accumulated on device and read only when logging (no per-step sync).
            self.finished = torch.zeros(3, device=self.device)  # count, return sum, length sum
            self.env_nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)  # checked at log time
            self._noise = torch.zeros(n, spec.act_dim, device=self.device)
        self._act = GraphedCall(self._act_eager, enabled=speed is not None and speed.cuda_graphs)
        self.norm_all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None  # set by multi-GPU runs
        self._lock = threading.Lock()

    def scale_action(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> env bounds."""
        return self.low + (action + 1) * 0.5 * (self.high - self.low)

    def _act_eager(self, inputs: TensorDict) -> TensorDict:
        obs = inputs["obs"]
        if self.hp.normalize_obs:
            self.normalizer.update(obs, self.norm_all_reduce)
            if self.critic_normalizer is not None:
                self.critic_normalizer.update(inputs["critic_obs"], self.norm_all_reduce)
        mean_action = self.policy(self.normalizer(obs) if self.hp.normalize_obs else obs)
        action = (mean_action + inputs["noise"] * self.noise_std.unsqueeze(-1)).clamp(-1.0, 1.0)
        return TensorDict({"action": action})

    @torch.no_grad()
    def step(self) -> None:
        with self.lane.active():
            self.policy_channel.pull()
            obs = self.obs
            # Noise is drawn outside the (optionally graphed) act step: it comes from the actor's own generator.
            torch.randn(self._noise.shape, generator=self.generator, device=self.device, out=self._noise)
            inputs = {"obs": obs, "noise": self._noise}
            if self.critic_normalizer is not None:
                inputs["critic_obs"] = self.critic_obs
            action = self._act(TensorDict(inputs))["action"]
            if self._act.enabled:
                action = action.clone()  # a graph's output tensor is overwritten by its next replay
            out = self.env.step(self.scale_action(action))
            terminated, truncated = out["terminated"], out["truncated"]
            done = terminated | truncated
            step = TensorDict(
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
            if self.val_buffer is None:
                self.buffer.extend(step)
            else:
                n_train = self.buffer.num_envs
                self.buffer.extend(step[:n_train])
                self.val_buffer.extend(step[n_train:])
            self.noise_std = self.algo.noise_std_after_step(self.hp, self.noise_std, done, self.generator)
            self.env_nonfinite |= ~(torch.isfinite(out["obs"]).all() & torch.isfinite(out["reward"]).all())
            self.episode_return += out["reward"]
            self.episode_length += 1
            donef = done.float()
            with self._lock:
                self.finished += torch.stack(
                    [donef.sum(), (self.episode_return * donef).sum(), (self.episode_length * donef).sum()]
                )
            self.episode_return *= 1 - donef
            self.episode_length *= (~done).long()
            self.obs = out["obs"]
            self.critic_obs = out.get("critic_obs", None)

    def state_dict(self) -> dict:
        return {"obs": self.obs, "critic_obs": self.critic_obs, "noise_std": self.noise_std,
                "episode_return": self.episode_return, "episode_length": self.episode_length,
                "finished": self.finished, "generator": self.generator.get_state()}  # fmt: skip

    def load_state_dict(self, state: dict, env_restored: bool) -> None:
        """Continue where the saved actor stopped. Without the env's own state (a simulator that cannot save it),
        the envs were reset instead: keep the fresh observations and start new episodes."""
        if env_restored:
            self.obs = state["obs"].to(self.device)
            self.critic_obs = None if state["critic_obs"] is None else state["critic_obs"].to(self.device)
            self.episode_return.copy_(state["episode_return"])
            self.episode_length.copy_(state["episode_length"])
        self.noise_std = state["noise_std"].to(self.device)
        self.finished.copy_(state["finished"])
        self.generator.set_state(state["generator"])

    def pop_episode_stats(self) -> dict[str, float]:
        """Mean return/length of episodes finished since the last call (one host sync, at logging time)."""
        with self._lock, self.lane.active():
            snapshot = self.finished.clone()
            self.finished.zero_()
            ready = self.lane.record()
        if ready is not None:
            torch.cuda.current_stream().wait_event(ready)
        count, ret, length = snapshot.tolist()
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


def make_optimizer(
    params, lr: float, weight_decay: float, device: torch.device, capturable: bool = False
) -> torch.optim.Optimizer:
    # Fused AdamW is one kernel for all parameters on CUDA; foreach elsewhere. Capturable keeps its step counts on
    # the device, which CUDA graphs need.
    fused = device.type == "cuda"
    return torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, fused=fused or None, foreach=not fused, capturable=capturable
    )


class MetricAccumulator:
    """Sums detached metric TensorDicts on the owner's lane; ``pop`` averages them with a single host sync.

    Safe to ``pop`` from another thread than the one that ``add``s (free mode logs from the actor's thread)."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.total: TensorDict | None = None
        self.n = 0
        self._lock = threading.Lock()

    def add(self, metrics: TensorDict) -> None:
        with self._lock:
            if self.total is None:
                self.total = metrics.clone()
            else:
                self.total.add_(metrics)
            self.n += 1

    def pop(self) -> dict[str, float]:
        with self._lock, self.lane.active():
            if self.total is None or self.n == 0:
                return {}
            keys = list(self.total.keys())
            values = torch.stack([self.total[k].float() for k in keys]).div_(self.n)
            self.total.zero_()
            self.n = 0
            ready = self.lane.record()
        if ready is not None:
            torch.cuda.current_stream().wait_event(ready)
        return dict(zip(keys, values.tolist()))


def _step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    max_norm: float,
    sync_grads: Callable[[list[nn.Parameter]], None] | None = None,
) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sync_grads is not None:
        sync_grads(params)
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()


class Learner:
    """What the two learners share: a lane, their own sampling generator, the channels pulled before each update
    (parameter copies and, in concurrent modes, a buffer view) and the eager-or-graphed update step."""

    def __init__(
        self,
        hp: AgentConfig,
        buffer: ReplayBuffer,
        batch_size: int,
        lane: Lane,
        seed: int,
        speed: SpeedConfig,
        params: list[nn.Parameter],
        lr: float,
    ) -> None:
        self.hp, self.buffer, self.batch_size, self.lane, self.speed = hp, buffer, batch_size, lane, speed
        self.device = buffer.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.inputs: list[Channel] = []
        self.view: Channel | None = None
        self.reserve = 0
        self.params = params
        self.optimizer = make_optimizer(params, lr, hp.weight_decay, self.device, capturable=speed.cuda_graphs)
        self.metrics = MetricAccumulator(lane)
        self._update = GraphedCall(self._update_eager, enabled=speed.cuda_graphs)
        self.sync_grads: Callable[[list[nn.Parameter]], None] | None = None  # set by multi-GPU runs

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def use_view(self, view: Channel, reserve: int) -> None:
        """Sample from the views published through ``view`` (concurrent modes), excluding ``reserve`` rows."""
        self.view, self.reserve = view, reserve
        self.inputs.append(view)

    def update(self) -> None:
        with self.lane.active():
            for channel in self.inputs:
                channel.pull()
            view = None if self.view is None else self.view.local
            batch = self.buffer.sample(self.batch_size, self.generator, view, self.reserve)
            self.metrics.add(self._update(batch))

    def _update_eager(self, batch: TensorDict) -> TensorDict:
        raise NotImplementedError


class VLearner(Learner):
    """Critic updates from replay batches; targets use the consumer copy of the policy and a soft-updated critic
    target."""

    def __init__(
        self,
        algo: ModuleType,
        hp: AgentConfig,
        critic: EnsembleCritic,
        policy: Channel,
        normalizer: Channel,
        buffer: ReplayBuffer,
        batch_size: int,
        lane: Lane,
        seed: int,
        speed: SpeedConfig,
        critic_normalizer: Channel | None = None,
    ) -> None:
        super().__init__(hp, buffer, batch_size, lane, seed, speed, list(critic.parameters()), hp.critic_lr)
        self.algo, self.critic = algo, critic
        self.critic_target = frozen(copy.deepcopy(critic))
        self.policy, self.normalizer = policy.module, normalizer.module
        self.critic_normalizer = None if critic_normalizer is None else critic_normalizer.module
        self.inputs += [policy, normalizer] + ([critic_normalizer] if critic_normalizer is not None else [])
        self._loss = maybe_compile(algo.critic_loss, speed)

    def _update_eager(self, batch: TensorDict) -> TensorDict:
        batch = _normalize_batch(batch, self.normalizer, self.critic_normalizer, self.hp.normalize_obs)
        with autocast(self.device, self.speed):
            loss, metrics = self._loss(self.critic, self.critic_target, self.policy, batch, self.hp)
        _step(loss, self.optimizer, self.params, self.hp.max_grad_norm, self.sync_grads)
        soft_update(self.critic_target, self.critic, self.hp.tau)
        return metrics.float()


class PLearner(Learner):
    """Policy updates against the consumer copy of the critic; owns the policy being trained."""

    def __init__(
        self,
        algo: ModuleType,
        hp: AgentConfig,
        policy: Actor,
        critic: Channel,
        normalizer: Channel,
        buffer: ReplayBuffer,
        batch_size: int,
        lane: Lane,
        seed: int,
        speed: SpeedConfig,
        critic_normalizer: Channel | None = None,
    ) -> None:
        super().__init__(hp, buffer, batch_size, lane, seed, speed, list(policy.parameters()), hp.actor_lr)
        self.algo, self.policy = algo, policy
        self.critic, self.normalizer = critic.module, normalizer.module
        self.critic_normalizer = None if critic_normalizer is None else critic_normalizer.module
        self.inputs += [critic, normalizer] + ([critic_normalizer] if critic_normalizer is not None else [])
        self._loss = maybe_compile(algo.actor_loss, speed)

    def _update_eager(self, batch: TensorDict) -> TensorDict:
        batch = _normalize_batch(batch, self.normalizer, self.critic_normalizer, self.hp.normalize_obs)
        with autocast(self.device, self.speed):
            loss, metrics = self._loss(self.policy, self.critic, batch, self.hp)
        _step(loss, self.optimizer, self.params, self.hp.max_grad_norm, self.sync_grads)
        return metrics.float()
