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


def batch_norm_statistics_(
    x: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    steps: torch.Tensor,
    rate: float,
    eps: float,
    renorm: bool,
    r_max: float = 3.0,
    d_max: float = 5.0,
    warmup_steps: int = 0,
    unbiased_running_var: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-mode batch (re)normalization statistics over the batch axis (-2); the one implementation behind
    CrossQ's ``BatchRenorm`` and the normed family's ``nets.norms.EnsembleBatchNorm``.

    Returns the (mean, var) to normalize ``x`` with, ``(x - mean) / sqrt(var + eps)``, and updates the running
    statistics in place, ``running <- running + rate (batch - running)``; ``steps`` (a scalar or one count per
    member, [members]) counts training calls. Plain batch norm (``renorm=False``, or while ``steps < warmup_steps``)
    normalizes with the batch statistics. Batch renormalization (Ioffe 2017) corrects them towards the running
    ones with the stop-gradient factors r = clip(sigma_B / sigma_run, 1/r_max, r_max) and d = clip((mu_B - mu_run)
    / sigma_run, -d_max, d_max), taken from the running statistics before this batch updates them; normalizing with
    (mu_B - d sigma_B / r, sigma_B^2 / r^2) equals r x_hat + d up to eps (the references' form). The running
    variance follows the biased batch variance (CrossQ, XQC) or, with ``unbiased_running_var``, the unbiased one
    (FlashSAC's torch BatchNorm). No host syncs and no value-dependent branches: CUDA-graph capturable; no
    keyword-only arguments: TorchScript compiles it (policies are exported with it).
    """
    mean = x.mean(-2, keepdim=True)
    var = x.var(-2, keepdim=True, correction=0)
    norm_mean, norm_var = mean, var
    if renorm:
        with torch.no_grad():
            running_std = torch.sqrt(running_var + eps)
            r = (torch.sqrt(var + eps) / running_std).clamp(1.0 / r_max, r_max)
            d = ((mean - running_mean) / running_std).clamp(-d_max, d_max)
            warmed = (steps >= warmup_steps).to(x.dtype)
            if warmed.dim() == 1:  # one count per member: broadcast over [members, batch, dim]
                warmed = warmed.view(-1, 1, 1)
        norm_var = warmed * (var / r.square()) + (1.0 - warmed) * var
        norm_mean = warmed * (mean - d * torch.sqrt(var) / r) + (1.0 - warmed) * mean
    running_var_target = var
    if unbiased_running_var:
        n = x.shape[-2]
        running_var_target = var * (n / max(n - 1, 1))
    with torch.no_grad():
        running_mean.lerp_(mean.detach().to(running_mean.dtype), rate)
        running_var.lerp_(running_var_target.detach().to(running_var.dtype), rate)
        steps.add_(1)
    return norm_mean, norm_var


class BatchRenorm(nn.Module):
    """Batch renormalization over the batch axis (-2) of [..., batch, dim] inputs.

    With ``members`` it holds one independent set of statistics and affine parameters per ensemble member (input
    [members, batch, dim]; a shared [batch, dim] input is broadcast to every member).

    ``momentum`` is the reference's: running <- momentum * running + (1 - momentum) * batch (flax convention).
    ``steps`` counts training forward passes; renormalization (r, d) applies once ``steps >= warmup_steps``.
    The math is ``batch_norm_statistics_`` (shared with the normed family's ``nets.norms.EnsembleBatchNorm``), with
    the statistics in float32 under bf16 autocast; this class keeps CrossQ's flax momentum convention, its optional
    member axis and its checkpoint layout (one scalar step count).
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
        else:  # statistics in float32 even under bf16 autocast
            mean, var = batch_norm_statistics_(
                x.float(), self.running_mean, self.running_var, self.steps, 1.0 - self.momentum, self.eps,
                renorm=True, r_max=self.r_max, d_max=self.d_max, warmup_steps=self.warmup_steps,
            )  # fmt: skip
        out = (x - mean) * torch.rsqrt(var + self.eps)
        return (out * self.weight + self.bias).to(x.dtype)


@torch.no_grad()
def project_unit_norm(weights: list[torch.Tensor], dim: int) -> None:
    """Scale each weight vector along ``dim`` (the inputs of one unit) to unit Euclidean norm, in place."""
    for w in weights:
        w.div_(torch.linalg.vector_norm(w, dim=dim, keepdim=True).clamp_min(1e-12))
