"""FastTD3 (Seo et al. 2025): TD3 with a C51 twin critic, large batches and many parallel envs.

The whole algorithm as pure functions of a batch (observations already normalized) and the networks:

- exploration: each env draws its own Gaussian noise std from U[std_min, std_max], redrawn when its episode ends;
- critic: C51 (or scalar) twin critic; target action from the current actor (there is no actor target) with
  clipped smoothing noise; clipped double-Q takes the distribution of the critic with the lower mean; n-step
  reward and discount come from the buffer; cross-entropy against the projected target; soft target update tau;
- actor: deterministic tanh policy maximizing the mean over critics of the expected Q; delayed relative to the
  critic through the scheduler's ``policy_ratio``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict

from parallel_rl.algos.common import td3_critic_loss
from parallel_rl.nets import Actor, EnsembleCritic

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig

NAME = "fasttd3"


def initial_noise_std(hp: AgentConfig, num_envs: int, device: torch.device, generator: torch.Generator):
    u = torch.rand(num_envs, generator=generator, device=device)
    return hp.std_min + (hp.std_max - hp.std_min) * u


def noise_std_after_step(hp: AgentConfig, std: torch.Tensor, done: torch.Tensor, generator: torch.Generator):
    """Redraw the std of every env whose episode just ended; keep the others."""
    return torch.where(done, initial_noise_std(hp, std.shape[0], std.device, generator), std)


critic_loss = td3_critic_loss
"""The critic update is the shared TD3-family one (see ``common.td3_critic_loss``)."""


def actor_loss(actor: Actor, critic: EnsembleCritic, batch: TensorDict, hp: AgentConfig):
    action = actor(batch["obs"])
    q = critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action))  # [members, B]
    loss = -q.mean()
    return loss, TensorDict({"actor_loss": loss.detach(), "action_abs": action.detach().abs().mean()})
