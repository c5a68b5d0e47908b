"""The three components of a run. They never call each other: they share the replay buffer and read each other's
parameters only through their own ``Channel`` ends, so a runtime can run them one after the other, on separate
CUDA streams, or in separate threads, unchanged.

A component only orders calls: it pulls its input channels, calls one entry point of the ``Algorithm`` and
accumulates what comes back. The algorithm owns every piece of math (normalization, exploration, reward scaling,
losses, optimizer steps, target updates); see ``algos/base.py``.

- ``ActorComponent``: ``algo.act`` -> env step -> ``algo.observe`` -> buffer; tracks episode statistics.
- ``VLearner``: samples a batch, ``algo.update_critic``.
- ``PLearner``: samples a batch (or reuses the V-learner's, for algorithms that ask), ``algo.update_actor``.

Each component works on its ``Lane``; which channels it pulls before working is set by the runtime (``inputs``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from tensordict import TensorDict

from parallel_rl.algos import Algorithm
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import SpeedConfig
from parallel_rl.envs import VecEnv
from parallel_rl.runtime.accel import GraphedCall
from parallel_rl.runtime.streams import Channel, Lane


class ActorComponent:
    """Collects experience: act -> step envs -> observe -> store -> track episodes."""

    def __init__(
        self,
        env: VecEnv,
        algo: Algorithm,
        buffer: ReplayBuffer,
        seed: int,
        lane: Lane,
        val_buffer: ReplayBuffer | None = None,
    ) -> None:
        self.env, self.algo, self.buffer, self.lane = env, algo, buffer, lane
        self.val_buffer = val_buffer  # the last envs' transitions go here instead of ``buffer`` (held out)
        self.inputs: list[Channel] = []
        spec = env.spec
        self.device = spec.device
        self.low, self.high = spec.action_bounds(self.device)
        with lane.active():
            first = env.reset(seed=seed)
            self.obs = first["obs"]
            self.critic_obs = first.get("critic_obs", None)
            n = spec.num_envs
            self.episode_return = torch.zeros(n, device=self.device)
            self.episode_length = torch.zeros(n, dtype=torch.int64, device=self.device)
            # Completed-episode statistics accumulated on device and read only when logging (no per-step sync).
            self.finished = torch.zeros(3, device=self.device)  # count, return sum, length sum
            self.env_nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)  # checked at log time
        self._lock = threading.Lock()

    def scale_action(self, action: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> env bounds; actions outside [-1, 1] (unclipped exploration) are clipped here, as an env
        clips its inputs."""
        return self.low + (action.clamp(-1.0, 1.0) + 1) * 0.5 * (self.high - self.low)

    def observation(self) -> TensorDict:
        obs = {"obs": self.obs}
        if self.critic_obs is not None:
            obs["critic_obs"] = self.critic_obs
        return TensorDict(obs, batch_size=[self.obs.shape[0]])

    @torch.no_grad()
    def step(self) -> None:
        with self.lane.active():
            for channel in self.inputs:
                channel.pull()
            obs = self.obs
            action = self.algo.act(self.observation(), explore=True)
            out = self.env.step(self.scale_action(action))
            terminated, truncated = out["terminated"], out["truncated"]
            done = terminated | truncated
            step = TensorDict(
                {
                    "obs": obs,
                    "action": action,
                    "reward": out["reward"],
                    "terminated": terminated,
                    "truncated": truncated,
                    "final_obs": out["final_obs"],
                    **({"task_id": out["task_id"]} if "task_id" in out.keys() else {}),  # multi-task envs
                    **(
                        {"critic_obs": self.critic_obs, "final_critic_obs": out["final_critic_obs"]}
                        if self.buffer.critic_obs is not None
                        else {}
                    ),
                },  # fmt: skip
                batch_size=[self.env.spec.num_envs],
            )
            step = self.algo.observe(step)
            if self.val_buffer is None:
                self.buffer.extend(step)
            else:
                n_train = self.buffer.num_envs
                self.buffer.extend(step[:n_train])
                self.val_buffer.extend(step[n_train:])
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
        return {"obs": self.obs, "critic_obs": self.critic_obs, "episode_return": self.episode_return,
                "episode_length": self.episode_length, "finished": self.finished}  # fmt: skip

    def load_state_dict(self, state: dict, env_restored: bool) -> None:
        """Continue where the saved actor stopped. Without the env's own state (a simulator that cannot save it),
        the envs were reset instead: keep the fresh observations and start new episodes."""
        if env_restored:
            self.obs = state["obs"].to(self.device)
            self.critic_obs = None if state["critic_obs"] is None else state["critic_obs"].to(self.device)
            self.episode_return.copy_(state["episode_return"])
            self.episode_length.copy_(state["episode_length"])
        self.finished.copy_(state["finished"])

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


