"""Publishing parameters with fewer copies: mark/flush publications copied only when read or about to change, and
replicas that share their source's storage in sequential order."""

from __future__ import annotations

import copy

import pytest
import torch

from parallel_rl.nets import Actor, RunningNorm
from parallel_rl.runtime.streams import Channel, Lane, alias_module


def _channel(module):
    lane = Lane(torch.device("cpu"), "test")
    return Channel.for_module(module, lane, lane)


def _bump(module, by: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(by)


def test_marked_publication_is_copied_once_when_read():
    torch.manual_seed(0)
    actor = Actor(3, 1, (8,))
    channel = _channel(actor)
    _bump(actor, 1.0)
    channel.mark()
    _bump(actor, 1.0)  # allowed: a newer mark follows before any read (the interval-1 schedule)
    channel.mark()
    assert channel.version == 0  # nothing copied yet
    assert channel.pull() and channel.version == 1  # one copy for two publications
    assert all(torch.equal(a, b) for a, b in zip(channel.module.parameters(), actor.parameters()))
    assert not channel.pull()


def test_flush_keeps_the_value_of_the_mark():
    torch.manual_seed(0)
    actor = Actor(3, 1, (8,))
    channel = _channel(actor)
    _bump(actor, 1.0)
    channel.mark()
    marked = [p.clone() for p in actor.parameters()]
    channel.flush()  # the producer is about to change the source
    _bump(actor, 5.0)
    assert channel.pull()
    assert all(torch.equal(a, b) for a, b in zip(channel.module.parameters(), marked))
    state = channel.state_dict()
    channel.mark()
    assert channel.state_dict()["marked"] and not state["marked"]


def test_alias_shares_storage_and_sends_no_gradient_back():
    torch.manual_seed(0)
    actor = Actor(3, 1, (8,))
    replica = copy.deepcopy(actor).requires_grad_(False)
    alias_module(replica, actor)
    _bump(actor, 1.0)
    assert all(a.data_ptr() == b.data_ptr() for a, b in zip(replica.parameters(), actor.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(replica.parameters(), actor.parameters()))
    x = torch.randn(4, 3, requires_grad=True)
    replica(x).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in actor.parameters())
    norm, norm_replica = RunningNorm(2), RunningNorm(2)
    alias_module(norm_replica, norm)
    norm.update(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    assert torch.equal(norm_replica.mean, norm.mean) and norm_replica.count.item() == 2
    with pytest.raises(ValueError, match="structure"):
        alias_module(Actor(3, 1, (8, 8)), actor)
