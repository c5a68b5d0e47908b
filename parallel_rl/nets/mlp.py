"""Network blocks: a plain MLP and a stacked-ensemble MLP that evaluates several critics in one batched call, each
optionally with normalization layers: LayerNorm after every hidden linear layer (FastSAC's networks) or batch
renormalization on the input and after every hidden activation (CrossQ's networks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from parallel_rl.nets.batchrenorm import BatchRenorm

Norm = Literal["none", "layer", "batchrenorm"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def activation(name: str) -> type[nn.Module]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}") from None


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    act: str = "relu",
    norm: Norm = "none",
    brn: dict[str, Any] | None = None,
) -> nn.Sequential:
    """Linear-activation stack. ``norm="layer"``: Linear -> LayerNorm -> act (holosoma's FastSAC);
    ``norm="batchrenorm"``: BRN(input), then Linear -> act -> BRN (CrossQ), ``brn`` holding BatchRenorm options."""
    layers = mlp_trunk(in_dim, hidden, act, norm, brn)
    layers.append(nn.Linear(([in_dim, *hidden])[-1], out_dim))
    return nn.Sequential(*layers)


def mlp_trunk(
    in_dim: int, hidden: Sequence[int], act: str = "relu", norm: Norm = "none", brn: dict[str, Any] | None = None
) -> list[nn.Module]:
    """The hidden layers of ``mlp`` (everything before the output layer), for networks with several heads."""
    layers: list[nn.Module] = [BatchRenorm(in_dim, **(brn or {}))] if norm == "batchrenorm" else []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers.append(nn.Linear(a, b))
        if norm == "layer":
            layers.append(nn.LayerNorm(b))
        layers.append(activation(act)())
        if norm == "batchrenorm":
            layers.append(BatchRenorm(b, **(brn or {})))
    return layers


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers stored as one [members, in, out] weight; one ``baddbmm`` runs all.

    Hand-written (rather than ``torch.func.stack_module_state`` + ``vmap``) so that it is an ordinary module:
    optimizers, state dicts, ``torch.compile`` and CUDA graphs see plain parameters.
    """

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init, member by member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [members, batch, in] (or [batch, in], shared by all members) -> [members, batch, out]."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm with one affine pair per ensemble member ([members, batch, dim] inputs), as separate networks have."""

    def __init__(self, members: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


def ensemble_mlp(
    members: int,
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    act: str = "relu",
    norm: Norm = "none",
    brn: dict[str, Any] | None = None,
) -> nn.Sequential:
    """``mlp`` for ``members`` independent networks evaluated in one batched call (same ``norm`` options)."""
    layers: list[nn.Module] = [BatchRenorm(in_dim, members, **(brn or {}))] if norm == "batchrenorm" else []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers.append(EnsembleLinear(members, a, b))
        if norm == "layer":
            layers.append(EnsembleLayerNorm(members, b))
        layers.append(activation(act)())
        if norm == "batchrenorm":
            layers.append(BatchRenorm(b, members, **(brn or {})))
    layers.append(EnsembleLinear(members, dims[-1], out_dim))
    return nn.Sequential(*layers)