class MetricAccumulator:
    """Sums detached metric TensorDicts on the owner's lane; ``pop`` averages them with a single host sync.

    Safe to ``pop`` from another thread than the one that ``add``s (free mode logs from the actor's thread)."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.total: TensorDict | None = None
        self._flat: tuple[tuple[str, ...], list[torch.Tensor]] | None = None  # total's keys and tensors, if flat
        self.n = 0
        self._lock = threading.Lock()

    def add(self, metrics: TensorDict) -> None:
        with self._lock:
            if self.total is None:
                self.total = metrics.clone()
                values = list(self.total.values())
                # A flat TensorDict (every update's metrics are): its tensors summed with one foreach call, which
                # took 4 us against TensorDict.add_'s 12 us, a few times per update.
                flat = all(type(v) is torch.Tensor for v in values)
                self._flat = (tuple(self.total.keys()), values) if flat else None
            elif self._flat is not None and tuple(metrics.keys()) == self._flat[0]:
                torch._foreach_add_(self._flat[1], list(metrics.values()))
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


class Learner:
    """A learner: a lane, its own sampling generator, the channels pulled before each update (parameter replicas
    and, in concurrent modes, a buffer view) and one algorithm entry point, eager or captured as a CUDA graph."""

    def __init__(
        self,
        update: Callable[[TensorDict], TensorDict],
        buffer: ReplayBuffer,
        batch_size: int,
        lane: Lane,
        seed: int,
        speed: SpeedConfig,
    ) -> None:
        self.buffer, self.batch_size, self.lane = buffer, batch_size, lane
        self.device = buffer.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.inputs: list[Channel] = []
        self.view: Channel | None = None
        self.reserve = 0
        self.metrics = MetricAccumulator(lane)
        self._update = GraphedCall(update, enabled=speed.cuda_graphs)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def use_view(self, view: Channel, reserve: int) -> None:
        """Sample from the views published through ``view`` (concurrent modes), excluding ``reserve`` rows."""
        self.view, self.reserve = view, reserve
        self.inputs.append(view)

    def pull(self) -> None:
        for channel in self.inputs:
            channel.pull()

    def sample(self, generator: torch.Generator | None = None) -> TensorDict:
        view = None if self.view is None else self.view.local
        gen = self.generator if generator is None else generator
        return self.buffer.sample(self.batch_size, gen, view, self.reserve)

    def update(self, batch: TensorDict | None = None) -> TensorDict:
        """Pull inputs, sample a batch (unless given one) and run the entry point; returns the batch used."""
        with self.lane.active():
            self.pull()
            if batch is None:
                batch = self.sample()
            self.metrics.add(self._update(batch))
        return batch


class VLearner(Learner):
    """Critic updates (``algo.update_critic``) from replay batches."""

    def __init__(self, algo: Algorithm, buffer: ReplayBuffer, batch_size: int, lane: Lane, seed: int,
                 speed: SpeedConfig, val_buffer: ReplayBuffer | None = None) -> None:  # fmt: skip
        super().__init__(algo.update_critic, buffer, batch_size, lane, seed, speed)
        self.last_batch: TensorDict | None = None
        # Algorithms that fit something on held-out data (VPL) get a validation batch beside each training batch.
        self.val_buffer = val_buffer if getattr(algo, "needs_validation_batch", False) else None
        self.val_view: Channel | None = None

    def use_validation_view(self, view: Channel) -> None:
        """Sample validation batches from the views published through ``view`` (concurrent modes)."""
        self.val_view = view
        self.inputs.append(view)

    def sample(self, generator: torch.Generator | None = None) -> TensorDict:
        batch = super().sample(generator)
        if self.val_buffer is not None:
            gen = self.generator if generator is None else generator
            view = None if self.val_view is None else self.val_view.local
            # As many rows as the training batch has (per-env sampling rounds batch_size to a multiple of the envs).
            batch["validation"] = self.val_buffer.sample(batch.batch_size[0], gen, view, self.reserve)
        return batch

    def update(self, batch: TensorDict | None = None) -> TensorDict:
        self.last_batch = super().update(batch)
        return self.last_batch


class PLearner(Learner):
    """Policy updates (``algo.update_actor``). With ``reuse`` (``Algorithm.reuse_critic_batch``) each update takes
    the batch of the critic update it follows: handed over directly (``follow``) when the V-learner has just run,
    or redrawn with a copy of the V-learner's generator state from the same buffer view (``replay_from`` +
    ``redraw``) when the two learners run concurrently, which reproduces the V-learner's draws exactly."""

    def __init__(self, algo: Algorithm, buffer: ReplayBuffer, batch_size: int, lane: Lane, seed: int,
                 speed: SpeedConfig, reuse: bool = False) -> None:  # fmt: skip
        super().__init__(algo.update_actor, buffer, batch_size, lane, seed, speed)
        self.reuse = reuse
        self.critic_batch: TensorDict | None = None
        self.replay = torch.Generator(device=self.device) if reuse else None

    def follow(self, batch: TensorDict | None) -> None:
        """The batch of the critic update just done (sequential order)."""
        self.critic_batch = batch

    def replay_from(self, generator: torch.Generator) -> None:
        """Start replaying ``generator``'s draws (the V-learner's, before it samples this iteration)."""
        self.replay.set_state(generator.get_state())

    def redraw(self) -> None:
        """The batch of the next critic update, drawn as the V-learner draws it."""
        with self.lane.active():
            self.pull()
            self.critic_batch = self.sample(self.replay)

    def update(self, batch: TensorDict | None = None) -> TensorDict:
        return super().update(batch if batch is not None or not self.reuse else self.critic_batch)
