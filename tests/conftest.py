from __future__ import annotations

import os

import pytest
import torch

from parallel_rl.config import AgentConfig, BufferConfig, ScheduleConfig, TrainConfig


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and immune to other processes on the cores


def tiny_config(**overrides) -> TrainConfig:
    """A fast config: tiny networks, few envs, no progress bar."""
    agent = AgentConfig(critic_hidden=(16, 16), actor_hidden=(16, 16), num_atoms=11, v_min=-50, v_max=1,
                        reward_scale=0.1)  # fmt: skip
    base = TrainConfig(task="pendulum", num_envs=4, total_env_steps=400, eval_envs=4, progress=False, device="cpu",
                       agent=agent, schedule=ScheduleConfig(learning_starts=2), buffer=BufferConfig(buffer_size=4000,
                       batch_size=16))  # fmt: skip
    from parallel_rl.config import replace_nested

    return replace_nested(base, overrides)


def pytest_xdist_auto_num_workers(config) -> int:
    """``pytest -n auto``: one worker per core this process may use (its affinity and cgroup quota; psutil, xdist's
    default, counts the host's cores, which inside a container can be many more), and at most one per 4 GiB of
    memory (a worker's resident memory peaked at 3.1 GiB in a full run, with torch, JAX, MuJoCo and mjlab loaded)."""
    from parallel_rl.threads import available_cores

    cores = max(1, int(available_cores()))
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return cores
    return max(1, min(cores, int(memory_gib // 4)))


def pytest_collection_modifyitems(config, items):
    """The learning tests (the slowest, up to about 100 s each) run first, so that ``-n auto`` starts them at once
    on every worker instead of leaving one worker with a long test at the end; GPU-only tests skip cleanly on
    machines without CUDA."""
    items.sort(key=lambda item: "learning" not in item.keywords)  # stable: the order within each group is kept
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# Headless rendering for the MuJoCo-based backends: the GL platform is chosen when mujoco is first imported.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
