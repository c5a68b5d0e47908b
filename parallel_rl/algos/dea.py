"""DEA: Directional Ensemble Aggregation (Werge, Wu, Tasdighi, Kandemir 2025, arXiv:2507.23501) on FastTD3.

Instead of a fixed rule (TD3's min over two critics), the ensemble of ``--num-critics`` Q networks (2 or more) is
aggregated as mean + kappa * disagreement, with two learnable scalars:

- critic side, in the TD target:  y = r + d * (mean_i Q'_i(s', a') + kappa_c * delta(s', a')),
- actor side, in the policy objective:  max_pi  mean_i Q_i(s, pi(s)) + kappa_a * delta(s, pi(s)),

where delta is the ensemble's disagreement (population std over members; |Q_1 - Q_2| / 2 for two). Both are learned
from disagreement-weighted Bellman errors that keep only the *direction* (sign) of each sample's error
e = y - mean_i Q_i(s, a):

    L(kappa_c) = kappa_c * mean_b[ delta(s'_b, a'_b) * sign(e_b) ],
    L(kappa_a) = kappa_a * mean_b[ delta(s_b, a_b) * sign(e_b) ],

so targets that sit above the critic's estimate (positive errors, the footprint of overestimation) lower both
coefficients (more conservatism, less optimism), negative errors raise them. Initial values: kappa_c = -1 (equal to
clipped double-Q for two critics), kappa_a = 0 (FastTD3's mean). With C51 critics the target is the members' mixture
shifted by kappa_c * delta (``aggregation.shifted_target``).

Reading note: the equations above are our reading of the paper's description (abstract and method summary); the
official implementation was not available to check against, so constants and the exact disagreement measure may
differ from the authors'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.aggregation import (
    ensemble_outputs,
    expected_target,
    loss_to_target,
    mean_and_disagreement,
    shifted_target,
)
from parallel_rl.algos.base import Context, Shared
from parallel_rl.algos.common import gradient_step, replica
from parallel_rl.algos.fasttd3 import FastTD3
from parallel_rl.nets import EnsembleCritic

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig


class Coefficients(nn.Module):
    """The two directional parameters, trained together by the V-learner."""

    def __init__(self, critic_init: float, actor_init: float) -> None:
        super().__init__()
        self.critic = nn.Parameter(torch.tensor(float(critic_init)))
        self.actor = nn.Parameter(torch.tensor(float(actor_init)))


def dea_critic_loss(critic: EnsembleCritic, critic_target: EnsembleCritic, actor: nn.Module, kappa: Coefficients,
                    batch: TensorDict, hp: AgentConfig) -> tuple[torch.Tensor, torch.Tensor, TensorDict]:  # fmt: skip
    """(critic loss, loss of the directional parameters, metrics) on a normalized batch."""
    out, target_out, _, next_delta = ensemble_outputs(critic, critic_target, actor, batch, hp)
    with torch.no_grad():
        target = shifted_target(critic, target_out, batch["reward"], batch["discount"], kappa.critic * next_delta)
    loss = loss_to_target(critic, out, target)
    with torch.no_grad():
        q = critic.q_values(out)
        q_mean, delta = mean_and_disagreement(q)
        direction = torch.sign(expected_target(critic, target) - q_mean)
    kappa_loss = kappa.critic * (next_delta * direction).mean() + kappa.actor * (delta * direction).mean()
    metrics = TensorDict({"critic_loss": loss.detach(), "q_mean": q_mean.mean(), "q_max": q.max(),
                          "ensemble_disagreement": delta.mean(), "kappa_critic": kappa.critic.detach(),
                          "kappa_actor": kappa.actor.detach()})  # fmt: skip
    return loss, kappa_loss, metrics


class DEA(FastTD3):
    name = "dea"

    def __init__(self, hp: AgentConfig, ctx: Context) -> None:
        super().__init__(hp, ctx)
        self.kappa = Coefficients(hp.dea_kappa_critic_init, hp.dea_kappa_actor_init).to(self.device)
        self.kappa_for_plearner = replica(self.kappa)
        self.kappa_optimizer = torch.optim.Adam(self.kappa.parameters(), lr=hp.dea_lr)
        self._critic_loss = ctx.compile(dea_critic_loss)

    def update_critic(self, batch: TensorDict) -> TensorDict:
        batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
        with self.ctx.autocast():
            loss, kappa_loss, metrics = self._critic_loss(self.critic, self.critic_target, self.policy_for_vlearner,
                                                          self.kappa, batch, self.hp)  # fmt: skip
        gradient_step(loss, self.critic_optimizer, self.critic_params, self.hp.max_grad_norm, self._sync("vlearner"))
        gradient_step(kappa_loss, self.kappa_optimizer, list(self.kappa.parameters()), 0.0, self._sync("vlearner"))
        self.finish_critic_step()
        return metrics.float()

    @torch.no_grad()
    def critic_loss(self, batch: TensorDict) -> torch.Tensor:
        batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
        return dea_critic_loss(self.critic, self.critic_target, self.policy_for_vlearner, self.kappa, batch,
                               self.hp)[0]  # fmt: skip

    def actor_loss(
        self, actor: nn.Module, critic: EnsembleCritic, batch: TensorDict
    ) -> tuple[torch.Tensor, TensorDict]:
        action = actor(batch["obs"])
        q_mean, delta = mean_and_disagreement(critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action)))
        loss = -(q_mean + self.kappa_for_plearner.actor * delta).mean()
        return loss, TensorDict({"actor_loss": loss.detach(), "action_abs": action.detach().abs().mean()})

    def shared(self) -> list[Shared]:
        return [*super().shared(), Shared("kappa>plearner", self.kappa, "vlearner", self.kappa_for_plearner,
                                          "plearner")]  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "kappa": self.kappa.state_dict(),
                "kappa_optimizer": self.kappa_optimizer.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.kappa.load_state_dict(state["kappa"])
        self.kappa_optimizer.load_state_dict(state["kappa_optimizer"])
