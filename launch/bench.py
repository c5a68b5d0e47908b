"""Throughput benchmark: env steps/s of the built-in tasks, critic/policy updates/s of FastTD3's networks, the
runtime's V-learner update under each speed option (with critic TFLOP/s), and end-to-end transitions/s of whole
training iterations in each mode (sequential, pipelined, free) with the overlap gain over sequential.

Run ``python -m launch.bench`` (``--quick`` for a seconds-long smoke run). Results are printed as a table and written
to ``<out-dir>/throughput_<device type>.{json,md}`` (``throughput_<device type>_quick.*`` in quick mode, so a smoke
run never overwrites real numbers), together with the machine they were measured on.

What is timed, and why:

- env steps/s counts transitions (vectorized steps x num_envs), the unit of ``total_env_steps``. Random actions
  within the bounds are drawn before timing and cycled, so only the env itself is measured.
- an update is what the runtime's learners do per update: ``buffer.sample`` from a real ``ReplayBuffer`` filled with
  random transitions, the FastTD3 loss, zero_grad, backward and an AdamW step (plus the soft target update for the
  critic) and the observation normalization, all inside ``FastTD3.update_critic`` / ``update_actor``. The actor is
  trained against a frozen copy of the critic and the critic's target actions come from a frozen copy of the actor,
  as in the runtime.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import tyro
from tensordict import TensorDict

from parallel_rl.memory import retain_freed_memory

ENV_COUNTS = (1, 64, 1024, 4096)
QUICK_ENV_COUNTS = (1, 64)
#: Representative task for the network benchmark: its obs/act sizes and value range.
NET_TASK, NET_OBS_DIM, NET_ACT_DIM, NET_V_MIN, NET_V_MAX = "reacher3", 13, 3, -40.0, 1.0


@dataclass(frozen=True)
class NetSetting:
    """One network size to benchmark."""

    name: str
    critic_hidden: tuple[int, ...]
    actor_hidden: tuple[int, ...]
    num_atoms: int
    batch_size: int
    large: bool = False
    """Large settings take seconds per update on a CPU, so there they run a fixed, small number of updates."""


NET_SETTINGS = (
    NetSetting("default", (256, 256), (256, 256), 101, 256),
    NetSetting("fasttd3", (1024, 512, 256), (512, 256, 128), 101, 32768, large=True),
)


@dataclass(frozen=True)
class BenchConfig:
    """Measure env steps/s of the built-in tasks and critic/policy updates/s of FastTD3 networks."""

    device: str = "auto"
    """'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    out_dir: str = "benchmarks/results"
    """Directory for throughput_<device>.json and .md."""
    quick: bool = False
    """Smoke run: tiny timings, 1 and 64 envs only, default network only; writes throughput_<device>_quick.*."""
    seconds: float = 1.0
    """Target timed seconds per setting; the step/update caps below may stop a setting earlier."""
    max_env_steps: int = 5000
    """Cap on timed vectorized env steps per (task, num_envs)."""
    max_updates: int = 500
    """Cap on timed updates per network setting and update kind."""
    large_cpu_updates: int = 3
    """Timed updates of the FastTD3-sized networks on CPU, after one warm-up (each takes seconds there)."""
    seed: int = 0
    """Seed of envs, networks, random transitions and replay sampling."""
    options: bool = True
    """Time the runtime's V-learner update under each speed option (eager fp32, bf16, CUDA graphs, graphs + bf16,
    compile) and report critic-update TFLOP/s."""
    e2e: bool = True
    """Time whole training iterations (env step + updates at --utd) in each mode: sequential, pipelined, free."""
    utd: float = 2.0
    """Critic updates per vectorized env step in the end-to-end rows (FastTD3's default is 2)."""
    e2e_envs: tuple[int, ...] = ()
    """num_envs of the end-to-end rows (default: 64 on CPU; 1024 and 4096 on CUDA)."""
    e2e_iterations: int = 0
    """Timed iterations per end-to-end row (0: 30 on CPU, 200 on CUDA)."""
    torch_threads: int = 0
    """CPU threads for torch (0 keeps torch's default)."""
    reference: str | None = None
    """Path of a checkout of younggyoseo/FastTD3: time our learners and buffer against its networks, buffer and
    update step (imported unmodified, driven as its train.py drives them) interleaved in this process, and write
    <out-dir>/fasttd3_reference_cpu.{json,md}; nothing else is measured."""
    check: str | None = None
    """Baseline JSON: measure this code's figures as ratios to a bare matmul chain and a bare update loop timed in
    this process, compare them with the baseline's, and exit 1 if any fell by more than --tolerance."""
    write_baseline: str | None = None
    """Measure the --check figures and write them as a new baseline JSON to this path."""
    tolerance: float = 0.4
    """--check fails a figure whose ratio is below (1 - tolerance) x the baseline's."""
    rounds: int = 5
    """Interleaved rounds of --check and --reference (the median ratio over rounds is kept)."""


