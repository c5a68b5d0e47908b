"""The structure FastSAC and CrossQ share (their math lives in ``fastsac.py`` and ``crossq.py``).

A tanh-squashed Gaussian policy, an ensemble critic, a learned entropy temperature, running observation
normalizers, and owned random generators. Ownership by role: the actor role owns the normalizers (rollout
statistics) and its exploration generator; the V-learner owns the critic (and its target, if any); the P-learner
owns the policy; the temperature belongs to whichever learner trains it (``temperature_writer``: FastSAC trains it
with the critic, CrossQ with the actor). Every cross-role read goes through a replica (``shared``).

Random numbers: exploration draws from the actor role's generator, the P-learner's policy samples from its own
generator (both saved in ``state_dict``); the V-learner's target-action samples come from the device's default
generator (the one draw per step that CUDA graphs capture), which the runtime saves with its RNG state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.base import Context, Role, Shared
from parallel_rl.algos.common import ActorCriticScaffold, gradient_step, replica
from parallel_rl.nets import EnsembleCritic, RunningNorm, SquashedGaussianActor

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig


class Temperature(nn.Module):
    """SAC's entropy temperature alpha = exp(log_alpha); a module so that the runtime can publish it to the other
    learner like any parameter group."""

    def __init__(self, alpha_init: float) -> None:
        super().__init__()
        if not alpha_init > 0:
            raise ValueError(f"alpha_init must be > 0, got {alpha_init}")
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha_init)))

    def forward(self) -> torch.Tensor:
        return self.log_alpha.exp()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-alpha * (log pi + target_entropy), averaged: its gradient raises alpha while the policy's entropy
    -E[log pi] is below the target and lowers it above. Both references differentiate alpha (not log alpha) times
    the entropy gap, with the log-probabilities detached."""
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def adam(params: list[nn.Parameter], lr: float, betas: tuple[float, float], weight_decay: float, ctx: Context):
    """AdamW with the references' betas: fused on CUDA, foreach elsewhere, capturable under CUDA graphs."""
    fused = ctx.device.type == "cuda"
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None,
                             foreach=not fused, capturable=ctx.capturable)  # fmt: skip


class SACFamily(ActorCriticScaffold):
    """Shared scaffolding; subclasses build the networks and write ``update_critic``, ``update_actor`` and
    ``critic_loss``."""

    reuse_critic_batch = True  # both references update the actor on the critic's last batch
    temperature_writer: ClassVar[Role]
    """The learner that trains the temperature; the other one reads a replica."""

    def __init__(self, hp: AgentConfig, ctx: Context) -> None:
        spec, dev = ctx.spec, ctx.device
        self.hp, self.ctx, self.device = hp, ctx, dev
        self.target_entropy = -float(spec.act_dim) * hp.target_entropy_ratio
        self.normalizer = RunningNorm(spec.obs_dim).to(dev)
        self.critic_normalizer = None if spec.critic_obs_dim is None else RunningNorm(spec.critic_obs_dim).to(dev)
        self.policy = self.build_policy(spec.obs_dim, spec.act_dim).to(dev)
        self.critic = self.build_critic(spec.critic_obs_dim or spec.obs_dim, spec.act_dim).to(dev)
        self.temperature = Temperature(hp.alpha_init).to(dev)
        self.make_replicas()
        self.temperature_for_reader = replica(self.temperature)
        betas = tuple(hp.adam_betas)
        self.critic_optimizer = adam(self.critic_params, hp.critic_lr, betas, hp.weight_decay, ctx)
        self.actor_optimizer = adam(self.actor_params, hp.actor_lr, betas, hp.weight_decay, ctx)
        self.alpha_optimizer = self.build_alpha_optimizer([self.temperature.log_alpha])
        self.generator = torch.Generator(device=dev)  # exploration (actor role)
        self.generator.manual_seed(ctx.seed)
        self.policy_generator = torch.Generator(device=dev)  # the P-learner's policy samples
        self.policy_generator.manual_seed(ctx.seed + 1_000_003)
        self._noise = torch.zeros(spec.num_envs, spec.act_dim, device=dev)
        self._act = ctx.graph(self._act_step)

    # ---- what subclasses define ---------------------------------------------------------------------------------
    def build_policy(self, obs_dim: int, act_dim: int) -> SquashedGaussianActor:
        raise NotImplementedError

    def build_critic(self, obs_dim: int, act_dim: int) -> EnsembleCritic:
        raise NotImplementedError

    def build_alpha_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # ---- experience ---------------------------------------------------------------------------------------------
    def _act_step(self, inputs: TensorDict) -> TensorDict:
        obs = inputs["obs"]
        if self.hp.normalize_obs:
            self.update_normalizers(inputs)
        mean, log_std = self.policy_for_actor.distribution(self.normalizer(obs) if self.hp.normalize_obs else obs)
        return TensorDict({"action": torch.tanh(mean + log_std.exp() * inputs["noise"])})

    @torch.no_grad()
    def act(self, obs: TensorDict, explore: bool) -> torch.Tensor:
        if not explore:
            return self.policy_for_actor(self.normalizer(obs["obs"]) if self.hp.normalize_obs else obs["obs"])
        # The Gaussian noise is drawn outside the (optionally graphed) step, from the actor role's own generator.
        torch.randn(self._noise.shape, generator=self.generator, device=self.device, out=self._noise)
        inputs = {"obs": obs["obs"], "noise": self._noise}
        if self.critic_normalizer is not None:
            inputs["critic_obs"] = obs["critic_obs"]
        return self._act(TensorDict(inputs))["action"].clone()  # a graph's output is overwritten by its next replay

    @torch.no_grad()
    def observe(self, transition: TensorDict) -> TensorDict:
        transition["reward"] = transition["reward"] * self.hp.reward_scale
        return transition

    # ---- helpers for the learners -------------------------------------------------------------------------------
    def alpha(self, role: Role) -> torch.Tensor:
        """The temperature as ``role`` sees it (its own, or its replica), detached."""
        module = self.temperature if role == self.temperature_writer else self.temperature_for_reader
        return module().detach()

    def temperature_step(self, log_prob: torch.Tensor, role: Role) -> torch.Tensor:
        loss = temperature_loss(self.temperature.log_alpha, log_prob, self.target_entropy)
        gradient_step(loss, self.alpha_optimizer, [self.temperature.log_alpha], 0.0, self._sync(role))
        return loss.detach()

    # ---- wiring -------------------------------------------------------------------------------------------------
    def shared(self) -> list[Shared]:
        reader: Role = "plearner" if self.temperature_writer == "vlearner" else "vlearner"
        temperature = Shared(f"temperature>{reader}", self.temperature, self.temperature_writer,
                             self.temperature_for_reader, reader)  # fmt: skip
        return [*self.shared_core(may_alias=False), temperature]

    def deployed_modules(self) -> tuple[nn.Module, nn.Module]:
        """The normalizer and the policy (deployed: ``forward`` is the deterministic tanh(mean); with batch
        renormalization evaluate it in ``eval()`` mode, which the learners undo: each update sets its training
        networks to training mode first)."""
        return self.normalizer, self.policy

    def networks(self) -> dict[str, nn.Module]:
        return {"actor": self.policy, "critic": self.critic, "temperature": self.temperature}

    # ---- persistence --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **self.state_core(),
            "temperature": self.temperature.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "policy_generator": self.policy_generator.get_state(),
            **self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_state_core(state)
        self.temperature.load_state_dict(state["temperature"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.policy_generator.set_state(state["policy_generator"])
        self.load_extra_state(state)
