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

from parallel_rl.algos.common import TD3Family


class PQL(TD3Family):
    name = "pql"

    def initial_noise_std(self, num_envs: int) -> torch.Tensor:
        return torch.linspace(self.hp.std_min, self.hp.std_max, num_envs, device=self.device)

    def noise_std_after_step(self, std: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        return std  # mixed exploration is fixed per env
