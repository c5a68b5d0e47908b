"""Twin (or wider) Q ensembles: distributional C51 or scalar, all members evaluated in one batched call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from parallel_rl.nets.families import NetSpec, build_ensemble_net
from parallel_rl.nets.mlp import EnsembleMLP, Norm, ensemble_mlp


class EnsembleCritic(nn.Module):
    """(obs, action) -> per-member output [members, batch, num_atoms].

    With ``num_atoms > 1`` the outputs are logits over a fixed support ``linspace(v_min, v_max, num_atoms)`` (C51);
    with ``num_atoms == 1`` they are scalar Q values. ``spec`` (``nets.families.NetSpec``) selects the network
    family; without it the members are plain MLPs of ``hidden``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        num_atoms: int = 101,
        v_min: float = -10.0,
        v_max: float = 10.0,
        members: int = 2,
        act: str = "relu",
        spec: NetSpec | None = None,
        norm: Norm = "none",
        brn: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_atoms < 1:
            raise ValueError(f"num_atoms must be >= 1, got {num_atoms}")
        if num_atoms > 1 and not v_min < v_max:
            raise ValueError(f"need v_min < v_max for a distributional critic, got [{v_min}, {v_max}]")
        self.num_atoms, self.members = num_atoms, members
        if spec is None:
            self.net = ensemble_mlp(members, obs_dim + act_dim, hidden, num_atoms, act, norm, brn)
        else:
            self.net = build_ensemble_net(spec, members, obs_dim + act_dim, num_atoms)
        self.register_buffer("support", torch.linspace(v_min, v_max, num_atoms) if num_atoms > 1 else torch.zeros(1))

    @property
    def distributional(self) -> bool:
        return self.num_atoms > 1

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # float32 out even under bf16 autocast: the loss math after it (softmax, C51 projection) stays float32.
        x = self.net.member_input(obs, action) if isinstance(self.net, EnsembleMLP) else torch.cat([obs, action], -1)
        return self.net(x).float()

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        """Expected Q per member, [members, batch], from the raw output of ``forward``."""
        if self.distributional:
            return (torch.softmax(out, dim=-1) * self.support).sum(-1)
        return out.squeeze(-1)
