"""Math shared by the TD3-family algorithms: C51 projection, clipped double-Q, TD losses, soft target updates, the
optimizer step every algorithm takes, and ``TD3Family``, the structure FastTD3 and PQL share."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos import closed_form
from parallel_rl.algos.base import Algorithm, Context, Role, Shared
from parallel_rl.algos.resets import selected_parameters, shrink_and_perturb_, zero_optimizer_state_
from parallel_rl.algos.reward_normalization import ReturnScaleTracker
from parallel_rl.fasttd import replaced
from parallel_rl.nets import (
    Actor,
    EnsembleCritic,
    RunningNorm,
    has_projection,
    project_weights_,
    resolve_spec,
    uses_batch_statistics,
)
from parallel_rl.nets.task import make_actor, make_critic
from parallel_rl.optim import FastAdamW

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig


def categorical_projection(
    next_probs: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Project the distribution of ``reward + discount * Z`` back onto ``support`` (C51, Bellemare et al. 2017).

    next_probs: [B, A] probabilities on ``support`` (or [M, B, A]: M distributions per sample, projected with the
    same reward and discount); reward, discount: [B]. Returns next_probs' shape, each row summing to the row's input
    mass. Each shifted atom splits its mass between its two neighbours in proportion to distance; a target exactly
    on an atom gives all its mass to that atom (the lower/upper weights are 1 and 0), which avoids the anchors' bug
    of giving it twice (or losing it) when floor == ceil. Targets outside the support are clamped to its ends.
    """
    lower_idx, upper_idx, upper_w = projection_indices(reward, discount, support)
    if next_probs.dim() == 3:  # the indices and weights depend on the sample only: computed once for all members
        lower_idx, upper_idx = (i.expand_as(next_probs) for i in (lower_idx, upper_idx))
    out = torch.zeros_like(next_probs)
    out.scatter_add_(-1, lower_idx, next_probs * (1 - upper_w))
    out.scatter_add_(-1, upper_idx, next_probs * upper_w)
    return out


def projection_indices(
    reward: torch.Tensor, discount: torch.Tensor, support: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower atom, upper atom, upper weight) of each shifted atom ``reward + discount * z``, each [B, A]."""
    num_atoms = support.shape[0]
    v_min, v_max, delta = _support_constants(support)
    tz = (reward.unsqueeze(-1) + discount.unsqueeze(-1) * support).clamp(v_min, v_max)
    # nan_to_num: a NaN reward (a broken env) must not become an out-of-range index before the run's finite
    # check stops it at the next log row; clamp alone keeps NaN, and NaN.long() is a huge negative index.
    b = torch.nan_to_num((tz - v_min) / delta, nan=0.0).clamp(0, num_atoms - 1)
    # b >= 0: truncation is the floor, so frac(b) = b - floor(b) and b.long() = floor(b), in two kernels, not three
    upper_w = torch.frac(b)  # in [0, 1); 0 when the target sits on an atom
    lower_idx = b.long()  # within [0, num_atoms - 1] already
    upper_idx = (lower_idx + 1).clamp(max=num_atoms - 1)
    return lower_idx, upper_idx, upper_w


#: id(support) -> (weak reference to it, its version, v_min, v_max, spacing); a handful of supports per run.
_SUPPORT_CONSTANTS: dict[int, tuple] = {}


def _support_constants(support: torch.Tensor) -> tuple:
    """(v_min, v_max, atom spacing) of a C51 support, the spacing computed in the support's precision. On a CPU as
    Python floats holding exactly those float32 values (the same arithmetic as the 0-d tensors, without the four
    small kernels that make them every update), kept per support tensor until it is written; elsewhere tensors
    (no device sync)."""
    if support.device.type != "cpu":
        v_min, v_max = support[0], support[-1]
        return v_min, v_max, (v_max - v_min) / (support.shape[0] - 1)
    cached = _SUPPORT_CONSTANTS.get(id(support))
    if cached is None or cached[0]() is not support or cached[1] != support._version:
        v_min, v_max = support[0], support[-1]
        delta = (v_max - v_min) / (support.shape[0] - 1)
        cached = (weakref.ref(support), support._version, float(v_min), float(v_max), float(delta))
        _SUPPORT_CONSTANTS[id(support)] = cached
    return cached[2:]


def clipped_double_q_distribution(target_out: torch.Tensor, critic: EnsembleCritic) -> torch.Tensor:
    """Per sample, the target distribution of the ensemble member with the lowest mean. [members, B, A] -> [B, A].

    Choosing a whole distribution (rather than an atom-wise minimum) keeps it a valid distribution; choosing the
    lowest mean is the distributional analogue of TD3's min(Q1, Q2).
    """
    probs = torch.softmax(target_out, dim=-1)
    means = (probs * critic.support).sum(-1)  # [members, B]
    pick = means.argmin(dim=0)  # [B]
    return probs.gather(0, pick.view(1, -1, 1).expand(1, -1, probs.shape[-1])).squeeze(0)


def projected_clipped_double_q(
    target_out: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Per sample, project every member's target distribution onto ``support`` and keep the projection with the
    lowest mean (FastTD3's reference order: project, then pick). [members, B, A] -> [B, A]."""
    members, batch, atoms = target_out.shape
    projected = categorical_projection(torch.softmax(target_out, dim=-1), reward, discount, support)
    pick = (projected * support).sum(-1).argmin(dim=0)  # [B]; ties take the first member, as the reference's '<'
    if members == 2:  # the same choice as the gather below, without a gather along the member dimension
        return torch.where(pick.bool().unsqueeze(-1), projected[1], projected[0])
    return projected.gather(0, pick.view(1, -1, 1).expand(1, -1, atoms)).squeeze(0)


