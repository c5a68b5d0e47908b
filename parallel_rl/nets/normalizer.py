"""Running observation normalizer whose whole state (mean, var, count) lives in buffers, so it is checkpointed,
published to other components and exported together with the network that uses it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

FORMULAS = ("unclipped", "clipped")


class RunningNorm(nn.Module):
    """Normalizes with running mean/variance merged batch-wise (Chan et al.'s parallel algorithm).

    ``formula``: 'clipped' is (x - mean) / sqrt(var + 1e-8) clipped to [-10, 10]; 'unclipped' is
    (x - mean) / (std + 0.01) (FastTD3's EmpiricalNormalization). ``count`` is float64 so that it stays exact long
    after float32 would stop counting (2**24 samples). The last ``passthrough`` dimensions are returned unchanged (a
    multi-task observation's task id column).
    """

    def __init__(
        self, dim: int, clip: float = 10.0, eps: float = 1e-8, passthrough: int = 0, formula: str = "clipped"
    ) -> None:
        super().__init__()
        if not 0 <= passthrough <= dim:
            raise ValueError(f"passthrough must be in [0, {dim}], got {passthrough}")
        if formula not in FORMULAS:
            raise ValueError(f"unknown normalizer formula {formula!r}; valid: {', '.join(FORMULAS)}")
        self.clip, self.eps, self.passthrough, self.formula = clip, eps, passthrough, formula
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Merge a batch. With ``all_reduce`` (an in-place sum over ranks), the batch is the union of every rank's
        batch, so all ranks keep identical statistics."""
        x = x.reshape(-1, x.shape[-1]).float()
        if all_reduce is None:
            n = x.shape[0]
            batch_mean = x.mean(0)
            batch_var = x.var(0, unbiased=False)
        else:
            moments = torch.cat([x.new_full((1,), x.shape[0]), x.sum(0), x.square().sum(0)])
            all_reduce(moments)
            d = x.shape[-1]
            n_t = moments[:1]
            batch_mean = moments[1 : d + 1] / n_t
            batch_var = (moments[d + 1 :] / n_t - batch_mean.square()).clamp(min=0)
            n = n_t.double().squeeze(0)
        total = self.count + n
        w = (n / total).float()  # weight of the new batch
        delta = batch_mean - self.mean
        self.mean.add_(delta * w)
        m2 = self.var * (1 - w) + batch_var * w + delta.square() * w * (1 - w)
        self.var.copy_(m2)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.formula == "unclipped":
            y = (x - self.mean) / (self.var.sqrt() + 0.01)
        else:
            y = ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)
        if self.passthrough:
            y = torch.cat([y[..., : -self.passthrough], x[..., -self.passthrough :]], dim=-1)
        return y
