"""CUDA-only checks: the hot path (env step, buffer extend/sample, critic and policy updates) never synchronises
with the host, and CUDA results equal CPU results up to float tolerance."""

from __future__ import annotations

import pytest
import torch

import tasks
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config

pytestmark = pytest.mark.gpu


def test_training_iterations_do_not_synchronise():
    trainer = Trainer(tiny_config(device="cuda", total_env_steps=4 * 50), tasks.env_factory("reacher3"))
    for _ in range(10):  # warm-up: lazy CUDA initialisation may synchronise once
        trainer.iteration()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            trainer.iteration()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.scheduler.critic_updates > 0


def test_buffer_sampling_matches_cpu():
    from parallel_rl.buffer import ReplayBuffer
    from tests.test_buffer import EPISODES, step_td

    cpu = ReplayBuffer(1, 1, 1, capacity=64, n_step=3, gamma=0.5)
    gpu = ReplayBuffer(1, 1, 1, capacity=64, n_step=3, gamma=0.5, device="cuda")
    for i, (o, r, term, trunc, fin) in enumerate(EPISODES):
        step = step_td([o], [float(i)], [r], [term], [trunc], [fin])
        cpu.extend(step)
        gpu.extend(step.to("cuda"))
    env, row = torch.zeros(10, dtype=torch.long), torch.tensor([0, 1, 2, 4, 5, 7, 8, 9, 0, 1])
    a, b = cpu.transitions(env, row), gpu.transitions(env.cuda(), row.cuda()).cpu()
    for key in a.keys():
        assert torch.allclose(a[key].float(), b[key].float()), key


# ---- speed options: parity against the eager float32 path -----------------------------------------------------


def _trainer(iterations: int, **overrides) -> Trainer:
    cfg = tiny_config(device="cuda", total_env_steps=4 * 200, **overrides)
    trainer = Trainer(cfg, tasks.env_factory("reacher3"))
    for _ in range(iterations):
        trainer.iteration()
    trainer.finish()
    trainer.runtime.close()
    torch.cuda.synchronize()
    return trainer


def _params(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"critic.{k}": v for k, v in trainer.algo.critic.state_dict().items()}
    out.update({f"actor.{k}": v for k, v in trainer.algo.policy.state_dict().items()})
    return out


def _assert_close(a: Trainer, b: Trainer, atol: float, rtol: float) -> None:
    pa, pb = _params(a), _params(b)
    for key in pa:
        assert torch.allclose(pa[key], pb[key], atol=atol, rtol=rtol), (key, (pa[key] - pb[key]).abs().max())


def test_cuda_graphs_match_eager():
    eager, graphed = _trainer(40), _trainer(40, speed={"cuda_graphs": True})
    assert graphed.vlearner._update.graph is not None and graphed.algo._act.graph is not None
    assert graphed.scheduler.state_dict() == eager.scheduler.state_dict()
    _assert_close(eager, graphed, atol=1e-5, rtol=1e-4)


def test_bf16_autocast_stays_close_to_fp32():
    eager, bf16 = _trainer(20), _trainer(20, speed={"bf16": True})
    _assert_close(eager, bf16, atol=2e-2, rtol=5e-2)
    assert any(not torch.equal(a, b) for a, b in zip(_params(eager).values(), _params(bf16).values()))


def test_cuda_graphs_with_bf16_match_bf16():
    bf16, both = _trainer(30, speed={"bf16": True}), _trainer(30, speed={"bf16": True, "cuda_graphs": True})
    _assert_close(bf16, both, atol=1e-3, rtol=1e-2)


def test_compile_matches_eager():
    eager, compiled = _trainer(20), _trainer(20, speed={"compile": True})
    _assert_close(eager, compiled, atol=1e-4, rtol=1e-3)


def test_tf32_stays_close_to_fp32():
    try:
        eager, tf32 = _trainer(20), _trainer(20, speed={"tf32": True})
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
    _assert_close(eager, tf32, atol=1e-2, rtol=1e-2)


# ---- modes on streams -------------------------------------------------------------------------------------------


def test_pipelined_streams_match_the_serial_reference():
    """On a GPU the three parts run on three streams; scatter-add atomics make float sums order-dependent, so the
    comparison is to float tolerance rather than bit for bit (the CPU test is bit for bit)."""
    schedule = {"mode": "pipelined", "utd": 2}
    serial = _trainer(40, schedule=schedule | {"pipeline_serial": True})
    streams = _trainer(40, schedule=schedule)
    assert streams.vlearner.lane.stream is not None and serial.vlearner.lane.stream is None
    assert serial.scheduler.state_dict() == streams.scheduler.state_dict()
    _assert_close(serial, streams, atol=1e-5, rtol=1e-4)


def test_pipelined_iterations_do_not_synchronise():
    cfg = tiny_config(device="cuda", total_env_steps=4 * 200, schedule={"mode": "pipelined"},
                      speed={"cuda_graphs": True})  # fmt: skip
    trainer = Trainer(cfg, tasks.env_factory("reacher3"))
    for _ in range(10):
        trainer.iteration()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            trainer.iteration()
    finally:
        torch.cuda.set_sync_debug_mode("default")
        trainer.runtime.close()


def test_free_mode_on_streams_keeps_its_bound():
    from parallel_rl.runtime.modes import bound_ok, free_bound

    cfg = tiny_config(device="cuda", total_env_steps=4 * 1000, schedule={"mode": "free", "utd": 2})
    trainer = Trainer(cfg, tasks.env_factory("reacher3"))
    trainer.runtime.trace = []
    for _ in range(trainer.total_iterations):
        trainer.iteration()
    trainer.finish()
    sched = trainer.scheduler
    k = free_bound(2, 0.5, 0)
    assert bound_ok(trainer.runtime.trace, sched._utd, sched._policy_ratio, sched.learning_starts, k)
    assert all(torch.isfinite(p).all() for p in trainer.algo.critic.parameters())
