"""Runtime modes on CPU: pipelined == its serial reference bit for bit, the free-mode bound, the double buffer."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from tensordict import TensorDict

import tasks
from parallel_rl.algos import ALGORITHMS
from parallel_rl.runtime import Channel, Lane, Trainer
from parallel_rl.runtime.modes import bound_ok, free_bound, free_reserve
from tests.conftest import tiny_config
from tests.test_runtime import PendulumWithPrivilegedCritic


def _flatten(prefix: str, value, out: dict[str, torch.Tensor]) -> None:
    if torch.is_tensor(value):
        out[prefix] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _flatten(f"{prefix}.{i}", v, out)


def full_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every learned or counted tensor of a run: the algorithm's whole state (networks, targets, normalizers,
    optimizer moments, exploration state and generators), every replica other roles read, and the buffer."""
    out: dict[str, torch.Tensor] = {}
    _flatten("algo", trainer.algo.state_dict(), out)
    for i, channel in enumerate(trainer.channels):
        _flatten(f"channel{i}.local", channel.local.to_dict(), out)
    out["buffer.obs"] = trainer.buffer.obs
    return out


def run_pipelined(serial: bool, env_factory, **overrides) -> Trainer:
    schedule = {"mode": "pipelined", "pipeline_serial": serial, "utd": 2, "policy_ratio": 0.5}
    cfg = tiny_config(schedule=schedule | overrides.pop("schedule", {}), **overrides)
    trainer = Trainer(cfg, env_factory)
    for _ in range(trainer.total_iterations):
        trainer.iteration()
    trainer.finish()
    trainer.runtime.close()
    return trainer


# DAC and DEA (issue 15) are left out for the suite's time budget: their extra replicas travel through the same
# channels (checked once with this test when they were added); VPL stays, its validation views are its own runtime path.
@pytest.mark.parametrize("algo", [a for a in ALGORITHMS if a not in ("dac", "dea")])
def test_pipelined_concurrent_equals_serial_reference_bit_for_bit(algo):
    # A small buffer (30 rows per env) wraps many times, so the reserved rows matter; n-step 3 and an asymmetric
    # critic exercise every published input.
    kw = {"algo": algo, "total_env_steps": 4 * 120, "buffer": {"buffer_size": 4 * 30}, "agent": {"n_step": 3}}
    if algo == "vpl":  # fits its pessimism on a held-out env's buffer
        kw["td_validation_envs"] = 1
    serial = run_pipelined(True, PendulumWithPrivilegedCritic, **kw)
    concurrent = run_pipelined(False, PendulumWithPrivilegedCritic, **kw)
    assert concurrent.runtime.pool is not None and serial.runtime.pool is None  # really ran in threads
    a, b = full_state(serial), full_state(concurrent)
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert serial.scheduler.state_dict() == concurrent.scheduler.state_dict()


def test_pipelined_runs_the_same_updates_as_sequential():
    seq = Trainer(tiny_config(total_env_steps=4 * 50, schedule={"utd": 0.5, "policy_ratio": 0.5}),
                  tasks.env_factory("pendulum"))  # fmt: skip
    for _ in range(seq.total_iterations):
        seq.iteration()
    pipe = run_pipelined(False, tasks.env_factory("pendulum"), total_env_steps=4 * 50,
                         schedule={"utd": 0.5, "policy_ratio": 0.5})  # fmt: skip
    assert pipe.scheduler.state_dict() == seq.scheduler.state_dict()
    assert pipe.vlearner.metrics.n == seq.vlearner.metrics.n == seq.scheduler.critic_updates
    assert pipe.plearner.metrics.n == seq.scheduler.policy_updates
    # and it is not the same computation: the learners lag the actor by one step
    assert not torch.equal(pipe.algo.critic.net[0].weight, seq.algo.critic.net[0].weight)


