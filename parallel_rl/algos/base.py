"""The contract between an algorithm and the runtime.

An algorithm object owns everything its math touches: networks, target networks, optimizers, extra learnable state
(e.g. SAC's log-temperature), observation normalizers and per-env exploration state. Its three entry points each do
a whole step (normalize, loss, backward, clip, optimizer step, target update), so a reader finds the algorithm in
one file. The runtime only decides *when* each entry point runs, on which lane, with which batch, and copies
parameters between lanes; it never computes a loss, steps an optimizer or adds noise.

Roles. A run has three components, each calling one entry point on its own lane (CUDA stream or thread):

- ``"actor"``: ``act`` and ``observe`` (collects experience);
- ``"vlearner"``: ``update_critic`` (critic updates);
- ``"plearner"``: ``update_actor`` (policy updates and anything trained with it, e.g. the temperature).

A role may read state that another role writes only through its own *replica*: a frozen copy that the runtime
refreshes through a double-buffered ``Channel`` (``runtime/streams.py``). ``shared()`` declares every such pair.
Without concurrency (sequential mode) the runtime may skip a channel and let writer and reader share storage only
when the algorithm says the replica may alias its source (``Shared.may_alias``).

Determinism. Entry points draw random numbers from the default torch generator of their lane's device, or from
generators the algorithm owns and saves in ``state_dict`` (CUDA graphs need the default generator). They do not
synchronise with the host: metrics are returned as detached device tensors in a ``TensorDict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from tensordict import TensorDict
from torch import nn

Role = Literal["actor", "vlearner", "plearner"]


@dataclass(frozen=True)
class Shared:
    """One parameter (or buffer) group that ``writer`` updates and ``reader`` reads through ``replica``.

    ``source`` and ``replica`` are modules with identical structure; the runtime copies every parameter and buffer
    of ``source`` into ``replica`` when ``writer`` publishes and ``reader`` pulls."""

    name: str
    source: nn.Module
    writer: Role
    replica: nn.Module
    reader: Role
    may_alias: bool = False
    """Sequential mode may let the reader use ``source`` itself (no copy). False when the reader must see the
    value as of the last publication even in sequential order (e.g. a delayed-publication schedule)."""


class Algorithm(ABC):
    """Base class of every algorithm (``parallel_rl/algos/<name>.py``)."""

    name: ClassVar[str]
    """Registry key, the value of ``--algo``."""

    reuse_critic_batch: ClassVar[bool] = False
    """``update_actor`` gets the batch of the critic update it follows (FastTD3's reference does) instead of a
    batch of its own."""

    # ---- experience ---------------------------------------------------------------------------------------------
    @abstractmethod
    def act(self, obs: TensorDict, explore: bool) -> torch.Tensor:
        """Actions in [-1, 1]^act_dim for raw observations ``obs`` (``"obs"``, optionally ``"critic_obs"``).

        With ``explore`` the action includes exploration and the call may update state that rollouts own (e.g.
        the observation normalizer's statistics); without it the call is a pure deterministic policy."""

    @abstractmethod
    def observe(self, transition: TensorDict) -> TensorDict:
        """Called once per vectorized env step with the transition the runtime is about to store (keys as in
        ``ReplayBuffer.extend``). Returns the transition to store (e.g. rewards scaled) and updates per-env
        exploration state (e.g. a noise scale redrawn when an env's episode ended)."""

    # ---- learning -----------------------------------------------------------------------------------------------
    @abstractmethod
    def update_critic(self, batch: TensorDict) -> TensorDict:
        """One critic step on a replay batch of raw observations; returns detached float32 metrics."""

    @abstractmethod
    def update_actor(self, batch: TensorDict) -> TensorDict:
        """One policy step (and whatever trains with it); returns detached float32 metrics."""

    @abstractmethod
    def critic_loss(self, batch: TensorDict) -> torch.Tensor:
        """The critic's loss on a batch without stepping anything (TD-overfitting diagnostics compare it on
        training and held-out batches)."""

    # ---- wiring -------------------------------------------------------------------------------------------------
    @abstractmethod
    def shared(self) -> list[Shared]:
        """Every cross-role read, as (source, writer, replica, reader)."""

    @abstractmethod
    def deployed_modules(self) -> tuple[nn.Module, nn.Module]:
        """(normalizer, policy) making up the deployed deterministic policy (export, evaluation)."""

    # ---- persistence --------------------------------------------------------------------------------------------
    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: networks, targets, optimizers, extra learnable state,
        exploration state and owned generators."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
