"""PQL (Li et al. 2023): parallel Q-learning with a deterministic policy and mixed exploration.

What this file adds to the TD3-family structure (``common.TD3Family``):

- exploration: env i has a fixed Gaussian noise std, linspace(std_min, std_max, num_envs)[i], so the fleet covers
  a range of exploration levels at once ("mixed exploration"); nothing changes at episode ends;
- critic: the shared TD3-family update (``common.td3_critic_loss``): twin critic, C51 (PQL-D) or scalar
  (``num_atoms = 1``), n-step targets with the configured gamma (the original hard-codes 0.99), target action from
  the current actor without smoothing by default, clipped double-Q, soft target update tau;
- actor: deterministic tanh policy maximizing the smallest of the critics' expected Q values, on batches of its
  own (PQL's presets set ``actor_batch='own'``, ``actor_init_scale=0``, ``sampling='uniform'``).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.common import TD3Family, td3_actor_loss
from parallel_rl.nets import EnsembleCritic


class PQL(TD3Family):
    name = "pql"

    def initial_noise_std(self, num_envs: int) -> torch.Tensor:
        return torch.linspace(self.hp.std_min, self.hp.std_max, num_envs, device=self.device)

    def noise_std_after_step(self, std: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        return std  # mixed exploration is fixed per env

    def actor_loss(
        self, actor: nn.Module, critic: EnsembleCritic, batch: TensorDict
    ) -> tuple[torch.Tensor, TensorDict]:
        return td3_actor_loss(actor, critic, batch, self.hp.actor_q_reduction, self.hp.action_l2)
