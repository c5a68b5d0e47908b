"""BRC's adaptive per-task reward normalization (``--reward-normalization brc``).

BRC (Nauman et al. 2025, "Bigger, Regularized, Categorical", official code ``naumix/BiggerRegularizedCategorical``,
``jaxrl/normalizer.py``) trains one categorical critic on tasks whose returns differ by orders of magnitude. It
rescales each task's rewards so that the largest discounted return that task has shown fits the support's edge:

    G_i     = sum_{j=i}^{L-1} gamma^(j-i) r_j + gamma^(L-i) B      (return-to-go of step i of a finished episode)
    B       = mean_j(r_j) / (1 - gamma) if the episode was truncated, 0 if it terminated
    M_k     = max(max G_i, |min G_i|) over every step i of every finished training episode of task k
    r_tilde = r * v_max / M_k                                        (when a batch is sampled, per row's task k)

so the values of every task lie in [-v_max, v_max] (BRC's support is [-v_max, v_max]). The entropy correction of
BRC's SAC version (``- alpha * target_entropy / (2 (1 - gamma))`` in M_k) is zero for the deterministic TD3-family
actors this is used with. M_k only grows (a running max), and it rescales every stored reward at sampling time, so
the whole buffer always shares the current scale.

As in the official code, a task's factor is 0 until it finishes its first episode (M_k = inf: its rewards count as
0 until then). One difference: an episode that both terminates and is truncated does not bootstrap (the official
code bootstraps whenever ``truncate`` is set).

Ownership: the actor role tracks the rollouts' rewards (``ReturnScaleTracker.observe``) and owns ``bounds``; the
V-learner reads a replica of ``bounds`` (``reward_factor``) to scale its batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Exponent budget of the float64 discount weights gamma^j (exp(-700) is near float64's smallest normal number).
_MAX_LOG_DISCOUNT = 600.0


class ReturnBounds(nn.Module):
    """Per task: the lowest and highest discounted return-to-go seen in finished episodes (``low``, ``high``)."""

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.register_buffer("low", torch.full((num_tasks,), math.inf))
        self.register_buffer("high", torch.full((num_tasks,), -math.inf))

    def scale(self) -> torch.Tensor:
        """M_k per task: max(high, |low|) over its finished episodes; inf before the first."""
        return torch.maximum(self.high, self.low.abs())

    def reward_factor(self, task_id: torch.Tensor, v_max: float) -> torch.Tensor:
        """v_max / M_k for each row's task [B]; 0 before the task's first finished episode (BRC's 1 / inf), and where
        M_k is 0 (every return so far exactly 0: any factor leaves those rewards 0)."""
        scale = self.scale()
        factor = torch.where(torch.isfinite(scale) & (scale > 0), v_max / scale, torch.zeros_like(scale))
        return factor[task_id]


def discounted_returns_to_go(rewards: torch.Tensor, lengths: torch.Tensor, bootstrap: torch.Tensor, gamma: float):
    """G_i = sum_{j=i}^{L-1} gamma^(j-i) r_j + gamma^(L-i) B for each row (float64), -> (min_i G_i, max_i G_i).

    rewards: [N, T], entries at and after the row's length ignored; lengths: [N] int (rows with length 0 give
    (inf, -inf)); bootstrap: [N] value after the last reward. Computed as suffix sums of gamma^j r_j (summed from
    the end, so no cancellation) divided by gamma^i."""
    n, t = rewards.shape
    steps = torch.arange(t, device=rewards.device)
    valid = steps.unsqueeze(0) < lengths.unsqueeze(-1)
    weights = torch.pow(torch.tensor(gamma, dtype=torch.float64, device=rewards.device), steps.double())  # gamma^j
    weighted = torch.where(valid, rewards.double(), 0.0) * weights
    suffix = weighted.flip(-1).cumsum(-1).flip(-1)  # sum_{j >= i} gamma^j r_j
    tail = torch.pow(torch.tensor(gamma, dtype=torch.float64, device=rewards.device), lengths.double())  # gamma^L
    returns = (suffix + tail.unsqueeze(-1) * bootstrap.double().unsqueeze(-1)) / weights
    low = torch.where(valid, returns, math.inf).amin(-1)
    high = torch.where(valid, returns, -math.inf).amax(-1)
    return low, high


class ReturnScaleTracker:
    """The actor role's record of each env's current episode rewards, folded into ``bounds`` as episodes end."""

    def __init__(self, num_envs: int, num_tasks: int, max_episode_steps: int, gamma: float, device) -> None:
        if not 0 < gamma < 1:
            raise ValueError(f"--reward-normalization brc: gamma must be in (0, 1), got {gamma}")
        if max_episode_steps * -math.log(gamma) > _MAX_LOG_DISCOUNT:
            raise ValueError(f"--reward-normalization brc: episodes of {max_episode_steps} steps at gamma {gamma} "
                             "are too long for its float64 discount weights (needs steps x -ln(gamma) <= "
                             f"{_MAX_LOG_DISCOUNT:.0f})")  # fmt: skip
        self.gamma, self.num_tasks, self.device = gamma, num_tasks, torch.device(device)
        self.rewards = torch.zeros(num_envs, max_episode_steps, device=device)
        self.lengths = torch.zeros(num_envs, dtype=torch.int64, device=device)
        self.reward_sums = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.bounds = ReturnBounds(num_tasks).to(device)
        self._rows = torch.arange(num_envs, device=device)

    @torch.no_grad()
    def observe(
        self, reward: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, task_id: torch.Tensor
    ) -> None:
        """Record one vectorized step (rewards as stored, [N]); fold the episodes that ended into ``bounds``."""
        done = terminated | truncated
        slot = self.lengths.clamp(max=self.rewards.shape[1] - 1)  # an over-long episode keeps its last slot
        self.rewards[self._rows, slot] = reward.float()
        self.lengths += 1
        self.reward_sums += reward.double()
        b = self.bounds
        # On a CPU the host check is free and skips the [N, T] pass on most steps; on an accelerator it runs always.
        if self.device.type == "cpu" and not bool(done.any()):
            return
        lengths = self.lengths.clamp(max=self.rewards.shape[1])
        mean_reward = self.reward_sums / lengths.clamp(min=1)
        bootstrap = torch.where(truncated & ~terminated, mean_reward / (1 - self.gamma), 0.0)
        low, high = discounted_returns_to_go(self.rewards, lengths, bootstrap, self.gamma)
        inf = torch.full_like(low, math.inf)
        ended_low = torch.full((self.num_tasks,), math.inf, dtype=torch.float64, device=self.device)
        ended_high = torch.full_like(ended_low, -math.inf)
        ended_low.scatter_reduce_(0, task_id, torch.where(done, low, inf), "amin")
        ended_high.scatter_reduce_(0, task_id, torch.where(done, high, -inf), "amax")
        b.low.copy_(torch.minimum(b.low, ended_low.float()))
        b.high.copy_(torch.maximum(b.high, ended_high.float()))
        keep = (~done).to(self.rewards.dtype)
        self.rewards *= keep.unsqueeze(-1)
        self.lengths *= (~done).long()
        self.reward_sums *= keep.double()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"rewards": self.rewards.clone(), "lengths": self.lengths.clone(),
                "reward_sums": self.reward_sums.clone(), "bounds": self.bounds.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.rewards.copy_(state["rewards"])
        self.lengths.copy_(state["lengths"])
        self.reward_sums.copy_(state["reward_sums"])
        self.bounds.load_state_dict(state["bounds"])
