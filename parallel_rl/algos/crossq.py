"""CrossQ (Bhatt, Palenicek et al., ICLR 2024) with weight normalization (Palenicek et al. 2025, "Scaling Off-Policy
Reinforcement Learning with Batch and Weight Normalization", arXiv 2502.07523).

Read from the CrossQ reference (adityab/CrossQ: ``sbx/sac/sac.py``, ``sbx/sac/policies.py``, ``train.py``):

- SAC without a target network. Batch renormalization (``nets.BatchRenorm``: momentum 0.99, r_max 3, d_max 5,
  100k warm-up steps of plain batch norm) on the input and after every hidden activation of the critic and the actor;
- critic step: ONE forward pass of the concatenated batch [(s, a); (s', a')], a' ~ pi(.|s') sampled from the policy
  in evaluation mode (running statistics), so that both halves are normalized with the same batch statistics; the
  next half is detached; target r + gamma^n (min_i Q_i(s', a') - alpha log pi(a'|s')); loss 0.5 * squared error,
  mean over the batch, summed over the two critics; the critic's running statistics update in that pass;
- actor step (every 3rd critic step, on the critic's batch): the actor in training mode (its statistics update),
  the critic in evaluation mode; loss E[alpha log pi - min_i Q_i]; then the temperature on that step's
  log-probabilities: loss = -alpha (log pi + H_target), H_target = -act_dim, alpha_0 = 1, Adam (0.9, 0.999);
- networks: critic 2048-2048 ReLU, actor 256-256 ReLU, log-std clipped to [-20, 2]; Adam lr 1e-3 with
  beta1 = 0.5 for both networks; gamma 0.99, batch 256, UTD 1, 5000 random-policy steps first.

Weight normalization (the paper's addition): after every optimizer step, each hidden unit's incoming weight vector
(every linear layer but the output heads) is projected back to unit norm (``nets.project_unit_norm``). Batch
renormalization after those layers makes the network's output invariant to their scale, so the projection changes
no output and keeps the effective learning rate from decaying as weights grow, which lets the UTD ratio rise
(1 to 16) without resets.

A distributional critic (``num_atoms > 1``) is accepted too: the next half's distribution of the member with the
lower mean, projected with the entropy bonus folded into the reward, trained by cross-entropy (the XQC direction).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.base import Role
from parallel_rl.algos.common import categorical_projection, clipped_double_q_distribution, gradient_step
from parallel_rl.algos.sac_family import SACFamily, adam
from parallel_rl.nets import BatchRenorm, EnsembleCritic, EnsembleLinear, SquashedGaussianActor, project_unit_norm


def hidden_weights(module: nn.Module, exclude: tuple[nn.Module, ...]) -> list[torch.Tensor]:
    """The weights of every linear layer in ``module`` except ``exclude`` (the output layers). Each has its
    per-unit input vectors along dim 1 (nn.Linear [out, in]; EnsembleLinear [members, in, out])."""
    return [m.weight for m in module.modules() if isinstance(m, (nn.Linear, EnsembleLinear)) and m not in exclude]


class CrossQ(SACFamily):
    name = "crossq"
    temperature_writer = "plearner"

    def __init__(self, hp, ctx) -> None:
        super().__init__(hp, ctx)
        self.critic_hidden_weights = hidden_weights(self.critic, (self.critic.net[-1],))
        self.actor_hidden_weights = hidden_weights(self.policy, (self.policy.mean, self.policy.log_std))
        if hp.weight_norm:  # start on the unit sphere, as every later step ends there
            project_unit_norm(self.critic_hidden_weights + self.actor_hidden_weights, dim=1)
        self._critic_loss = ctx.compile(self.joint_td_loss)
        self._actor_loss = ctx.compile(self.actor_loss)

    def _brn(self) -> dict:
        hp = self.hp
        return {"momentum": hp.bn_momentum, "r_max": hp.brn_r_max, "d_max": hp.brn_d_max,
                "warmup_steps": hp.brn_warmup_steps}  # fmt: skip

    def build_policy(self, obs_dim: int, act_dim: int) -> SquashedGaussianActor:
        hp = self.hp
        return SquashedGaussianActor(obs_dim, act_dim, hp.actor_hidden, hp.activation, "batchrenorm", self._brn(),
                                     hp.log_std_min, hp.log_std_max, "clip")  # fmt: skip

    def build_critic(self, obs_dim: int, act_dim: int) -> EnsembleCritic:
        hp = self.hp
        return EnsembleCritic(obs_dim, act_dim, hp.critic_hidden, hp.num_atoms, hp.v_min, hp.v_max, hp.num_critics,
                              hp.activation, norm="batchrenorm", brn=self._brn())  # fmt: skip

    def build_alpha_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return adam(params, self.hp.alpha_lr, (0.9, 0.999), 0.0, self.ctx)  # optax.adam's defaults

    # ---- the math -----------------------------------------------------------------------------------------------
    def joint_td_loss(self, batch: TensorDict) -> tuple[torch.Tensor, TensorDict]:
        """Critic loss from one joint pass of [(s, a); (s', a')] through the critic in training mode."""
        critic = self.critic
        critic_obs = batch.get("critic_obs", batch["obs"])
        next_critic_obs = batch.get("next_critic_obs", batch["next_obs"])
        reward, discount = batch["reward"], batch["discount"]
        with torch.no_grad():
            next_action, next_log_prob = self.policy_for_vlearner.sample(batch["next_obs"])
            alpha = self.alpha("vlearner")
        n = reward.shape[0]
        joint = critic(torch.cat([critic_obs, next_critic_obs]), torch.cat([batch["action"], next_action]))
        out, next_out = joint[:, :n], joint[:, n:].detach()
        if critic.distributional:
            with torch.no_grad():
                probs = clipped_double_q_distribution(next_out, critic)
                target = categorical_projection(probs, reward - discount * alpha * next_log_prob, discount,
                                                critic.support)  # fmt: skip
            loss = -(target.unsqueeze(0) * torch.log_softmax(out, dim=-1)).sum(-1).mean(-1).sum()
        else:
            next_q = next_out.squeeze(-1).min(dim=0).values - alpha * next_log_prob
            target = reward + discount * next_q
            loss = 0.5 * (out.squeeze(-1) - target.unsqueeze(0)).square().mean(-1).sum()
        with torch.no_grad():
            q = critic.q_values(out)
        return loss, TensorDict({"critic_loss": loss.detach(), "q_mean": q.mean(), "q_max": q.max(), "alpha": alpha})

    def actor_loss(self, batch: TensorDict) -> tuple[torch.Tensor, TensorDict, torch.Tensor]:
        """(E[alpha log pi(a|s) - min_i Q_i(s, a)], metrics, log pi): the actor in training mode, the critic's
        replica in evaluation mode."""
        action, log_prob = self.policy.sample(batch["obs"], self.policy_generator)
        critic = self.critic_for_plearner
        q = critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action))  # [members, B]
        q = q.min(dim=0).values if self.hp.actor_q_reduction == "min" else q.mean(dim=0)
        loss = (self.alpha("plearner") * log_prob - q).mean()
        metrics = TensorDict({"actor_loss": loss.detach(), "policy_entropy": -log_prob.detach().mean()})
        return loss, metrics, log_prob

    # ---- the steps ----------------------------------------------------------------------------------------------
    def update_critic(self, batch: TensorDict) -> TensorDict:
        self.critic.train()  # batch statistics (an evaluation may have left it in eval mode)
        batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
        with self.ctx.autocast():
            loss, metrics = self._critic_loss(batch)
        gradient_step(loss, self.critic_optimizer, self.critic_params, self.hp.max_grad_norm, self._sync("vlearner"))
        if self.hp.weight_norm:
            project_unit_norm(self.critic_hidden_weights, dim=1)
        self._average_statistics(self.critic, "vlearner")
        return metrics.float()

    def update_actor(self, batch: TensorDict) -> TensorDict:
        self.policy.train()  # batch statistics (the final evaluation puts the deployed policy in eval mode)
        batch = self._normalized(batch, self.norm_for_plearner, self.cnorm_for_plearner)
        with self.ctx.autocast():
            loss, metrics, log_prob = self._actor_loss(batch)
        gradient_step(loss, self.actor_optimizer, self.actor_params, self.hp.max_grad_norm, self._sync("plearner"))
        if self.hp.weight_norm:
            project_unit_norm(self.actor_hidden_weights, dim=1)
        self._average_statistics(self.policy, "plearner")
        metrics["alpha_loss"] = self.temperature_step(log_prob, "plearner")
        return metrics.float()

    @torch.no_grad()
    def critic_loss(self, batch: TensorDict) -> torch.Tensor:
        """The training loss (batch statistics) without side effects: running statistics and RNG restored."""
        self.critic.train()
        stats = [(m.running_mean.clone(), m.running_var.clone(), m.steps.clone()) for m in self._brn_layers()]
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            loss = self.joint_td_loss(self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner))[0]
        for m, (mean, var, steps) in zip(self._brn_layers(), stats):
            m.running_mean.copy_(mean), m.running_var.copy_(var), m.steps.copy_(steps)
        return loss

    @torch.no_grad()
    def _average_statistics(self, module: nn.Module, role: Role) -> None:
        """Multi-rank runs: average the running statistics of ``module``'s batch renormalization over ranks. Each
        rank normalizes with its own batch (as unsynchronized batch norm under data parallelism); averaging the
        running statistics keeps every rank's copy identical, as the averaged gradients keep the weights."""
        if self.ctx.all_reduce_sum is None:
            return
        stats = [t for m in module.modules() if isinstance(m, BatchRenorm) for t in (m.running_mean, m.running_var)]
        flat = torch.cat([t.reshape(-1) for t in stats] + [stats[0].new_ones(1)])  # the last entry counts ranks
        self.ctx.all_reduce_sum(role, flat)
        flat = flat[:-1] / flat[-1]
        offset = 0
        for t in stats:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def _brn_layers(self) -> list[BatchRenorm]:
        return [m for m in self.critic.modules() if isinstance(m, BatchRenorm)]
