"""Deterministic tanh-squashed actor; actions live in [-1, 1] and are mapped to env bounds only at the edge."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from parallel_rl.nets.families import NetSpec, build_ensemble_net, free_output_layer
from parallel_rl.nets.mlp import mlp
from parallel_rl.nets.normalizer import RunningNorm


class Actor(nn.Module):
    """obs (already normalized) -> action in [-1, 1]^act_dim.

    ``spec`` (``nets.families.NetSpec``) selects a network family other than the plain MLP of ``hidden``; such a
    trunk is a one-member ensemble whose member dimension is dropped here."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        act: str = "relu",
        spec: NetSpec | None = None,
        init_scale: float = 0.0,
    ) -> None:
        super().__init__()
        self.ensemble_trunk = spec is not None and spec.arch != "mlp"
        if self.ensemble_trunk:
            self.net = build_ensemble_net(spec, 1, obs_dim, act_dim)
        else:
            self.net = mlp(obs_dim, [spec.width] * spec.depth if spec else hidden, act_dim, spec.act if spec else act)
        if init_scale > 0:  # FastTD3's output init: small weights, zero bias, so initial actions are near 0
            last = free_output_layer(self.net)
            if last is not None:
                nn.init.normal_(last.weight, 0.0, init_scale)
                nn.init.zeros_(last.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(obs)
        if self.ensemble_trunk:
            out = out.squeeze(0)
        return torch.tanh(out.float())  # float32 out even under bf16 autocast


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