def _sync_fn(device: torch.device) -> Callable[[], None]:
    """Timings must include queued GPU work, so CUDA is synchronized at every clock read."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), or None where unavailable."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Timing:
    """One timed setting: iterations, wall seconds, and how busy the rest of the machine was meanwhile."""

    iters: int
    seconds: float
    other_load: float | None
    """Cores kept busy by other processes meanwhile: on a shared machine they slow torch's threads, often badly."""


def time_loop(
    fn: Callable[[], Any], sync: Callable[[], None], warmup: int, target_s: float, min_iters: int, max_iters: int
) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then in growing chunks until ``target_s`` or ``max_iters`` is reached.

    Chunks (synchronized at their ends) keep syncs out of the inner loop while adapting the count to the speed of
    ``fn``. A chunk also stops at a deadline of 3 x ``target_s`` (once ``min_iters`` ran), so that a slowdown in
    mid-chunk (another process taking the cores) cannot stretch a setting far past its budget. Returns (timed
    iterations, seconds and other processes' load).
    """
    for _ in range(warmup):
        fn()
    sync()
    iters, chunk, elapsed = 0, 1, 0.0
    busy0, own0 = _busy_cpu_seconds(), time.process_time()
    start = time.perf_counter()
    deadline = start + 3 * target_s
    while True:
        for _ in range(max(1, min(chunk, max_iters - iters))):
            fn()
            iters += 1
            if iters >= min_iters and time.perf_counter() > deadline:
                break
        sync()
        elapsed = time.perf_counter() - start
        if iters >= max_iters or (iters >= min_iters and elapsed >= target_s):
            busy1, own = _busy_cpu_seconds(), time.process_time() - own0
            # /proc/stat counts in clock ticks (10 ms): too coarse for a window much shorter than a quarter second.
            measurable = busy0 is not None and busy1 is not None and elapsed >= 0.25
            other = max(0.0, (busy1 - busy0 - own) / elapsed) if measurable else None
            return Timing(iters, elapsed, other)
        remaining = math.ceil(iters / max(elapsed, 1e-9) * (target_s - elapsed))
        chunk = max(1, min(2 * chunk, remaining))


def bench_env(task: str, num_envs: int, device: torch.device, cfg: BenchConfig) -> dict[str, Any]:
    """Steps/s of one task at one env count, with uniformly random actions inside the bounds."""
    import tasks

    env = tasks.make_env(task, num_envs, device, cfg.seed)
    env.reset(seed=cfg.seed)
    low, high = env.spec.action_bounds(device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    pool = low + (high - low) * torch.rand(32, num_envs, env.spec.act_dim, generator=gen, device=device)
    i = 0

    def step() -> None:
        nonlocal i
        env.step(pool[i % pool.shape[0]])
        i += 1

    t = time_loop(step, _sync_fn(device), warmup=5, target_s=cfg.seconds, min_iters=1,
                               max_iters=cfg.max_env_steps)  # fmt: skip
    return {
        "task": task,
        "num_envs": num_envs,
        "obs_dim": env.spec.obs_dim,
        "act_dim": env.spec.act_dim,
        "timed_vec_steps": t.iters,
        "seconds": t.seconds,
        "vec_steps_per_s": t.iters / t.seconds,
        "env_steps_per_s": t.iters * num_envs / t.seconds,
        "other_load": t.other_load,
    }


def filled_buffer(device: torch.device, num_envs: int, rows: int, fills: int, seed: int):
    """A real replay buffer holding random transitions (about 1% of steps end an episode), so sampling is timed."""
    from parallel_rl.buffer import ReplayBuffer

    buffer = ReplayBuffer(num_envs, NET_OBS_DIM, NET_ACT_DIM, num_envs * rows, device, n_step=1, gamma=0.99,
                          seed=seed)  # fmt: skip
    gen = torch.Generator(device=device).manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, device=device)

    for _ in range(fills):
        step = {
            "obs": rand(num_envs, NET_OBS_DIM) * 2 - 1,
            "action": rand(num_envs, NET_ACT_DIM) * 2 - 1,
            "reward": rand(num_envs) - 1,
            "terminated": rand(num_envs) < 0.005,
            "truncated": rand(num_envs) < 0.005,
            "final_obs": rand(num_envs, NET_OBS_DIM) * 2 - 1,
        }
        buffer.extend(TensorDict(step, batch_size=[num_envs], device=device))
    return buffer


def bench_net(setting: NetSetting, buffer, device: torch.device, cfg: BenchConfig) -> dict[str, Any]:
    """Critic and policy updates/s of one network size, each update sampling its own batch from ``buffer``."""
    from parallel_rl.algos import Context, FastTD3
    from parallel_rl.config import AgentConfig
    from parallel_rl.envs import EnvSpec

    torch.manual_seed(cfg.seed)
    hp = AgentConfig(critic_hidden=setting.critic_hidden, actor_hidden=setting.actor_hidden,
                     num_atoms=setting.num_atoms, v_min=NET_V_MIN, v_max=NET_V_MAX)  # fmt: skip
    spec = EnvSpec(obs_dim=NET_OBS_DIM, act_dim=NET_ACT_DIM, num_envs=1, device=device,
                   action_low=(-1.0,) * NET_ACT_DIM, action_high=(1.0,) * NET_ACT_DIM, max_episode_steps=1)  # fmt: skip
    algo = FastTD3(hp, Context(spec, device, seed=cfg.seed))
    batch_size = setting.batch_size

    def critic_update() -> None:
        algo.update_critic(buffer.sample(batch_size))

    def actor_update() -> None:
        algo.update_actor(buffer.sample(batch_size))

    if setting.large and device.type == "cpu":
        warmup, min_iters, max_iters = 1, cfg.large_cpu_updates, cfg.large_cpu_updates
    else:
        warmup, min_iters, max_iters = (1 if cfg.quick else 3), 1, cfg.max_updates
    sync = _sync_fn(device)
    row: dict[str, Any] = {
        "network": setting.name,
        "critic_hidden": list(setting.critic_hidden),
        "actor_hidden": list(setting.actor_hidden),
        "num_atoms": setting.num_atoms,
        "critics": hp.num_critics,
        "batch_size": batch_size,
        "obs_dim": NET_OBS_DIM,
        "act_dim": NET_ACT_DIM,
        "critic_params": sum(p.numel() for p in algo.critic.parameters()),
        "actor_params": sum(p.numel() for p in algo.policy.parameters()),
        "warmup_updates": warmup,
    }
    for kind, fn in (("critic", critic_update), ("actor", actor_update)):
        t = time_loop(fn, sync, warmup, cfg.seconds, min_iters, max_iters)
        row[f"{kind}_timed_updates"] = t.iters
        row[f"{kind}_seconds"] = t.seconds
        row[f"{kind}_updates_per_s"] = t.iters / t.seconds
        row[f"{kind}_other_load"] = t.other_load
    return row


#: Speed options of the runtime, as (name, SpeedConfig overrides, needs CUDA).
OPTIONS = (
    ("eager fp32", {}, False),
    ("bf16", {"bf16": True}, False),
    ("cuda graphs", {"cuda_graphs": True}, True),
    ("cuda graphs + bf16", {"cuda_graphs": True, "bf16": True}, True),
    ("compile", {"compile": True}, True),
)
MODES = ("sequential", "pipelined", "free")


def _train_config(setting: NetSetting, device: torch.device, num_envs: int, cfg: BenchConfig, **overrides):
    """A TrainConfig of the benchmark task at one network setting (learning starts after the buffer holds rows)."""
    from parallel_rl.config import AgentConfig, BufferConfig, ScheduleConfig, SpeedConfig, TrainConfig

    speed = dict(overrides.pop("speed", {}))
    if speed.get("bf16") and device.type == "cpu":
        speed["cpu_bf16"] = True  # measuring the CPU bf16 slowdown is the point of that row
    speed = SpeedConfig(**speed)
    schedule = ScheduleConfig(utd=cfg.utd, policy_ratio=0.5, learning_starts=overrides.pop("learning_starts", 8),
                              mode=overrides.pop("mode", "sequential"))  # fmt: skip
    agent = AgentConfig(critic_hidden=setting.critic_hidden, actor_hidden=setting.actor_hidden,
                        num_atoms=setting.num_atoms, v_min=NET_V_MIN, v_max=NET_V_MAX)  # fmt: skip
    rows = max(256, 2 * setting.batch_size // num_envs + 1)  # the buffer holds at least two batches
    # torch_threads: the benchmark's own count (the trainer would otherwise choose one per network size).
    return TrainConfig(task=NET_TASK, num_envs=num_envs, total_env_steps=num_envs * 10**6, device=str(device),
                       progress=False, seed=cfg.seed, torch_threads=torch.get_num_threads(), agent=agent,
                       schedule=schedule, speed=speed,
                       buffer=BufferConfig(buffer_size=num_envs * rows, batch_size=setting.batch_size))  # fmt: skip


def critic_update_flops(setting: NetSetting, obs_dim: int, act_dim: int, num_critics: int = 2) -> float:
    """Multiply-adds x 2 of one critic update, counted from the layer shapes: forward + backward (2x forward) of
    the trained critics, forward of the target critics and of the policy for the target action."""

    def mlp(sizes: list[int]) -> int:
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    critic = num_critics * mlp([obs_dim + act_dim, *setting.critic_hidden, setting.num_atoms])
    actor = mlp([obs_dim, *setting.actor_hidden, act_dim])
    return 2.0 * setting.batch_size * (3 * critic + critic + actor)


def bench_options(setting: NetSetting, device: torch.device, cfg: BenchConfig) -> list[dict[str, Any]]:
    """V-learner updates/s (the runtime's own component: channel pulls, sampling, loss, AdamW, soft update) under
    each speed option; critic TFLOP/s from ``critic_update_flops``."""
    import tasks
    from parallel_rl.runtime import Trainer

    rows = []
    for name, speed, needs_cuda in OPTIONS:
        if (needs_cuda and device.type != "cuda") or (setting.large and device.type == "cpu" and speed):
            continue
        num_envs = 1024 if device.type == "cuda" else (16 if cfg.quick else 64)
        tcfg = _train_config(setting, device, num_envs, cfg, speed=speed, learning_starts=10**9)
        trainer = Trainer(tcfg, tasks.env_factory(NET_TASK))
        for _ in range(8 if cfg.quick else 32):  # fill the buffer (no updates: learning never starts)
            trainer.iteration()
        if setting.large and device.type == "cpu":
            warmup, min_iters, max_iters = 1, cfg.large_cpu_updates, cfg.large_cpu_updates
        else:
            warmup, min_iters, max_iters = (1 if cfg.quick else 5), 1, cfg.max_updates
        t = time_loop(trainer.vlearner.update, _sync_fn(device), warmup, cfg.seconds, min_iters, max_iters)
        rate = t.iters / t.seconds
        flops = critic_update_flops(setting, trainer.env.spec.obs_dim, trainer.env.spec.act_dim)
        rows.append({"network": setting.name, "option": name, "batch_size": setting.batch_size,
                     "critic_updates_per_s": rate, "critic_tflops": rate * flops / 1e12, "timed_updates": t.iters,
                     "seconds": t.seconds, "other_load": t.other_load})  # fmt: skip
        print(f"  option {setting.name:>8} {name:>20} {_rate(rate)} critic upd/s", flush=True)
    base = next((r["critic_updates_per_s"] for r in rows if r["option"] == "eager fp32"), None)
    for r in rows:
        r["speedup_vs_eager_fp32"] = None if base is None else r["critic_updates_per_s"] / base
    return rows


def bench_e2e(setting: NetSetting, num_envs: int, device: torch.device, cfg: BenchConfig,
              options: tuple[str, dict]) -> list[dict[str, Any]]:  # fmt: skip
    """Transitions/s of whole training iterations (env step + utd critic updates + policy updates) per mode; the
    timing includes ``finish`` (learners completing what is due), so every mode does the same updates."""
    import tasks
    from parallel_rl.runtime import Trainer

    iters = cfg.e2e_iterations or (200 if device.type == "cuda" else 30)
    if cfg.quick:
        iters = 5
    sync = _sync_fn(device)
    rows = []
    opt_name, speed = options
    for mode in MODES:
        tcfg = _train_config(setting, device, num_envs, cfg, mode=mode, speed=speed, learning_starts=4)
        trainer = Trainer(tcfg, tasks.env_factory(NET_TASK))
        for _ in range(6 if cfg.quick else 12):  # warm-up: learning starts, CUDA graphs are captured
            trainer.iteration()
        sync()
        sched = trainer.scheduler
        c0, p0 = sched.critic_updates, sched.policy_updates
        start = time.perf_counter()
        for _ in range(iters):
            trainer.iteration()
        trainer.finish()
        sync()
        seconds = time.perf_counter() - start
        trainer.runtime.close()
        critic, policy = sched.critic_updates - c0, sched.policy_updates - p0
        rows.append({"network": setting.name, "num_envs": num_envs, "mode": mode, "option": opt_name,
                     "utd": cfg.utd, "batch_size": setting.batch_size, "iterations": iters, "seconds": seconds,
                     "transitions_per_s": iters * num_envs / seconds, "critic_updates_per_s": critic / seconds,
                     "policy_updates_per_s": policy / seconds, "waits": trainer.runtime.wait_metrics()})  # fmt: skip
        print(f"  e2e {setting.name:>8} x{num_envs:<5} {mode:>10} {opt_name:>18} "
              f"{_rate(rows[-1]['transitions_per_s'])} transitions/s", flush=True)  # fmt: skip
    base = rows[0]["transitions_per_s"]
    for r in rows:
        r["overlap_gain"] = r["transitions_per_s"] / base
    return rows


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what platform knows). Shared by every benchmark report."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: torch.device) -> dict[str, Any]:
    """Enough about the machine to compare numbers across runs."""
    cpu = cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import tensordict

    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "torch_version": torch.__version__,
        "tensordict_version": tensordict.__version__,
        "torch_threads": torch.get_num_threads(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu,
        "cuda_version": torch.version.cuda,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_avg_start": _load_avg(),
    }


def _load_avg() -> list[float] | None:
    """Other processes competing for the cores skew the numbers; the load average makes that visible."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _rate(x: float) -> str:
    """Thousands separators for big rates, three significant digits for small ones (large nets on CPU)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _load(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def tables(results: dict[str, Any]) -> str:
    """The results as two Markdown tables; they read fine on a terminal too. 'other load' = cores busy with other
    processes while the row was timed; rows with a high value understate this machine."""
    lines = [
        "| task | num_envs | env steps/s | vec steps/s | timed steps | seconds | other load |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results["env"]:
        lines.append(f"| {r['task']} | {r['num_envs']} | {_rate(r['env_steps_per_s'])} | "
                     f"{_rate(r['vec_steps_per_s'])} | {r['timed_vec_steps']} | {r['seconds']:.2f} | "
                     f"{_load(r['other_load'])} |")  # fmt: skip
    lines += [
        "",
        "| network | critic hidden | actor hidden | atoms | batch | critic upd/s | actor upd/s | timed (c/a) "
        "| other load (c/a) |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results["updates"]:
        lines.append(
            f"| {r['network']} | {tuple(r['critic_hidden'])} | {tuple(r['actor_hidden'])} | {r['num_atoms']} | "
            f"{r['batch_size']} | {_rate(r['critic_updates_per_s'])} | {_rate(r['actor_updates_per_s'])} | "
            f"{r['critic_timed_updates']}/{r['actor_timed_updates']} | "
            f"{_load(r['critic_other_load'])}/{_load(r['actor_other_load'])} |"
        )
    if results.get("options"):
        lines += ["", "| network | option | batch | critic upd/s | critic TFLOP/s | speed-up vs eager fp32 "
                  "| other load |", "|---|---|--:|--:|--:|--:|--:|"]  # fmt: skip
        for r in results["options"]:
            gain = "n/a" if r["speedup_vs_eager_fp32"] is None else f"{r['speedup_vs_eager_fp32']:.2f}x"
            lines.append(f"| {r['network']} | {r['option']} | {r['batch_size']} | {_rate(r['critic_updates_per_s'])} "
                         f"| {r['critic_tflops']:.3g} | {gain} | {_load(r['other_load'])} |")  # fmt: skip
    if results.get("e2e"):
        lines += ["", "| network | num_envs | option | mode | utd | transitions/s | critic upd/s | policy upd/s "
                  "| overlap gain vs sequential |", "|---|--:|---|---|--:|--:|--:|--:|--:|"]  # fmt: skip
        for r in results["e2e"]:
            lines.append(f"| {r['network']} | {r['num_envs']} | {r['option']} | {r['mode']} | {r['utd']:g} | "
                         f"{_rate(r['transitions_per_s'])} | {_rate(r['critic_updates_per_s'])} | "
                         f"{_rate(r['policy_updates_per_s'])} | {r['overlap_gain']:.2f}x |")  # fmt: skip
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """A self-contained report: where and how the numbers were measured, then the tables."""
    m = results["machine"]
    head = [
        f"# Throughput on {m['device_name']} ({m['device']})",
        "",
        f"- command: `{results['command']}`",
        f"- date: {m['date']}",
        f"- CPU: {m['cpu_model']}, {m['cpu_cores']} cores ({m['cpu_cores_usable']} usable), "
        f"torch threads {m['torch_threads']}",
        f"- torch {m['torch_version']}, tensordict {m['tensordict_version']}, Python {m['python_version']}",
        f"- quick mode: {results['config']['quick']}",
        "",
        "env steps/s = vectorized steps/s x num_envs (transitions/s), random actions within the bounds.",
        f"Updates use obs {NET_OBS_DIM} / act {NET_ACT_DIM} ({NET_TASK}); each update samples a batch from a real "
        "ReplayBuffer (n_step 1), computes the FastTD3 loss, steps AdamW, and for the critic soft-updates its target. "
        "2 critics in the ensemble.",
        "",
        f"Load average (1, 5, 15 min) before / after: {m['load_avg_start']} / {results['load_avg_end']}. "
        "'other load' is the number of cores other processes kept busy while a row was timed (from /proc/stat); "
        "torch's threads slow down sharply when they share cores, so rows with a high value understate the machine.",
        "",
    ]
    return "\n".join(head) + "\n" + tables(results) + "\n"


def run(cfg: BenchConfig, command: str) -> dict[str, Any]:
    """Run every measurement and return the results (also what ``main`` writes to disk)."""
    import tasks
    from parallel_rl.runtime.trainer import resolve_device

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        retain_freed_memory()  # as the training runs it measures do by default (--keep-cpu-memory)
    env_counts = QUICK_ENV_COUNTS if cfg.quick else ENV_COUNTS
    if cfg.quick:
        cfg = replace(cfg, seconds=min(cfg.seconds, 0.05), max_env_steps=min(cfg.max_env_steps, 20),
                      max_updates=min(cfg.max_updates, 5))  # fmt: skip
    results: dict[str, Any] = {
        "machine": machine_info(device),
        "command": command,
        "config": asdict(cfg),
        "env": [],
        "updates": [],
    }
    for task in tasks.TASKS:
        for n in env_counts:
            row = bench_env(task, n, device, cfg)
            results["env"].append(row)
            print(f"  env {task:>16} x {n:<5} {_rate(row['env_steps_per_s']):>12} steps/s", flush=True)
    buf_envs, rows, fills = (64, 16, 12) if cfg.quick else (1024, 64, 48)
    buffer = filled_buffer(device, buf_envs, rows, fills, cfg.seed)
    settings = NET_SETTINGS[:1] if cfg.quick else NET_SETTINGS
    for setting in settings:
        row = bench_net(setting, buffer, device, cfg)
        results["updates"].append(row)
        print(f"  net {setting.name:>8} critic {_rate(row['critic_updates_per_s'])} upd/s, "
              f"actor {_rate(row['actor_updates_per_s'])} upd/s", flush=True)  # fmt: skip
    if cfg.options:
        results["options"] = []
        for setting in settings:
            results["options"] += bench_options(setting, device, cfg)
    if cfg.e2e:
        results["e2e"] = []
        cuda = device.type == "cuda"
        env_counts = cfg.e2e_envs or ((1024, 4096) if cuda else ((16,) if cfg.quick else (64,)))
        option_sets = [("eager fp32", {})] + ([("cuda graphs + bf16", {"cuda_graphs": True, "bf16": True})]
                                              if cuda else [])  # fmt: skip
        for setting in settings:
            if setting.large and not cuda:
                continue  # seconds per update on a CPU: an end-to-end row would take hours
            for n in env_counts:
                for option in option_sets:
                    results["e2e"] += bench_e2e(setting, n, device, cfg, option)
    results["load_avg_end"] = _load_avg()
    return results


def main(args: list[str] | None = None) -> dict[str, Any]:
    """Parse flags, benchmark, print the table, write JSON and Markdown; returns the results."""
    args = sys.argv[1:] if args is None else list(args)
    cfg = tyro.cli(BenchConfig, args=args, description=BenchConfig.__doc__)
    command = shlex.join(["python", "-m", "launch.bench", *args])
    if cfg.reference or cfg.check or cfg.write_baseline:
        return compare_main(cfg, command)
    results = run(cfg, command)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"throughput_{torch.device(results['machine']['device']).type}{'_quick' if cfg.quick else ''}"
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(results))
    m = results["machine"]
    print(f"\n{m['device_name']} ({m['device']}), torch {m['torch_version']}, {m['torch_threads']} threads\n")
    print(tables(results))
    print(f"\nwrote {out_dir / stem}.json and .md")
    return results


def compare_main(cfg: BenchConfig, command: str) -> dict[str, Any]:
    """``--reference``, ``--check`` and ``--write-baseline``: same-process ratios (``launch/bench_compare.py``)."""
    from launch import bench_compare as bc

    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    device = torch.device("cpu")
    # Process-wide, before anything is built, so both sides of every ratio run with it (a CPU training run of ours
    # applies it by default: --keep-cpu-memory).
    kept = retain_freed_memory()
    if cfg.reference:
        results = {"machine": machine_info(device), "command": command, "keep_cpu_memory": kept,
                   **bc.run_reference(cfg.reference, rounds=cfg.rounds, seed=cfg.seed)}  # fmt: skip
        results["load_avg_end"] = _load_avg()
        out_dir = Path(cfg.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "fasttd3_reference_cpu.json").write_text(json.dumps(results, indent=2) + "\n")
        (out_dir / "fasttd3_reference_cpu.md").write_text(bc.reference_markdown(results))
        print(bc.reference_markdown(results))
        return results
    machine = machine_info(device)
    figures = bc.measure_check(rounds=cfg.rounds, seed=cfg.seed)
    results = {"machine": machine, "command": command, "figures": figures, "references": bc.CHECK_FIGURES,
               "load_avg_end": _load_avg()}  # fmt: skip
    if cfg.write_baseline:
        Path(cfg.write_baseline).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.write_baseline).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote baseline {cfg.write_baseline}: {figures}")
    if cfg.check:
        try:
            baseline = json.loads(Path(cfg.check).read_text())["figures"]
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"--check: cannot read figures from {cfg.check} ({e}); write one with "
                             "--write-baseline PATH") from None  # fmt: skip
        verdicts = bc.compare(baseline, figures, cfg.tolerance)
        results["verdicts"] = verdicts
        print(f"load average {machine['load_avg_start']} -> {results['load_avg_end']}")
        print(bc.verdict_table(verdicts, cfg.tolerance))
        failed = [v["figure"] for v in verdicts if not v["ok"]]
        if failed:
            print(f"--check: throughput regression in {', '.join(failed)} (beyond tolerance {cfg.tolerance})")
            raise SystemExit(1)
        print("--check: every figure within tolerance")
    return results


if __name__ == "__main__":
    from launch._cli import run_cli

    run_cli(main)
