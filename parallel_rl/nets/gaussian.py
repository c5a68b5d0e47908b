"""Tanh-squashed Gaussian policy (SAC family): actions in [-1, 1]^act_dim with the log-density of the squashed
sample, the change of variables included."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from parallel_rl.nets.mlp import Norm, mlp_trunk

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


class SquashedGaussianActor(nn.Module):
    """obs (already normalized) -> N(mean, exp(log_std)^2) squashed by tanh; ``forward`` is the deterministic action
    tanh(mean), so the module deploys and exports like ``nets.Actor``.

    ``log_std_bound``: ``"tanh"`` maps the head's output smoothly into [log_std_min, log_std_max] (holosoma's
    FastSAC, after SpinUp); ``"clip"`` clamps it (CrossQ's reference). ``zero_init_heads`` starts both heads at
    zero weights and bias (holosoma): mean 0 and the middle log-std for every observation.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        act: str = "relu",
        norm: Norm = "none",
        brn: dict[str, Any] | None = None,
        log_std_min: float = -5.0,
        log_std_max: float = 0.0,
        log_std_bound: Literal["tanh", "clip"] = "tanh",
        zero_init_heads: bool = False,
    ) -> None:
        super().__init__()
        if not log_std_min < log_std_max:
            raise ValueError(f"need log_std_min < log_std_max, got [{log_std_min}, {log_std_max}]")
        self.log_std_min, self.log_std_max, self.log_std_bound = log_std_min, log_std_max, log_std_bound
        self.trunk = nn.Sequential(*mlp_trunk(obs_dim, hidden, act, norm, brn))
        width = hidden[-1] if hidden else obs_dim
        self.mean = nn.Linear(width, act_dim)
        self.log_std = nn.Linear(width, act_dim)
        if zero_init_heads:
            for layer in (self.mean, self.log_std):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the Gaussian before the squash, float32 even under bf16 autocast."""
        h = self.trunk(obs)
        mean, raw = self.mean(h).float(), self.log_std(h).float()
        if self.log_std_bound == "tanh":
            log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1.0)
        else:
            log_std = raw.clamp(self.log_std_min, self.log_std_max)
        return mean, log_std

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.distribution(obs)[0])

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized squashed sample a = tanh(mean + std * eps) and its log-density log pi(a | obs).

        log pi(a) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)^2)], with the Jacobian term in the stable
        form 2 (log 2 - u - softplus(-2u)) (as torch's TanhTransform): exact where holosoma's log(1 - a^2 + 1e-6)
        loses precision near saturation."""
        mean, log_std = self.distribution(obs)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + log_std.exp() * eps
        log_normal = -0.5 * eps.square() - log_std - _LOG_SQRT_2PI  # (u - mean) / std == eps
        log_det = 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))
        return torch.tanh(u), (log_normal - log_det).sum(-1)
