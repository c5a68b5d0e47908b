"""DAC: Decoupled Actor-Critic (Nauman & Cygan 2023, arXiv:2310.19527; the optimistic actor of BRO, Nauman et al.
2024, naumix/BiggerRegularizedOptimistic ``jaxrl/bro``), on FastTD3's deterministic actors.

Two actors share one critic ensemble (``--num-critics`` >= 2; delta = population std over members, |Q_1 - Q_2| / 2
for two):

- the *conservative* actor pi_c maximizes the lower bound Q_LB = mean_i Q_i - beta_lb * delta; it gives the TD
  targets' next actions and is the deployed (evaluated, exported) policy;
- the *optimistic* actor explores. It shifts the conservative action in pre-tanh space,
  u_o = u_c + f(s, u_c) with u_c = atanh(pi_c(s)) and f's output layer initialized at scale 0.01, and maximizes the
  upper bound Q_UB = mean_i Q_i + beta_ub * delta, KL-regularized towards the conservative policy:
      L_o = -mean Q_UB(s, tanh(u_o)) + lambda * mean KL,   KL = sum_j (u_o - u_c)_j^2 / (2 sigma^2).
  BRO's KL between its two Gaussians (optimistic std = conservative std x 0.75, undone in the KL) reduces to this
  mean-shift term; with deterministic actors sigma is the reference exploration std ``--std-max``;
- beta_ub (optimism) and lambda (KL weight) adapt so that KL / act_dim tracks ``--dac-kl-target`` (0.05):
      L(beta_ub) = beta_ub * (KL/A - target),   L(lambda) = -lambda * (KL/A - target),
  each a positive scalar exp(l_min + (l_max - l_min)(1 + tanh p)/2), l in [-10, 7.5], Adam(lr 3e-5, beta1 0.5),
  initial values 1.0 and 0.25 (BRO's defaults).

Exploration: env i acts with tanh(u_o) plus Gaussian noise of FastTD3's per-env std times ``--dac-std-multiplier``
(0.75, BRO's narrower optimistic policy). The critic is FastTD3's (clipped double-Q target with pi_c's actions).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.aggregation import mean_and_disagreement
from parallel_rl.algos.base import Context, Shared
from parallel_rl.algos.common import gradient_step, make_optimizer, replica
from parallel_rl.algos.fasttd3 import FastTD3
from parallel_rl.nets import mlp

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig

LOG_MIN, LOG_MAX = -10.0, 7.5
TANH_EDGE = 1.0 - 1e-6


class Adjustment(nn.Module):
    """A positive scalar exp(l_min + (l_max - l_min)(1 + tanh p)/2): bounded in log space (BRO's Adjustment)."""

    def __init__(self, init: float) -> None:
        super().__init__()
        p = math.atanh((math.log(init) - LOG_MIN) / ((LOG_MAX - LOG_MIN) * 0.5) - 1.0)
        self.raw = nn.Parameter(torch.tensor(p))

    def forward(self) -> torch.Tensor:
        return torch.exp(LOG_MIN + (LOG_MAX - LOG_MIN) * 0.5 * (1.0 + torch.tanh(self.raw)))


class Adjustments(nn.Module):
    def __init__(self, optimism: float, regularizer: float) -> None:
        super().__init__()
        self.optimism, self.regularizer = Adjustment(optimism), Adjustment(regularizer)


class OptimisticActor(nn.Module):
    """(normalized obs, conservative action) -> (optimistic action, u_c, u_o): a_o = tanh(u_c + f(s, u_c))."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], act: str, init_scale: float) -> None:
        super().__init__()
        self.net = mlp(obs_dim + act_dim, hidden, act_dim, act)
        with torch.no_grad():  # starts as the conservative actor, up to a small shift
            self.net[-1].weight.mul_(init_scale)
            self.net[-1].bias.zero_()

    def forward(self, obs: torch.Tensor, conservative: torch.Tensor) -> tuple[torch.Tensor, ...]:
        u_c = torch.atanh(conservative.float().clamp(-TANH_EDGE, TANH_EDGE))
        u_o = u_c + self.net(torch.cat([obs, u_c], dim=-1)).float()
        return torch.tanh(u_o), u_c, u_o


def conservative_loss(q: torch.Tensor, pessimism: float) -> torch.Tensor:
    """-mean Q_LB from the critics' expected values q [members, B]."""
    q_mean, delta = mean_and_disagreement(q)
    return -(q_mean - pessimism * delta).mean()


def optimistic_loss(q: torch.Tensor, u_c: torch.Tensor, u_o: torch.Tensor, optimism: torch.Tensor,
                    regularizer: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(-mean Q_UB + lambda * mean KL, mean KL) with q [members, B] at the optimistic actions."""
    q_mean, delta = mean_and_disagreement(q)
    kl = ((u_o - u_c).square() / (2.0 * sigma**2)).sum(-1)
    return -(q_mean + optimism * delta).mean() + regularizer * kl.mean(), kl.mean()


def adjustment_loss(adj: Adjustments, kl_per_dim: torch.Tensor, kl_target: float) -> torch.Tensor:
    """Optimism falls and the KL weight rises while the optimistic actor is further than the target from pi_c."""
    gap = kl_per_dim.detach() - kl_target
    return adj.optimism() * gap - adj.regularizer() * gap


class DAC(FastTD3):
    name = "dac"

    def __init__(self, hp: AgentConfig, ctx: Context) -> None:
        super().__init__(hp, ctx)
        dev = self.device
        self.optimistic = self.build_optimistic().to(dev)
        self.optimistic_for_actor = replica(self.optimistic)
        self.optimistic_params = list(self.optimistic.parameters())
        self.optimistic_optimizer = make_optimizer(self.optimistic_params, hp.actor_lr, hp.weight_decay, dev,
                                                   ctx.capturable)  # fmt: skip
        self.adjustments = Adjustments(hp.dac_optimism_init, hp.dac_regularizer_init).to(dev)
        self.adjustment_optimizer = torch.optim.Adam(self.adjustments.parameters(), lr=hp.dac_adjustment_lr,
                                                     betas=(0.5, 0.999))  # fmt: skip

    def build_optimistic(self) -> OptimisticActor:
        hp, spec = self.hp, self.ctx.spec
        return OptimisticActor(spec.obs_dim, spec.act_dim, tuple(hp.actor_hidden), hp.activation,
                               hp.dac_shift_init_scale)  # fmt: skip

    # ---- experience: the optimistic actor explores ----------------------------------------------------------------
    def _act_step(self, inputs: TensorDict) -> TensorDict:
        obs = inputs["obs"]
        if self.hp.normalize_obs:
            self.update_normalizers(inputs)
            obs = self.normalizer(obs)
        action, _, _ = self.optimistic_for_actor(obs, self.policy_for_actor(obs))
        noise = inputs["noise"] * self.hp.dac_std_multiplier
        return TensorDict({"action": (action + noise).clamp(-1.0, 1.0)})

    # ---- learning -----------------------------------------------------------------------------------------------
    def update_actor(self, batch: TensorDict) -> TensorDict:
        hp = self.hp
        batch = self._normalized(batch, self.norm_for_plearner, self.cnorm_for_plearner)
        obs, critic_obs = batch["obs"], batch.get("critic_obs", batch["obs"])
        critic = self.critic_for_plearner
        with self.ctx.autocast():
            action = self.policy(obs)
            loss_c = conservative_loss(critic.q_values(critic(critic_obs, action)), hp.dac_pessimism)
        gradient_step(loss_c, self.actor_optimizer, self.actor_params, hp.max_grad_norm, self._sync("plearner"))
        self.finish_actor_step()
        with torch.no_grad():
            conservative = self.policy(obs)
            optimism, regularizer = self.adjustments.optimism(), self.adjustments.regularizer()
        with self.ctx.autocast():
            optimistic, u_c, u_o = self.optimistic(obs, conservative)
            loss_o, kl = optimistic_loss(critic.q_values(critic(critic_obs, optimistic)), u_c, u_o, optimism,
                                         regularizer, hp.std_max)  # fmt: skip
        gradient_step(loss_o, self.optimistic_optimizer, self.optimistic_params, hp.max_grad_norm,
                      self._sync("plearner"))  # fmt: skip
        loss_adj = adjustment_loss(self.adjustments, kl / u_c.shape[-1], hp.dac_kl_target)
        gradient_step(loss_adj, self.adjustment_optimizer, list(self.adjustments.parameters()), 0.0,
                      self._sync("plearner"))  # fmt: skip
        return TensorDict({"actor_loss": loss_c.detach(), "optimistic_loss": loss_o.detach(), "dac_kl": kl.detach(),
                           "optimism": optimism, "kl_weight": regularizer,
                           "action_abs": conservative.abs().mean()}).float()  # fmt: skip

    # ---- wiring and persistence ---------------------------------------------------------------------------------
    def shared(self) -> list[Shared]:
        return [*super().shared(), Shared("optimistic>actor", self.optimistic, "plearner", self.optimistic_for_actor,
                                          "actor")]  # fmt: skip

    def reset_groups(self) -> list[tuple[nn.Module, nn.Module, torch.optim.Optimizer, list[nn.Module]]]:
        fresh = self.build_optimistic().to(self.device)
        return [*super().reset_groups(), (self.optimistic, fresh, self.optimistic_optimizer, [])]

    def networks(self) -> dict[str, nn.Module]:
        return {**super().networks(), "optimistic_actor": self.optimistic}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "optimistic": self.optimistic.state_dict(),
                "optimistic_optimizer": self.optimistic_optimizer.state_dict(),
                "adjustments": self.adjustments.state_dict(),
                "adjustment_optimizer": self.adjustment_optimizer.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimistic.load_state_dict(state["optimistic"])
        self.optimistic_optimizer.load_state_dict(state["optimistic_optimizer"])
        self.adjustments.load_state_dict(state["adjustments"])
        self.adjustment_optimizer.load_state_dict(state["adjustment_optimizer"])
