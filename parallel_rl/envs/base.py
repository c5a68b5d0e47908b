"""The VecEnv protocol every simulator backend speaks, and a base class for torch-native auto-resetting envs.

Conventions (get them right once, here, so no algorithm or buffer has to guess):

- All tensors are batched over ``num_envs`` and live on ``spec.device``.
- ``step(action)`` takes actions in the env's own bounds, shape ``[num_envs, act_dim]``.
- ``terminated`` (the MDP ended: no bootstrap) and ``truncated`` (a time limit cut the episode: bootstrap) are
  kept apart. An env may report both; ``terminated`` wins.
- Envs reset themselves. ``obs`` returned by ``step`` is the observation the next action is taken from, i.e. the
  reset observation for envs whose episode just ended; ``final_obs`` holds the true last observation of the
  episode for those envs (and equals ``obs`` for the others), so truncations bootstrap from the right state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from tensordict import TensorDict


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a vectorized env; everything the agent needs to size itself."""

    obs_dim: int
    act_dim: int
    num_envs: int
    device: torch.device
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    max_episode_steps: int
    critic_obs_dim: int | None = None
    """Dimension of the privileged critic observation, when the env provides one (asymmetric actor-critic)."""
    task_names: tuple[str, ...] = ()
    """Multi-task envs (``envs.multitask``): the model's tasks, indexed by task id; the id is the last observation
    column. Empty for a single-task env."""
    task_dims: tuple[tuple[int, int], ...] = ()
    """Multi-task envs: (obs_dim, act_dim) of each of ``task_names``, before padding (the networks' masks)."""

    def action_bounds(self, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.device if device is None else device
        return (
            torch.tensor(self.action_low, dtype=torch.float32, device=dev),
            torch.tensor(self.action_high, dtype=torch.float32, device=dev),
        )


@runtime_checkable
class VecEnv(Protocol):
    """What the runtime needs from a simulator backend."""

    spec: EnvSpec

    def reset(self, seed: int | None = None) -> TensorDict:
        """Reset every env; returns a TensorDict with ``obs`` (and ``critic_obs`` if provided)."""
        ...

    def step(self, action: torch.Tensor) -> TensorDict:
        """Advance every env one step; returns ``obs``, ``reward``, ``terminated``, ``truncated``, ``final_obs``."""
        ...


def check_action(action: torch.Tensor, spec: EnvSpec) -> None:
    """Reject malformed actions before they reach the simulator.

    Shape errors are caught on the host for free. The NaN check on CPU is a plain check; on an accelerator it is
    an asynchronous device assertion so that the hot loop never waits for the GPU.
    """
    expected = (spec.num_envs, spec.act_dim)
    if not isinstance(action, torch.Tensor):
        raise TypeError(f"action must be a torch.Tensor of shape {expected}, got {type(action).__name__}")
    if tuple(action.shape) != expected:
        raise ValueError(f"action has shape {tuple(action.shape)}; this env expects [num_envs, act_dim] = {expected}")
    if not action.is_floating_point():
        raise TypeError(f"action must be a floating-point tensor, got dtype {action.dtype}")
    finite = torch.isfinite(action).all()
    if action.device.type == "cpu":
        if not bool(finite):
            raise ValueError("action contains NaN or Inf values; refusing to step the env")
    else:
        torch._assert_async(finite, "action contains NaN or Inf values; refusing to step the env")


class TorchVecEnv:
    """Base for torch-native tasks: time limits, auto-reset with true final observations, seeding, validation.

    Subclasses implement ``_sample_initial_state(n)``, ``_observe(state)`` and ``_dynamics(state, action)``, all
    batched; this class owns the episode bookkeeping, so every built-in task gets it right the same way.
    """

    def __init__(
        self,
        num_envs: int,
        obs_dim: int,
        act_dim: int,
        action_low: float | tuple[float, ...],
        action_high: float | tuple[float, ...],
        max_episode_steps: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        low = (float(action_low),) * act_dim if isinstance(action_low, (int, float)) else tuple(action_low)
        high = (float(action_high),) * act_dim if isinstance(action_high, (int, float)) else tuple(action_high)
        self.spec = EnvSpec(
            obs_dim=obs_dim,
            act_dim=act_dim,
            num_envs=num_envs,
            device=torch.device(device),
            action_low=low,
            action_high=high,
            max_episode_steps=max_episode_steps,
        )
        self.dtype = dtype
        self.device = self.spec.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._low, self._high = (b.to(dtype) for b in self.spec.action_bounds())
        self.state: torch.Tensor = self._sample_initial_state(num_envs)
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything a resumed run needs to continue these envs exactly (an optional part of the protocol)."""
        return {"state": self.state, "elapsed": self.elapsed, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state = state["state"].to(self.device)
        self.elapsed = state["elapsed"].to(self.device)
        self.generator.set_state(state["generator"])

    # ---- task-specific pieces -------------------------------------------------------------------------------
    def _sample_initial_state(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dynamics(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (next_state, reward, terminated) for actions already clipped to the bounds."""
        raise NotImplementedError

    # ---- protocol --------------------------------------------------------------------------------------------
    def uniform(self, n: int, low: float, high: float, dim: int | None = None) -> torch.Tensor:
        """Uniform samples from this env's own generator (so seeding an env fixes its whole trajectory)."""
        shape = (n,) if dim is None else (n, dim)
        u = torch.rand(shape, generator=self.generator, device=self.device, dtype=self.dtype)
        return low + (high - low) * u

    def reset(self, seed: int | None = None) -> TensorDict:
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = self._sample_initial_state(self.num_envs)
        self.elapsed.zero_()
        return TensorDict({"obs": self._observe(self.state).float()}, batch_size=[self.num_envs], device=self.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        action = torch.maximum(torch.minimum(action.to(self.dtype), self._high), self._low)
        next_state, reward, terminated = self._dynamics(self.state, action)
        self.elapsed += 1
        truncated = (self.elapsed >= self.spec.max_episode_steps) & ~terminated
        done = terminated | truncated
        final_obs = self._observe(next_state)
        # Reset finished envs without branching on tensor values: sample fresh states for all, keep where done.
        fresh = self._sample_initial_state(self.num_envs)
        self.state = torch.where(done.unsqueeze(-1), fresh, next_state)
        self.elapsed = torch.where(done, torch.zeros_like(self.elapsed), self.elapsed)
        obs = self._observe(self.state)
        return TensorDict(
            {
                "obs": obs.float(),
                "final_obs": final_obs.float(),
                "reward": reward.float(),
                "terminated": terminated,
                "truncated": truncated,
            },
            batch_size=[self.num_envs],
            device=self.device,
        )


def angle_normalize(x: torch.Tensor) -> torch.Tensor:
    """Wrap angles to [-pi, pi), with the same floor-modulo semantics as numpy's ``%``."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi
