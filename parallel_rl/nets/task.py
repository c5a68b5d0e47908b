"""Task conditioning for multi-task runs (BRC, Nauman et al. 2025): a task embedding beside the observation, and
masks that make padded observation and action dimensions invisible.

A multi-task env (``envs.multitask``) pads each task's observation to the largest one and appends the task id as the
last column; actions are padded the same way. ``TaskEncoder`` splits the id off, zeroes the task's padded
observation dimensions (whatever the env or the normalizer put there) and concatenates the task's embedding (a
learnable row, or a fixed one-hot). The conditioned actor zeroes its padded action dimensions (so they are never
explored through the policy and never receive a gradient) and the conditioned critic ignores them (so no noise
stored there can change a value). Both wrap the ordinary networks, so every algorithm's math is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class TaskEncoder(nn.Module):
    """raw-layout obs [B, obs_dim + 1] (normalized, id in the last column) -> [B, obs_dim + embedding size]."""

    def __init__(self, task_dims: Sequence[tuple[int, int]], obs_dim: int, act_dim: int, embedding_dim: int) -> None:
        super().__init__()
        num_tasks = len(task_dims)
        if num_tasks < 1:
            raise ValueError("a task encoder needs at least one task")
        obs_mask, act_mask = torch.zeros(num_tasks, obs_dim), torch.zeros(num_tasks, act_dim)
        for k, (o, a) in enumerate(task_dims):
            if o > obs_dim or a > act_dim:
                raise ValueError(f"task {k} (obs {o}, act {a}) does not fit the padded obs {obs_dim}, act {act_dim}")
            obs_mask[k, :o] = 1.0
            act_mask[k, :a] = 1.0
        self.register_buffer("obs_mask", obs_mask)
        self.register_buffer("act_mask", act_mask)
        self.num_tasks, self.obs_dim, self.act_dim = num_tasks, obs_dim, act_dim
        self.embedding_dim = embedding_dim
        if embedding_dim > 0:
            self.embedding = nn.Parameter(torch.randn(num_tasks, embedding_dim))  # nn.Embedding's N(0, 1) init
        else:
            self.register_buffer("embedding", torch.eye(num_tasks))  # one-hot, not learned

    @property
    def out_dim(self) -> int:
        return self.obs_dim + (self.embedding_dim if self.embedding_dim > 0 else self.num_tasks)

    def task_id(self, obs: torch.Tensor) -> torch.Tensor:
        """The task id column as int64 [B] (rounded: bf16 storage keeps ids below 256 exact)."""
        return obs[..., -1].round().long().clamp(0, self.num_tasks - 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        task = self.task_id(obs)
        x = obs[..., :-1] * self.obs_mask[task]
        return torch.cat([x, self.embedding[task].to(x.dtype)], dim=-1)

    def action_mask(self, obs: torch.Tensor) -> torch.Tensor:
        """1 on the task's action dimensions, 0 on padding, [B, act_dim]."""
        return self.act_mask[self.task_id(obs)]

    @torch.no_grad()
    def load_rows_from(self, state: dict[str, torch.Tensor], task_rows: Sequence[int]) -> None:
        """Copy the saved embedding rows of the tasks that ``task_rows`` (this encoder's ids) name, keeping the
        other rows as initialized (transfer: a new task starts with a fresh embedding)."""
        saved = state["embedding"]
        for new_row, old_row in enumerate(task_rows):
            if old_row >= 0:
                self.embedding[new_row].copy_(saved[old_row])


class TaskConditionedActor(nn.Module):
    """An actor (``nets.Actor`` or any obs -> [-1, 1]^act_dim module) on ``TaskEncoder`` features; padded action
    dimensions are exactly 0."""

    def __init__(self, encoder: TaskEncoder, actor: nn.Module) -> None:
        super().__init__()
        self.encoder, self.actor = encoder, actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.encoder(obs)) * self.encoder.action_mask(obs)


class TaskConditionedCritic(nn.Module):
    """An ensemble critic (``nets.EnsembleCritic``) on ``TaskEncoder`` features whose padded action dimensions are
    zeroed before they reach it; the rest of its interface (support, q_values, ...) is the wrapped critic's."""

    def __init__(self, encoder: TaskEncoder, critic: nn.Module) -> None:
        super().__init__()
        self.encoder, self.critic = encoder, critic

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic(self.encoder(obs), action * self.encoder.action_mask(obs))

    @property
    def support(self) -> torch.Tensor:
        return self.critic.support

    @property
    def distributional(self) -> bool:
        return self.critic.distributional

    @property
    def num_atoms(self) -> int:
        return self.critic.num_atoms

    @property
    def members(self) -> int:
        return self.critic.members

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        return self.critic.q_values(out)