def td_target(critic: EnsembleCritic, target_out: torch.Tensor, batch, cdq_pick: str = "unprojected") -> torch.Tensor:
    """The clipped double-Q target ``td_loss`` fits, from the target critic's output [members, B, atoms].

    Distributional: the projected target distribution [B, atoms] of the member picked by the lower mean of its
    projected target (``cdq_pick='projected'``) or of its next-state distribution ('unprojected'). Scalar: ``reward
    + discount * min_i Q_i'`` [B]. ``batch`` supplies ``reward`` and ``discount`` (gamma**n, 0 if terminated).
    """
    reward, discount = batch["reward"], batch["discount"]
    if critic.distributional:
        if cdq_pick == "projected":
            return projected_clipped_double_q(target_out, reward, discount, critic.support)
        return categorical_projection(clipped_double_q_distribution(target_out, critic), reward, discount,
                                      critic.support)  # fmt: skip
    return reward + discount * target_out.squeeze(-1).min(dim=0).values


def td_loss(
    critic: EnsembleCritic, out: torch.Tensor, target_out: torch.Tensor, batch, cdq_pick: str = "unprojected"
) -> torch.Tensor:
    """Critic loss summed over ensemble members against ``td_target``: cross-entropy with the projected target
    distribution (C51), squared error with the target Q (scalar)."""
    target = td_target(critic, target_out, batch, cdq_pick)
    if critic.distributional:
        log_probs = torch.log_softmax(out, dim=-1)
        return -(target.unsqueeze(0) * log_probs).sum(-1).mean(-1).sum()
    return (out.squeeze(-1) - target.unsqueeze(0)).square().mean(-1).sum()


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- target + tau * (source - target), fused over all parameters."""
    soft_update_params(list(target.parameters()), list(source.parameters()), tau)


@torch.no_grad()
def soft_update_params(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """``soft_update`` on parameter lists (kept by callers that update every step)."""
    torch._foreach_lerp_(target, source, tau)


def critic_outputs(
    critic: EnsembleCritic,
    critic_target: EnsembleCritic,
    obs: torch.Tensor,
    action: torch.Tensor,
    next_obs: torch.Tensor,
    next_action: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(critic output at (s, a), target output at (s', a')), each [members, B, atoms]. A critic normalized by batch
    statistics sees [s; s'] in one forward pass (CrossQ; FlashSAC does so for its target too), so both halves share
    the same statistics; other critics take the two batches separately."""
    if not uses_batch_statistics(critic):
        with torch.no_grad():
            target_out = critic_target(next_obs, next_action)
        return critic(obs, action), target_out
    n = obs.shape[0]
    both_obs, both_action = torch.cat([obs, next_obs]), torch.cat([action, next_action])
    with torch.no_grad():
        target_out = critic_target(both_obs, both_action)[:, n:]
    return critic(both_obs, both_action)[:, :n], target_out


