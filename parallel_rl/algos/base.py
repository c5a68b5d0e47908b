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
generators the algorithm owns and saves in ``state_dict`` (CUDA graphs need the default generator). On a CPU the
pipelined mode runs the two learners in two threads that share the default generator, so at most one of
``update_critic`` / ``update_actor`` may draw from it; the other draws from a generator the algorithm owns. They do
not synchronise with the host: metrics are returned as detached device tensors in a ``TensorDict``.

Construction. ``Algo(hp, ctx)`` with the run's ``AgentConfig`` and a ``Context`` (below); the registry in
``algos/__init__.py`` maps ``--algo`` names to classes.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from tensordict import TensorDict
from torch import nn

if TYPE_CHECKING:
    from parallel_rl.envs import EnvSpec

Role = Literal["actor", "vlearner", "plearner"]


def _identity(fn: Callable) -> Callable:
    return fn


@dataclass(frozen=True)
class Context:
    """What the runtime hands an algorithm at construction: the env's shape, the device, a seed for the
    algorithm's own generators, and the runtime's machinery as plain callables (so ``algos`` never imports
    ``runtime``). Every hook defaults to a no-op, so an algorithm can be built standalone (tests, benchmarks)."""

    spec: EnvSpec
    device: torch.device
    seed: int = 0
    """Seed of the generators the algorithm owns (e.g. exploration noise); differs per rank."""
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    """Context manager for forward passes (bf16 autocast when ``--bf16``)."""
    compile: Callable[[Callable], Callable] = _identity
    """Wraps a loss function (``torch.compile`` when ``--compile``)."""
    graph: Callable[[Callable], Callable] = _identity
    """Wraps a pure ``TensorDict -> TensorDict`` step that draws no numbers from an owned generator for CUDA-graph
    capture (``--cuda-graphs``). The runtime already captures ``update_critic`` and ``update_actor``; algorithms
    use this for the deterministic part of ``act``."""
    capturable: bool = False
    """Optimizers must keep their state on the device (CUDA graphs)."""
    closed_form: bool = False
    """Algorithms may compute a loss's gradients in closed form instead of by autograd where they have one
    (``algos/closed_form.py``: the same values; the eager CPU fast path). Off for standalone construction."""
    sync_grads: Callable[[Role, list[nn.Parameter]], None] | None = None
    """Multi-rank runs: average the gradients of ``params`` over ranks (one collective group per role). Call it
    between ``backward`` and gradient clipping."""
    all_reduce_sum: Callable[[Role, torch.Tensor], torch.Tensor] | None = None
    """Multi-rank runs: in-place sum over ranks (e.g. normalizer statistics), in the collective group of a role."""


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
        """(normalizer, policy) making up the deployed deterministic policy (export, evaluation): the policy is an
        ``nets.Actor``-compatible module (normalized obs -> action in [-1, 1]), the normalizer maps raw obs."""

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by name (at least ``"actor"`` and ``"critic"``): finite checks, parameter counts and
        norms, and the multi-rank broadcast of the initial weights read them."""

    # ---- persistence --------------------------------------------------------------------------------------------
    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: networks, targets, optimizers, extra learnable state,
        exploration state and owned generators."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
