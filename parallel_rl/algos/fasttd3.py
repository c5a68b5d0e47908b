"""FastTD3 (Seo et al. 2025): TD3 with a C51 twin critic, large batches and many parallel envs.

What this file adds to the TD3-family structure (``common.TD3Family``; equations and every choice against the
reference code in ``docs/algorithms.md``):

- exploration: each env draws its own Gaussian noise std from U[std_min, std_max], redrawn when its episode ends;
- critic: the shared TD3-family update (``common.td3_critic_loss``): C51 (or scalar) twin critic, target action
  from the current actor (there is no actor target) with clipped smoothing noise, clipped double-Q on the projected
  targets, n-step reward and discount from the buffer, cross-entropy against the projected target, soft target
  update tau;
- actor: deterministic tanh policy maximizing min over critics of the expected Q (``--actor-q-reduction``), on the
  batch of the critic update it follows (``--actor-batch``); delayed through the scheduler's ``policy_ratio``.
"""

from __future__ import annotations

import torch

from parallel_rl.algos.common import TD3Family


class FastTD3(TD3Family):
    name = "fasttd3"

    @property
    def reuse_critic_batch(self) -> bool:  # type: ignore[override]
        """As FastTD3's train.py (``--actor-batch critic``): a policy update trains on the batch of the critic update
        it follows (pipelined mode redraws it with the V-learner's generator state; free mode samples its own). Not
        inherited: algorithms built on FastTD3 choose for themselves (``__init_subclass__``)."""
        return self.hp.actor_batch == "critic"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "reuse_critic_batch" not in cls.__dict__:
            cls.reuse_critic_batch = False

    def initial_noise_std(self, num_envs: int) -> torch.Tensor:
        hp = self.hp
        u = torch.rand(num_envs, generator=self.generator, device=self.device)
        return hp.std_min + (hp.std_max - hp.std_min) * u

    def noise_std_after_step(self, std: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Redraw the std of every env whose episode just ended; keep the others."""
        return torch.where(done, self.initial_noise_std(std.shape[0]), std)
