"""Ensemble normalization layers and weight-norm projections shared by the critic families (BroNet, SimbaV2, the
bounded-norm FlashSAC/XQC family) and by CrossQ.

Every parameter and buffer carries the member dimension first, so ``members`` networks run in one batched call and
member ``i`` of an ensemble is exactly the slice ``[i]`` of each tensor (``take_member``). Activations are
``[members, batch, features]``. Nothing here synchronises with the host or branches on tensor values, so the layers
can be captured in CUDA graphs; train/eval behaviour follows ``module.training`` as in ``torch.nn``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from parallel_rl.nets.batchrenorm import batch_norm_statistics_

EPS = 1e-8


def l2_normalize(x: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """x / max(||x||, eps): SimbaV2's projection onto the unit hypersphere (eps keeps a zero vector finite)."""
    return x / torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(eps)


class EnsembleUnitLinear(nn.Module):
    """Bias-free ensemble linear layer whose weight vectors (one per output unit) are kept at unit L2 norm by
    ``project_`` after every optimizer step (SimbaV2's HyperDense, FlashSAC's UnitLinear). Weight [members, in, out]
    as ``EnsembleLinear``; the unit-norm axis is ``in``."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        for m in range(members):
            nn.init.orthogonal_(self.weight.data[m], gain=1.0)
        self.project_()

    @torch.no_grad()
    def project_(self) -> None:
        self.weight.copy_(l2_normalize(self.weight, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.bmm(x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over features with a per-member affine (flax's default eps 1e-6, as in BRO)."""

    def __init__(self, members: int, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)
        return x * self.weight + self.bias


def _rescale_to_sqrt_dim_(*tensors: torch.Tensor) -> None:
    """Scale the concatenation of ``tensors`` (each [members, 1, d]) per member to L2 norm sqrt(d): FlashSAC keeps
    normalization gains at the norm of the all-ones vector, so they cannot grow without bound."""
    dim = tensors[0].shape[-1]
    sq = sum(t.square().sum(dim=-1, keepdim=True) for t in tensors)
    factor = math.sqrt(dim) * torch.rsqrt(sq + EPS)
    for t in tensors:
        t.mul_(factor)


class EnsembleRMSNorm(nn.Module):
    """x / rms(x) * gain; with ``bounded`` the gain is projected back to norm sqrt(d) after each step (FlashSAC)."""

    def __init__(self, members: int, dim: int, eps: float = 1e-6, bounded: bool = True) -> None:
        super().__init__()
        self.eps, self.bounded = eps, bounded
        self.weight = nn.Parameter(torch.ones(members, 1, dim))

    @torch.no_grad()
    def project_(self) -> None:
        if self.bounded:
            _rescale_to_sqrt_dim_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps) * self.weight


class EnsembleBatchNorm(nn.Module):
    """Per-member batch normalization over the batch dimension, optionally Batch Renormalization (Ioffe 2017).

    - ``renorm=False``: FlashSAC's BatchNorm (momentum 0.01, eps 1e-5; running variance unbiased).
    - ``renorm=True``: CrossQ/XQC's Batch Renormalization (flax momentum 0.99 = ours 0.01, eps 1e-3, r_max 3,
      d_max 5): plain batch norm during the first ``warmup_steps`` training calls, then batch statistics corrected
      towards the running ones (running variance biased, as in the reference).

    The training-mode math is ``nets.batchrenorm.batch_norm_statistics_``, shared with CrossQ's ``BatchRenorm``
    (this layer takes torch's momentum convention, keeps one step count per member, always has the member axis
    and adds the bounded affine). In training mode the running statistics are updated in place (``running =
    (1 - momentum) running + momentum batch``); in eval mode they normalize. With ``bounded`` the affine (gain,
    bias) is rescaled to norm sqrt(d) after each step (FlashSAC's UnitBatchNorm).
    """

    def __init__(
        self,
        members: int,
        dim: int,
        momentum: float = 0.01,
        eps: float = 1e-5,
        renorm: bool = False,
        warmup_steps: int = 100_000,
        r_max: float = 3.0,
        d_max: float = 5.0,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"batch norm momentum must be in (0, 1], got {momentum}")
        self.momentum, self.eps, self.renorm, self.bounded = momentum, eps, renorm, bounded
        self.warmup_steps, self.r_max, self.d_max = warmup_steps, r_max, d_max
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))
        self.register_buffer("running_mean", torch.zeros(members, 1, dim))
        self.register_buffer("running_var", torch.ones(members, 1, dim))
        self.register_buffer("steps", torch.zeros(members, dtype=torch.long))

    @torch.no_grad()
    def project_(self) -> None:
        if self.bounded:
            _rescale_to_sqrt_dim_(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            x = (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps)
            return x * self.weight + self.bias
        norm_mean, norm_var = batch_norm_statistics_(
            x, self.running_mean, self.running_var, self.steps, self.momentum, self.eps, renorm=self.renorm,
            r_max=self.r_max, d_max=self.d_max, warmup_steps=self.warmup_steps, unbiased_running_var=not self.renorm,
        )  # fmt: skip
        x = (x - norm_mean) * torch.rsqrt(norm_var + self.eps)
        return x * self.weight + self.bias


@torch.no_grad()
def project_weights_(module: nn.Module) -> None:
    """Apply every weight-norm projection in ``module`` (no-op for families without one). Call it after each
    optimizer step of the network, and after each soft update of its target (an average of unit vectors is shorter
    than a unit vector; SimbaV2 re-projects its target critic too)."""
    for m in module.modules():
        fn = getattr(m, "project_", None)
        if callable(fn):
            fn()


def has_projection(module: nn.Module) -> bool:
    """Whether ``project_weights_`` changes anything in ``module`` (lets callers skip the call for plain MLPs)."""
    return any(hasattr(m, "project_") for m in module.modules())


def take_member(module: nn.Module, index: int) -> nn.Module:
    """A one-member copy of an ensemble network: every parameter and buffer sliced at ``[index]`` along its member
    dimension (the first; holds for the family networks of ``nets.families``, not for wrappers with shared
    buffers such as a critic's support). Checks that the batched ensemble equals its members evaluated one by one."""
    single = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in list(single.named_parameters()):
            _set(single, name, nn.Parameter(p[index : index + 1].clone(), requires_grad=p.requires_grad))
        for name, b in list(single.named_buffers()):
            if b.dim() > 0:
                _set(single, name, b[index : index + 1].clone())
    return single


def _set(root: nn.Module, dotted: str, value: torch.Tensor) -> None:
    *path, leaf = dotted.split(".")
    owner = root
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, leaf, value)
