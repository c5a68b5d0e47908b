"""Deterministic tanh-squashed actor; actions live in [-1, 1] and are mapped to env bounds only at the edge."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from parallel_rl.nets.mlp import mlp
from parallel_rl.nets.normalizer import RunningNorm


class Actor(nn.Module):
    """obs (already normalized) -> action in [-1, 1]^act_dim."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), act: str = "relu") -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim, act)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs).float())  # float32 out even under bf16 autocast


class DeployedPolicy(nn.Module):
    """Raw observation -> action within the env's bounds: normalizer, actor and action scaling in one module.

    This is what ``parallel_rl.load_policy`` returns and what exporters trace.
    """

    def __init__(self, normalizer: RunningNorm, actor: Actor, action_low: torch.Tensor, action_high: torch.Tensor):
        super().__init__()
        self.normalizer = normalizer
        self.actor = actor
        self.register_buffer("action_low", action_low.float().clone())
        self.register_buffer("action_high", action_high.float().clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        a = self.actor(self.normalizer(obs))
        return self.action_low + (a + 1) * 0.5 * (self.action_high - self.action_low)