@pytest.mark.parametrize("utd,ratio,k", [(2.0, 0.5, 0), (0.25, 1.0, 1), (1.0, 0.5, 3)])
def test_free_mode_keeps_its_bound_over_2000_env_steps(utd, ratio, k):
    cfg = tiny_config(total_env_steps=2 * 2000, num_envs=2, buffer={"buffer_size": 2 * 400, "batch_size": 8},
                      agent={"critic_hidden": (8,), "actor_hidden": (8,)},
                      schedule={"mode": "free", "utd": utd, "policy_ratio": ratio, "free_bound": k})  # fmt: skip
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    trainer.runtime.trace = []
    for _ in range(trainer.total_iterations):
        trainer.iteration()
    trainer.finish()
    sched, bound = trainer.scheduler, free_bound(utd, ratio, k)
    assert sched.env_steps == 2000
    trace = trainer.runtime.trace
    assert len(trace) >= 2000 + sched.critic_updates
    assert bound_ok(trace, sched._utd, sched._policy_ratio, sched.learning_starts, bound)
    # after finish no update that was due is missing (learners may have run up to k ahead before the actor stopped)
    assert 0 <= sched.critic_updates - int(sched._utd * sched.learning_env_steps) <= bound
    assert 0 <= sched.policy_updates - int(sched._policy_ratio * sched.critic_updates) <= bound
    # the bound check is not vacuous: a trace that drifts by k + 1 fails it
    e, c, p = trace[-1]
    assert not bound_ok([(e, c + bound + 1, p)], sched._utd, sched._policy_ratio, sched.learning_starts, bound)


def test_free_mode_rejects_a_bound_below_one_step_and_a_buffer_too_small():
    with pytest.raises(ValueError, match="free-bound"):
        free_bound(8, 0.5, 2)
    reserve = free_reserve(1.0, 0.5, 2)
    cfg = tiny_config(buffer={"buffer_size": 4 * (reserve // 2)}, schedule={"mode": "free", "free_bound": 2})
    with pytest.raises(ValueError, match="--buffer-size"):
        Trainer(cfg, tasks.env_factory("pendulum"))


def test_free_mode_trains_end_to_end(tmp_path):
    cfg = tiny_config(total_env_steps=4 * 100, schedule={"mode": "free", "utd": 2})
    summary = Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    assert summary["critic_updates"] == 2 * 99
    rows = (tmp_path / "metrics.csv").read_text()
    assert "wait_s_actor" in rows and "wait_s_vlearner" in rows


def test_channel_reader_never_sees_a_mix_of_two_versions():
    """A writer thread publishes versions v (every tensor filled with v) as fast as it can while a reader thread
    pulls; every pulled copy must be one version throughout. Large tensors make a torn copy likely if the slot
    being read were ever written."""
    source = TensorDict({"a": torch.zeros(200_000), "b": torch.zeros(50, 1000)})
    lane = Lane(torch.device("cpu"), "x")
    channel = Channel(source, lane, lane)
    stop, seen, errors = threading.Event(), set(), []

    def writer():
        v = 0
        while not stop.is_set():
            v += 1
            source["a"].fill_(v)
            source["b"].fill_(v)
            channel.publish()

    def reader():
        deadline = time.monotonic() + 60
        while len(seen) < 200 and time.monotonic() < deadline:
            if channel.pull():
                values = torch.cat([channel.local["a"], channel.local["b"].flatten()]).unique()
                if len(values) != 1:
                    errors.append(values[:5].tolist())
                seen.add(int(values[0]))
        stop.set()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(seen) >= 200  # the reader really saw many versions while they were being written


def test_unsafe_single_buffer_would_tear():
    """The check above can fail: reading while another thread writes the same tensor shows mixed versions."""
    source = torch.zeros(2_000_000)
    stop, mixed = threading.Event(), []

    def writer():
        v = 0
        while not stop.is_set():
            v += 1
            source.fill_(v)

    t = threading.Thread(target=writer)
    t.start()
    for _ in range(300):
        if len(source.clone().unique()) > 1:
            mixed.append(True)
            break
    stop.set()
    t.join()
    assert mixed


def test_deferred_channel_publishes_only_at_commit():
    source = TensorDict({"w": torch.zeros(3)})
    lane = Lane(torch.device("cpu"), "x")
    channel = Channel(source, lane, lane, deferred=True)
    source["w"].fill_(1.0)
    channel.publish()
    assert not channel.pull() and channel.local["w"].sum() == 0
    channel.commit()
    assert channel.pull() and torch.equal(channel.local["w"], torch.ones(3))
    assert not channel.pull()  # nothing new
