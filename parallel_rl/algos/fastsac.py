"""FastSAC (holosoma, Amazon FAR 2025, arXiv 2512.01996): SAC with a C51 twin critic for massively parallel sims.

Read from holosoma's ``agents/fast_sac`` (fast_sac.py, fast_sac_agent.py) and ``config_values/algo.py``:

- policy: tanh-squashed Gaussian, log-std bounded by a tanh into [log_std_min, log_std_max] = [-5, 0], both heads
  initialized at zero; LayerNorm + SiLU MLP 512-256-128;
- critic: C51 twin critic (LayerNorm + SiLU MLP 768-384-192, 101 atoms on [-20, 20]) with a soft target (tau
  0.125). The soft Bellman target of each member is its *own* target network's next distribution, projected with
  the entropy bonus folded into the reward: r' = r - gamma^n * alpha * log pi(a'|s'), a' ~ pi(.|s') (so every
  atom z becomes r + gamma^n (z - alpha log pi)); cross-entropy, mean over the batch, summed over members. There is
  no clipped double-Q in holosoma's target; ``--sac-target min`` takes the member with the lower mean instead;
- temperature: trained right after every critic step, on the next-state log-probabilities of that step:
  loss = -alpha (log pi + H_target), H_target = -act_dim * 0 (holosoma's target_entropy_ratio 0), alpha_0 = 0.001,
  AdamW (torch's default weight decay 0.01, which holosoma inherits) with the networks' betas (0.9, 0.95);
- actor: maximizes the *mean* over members of the expected Q minus alpha log pi, on the critic's last batch,
  once per 4 critic updates (policy_frequency 4 with 8 updates per env step: ``policy_ratio`` 0.25);
- AdamW lr 3e-4, betas (0.9, 0.95), weight decay 0.001; no gradient clipping; gamma 0.97, batch 8192.

A scalar critic (``num_atoms = 1``) trains by 0.5 * squared error against r + gamma^n (Q'(s', a') - alpha log pi);
the torchrl test oracle checks that form against ``torchrl.objectives.SACLoss``.

``--critic-arch bronet|simbav2|normed`` replaces the critic MLP by that family (``nets.families``; BRO and FlashSAC
were published with SAC): weights projected after every critic step and soft update, and a critic normalized by
batch statistics sees (s, a) and (s', a') in one pass, as in FastTD3. The Gaussian actor stays an MLP.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.common import (
    categorical_projection,
    clipped_double_q_distribution,
    critic_outputs,
    gradient_step,
    replica,
    soft_update,
)
from parallel_rl.algos.sac_family import SACFamily, adam
from parallel_rl.nets import EnsembleCritic, SquashedGaussianActor, resolve_spec
from parallel_rl.nets.norms import has_projection, project_weights_


class FastSAC(SACFamily):
    name = "fastsac"
    temperature_writer = "vlearner"

    def __init__(self, hp, ctx) -> None:
        super().__init__(hp, ctx)
        self.critic_target = replica(self.critic)
        self._critic_loss = ctx.compile(self.soft_td_loss)
        self._actor_loss = ctx.compile(self.actor_loss)

    def build_policy(self, obs_dim: int, act_dim: int) -> SquashedGaussianActor:
        hp = self.hp
        return SquashedGaussianActor(obs_dim, act_dim, hp.actor_hidden, hp.activation,
                                     "layer" if hp.layer_norm else "none", None, hp.log_std_min, hp.log_std_max,
                                     "tanh", zero_init_heads=True)  # fmt: skip

    def build_critic(self, obs_dim: int, act_dim: int) -> EnsembleCritic:
        hp = self.hp
        arch = resolve_spec("critic", hp.critic_arch, hp.critic_width, hp.critic_depth, tuple(hp.critic_hidden),
                            hp.activation, hp.normed_norm)  # fmt: skip
        return EnsembleCritic(obs_dim, act_dim, hp.critic_hidden, hp.num_atoms, hp.v_min, hp.v_max, hp.num_critics,
                              hp.activation, spec=arch, norm="layer" if hp.layer_norm else "none")  # fmt: skip

    def build_alpha_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return adam(params, self.hp.alpha_lr, tuple(self.hp.adam_betas), 0.01, self.ctx)

    # ---- the math -----------------------------------------------------------------------------------------------
    def soft_td_loss(self, batch: TensorDict) -> tuple[torch.Tensor, TensorDict, torch.Tensor]:
        """(critic loss, metrics, log pi(a'|s')) on a normalized batch; target actions from the V-learner's policy
        replica, sampled with the default generator."""
        hp, critic = self.hp, self.critic
        critic_obs = batch.get("critic_obs", batch["obs"])
        next_critic_obs = batch.get("next_critic_obs", batch["next_obs"])
        reward, discount = batch["reward"], batch["discount"]
        with torch.no_grad():
            next_action, next_log_prob = self.policy_for_vlearner.sample(batch["next_obs"])
        # [members, B, atoms] each; one joint pass for a critic normalized by batch statistics
        out, target_out = critic_outputs(critic, self.critic_target, critic_obs, batch["action"], next_critic_obs,
                                         next_action)  # fmt: skip
        with torch.no_grad():
            alpha = self.alpha("vlearner")
            if critic.distributional:
                soft_reward = reward - discount * alpha * next_log_prob
                if hp.sac_target == "min":
                    probs = clipped_double_q_distribution(target_out, critic)  # [B, atoms]
                    target = categorical_projection(probs, soft_reward, discount, critic.support).unsqueeze(0)
                else:  # each member's own target distribution, projected per member
                    members = target_out.shape[0]
                    target = categorical_projection(torch.softmax(target_out, dim=-1), soft_reward.expand(members, -1),
                                                    discount.expand(members, -1), critic.support)  # fmt: skip
            else:
                next_q = target_out.squeeze(-1)
                if hp.sac_target == "min":
                    next_q = next_q.min(dim=0, keepdim=True).values
                target = reward + discount * (next_q - alpha * next_log_prob)  # [members or 1, B]
        if critic.distributional:
            loss = -(target * torch.log_softmax(out, dim=-1)).sum(-1).mean(-1).sum()
        else:
            loss = 0.5 * (out.squeeze(-1) - target).square().mean(-1).sum()
        with torch.no_grad():
            q = critic.q_values(out)
        metrics = TensorDict({"critic_loss": loss.detach(), "q_mean": q.mean(), "q_max": q.max(), "alpha": alpha,
                              "entropy": -next_log_prob.mean()})  # fmt: skip
        return loss, metrics, next_log_prob

    def actor_loss(self, batch: TensorDict) -> tuple[torch.Tensor, TensorDict]:
        """E[alpha log pi(a|s) - mean_i Q_i(s, a)], a ~ pi(.|s) reparameterized (P-learner's generator)."""
        action, log_prob = self.policy.sample(batch["obs"], self.policy_generator)
        critic = self.critic_for_plearner
        q = critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action))  # [members, B]
        q = q.min(dim=0).values if self.hp.actor_q_reduction == "min" else q.mean(dim=0)
        loss = (self.alpha("plearner") * log_prob - q).mean()
        return loss, TensorDict({"actor_loss": loss.detach(), "policy_entropy": -log_prob.detach().mean()})

    # ---- the steps ----------------------------------------------------------------------------------------------
    def update_critic(self, batch: TensorDict) -> TensorDict:
        batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
        with self.ctx.autocast():
            loss, metrics, next_log_prob = self._critic_loss(batch)
        gradient_step(loss, self.critic_optimizer, self.critic_params, self.hp.max_grad_norm, self._sync("vlearner"))
        metrics["alpha_loss"] = self.temperature_step(next_log_prob, "vlearner")
        if has_projection(self.critic):  # SimbaV2, normed: unit-norm weights, the target's too after averaging
            project_weights_(self.critic)
        soft_update(self.critic_target, self.critic, self.hp.tau)
        if has_projection(self.critic_target):
            project_weights_(self.critic_target)
        return metrics.float()

    def update_actor(self, batch: TensorDict) -> TensorDict:
        batch = self._normalized(batch, self.norm_for_plearner, self.cnorm_for_plearner)
        with self.ctx.autocast():
            loss, metrics = self._actor_loss(batch)
        gradient_step(loss, self.actor_optimizer, self.actor_params, self.hp.max_grad_norm, self._sync("plearner"))
        return metrics.float()

    @torch.no_grad()
    def critic_loss(self, batch: TensorDict) -> torch.Tensor:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
            return self.soft_td_loss(batch)[0]

    # ---- persistence --------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"critic_target": self.critic_target.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.critic_target.load_state_dict(state["critic_target"])
