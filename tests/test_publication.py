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


def _flat(state, prefix="") -> dict[str, torch.Tensor]:
    out = {}
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, list) else ()
    for key, value in items:
        if isinstance(value, torch.Tensor):
            out[f"{prefix}{key}"] = value
        elif isinstance(value, (dict, list)):
            out.update(_flat(value, f"{prefix}{key}."))
    return out


def _sequential_run(monkeypatch, alias: bool, lazy: bool, algo: str = "fasttd3", **schedule):
    import tasks
    from parallel_rl.runtime import Trainer, engine, modes
    from tests.conftest import tiny_config

    monkeypatch.setattr(engine, "ALIAS_IN_SEQUENTIAL", alias)
    monkeypatch.setattr(modes, "LAZY_PUBLISH", lazy)
    cfg = tiny_config(algo=algo, schedule={"utd": 2, "policy_ratio": 0.5, **schedule})
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    for _ in range(24):
        trainer.iteration()
    return trainer


def _assert_same_run(a, b) -> None:
    sa, sb = _flat(a.algo.state_dict()), _flat(b.algo.state_dict())
    assert sa.keys() == sb.keys() and len(sa) > 20
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.scheduler.critic_updates == b.scheduler.critic_updates > 0


@pytest.mark.parametrize("algo", ["fasttd3", "pql"])
def test_sequential_aliasing_and_lazy_publication_change_no_number(monkeypatch, algo):
    shared = _sequential_run(monkeypatch, alias=True, lazy=True, algo=algo)
    copied = _sequential_run(monkeypatch, alias=False, lazy=False, algo=algo)
    assert len(shared.engine.aliased) >= 5 and not shared.engine.channels  # every group read in place
    assert not copied.engine.aliased and copied.engine.channels
    _assert_same_run(shared, copied)


def test_lazy_publication_with_intervals_changes_no_number(monkeypatch):
    """Publish intervals above 1 (no aliasing: readers must see the value of the last publication) and more policy
    than critic updates: lazy marks, flushed before the writer's next update, equal eager copies."""
    schedule = {"critic_publish_interval": 2, "policy_publish_interval": 3, "policy_ratio": 2.0}
    lazy = _sequential_run(monkeypatch, alias=True, lazy=True, **schedule)
    eager = _sequential_run(monkeypatch, alias=True, lazy=False, **schedule)
    _assert_same_run(lazy, eager)
    assert {"policy>actor", "critic>plearner"}.isdisjoint(lazy.engine.aliased)


def test_lazy_publication_skips_copies_nobody_reads(monkeypatch):
    """Without aliasing, two policy updates per critic update publish the policy twice; the V-learner and the actor
    read it once: lazily, the first copy is never made."""
    lazy = _sequential_run(monkeypatch, alias=False, lazy=True, policy_ratio=2.0)
    eager = _sequential_run(monkeypatch, alias=False, lazy=False, policy_ratio=2.0)
    _assert_same_run(lazy, eager)
    copies = {id(c): c.version for c in lazy.engine.publishes["plearner"]}
    eager_copies = [c.version for c in eager.engine.publishes["plearner"]]
    assert sum(copies.values()) <= sum(eager_copies) // 2 and min(eager_copies) == lazy.scheduler.policy_updates
