"""FastTD3 (Seo et al. 2025): TD3 with a C51 twin critic, large batches and many parallel envs.

What this file adds to the TD3-family structure (``common.TD3Family``):

- exploration: each env draws its own Gaussian noise std from U[std_min, std_max], redrawn when its episode ends;
- critic: the shared TD3-family update (``common.td3_critic_loss``): C51 (or scalar) twin critic, target action
  from the current actor (there is no actor target) with clipped smoothing noise, clipped double-Q, n-step reward
  and discount from the buffer, cross-entropy against the projected target, soft target update tau;
- actor: deterministic tanh policy maximizing the mean over critics of the expected Q; delayed relative to the
  critic through the scheduler's ``policy_ratio``.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos.common import TD3Family
from parallel_rl.nets import EnsembleCritic


class FastTD3(TD3Family):
    name = "fasttd3"

    def initial_noise_std(self, num_envs: int) -> torch.Tensor:
        hp = self.hp
        u = torch.rand(num_envs, generator=self.generator, device=self.device)
        return hp.std_min + (hp.std_max - hp.std_min) * u

    def noise_std_after_step(self, std: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Redraw the std of every env whose episode just ended; keep the others."""
        return torch.where(done, self.initial_noise_std(std.shape[0]), std)

    def actor_loss(
        self, actor: nn.Module, critic: EnsembleCritic, batch: TensorDict
    ) -> tuple[torch.Tensor, TensorDict]:
        action = actor(batch["obs"])
        q = critic.q_values(critic(batch.get("critic_obs", batch["obs"]), action))  # [members, B]
        loss = -q.mean()
        return loss, TensorDict({"actor_loss": loss.detach(), "action_abs": action.detach().abs().mean()})
