"""Ensemble aggregation shared by DEA and VPL: targets built from the ensemble mean shifted by a multiple of the
ensemble's disagreement, instead of TD3's clipped double-Q.

For scalar critics the target is ``r + d * (mean_i Q'_i + c * std_i Q'_i)``; ``c = -1`` with two critics is exactly
``min(Q'_1, Q'_2)`` (their mean minus half their distance). For C51 critics the members' distributions are averaged
(a mixture with the mean as its expectation) and projected at ``r + d * (z + c * std_i Q'_i)``: the same expected
target, kept a distribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.common import categorical_projection, critic_outputs, smoothed_action
from parallel_rl.nets import EnsembleCritic

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig


def mean_and_disagreement(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[members, B] expected values -> (mean, population std) over members, each [B]. For two members the std is
    half their distance, |Q_1 - Q_2| / 2, the disagreement term of BRO and DAC."""
    return q.mean(0), q.std(0, correction=0)


def ensemble_outputs(
    critic: EnsembleCritic, critic_target: EnsembleCritic, actor: nn.Module, batch: TensorDict, hp: AgentConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first step of DEA's and VPL's critic updates on a normalized batch: the critic's raw output on (s, a)
    (differentiable), the target critic's on (s', smoothed target action) and the target ensemble's mean and
    disagreement at s' (both [B], no gradient)."""
    with torch.no_grad():
        next_action = smoothed_action(actor(batch["next_obs"]), hp.target_noise, hp.target_noise_clip)
    out, target_out = critic_outputs(critic, critic_target, batch.get("critic_obs", batch["obs"]), batch["action"],
                                     batch.get("next_critic_obs", batch["next_obs"]), next_action)  # fmt: skip
    with torch.no_grad():
        next_mean, next_delta = mean_and_disagreement(critic.q_values(target_out))
    return out, target_out, next_mean, next_delta


def shifted_target(
    critic: EnsembleCritic, target_out: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """Target of ``r + d * (mean + shift)``: [B, atoms] probabilities (C51) or [B] values (scalar critic).
    ``target_out``: the target critic's raw output [members, B, atoms]; ``shift``: [B] (e.g. coefficient x std)."""
    if critic.distributional:
        probs = torch.softmax(target_out, dim=-1).mean(0)
        return categorical_projection(probs, reward + discount * shift, discount, critic.support)
    return reward + discount * (target_out.squeeze(-1).mean(0) + shift)


def loss_to_target(critic: EnsembleCritic, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Critic loss summed over members against a fixed target (cross-entropy for C51, squared error for scalar)."""
    if critic.distributional:
        return -(target.unsqueeze(0) * torch.log_softmax(out, dim=-1)).sum(-1).mean(-1).sum()
    return (out.squeeze(-1) - target.unsqueeze(0)).square().mean(-1).sum()


def expected_target(critic: EnsembleCritic, target: torch.Tensor) -> torch.Tensor:
    """The expected value [B] of a target from ``shifted_target``."""
    return (target * critic.support).sum(-1) if critic.distributional else target