def td3_critic_loss(critic: EnsembleCritic, critic_target: EnsembleCritic, actor: nn.Module, batch, hp):
    """TD3-family critic loss: target action from the current actor (no actor target) with clipped smoothing noise
    of std ``hp.target_noise``, clipped double-Q target, n-step reward/discount from the batch. Returns (loss,
    metrics). Uses the privileged ``critic_obs`` when the batch has them (asymmetric actor-critic)."""
    critic_obs = batch.get("critic_obs", batch["obs"])
    next_critic_obs = batch.get("next_critic_obs", batch["next_obs"])
    with torch.no_grad():
        next_action = smoothed_action(actor(batch["next_obs"]), hp.target_noise, hp.target_noise_clip)
    out, target_out = critic_outputs(critic, critic_target, critic_obs, batch["action"], next_critic_obs, next_action)
    loss = td_loss(critic, out, target_out, batch, hp.cdq_pick)
    with torch.no_grad():
        q = critic.q_values(out)
    return loss, TensorDict({"critic_loss": loss.detach(), "q_mean": q.mean(), "q_max": q.max()})


def td3_actor_loss(
    actor: nn.Module, critic: EnsembleCritic, batch, reduction: str, action_l2: float = 0.0
) -> tuple[torch.Tensor, TensorDict]:
    """Deterministic policy gradient: maximize the critics' expected Q of the actor's action, reduced over the
    ensemble by ``reduction`` ('min': clipped double-Q, 'mean'), plus ``action_l2`` x mean(a^2) (``--action-l2``,
    HER's penalty; off by default). Uses ``critic_obs`` when the batch has them."""
    action = actor(batch["obs"])
    q = critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action))  # [members, B]
    q = q.min(dim=0).values if reduction == "min" else q.mean(dim=0)
    loss = -q.mean()
    if action_l2 > 0:  # a Python constant: the default graph is unchanged
        loss = loss + action_l2 * action.square().mean()
    return loss, TensorDict({"actor_loss": loss.detach(), "action_abs": action.detach().abs().mean()})


def smoothed_action(action: torch.Tensor, noise_std: float, noise_clip: float) -> torch.Tensor:
    """TD3's target policy smoothing in the [-1, 1] action space."""
    if noise_std <= 0:
        return action
    noise = torch.randn_like(action).mul_(noise_std).clamp_(-noise_clip, noise_clip)
    return noise.add_(action).clamp_(-1.0, 1.0)  # in place on the fresh noise: the same values, fewer allocations


# ---- optimisation steps shared by every algorithm --------------------------------------------------------------
def make_optimizer(
    params, lr: float, weight_decay: float, device: torch.device, capturable: bool = False
) -> torch.optim.Optimizer:
    """AdamW, fused (one kernel for all parameters; on a CPU measured 1.7x to 2.8x faster than foreach at the
    default and FastTD3's critic sizes), stepped without torch.optim's per-step Python (``parallel_rl.optim``: the
    same kernel, bitwise the same result). ``capturable`` keeps its step counts on the device, which CUDA graphs
    need."""
    return FastAdamW(params, lr=lr, weight_decay=weight_decay, capturable=capturable)


def gradient_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    max_norm: float,
    sync_grads: Callable[[list[nn.Parameter]], None] | None = None,
) -> None:
    """zero_grad -> backward -> (average gradients over ranks) -> clip to ``max_norm`` (0: no clipping) -> step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    apply_gradients(optimizer, params, max_norm, sync_grads)


def apply_gradients(
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    max_norm: float,
    sync_grads: Callable[[list[nn.Parameter]], None] | None = None,
) -> None:
    """The part of ``gradient_step`` after the gradients exist: (average over ranks) -> clip -> step."""
    if sync_grads is not None:
        sync_grads(params)
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    if not (isinstance(optimizer, FastAdamW) and optimizer.try_fast_step()):
        optimizer.step()


def _normalized_pair(norm: nn.Module, obs: torch.Tensor, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``norm(obs), norm(next_obs)`` in one pass over both (elementwise, so the same values, with half the kernel
    launches: at batch 256 on a CPU each launch costs more than its arithmetic)."""
    both = norm(torch.cat([obs, next_obs]))
    return both[: obs.shape[0]], both[obs.shape[0] :]