def body_and_head(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(parameters except the task embedding and the last layer, last layer's) of a conditioned network: what
    ``--freeze actor_body``/``critic_body`` keeps fixed and what it leaves trainable."""
    params = [(n, p) for n, p in module.named_parameters() if not n.endswith("encoder.embedding")]
    if not params:
        return [], []
    last_layer = params[-1][0].rsplit(".", 1)[0]
    head = [p for n, p in params if n.rsplit(".", 1)[0] == last_layer]
    return [p for n, p in params if n.rsplit(".", 1)[0] != last_layer], head


def task_conditioned(
    obs_dim: int, act_dim: int, task_dims: Sequence[tuple[int, int]], embedding_dim: int
) -> tuple[TaskEncoder | None, int]:
    """(a new encoder, the width its network takes) for an env spec's layout; (None, obs_dim) for one task."""
    if not task_dims:
        return None, obs_dim
    encoder = TaskEncoder(task_dims, obs_dim - 1, act_dim, embedding_dim)
    return encoder, encoder.out_dim


def make_actor(
    obs_dim: int,
    act_dim: int,
    hidden: Sequence[int],
    activation: str,
    task_dims: Sequence[tuple[int, int]] = (),
    embedding_dim: int = 0,
    **actor_kwargs,
) -> nn.Module:
    """The actor for an env layout (``actor_kwargs`` go to ``Actor``): a plain ``Actor``, or one conditioned on the
    task when ``task_dims`` is set."""
    from parallel_rl.nets.actor import Actor

    encoder, width = task_conditioned(obs_dim, act_dim, task_dims, embedding_dim)
    actor = Actor(width, act_dim, hidden, activation, **actor_kwargs)
    return actor if encoder is None else TaskConditionedActor(encoder, actor)


def make_critic(
    obs_dim: int,
    act_dim: int,
    task_dims: Sequence[tuple[int, int]] = (),
    embedding_dim: int = 0,
    **critic_kwargs,
) -> nn.Module:
    """The ensemble critic for an env layout (``critic_kwargs`` go to ``EnsembleCritic``), task-conditioned when
    ``task_dims`` is set."""
    from parallel_rl.nets.critic import EnsembleCritic

    encoder, width = task_conditioned(obs_dim, act_dim, task_dims, embedding_dim)
    critic = EnsembleCritic(width, act_dim, **critic_kwargs)
    return critic if encoder is None else TaskConditionedCritic(encoder, critic)


class MultiTaskPolicy(nn.Module):
    """A deployed multi-task policy with the task as a second input: (obs [B, obs_dim] raw and zero-padded to the
    largest task's, task_id [B] int64) -> actions [B, act_dim] within that task's bounds (padded dimensions 0 for
    a task with symmetric bounds; only its first act_dim_k columns mean anything).

    ``deployed`` is the ``DeployedPolicy`` of the multi-task env's layout (task id as last column, actions in
    [-1, 1]); the per-task bounds come from the checkpoint's ``policy_spec``."""

    __jit_unused_properties__ = ["normalizer", "obs_dim"]  # host-side helpers, not part of the scripted policy

    def __init__(self, deployed: nn.Module, task_action_low: torch.Tensor, task_action_high: torch.Tensor) -> None:
        super().__init__()
        self.deployed = deployed
        self.register_buffer("task_action_low", task_action_low.float().clone())
        self.register_buffer("task_action_high", task_action_high.float().clone())

    @property
    def normalizer(self) -> nn.Module:
        return self.deployed.normalizer

    @property
    def obs_dim(self) -> int:
        return int(self.deployed.normalizer.mean.numel()) - 1

    def forward(self, obs: torch.Tensor, task_id: torch.Tensor) -> torch.Tensor:
        action = self.deployed(torch.cat([obs, task_id.to(obs.dtype).unsqueeze(-1)], dim=-1))
        low, high = self.task_action_low[task_id], self.task_action_high[task_id]
        return low + (action + 1) * 0.5 * (high - low)
