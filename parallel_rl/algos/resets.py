"""Network resets against the primacy bias (Nikishin et al. 2022; D'Oro et al. 2023; BRO resets everything at
fixed steps) and shrink-and-perturb (Ash & Adams 2020).

A reset replaces the parameters of a network by ``shrink * current + (1 - shrink) * fresh``, where ``fresh`` is a
newly initialized network of the same architecture (``shrink = 0``: a full reset, the published default) and zeroes
its optimizer state (Adam moments and step count), in place, so CUDA graphs captured on those tensors stay valid.
``layers="last"`` resets only the output layer of each network (Nikishin et al.'s last-layer reset). The replay
buffer, observation normalizers and counters are not touched: the caller owns those and keeps them.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ResetLayers = Literal["all", "last"]
RESET_LAYERS: tuple[str, ...] = ("all", "last")


def last_layer_prefixes(net: nn.Module) -> tuple[str, ...]:
    """Names (prefixes) of the output layer of ``net``: the last module of a ``Sequential`` (the plain MLPs), or the
    ``head*`` children of the family networks (``nets.families``)."""
    if isinstance(net, nn.Sequential):
        return (f"{len(net) - 1}.",)
    heads = tuple(f"{name}" for name, _ in net.named_children() if name.startswith("head"))
    heads += tuple(name for name, _ in net.named_parameters(recurse=False) if name.startswith("head"))
    if not heads:
        raise ValueError(f"{type(net).__name__} has no recognisable output layer for --reset-layers last")
    return heads


def selected_parameters(root: nn.Module, net_attr: str, layers: ResetLayers) -> set[str]:
    """Dotted names (in ``root``) of the parameters a reset of ``layers`` touches; ``root.<net_attr>`` is the trunk."""
    names = {n for n, _ in root.named_parameters()}
    if layers == "all":
        return names
    if layers != "last":
        raise ValueError(f"--reset-layers {layers!r}; valid: {', '.join(RESET_LAYERS)}")
    prefixes = tuple(f"{net_attr}.{p}" for p in last_layer_prefixes(getattr(root, net_attr)))
    return {n for n in names if n.startswith(prefixes)}


@torch.no_grad()
def shrink_and_perturb_(module: nn.Module, fresh: nn.Module, shrink: float, names: set[str]) -> None:
    """``module``'s parameters in ``names`` <- shrink * themselves + (1 - shrink) * ``fresh``'s. With ``shrink == 0``
    the buffers of the same layers (e.g. batch-norm statistics) are replaced by the fresh ones too."""
    if not 0.0 <= shrink < 1.0:
        raise ValueError(f"shrink-and-perturb factor must be in [0, 1), got {shrink}")
    fresh_params = dict(fresh.named_parameters())
    for name, p in module.named_parameters():
        if name in names:
            p.mul_(shrink).add_(fresh_params[name].to(p.device, p.dtype), alpha=1.0 - shrink)
    if shrink == 0.0:
        layer_prefixes = {n.rsplit(".", 1)[0] + "." for n in names}
        fresh_buffers = dict(fresh.named_buffers())
        for name, b in module.named_buffers():
            if any(name.startswith(prefix) for prefix in layer_prefixes) and name in fresh_buffers:
                b.copy_(fresh_buffers[name])


@torch.no_grad()
def zero_optimizer_state_(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    """Zero the optimizer state (moments, step counts) of ``params`` in place: the optimizer behaves as if it had
    never stepped them, and tensors a CUDA graph captured stay where they are."""
    for p in params:
        for value in optimizer.state.get(p, {}).values():
            if torch.is_tensor(value):
                value.zero_()
