"""PQL (Li et al. 2023): parallel Q-learning with a deterministic policy and mixed exploration.

Pure functions of a batch (observations already normalized) and the networks:

- exploration: env i has a fixed Gaussian noise std, linspace(std_min, std_max, num_envs)[i], so the fleet covers
  a range of exploration levels at once ("mixed exploration"); nothing changes at episode ends;
- critic: twin critic, C51 (PQL-D) or scalar (``num_atoms = 1``), n-step targets with the configured gamma
  (the original hard-codes 0.99), target action from the current actor without smoothing by default, clipped
  double-Q, soft target update tau;
- actor: deterministic tanh policy maximizing the smallest of the critics' expected Q values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict

from parallel_rl.algos.common import td3_critic_loss
from parallel_rl.nets import Actor, EnsembleCritic

if TYPE_CHECKING:
    from parallel_rl.config import AgentConfig

NAME = "pql"


def initial_noise_std(hp: AgentConfig, num_envs: int, device: torch.device, generator: torch.Generator):
    return torch.linspace(hp.std_min, hp.std_max, num_envs, device=device)


def noise_std_after_step(hp: AgentConfig, std: torch.Tensor, done: torch.Tensor, generator: torch.Generator):
    return std  # mixed exploration is fixed per env


critic_loss = td3_critic_loss
"""The critic update is the shared TD3-family one (see ``common.td3_critic_loss``)."""


def actor_loss(actor: Actor, critic: EnsembleCritic, batch: TensorDict, hp: AgentConfig):
    action = actor(batch["obs"])
    q = critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action))  # [members, B]
    loss = -q.min(dim=0).values.mean()
    return loss, TensorDict({"actor_loss": loss.detach(), "action_abs": action.detach().abs().mean()})
