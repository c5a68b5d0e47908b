"""Data-parallel training over ranks (torchrun): one env shard, buffer and actor per rank; learners' gradients and
the observation normalizer's batch statistics are all-reduced, so every rank holds the same parameters.

Each component gets its own process group: in pipelined mode the V-learner and the P-learner issue collectives
from different threads (CPU) or streams (GPU), and collectives of one group must come in the same order on every
rank. Free mode is not supported across ranks: its update counts depend on timing, and all-reduces need equal
counts on every rank.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

#: Seeds of rank r are the run's seeds + r * RANK_SEED_STRIDE (envs, exploration, replay sampling).
RANK_SEED_STRIDE = 100_003


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    groups: dict[str, object] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistContext:
    """The context torchrun describes through RANK / WORLD_SIZE / LOCAL_RANK (a single process without them)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def init(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU) and make one group per component."""
    if not ctx.enabled:
        return
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != ctx.world_size:
        raise RuntimeError(f"WORLD_SIZE={ctx.world_size} but the process group has {dist.get_world_size()} ranks")
    for name in ("actor", "vlearner", "plearner"):
        ctx.groups[name] = dist.new_group()
    ctx.groups["control"] = dist.new_group(backend="gloo")  # host-side flags, whatever the device


def all_reduce_sum_(tensor: torch.Tensor, ctx: DistContext, group: str) -> torch.Tensor:
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=ctx.groups[group])
    return tensor


def grad_averager(ctx: DistContext, group: str) -> Callable[[list[nn.Parameter]], None]:
    """Averages the gradients of ``params`` over ranks with one all-reduce of a flat buffer."""

    def sync(params: list[nn.Parameter]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        all_reduce_sum_(flat, ctx, group).div_(ctx.world_size)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    return sync


def broadcast_module_(module: nn.Module, ctx: DistContext) -> None:
    """Rank 0's parameters and buffers on every rank (identical seeds already agree; this makes it a guarantee)."""
    if ctx.enabled:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0, group=ctx.groups["actor"])


def agree(flag: bool, ctx: DistContext) -> bool:
    """True on every rank if it is true on any (used for the wall-clock limit, which ranks measure separately)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=ctx.groups["control"])
    return bool(t.item())
