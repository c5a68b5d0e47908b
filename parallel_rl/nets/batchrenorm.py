"""Batch renormalization (Ioffe 2017) as CrossQ uses it, and the unit-norm weight projection of CrossQ + WN.

CrossQ (Bhatt, Palenicek et al. 2024) drops the target network and puts batch (re)normalization in the critic and
the actor; its reference (adityab/CrossQ, ``sbx/sac/policies.py``) normalizes with batch statistics for a warm-up
period, then with batch statistics corrected towards the running ones by r and d (clipped to [1/r_max, r_max] and
[-d_max, d_max], no gradient through them). Running statistics move by ``momentum`` towards every training batch
and serve evaluation (``eval()``) and the acting policy.

Palenicek et al. 2025 ("Scaling Off-Policy RL with Batch and Weight Normalization") add weight normalization: the
weights that feed a normalization layer are projected back to unit norm after every optimizer step, which keeps
the effective learning rate constant (the normalized output does not depend on their scale).
"""

from __future__ import annotations

import torch
from torch import nn


class BatchRenorm(nn.Module):
    """Batch renormalization over the batch axis (-2) of [..., batch, dim] inputs.

    With ``members`` it holds one independent set of statistics and affine parameters per ensemble member (input
    [members, batch, dim]; a shared [batch, dim] input is broadcast to every member).

    ``momentum`` is the reference's: running <- momentum * running + (1 - momentum) * batch (flax convention).
    ``steps`` counts training forward passes; renormalization (r, d) applies once ``steps >= warmup_steps``.
    """

    def __init__(
        self,
        dim: int,
        members: int | None = None,
        momentum: float = 0.99,
        eps: float = 1e-3,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 100_000,
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.members, self.momentum, self.eps = members, momentum, eps
        self.r_max, self.d_max, self.warmup_steps = r_max, d_max, warmup_steps
        shape = (members, 1, dim) if members is not None else (1, dim)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members is not None and x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        if not self.training:
            mean, var = self.running_mean, self.running_var
        else:
            x32 = x.float()
            batch_mean = x32.mean(-2, keepdim=True)
            batch_var = x32.var(-2, unbiased=False, keepdim=True)
            with torch.no_grad():
                running_std = torch.sqrt(self.running_var + self.eps)
                r = (torch.sqrt(batch_var + self.eps) / running_std).clamp(1.0 / self.r_max, self.r_max)
                d = ((batch_mean - self.running_mean) / running_std).clamp(-self.d_max, self.d_max)
                warmed_up = (self.steps >= self.warmup_steps).to(x32.dtype)
            # The reference's form: normalizing with (mean - d*std/r, var/r^2) equals r*x_hat + d (up to eps).
            renorm_var = batch_var / r.square()
            renorm_mean = batch_mean - d * torch.sqrt(batch_var) / r
            var = warmed_up * renorm_var + (1.0 - warmed_up) * batch_var
            mean = warmed_up * renorm_mean + (1.0 - warmed_up) * batch_mean
            with torch.no_grad():
                self.running_mean.lerp_(batch_mean.detach(), 1.0 - self.momentum)
                self.running_var.lerp_(batch_var.detach(), 1.0 - self.momentum)
                self.steps.add_(1)
        out = (x - mean) * torch.rsqrt(var + self.eps)
        return (out * self.weight + self.bias).to(x.dtype)


@torch.no_grad()
def project_unit_norm(weights: list[torch.Tensor], dim: int) -> None:
    """Scale each weight vector along ``dim`` (the inputs of one unit) to unit Euclidean norm, in place."""
    for w in weights:
        w.div_(torch.linalg.vector_norm(w, dim=dim, keepdim=True).clamp_min(1e-12))