def replica(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module``: another role's view of it, refreshed by the runtime's channels."""
    return copy.deepcopy(module).requires_grad_(False)


class ActorCriticScaffold(Algorithm):
    """The structure every actor-critic family here shares, written once: running observation normalizers owned by
    the actor role, a replica for each cross-role read (the acting and target-action policies, the P-learner's
    critic, the learners' normalizers), the normalized batch, gradient synchronization, the publication list and
    the persistence of those parts. Subclasses build the networks and optimizers and write the math."""

    policy: nn.Module
    critic: nn.Module
    normalizer: RunningNorm
    critic_normalizer: RunningNorm | None
    critic_optimizer: torch.optim.Optimizer
    actor_optimizer: torch.optim.Optimizer
    generator: torch.Generator

    def make_replicas(self) -> None:
        """Replicas, all in evaluation mode (batch-normalized families use their running statistics there, as
        FlashSAC's training=False and CrossQ's reference do; the trained networks use the batch), and the
        parameter lists of the two optimizers."""
        self.policy_for_actor, self.policy_for_vlearner = replica(self.policy).eval(), replica(self.policy).eval()
        self.critic_for_plearner = replica(self.critic).eval()
        self.norm_for_vlearner, self.norm_for_plearner = replica(self.normalizer), replica(self.normalizer)
        self.cnorm_for_vlearner = self.cnorm_for_plearner = None
        if self.critic_normalizer is not None:
            self.cnorm_for_vlearner = replica(self.critic_normalizer)
            self.cnorm_for_plearner = replica(self.critic_normalizer)
        self.critic_params, self.actor_params = list(self.critic.parameters()), list(self.policy.parameters())

    def update_normalizers(self, inputs: TensorDict) -> None:
        """Rollout statistics (the actor role's), summed over ranks when distributed."""
        reduce = None if self.ctx.all_reduce_sum is None else self._reduce_actor
        self.normalizer.update(inputs["obs"], reduce)
        if self.critic_normalizer is not None:
            self.critic_normalizer.update(inputs["critic_obs"], reduce)

    def _reduce_actor(self, t: torch.Tensor) -> torch.Tensor:
        return self.ctx.all_reduce_sum("actor", t)

    def _normalized(
        self, batch: TensorDict, norm: nn.Module, cnorm: nn.Module | None, next_obs: bool = True
    ) -> TensorDict:
        """A shallow copy of ``batch`` with normalized observations (the caller's tensors stay untouched). Without
        ``next_obs`` (a policy loss that reads none) the next observations are left out of the copy, not
        normalized."""
        if not self.hp.normalize_obs:
            return batch
        if not next_obs:
            updates = {"obs": norm(batch["obs"])}
            if cnorm is not None:
                updates["critic_obs"] = cnorm(batch["critic_obs"])
            return replaced(batch, updates, drop=("next_obs", "next_critic_obs"))
        updates = dict(zip(("obs", "next_obs"), _normalized_pair(norm, batch["obs"], batch["next_obs"])))
        if cnorm is not None:
            updates.update(zip(("critic_obs", "next_critic_obs"),
                               _normalized_pair(cnorm, batch["critic_obs"], batch["next_critic_obs"])))  # fmt: skip
        return replaced(batch, updates)

    def _sync(self, role: Role) -> Callable[[list[nn.Parameter]], None] | None:
        if self.ctx.sync_grads is None:
            return None
        return lambda params: self.ctx.sync_grads(role, params)

    def shared_core(self, may_alias: bool) -> list[Shared]:
        """The policy to the actor and the V-learner, the critic to the P-learner, the normalizers to both
        learners."""
        out = [
            Shared("policy>actor", self.policy, "plearner", self.policy_for_actor, "actor", may_alias),
            Shared("policy>vlearner", self.policy, "plearner", self.policy_for_vlearner, "vlearner", may_alias),
            Shared("critic>plearner", self.critic, "vlearner", self.critic_for_plearner, "plearner", may_alias),
            Shared("normalizer>vlearner", self.normalizer, "actor", self.norm_for_vlearner, "vlearner", may_alias),
            Shared("normalizer>plearner", self.normalizer, "actor", self.norm_for_plearner, "plearner", may_alias),
        ]
        if self.critic_normalizer is not None:
            out += [
                Shared("critic_normalizer>vlearner", self.critic_normalizer, "actor", self.cnorm_for_vlearner,
                       "vlearner", may_alias),
                Shared("critic_normalizer>plearner", self.critic_normalizer, "actor", self.cnorm_for_plearner,
                       "plearner", may_alias),
            ]  # fmt: skip
        return out

    def deployed_modules(self) -> tuple[nn.Module, nn.Module]:
        return self.normalizer, self.policy

    def state_core(self) -> dict[str, Any]:
        return {
            "actor": self.policy.state_dict(),
            "critic": self.critic.state_dict(),
            "normalizer": self.normalizer.state_dict(),
            "critic_normalizer": None if self.critic_normalizer is None else self.critic_normalizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_core(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.normalizer.load_state_dict(state["normalizer"])
        if self.critic_normalizer is not None:
            self.critic_normalizer.load_state_dict(state["critic_normalizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.generator.set_state(state["generator"])


class TD3Family(ActorCriticScaffold):
    """The shape FastTD3 and PQL share: a deterministic tanh actor, an ensemble critic (C51 or scalar) with a soft
    target, running observation normalizers (one for the actor's obs, one for privileged critic obs), per-env
    Gaussian exploration, AdamW. Subclasses say how each env's exploration std evolves and how the actor reduces
    over critics.

    Ownership by role: the actor role owns the normalizers (rollout statistics) and the exploration state; the
    V-learner owns the critic and its target; the P-learner owns the policy. Every cross-role read goes through a
    replica (``shared``)."""

    def __init__(self, hp: AgentConfig, ctx: Context) -> None:
        spec, dev = ctx.spec, ctx.device
        self.hp, self.ctx, self.device = hp, ctx, dev
        # Multi-task specs (envs.multitask) carry the task id as the last observation column: the normalizer passes
        # it through, and actor and critic are conditioned on it (nets.task; plain networks for one task).
        self.normalizer = RunningNorm(spec.obs_dim, passthrough=1 if spec.task_dims else 0, formula=hp.obs_norm).to(dev)
        self.critic_normalizer = None
        if spec.critic_obs_dim is not None:
            self.critic_normalizer = RunningNorm(spec.critic_obs_dim, formula=hp.obs_norm).to(dev)
        self.policy = self.build_policy().to(dev)
        self.critic = self.build_critic().to(dev)
        # Rewards are stored scaled by reward_scale, times the task's own scale in multi-task runs (by task id).
        self.task_reward_scale = None
        if hp.task_reward_scales:
            if len(hp.task_reward_scales) != len(spec.task_names):
                raise ValueError(
                    f"--task-reward-scales: {len(hp.task_reward_scales)} scales for a model of "
                    f"{len(spec.task_names)} task(s) ({', '.join(spec.task_names) or 'single-task'})"
                )
            self.task_reward_scale = torch.tensor(hp.task_reward_scales, dtype=torch.float32, device=dev)
        # --reward-normalization brc (algos/reward_normalization.py): the actor role tracks each task's return scale,
        # the V-learner rescales sampled rewards with its replica of the bounds.
        self.return_scale = self.bounds_for_vlearner = None
        if hp.reward_normalization == "brc":
            if ctx.all_reduce_sum is not None:
                raise ValueError("--reward-normalization brc: one rank only (ranks would see different returns)")
            self.return_scale = ReturnScaleTracker(spec.num_envs, max(1, len(spec.task_names)),
                                                   spec.max_episode_steps, hp.gamma, dev)  # fmt: skip
            self.bounds_for_vlearner = replica(self.return_scale.bounds)
        self.critic_target = replica(self.critic)
        self.make_replicas()
        # Fixed once the networks are built (resets and checkpoints change values in place): walking the modules for
        # them every step took a third of the step's bookkeeping at small sizes.
        self._critic_projects, self._policy_projects = has_projection(self.critic), has_projection(self.policy)
        self._target_params = list(self.critic_target.parameters())
        self.critic_optimizer = make_optimizer(self.critic_params, hp.critic_lr, hp.weight_decay, dev, ctx.capturable)
        self.actor_optimizer = make_optimizer(self.actor_params, hp.actor_lr, hp.weight_decay, dev, ctx.capturable)
        # Exploration: per-env noise std and the generator of every exploration draw (rollouts own both).
        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(ctx.seed)
        self.noise_std = self.initial_noise_std(spec.num_envs)
        self._noise = torch.zeros(spec.num_envs, spec.act_dim, device=dev)
        self._act = ctx.graph(self._act_step)
        self._critic_loss = ctx.compile(td3_critic_loss)
        self._actor_loss = ctx.compile(self.actor_loss)
        # The eager CPU fast path (closed_form.py): the same losses and gradients without autograd, for plain ReLU
        # networks and the TD3-family losses as written here (subclasses with their own actor loss keep autograd).
        self._closed_form_critic = ctx.closed_form and closed_form.critic_applies(self.critic, self.critic_target)
        self._plain_target_actor = closed_form.actor_applies(self.policy_for_vlearner)  # fixed once built
        self._closed_form_actor = (ctx.closed_form and type(self).actor_loss is TD3Family.actor_loss
                                   and closed_form.actor_applies(self.policy, self.critic_for_plearner))  # fmt: skip

    # ---- networks (``--critic-arch``/``--actor-arch``: ``nets.families``) --------------------------------------------
    def build_policy(self) -> Actor:
        hp, spec = self.hp, self.ctx.spec
        arch = resolve_spec("actor", hp.actor_arch, hp.actor_width, hp.actor_depth, tuple(hp.actor_hidden),
                            hp.activation, hp.normed_norm)  # fmt: skip
        # Multi-task specs: conditioned on the task (nets.task); a plain Actor otherwise.
        return make_actor(spec.obs_dim, spec.act_dim, hp.actor_hidden, hp.activation, spec.task_dims,
                          hp.task_embedding_dim, spec=arch, init_scale=hp.actor_init_scale)  # fmt: skip

    def build_critic(self) -> EnsembleCritic:
        hp, spec = self.hp, self.ctx.spec
        arch = resolve_spec("critic", hp.critic_arch, hp.critic_width, hp.critic_depth, tuple(hp.critic_hidden),
                            hp.activation, hp.normed_norm)  # fmt: skip
        return make_critic(spec.critic_obs_dim or spec.obs_dim, spec.act_dim, spec.task_dims, hp.task_embedding_dim,
                           hidden=hp.critic_hidden, num_atoms=hp.num_atoms, v_min=hp.v_min, v_max=hp.v_max,
                           members=hp.num_critics, act=hp.activation, spec=arch)  # fmt: skip

    def finish_critic_step(self) -> None:
        """After a critic optimizer step: weight-norm projection (SimbaV2, normed), soft target update, and the
        projection of the target (an average of unit vectors is shorter than one)."""
        if self._critic_projects:
            project_weights_(self.critic)
        soft_update_params(self._target_params, self.critic_params, self.hp.tau)
        if self._critic_projects:
            project_weights_(self.critic_target)

    def finish_actor_step(self) -> None:
        if self._policy_projects:
            project_weights_(self.policy)

    # ---- resets (``--reset-every``; the runtime decides when) -------------------------------------------------------
    def reset_groups(self) -> list[tuple[nn.Module, nn.Module, torch.optim.Optimizer, list[nn.Module]]]:
        """(network, freshly initialized twin, its optimizer, targets that follow it) for every trained network."""
        fresh_policy, fresh_critic = self.build_policy().to(self.device), self.build_critic().to(self.device)
        return [(self.policy, fresh_policy, self.actor_optimizer, []),
                (self.critic, fresh_critic, self.critic_optimizer, [self.critic_target])]  # fmt: skip

    def reset_networks(self, layers: str = "all", shrink: float = 0.0) -> None:
        """Re-initialize (``shrink`` = 0) or shrink-and-perturb every network's ``layers`` and zero their optimizer
        state; targets get the same treatment with the same fresh weights. Normalizers, exploration state and
        anything the runtime owns (buffer, counters) are untouched. The runtime republishes the replicas."""
        for net, fresh, optimizer, targets in self.reset_groups():
            names = selected_parameters(net, "net", layers)
            shrink_and_perturb_(net, fresh, shrink, names)
            params = dict(net.named_parameters())
            zero_optimizer_state_(optimizer, [params[n] for n in sorted(names)])
            for target in targets:
                shrink_and_perturb_(target, fresh, shrink, names)

    # ---- what subclasses define ---------------------------------------------------------------------------------
    def initial_noise_std(self, num_envs: int) -> torch.Tensor:
        raise NotImplementedError

    def noise_std_after_step(self, std: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Each env's std after a step in which ``done`` envs ended their episode."""
        raise NotImplementedError

    def actor_loss(
        self, actor: nn.Module, critic: EnsembleCritic, batch: TensorDict
    ) -> tuple[torch.Tensor, TensorDict]:
        """Deterministic policy gradient against the critics reduced by ``--actor-q-reduction`` (FastTD3, PQL)."""
        return td3_actor_loss(actor, critic, batch, self.hp.actor_q_reduction, self.hp.action_l2)

    # ---- experience ---------------------------------------------------------------------------------------------
    def _act_step(self, inputs: TensorDict) -> TensorDict:
        obs = inputs["obs"]
        if self.hp.normalize_obs:
            self.update_normalizers(inputs)
        mean_action = self.policy_for_actor(self.normalizer(obs) if self.hp.normalize_obs else obs)
        action = mean_action + inputs["noise"]
        if self.hp.clip_stored_actions:
            action = action.clamp(-1.0, 1.0)
        encoder = getattr(self.policy_for_actor, "encoder", None)
        if encoder is not None:  # multi-task: padded action dimensions are never explored (stored as 0)
            action = action * encoder.action_mask(obs)
        return TensorDict({"action": action})

    @torch.no_grad()
    def act(self, obs: TensorDict, explore: bool) -> torch.Tensor:
        if not explore:
            return self.policy_for_actor(self.normalizer(obs["obs"]) if self.hp.normalize_obs else obs["obs"])
        # Noise is drawn outside the (optionally graphed) step: it comes from the algorithm's own generator.
        torch.randn(self._noise.shape, generator=self.generator, device=self.device, out=self._noise)
        inputs = {"obs": obs["obs"], "noise": self._noise * self.noise_std.unsqueeze(-1)}
        if self.critic_normalizer is not None:
            inputs["critic_obs"] = obs["critic_obs"]
        action = self._act(TensorDict(inputs))["action"]
        return action.clone()  # a graph's output tensor is overwritten by its next replay

    @torch.no_grad()
    def observe(self, transition: TensorDict) -> TensorDict:
        done = transition["terminated"] | transition["truncated"]
        self.noise_std.copy_(self.noise_std_after_step(self.noise_std, done))  # in place: graphs may read it
        reward = transition["reward"] * self.hp.reward_scale
        if self.task_reward_scale is not None:
            reward = reward * self.task_reward_scale[transition["task_id"]]
        transition["reward"] = reward
        if self.return_scale is not None:
            task = transition["task_id"] if "task_id" in transition.keys() else torch.zeros_like(done, dtype=torch.long)
            self.return_scale.observe(reward, transition["terminated"], transition["truncated"], task)
        return transition

    # ---- learning -----------------------------------------------------------------------------------------------
    def _normalized(
        self, batch: TensorDict, norm: nn.Module, cnorm: nn.Module | None, next_obs: bool = True
    ) -> TensorDict:
        """The scaffold's normalized shallow copy; for the V-learner (``norm`` its normalizer) also rewards rescaled
        per task by ``--reward-normalization brc``."""
        if self.bounds_for_vlearner is not None and norm is self.norm_for_vlearner:
            batch = batch.copy()
            task = (batch["obs"][..., -1].round().long() if self.ctx.spec.task_dims
                    else torch.zeros_like(batch["reward"], dtype=torch.long))  # fmt: skip
            batch["reward"] = batch["reward"] * self.bounds_for_vlearner.reward_factor(task, self.hp.v_max)
        return super()._normalized(batch, norm, cnorm, next_obs)

    def update_critic(self, batch: TensorDict) -> TensorDict:
        batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
        if self._closed_form_critic:  # td3_critic_loss and its backward, without autograd
            self.critic_optimizer.zero_grad(set_to_none=True)
            _, metrics = closed_form.td3_critic_grads(self.critic, self.critic_target, self.policy_for_vlearner, batch,
                                                      self.hp, self._plain_target_actor)  # fmt: skip
            apply_gradients(self.critic_optimizer, self.critic_params, self.hp.max_grad_norm, self._sync("vlearner"))
            self.finish_critic_step()
            return metrics  # float32 already: this path never autocasts
        with self.ctx.autocast():
            loss, metrics = self._critic_loss(self.critic, self.critic_target, self.policy_for_vlearner, batch, self.hp)
        gradient_step(loss, self.critic_optimizer, self.critic_params, self.hp.max_grad_norm, self._sync("vlearner"))
        self.finish_critic_step()
        return metrics.float()

    def update_actor(self, batch: TensorDict) -> TensorDict:
        if self._closed_form_actor:  # td3_actor_loss and its backward, without autograd
            batch = self._normalized(batch, self.norm_for_plearner, self.cnorm_for_plearner, next_obs=False)
            self.actor_optimizer.zero_grad(set_to_none=True)
            _, metrics = closed_form.td3_actor_grads(self.policy, self.critic_for_plearner, batch,
                                                     self.hp.actor_q_reduction, self.hp.action_l2)  # fmt: skip
            apply_gradients(self.actor_optimizer, self.actor_params, self.hp.max_grad_norm, self._sync("plearner"))
            self.finish_actor_step()
            return metrics
        batch = self._normalized(batch, self.norm_for_plearner, self.cnorm_for_plearner)
        with self.ctx.autocast():
            loss, metrics = self._actor_loss(self.policy, self.critic_for_plearner, batch)
        gradient_step(loss, self.actor_optimizer, self.actor_params, self.hp.max_grad_norm, self._sync("plearner"))
        self.finish_actor_step()
        return metrics.float()

    @torch.no_grad()
    def critic_loss(self, batch: TensorDict) -> torch.Tensor:
        batch = self._normalized(batch, self.norm_for_vlearner, self.cnorm_for_vlearner)
        return td3_critic_loss(self.critic, self.critic_target, self.policy_for_vlearner, batch, self.hp)[0]

    # ---- wiring -------------------------------------------------------------------------------------------------
    def shared(self) -> list[Shared]:
        # Every replica may alias its source: readers only need the latest value, as in FastTD3's train.py (the
        # acting policy shares the trained one's storage; the target action and the policy loss use the current
        # actor and critic).
        out = self.shared_core(may_alias=True)
        if self.return_scale is not None:
            out.append(Shared("return_bounds>vlearner", self.return_scale.bounds, "actor", self.bounds_for_vlearner,
                              "vlearner"))  # fmt: skip
        return out

    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.policy, "critic": self.critic}

    # ---- persistence --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.state_core(), "critic_target": self.critic_target.state_dict(),
                "noise_std": self.noise_std.clone(),
                **({} if self.return_scale is None else {"return_scale": self.return_scale.state_dict()})}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_state_core(state)
        self.critic_target.load_state_dict(state["critic_target"])
        self.noise_std.copy_(state["noise_std"])
        if self.return_scale is not None and "return_scale" in state:
            self.return_scale.load_state_dict(state["return_scale"])
