"""How many CPU threads torch should use: the cores this process may really run on, and the network size.

Why not torch's default (one thread per core the machine has): torch's OpenMP parallel regions end when their
slowest thread ends. On a machine where another process keeps a core busy, the thread that shares that core runs at
a fraction of its speed and every region waits for it, so two threads can be several times slower than one. And
for networks of a few hundred units, a region's work is smaller than its start-up and join cost. So:

- the cores counted are those the process may use: its CPU affinity (``taskset``, Slurm, ``docker --cpuset-cpus``)
  and its cgroup CPU quota (``docker --cpus``, Kubernetes limits), not ``os.cpu_count()``;
- networks whose largest matmul is small get one thread; larger ones get one per available core.

The choice depends only on the machine's limits and the configuration, never on the momentary load, so a seeded run
computes the same floats every time on the same machine. On a machine shared with other jobs, ``--torch-threads 1``
(or cores / jobs) is the safe choice; sweep and benchmark runners give each child ``cores // workers``.

This module imports no torch at import time, so runners can compute a child's environment cheaply.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

#: Multiply-adds of one matmul (batch x in x out) below which a second thread costs more than it saves.
MULTITHREAD_MIN_MACS = 1 << 25


def cgroup_cpu_limit(cgroup_root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | Path = "/proc/self/cgroup"):
    """CPUs allowed by the process's cgroup quota (quota / period), or None when there is no quota or no cgroup.

    cgroup v2: ``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``. cgroup v1: ``cpu.cfs_quota_us`` (-1
    for none) and ``cpu.cfs_period_us``. The process's own cgroup directory is tried first, then the mount's root
    (inside a container the root is the container's cgroup)."""
    root = Path(cgroup_root)
    v2_dirs, v1_dirs = [], []
    try:
        for line in Path(proc_cgroup).read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            rel = parts[2].lstrip("/")
            if parts[0] == "0" and parts[1] == "":
                v2_dirs.append(root / rel)
            elif "cpu" in parts[1].split(","):
                v1_dirs += [root / parts[1] / rel, root / "cpu" / rel, root / "cpu,cpuacct" / rel]
    except OSError:
        pass
    limits = []
    for d in [*v2_dirs, root]:
        try:
            quota, period = (d / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max":
            limits.append(int(quota) / int(period))
        break
    for d in [*v1_dirs, root / "cpu", root / "cpu,cpuacct"]:
        try:
            quota = int((d / "cpu.cfs_quota_us").read_text())
            period = int((d / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            limits.append(quota / period)
        break
    return min(limits) if limits else None


def available_cores() -> float:
    """Cores this process may use: its CPU affinity, capped by its cgroup quota (may be fractional)."""
    try:
        cores: float = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    return min(cores, quota) if quota is not None else cores


def largest_matmul_macs(batch_size: int, obs_dim: int, hidden: Sequence[int], out_dim: int) -> int:
    """Multiply-adds of the biggest layer of an MLP applied to a batch (one ensemble member)."""
    dims = [obs_dim, *hidden, out_dim]
    return batch_size * max(a * b for a, b in zip(dims[:-1], dims[1:]))


def default_torch_threads(macs: int, cores: float | None = None) -> int:
    """Threads for a job whose largest matmul has ``macs`` multiply-adds, on ``cores`` usable cores (default: this
    process's ``available_cores()``): 1 for small networks, else every whole available core."""
    cores = available_cores() if cores is None else cores
    whole = max(1, math.floor(cores))
    return 1 if macs < MULTITHREAD_MIN_MACS else whole


def child_threads(workers: int, cores: float | None = None) -> int:
    """Threads for each of ``workers`` child processes sharing this process's cores (at least one)."""
    cores = available_cores() if cores is None else cores
    return max(1, math.floor(cores / max(1, workers)))


def child_env(threads: int | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process whose idle OpenMP threads sleep instead of spinning (spinning threads
    take cores from the other children) and, unless ``threads`` is None, that uses ``threads`` threads."""
    env = dict(os.environ if base is None else base)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def config_torch_threads(cfg, cores: float | None = None) -> int:
    """``cfg.torch_threads`` of a ``TrainConfig``, or when it is 0 the default for its networks and batch: the
    largest hidden-to-hidden (or hidden-to-output) matmul of the critic and the actor at ``batch_size``."""
    if cfg.torch_threads > 0:
        return cfg.torch_threads
    a, batch = cfg.agent, cfg.buffer.batch_size
    macs = max(largest_matmul_macs(batch, h[0], h[1:], out) if h else 0
               for h, out in ((a.critic_hidden, a.num_atoms), (a.actor_hidden, 1)))  # fmt: skip
    return default_torch_threads(macs, cores)


def apply_torch_threads(threads: int) -> int:
    """Set torch's intra-op threads (the OpenMP/MKL pool); returns the count."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
