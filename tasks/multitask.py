"""``multi:<task>,<task>,...``: several registry tasks of one simulator in one vectorized batch.

Sub-task names are any registry names of one backend (built-in torch tasks, or e.g. ``playground:CheetahRun``);
options after a backend task stay with it (``multi:playground:CheetahRun,episode_length=200,playground:
CartpoleBalance``: a part with ``=`` and no ``:`` is an option of the task before it). The envs are split by
``--task-weights`` (``parallel_rl.envs.split_envs``), each sub-task's envs are made by the registry as usual, and
``parallel_rl.envs.MultiTaskVecEnv`` pads and concatenates them.

Presets combine the sub-tasks' presets of the same algorithm and name: envs, env steps and critic updates per env
step add up (the multi-task agent gets the single-task runs' data and updates together), the discount is the
largest, the value support covers every task's (each task's stretched by (1 - gamma_k) / (1 - gamma) for the shared
discount), and each task keeps its own reward scale (``task_reward_scales``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from parallel_rl.config import ConfigError
from parallel_rl.envs import VecEnv, make_multitask_env, split_envs
from tasks.backend import _split_top_level, merge

PREFIX = "multi:"

#: Backends whose tasks can run side by side in one process (Isaac Lab, Isaac Gym and mjlab own one simulation per
#: process, so their tasks cannot be combined here).
COMBINABLE = (None, "playground", "gym")


def is_multi(name: str) -> bool:
    return name.startswith(PREFIX)


def sub_tasks(name: str) -> list[str]:
    """``multi:a,b,backend:c,opt=1`` -> ``["a", "b", "backend:c,opt=1"]``."""
    if not is_multi(name):
        raise ConfigError(f"--task {name!r} is not a multi-task name (multi:<task>,<task>,...)")
    parts = [p.strip() for p in _split_top_level(name[len(PREFIX) :])]
    out: list[str] = []
    for part in parts:
        if not part:
            raise ConfigError(f"--task {name!r}: empty task name in the list")
        if "=" in part and ":" not in part.split("=", 1)[0]:
            if not out or ":" not in out[-1]:
                raise ConfigError(f"--task {name!r}: option {part!r} follows no backend task (options belong to "
                                  "backend tasks: multi:playground:CheetahRun,episode_length=200,...)")  # fmt: skip
            out[-1] = f"{out[-1]},{part}"
        else:
            out.append(part)
    if len(set(out)) != len(out):
        raise ConfigError(f"--task {name!r}: each task may appear once")
    return out


def check(name: str, resolve: Callable[[str], Any]) -> list[str]:
    """Validate every sub-task with the registry's ``resolve`` and that they share one combinable backend."""
    subs = sub_tasks(name)
    parsed = [resolve(s) for s in subs]
    backends = {p.backend for p in parsed}
    if len(backends) > 1:
        raise ConfigError(f"--task {name!r}: the tasks of a multi-task run must come from one simulator, got "
                          f"{', '.join(str(b or 'built-in') for b in sorted(backends, key=str))}")  # fmt: skip
    backend = backends.pop()
    if backend not in COMBINABLE:
        raise ConfigError(f"--task {name!r}: {backend} runs one simulation per process, so its tasks cannot share "
                          f"a batch; multi-task works with built-in, playground: and gym: tasks")  # fmt: skip
    return subs


def make(
    name: str,
    make_one: Callable[[str, int, torch.device | str, int], VecEnv],
    num_envs: int,
    device: torch.device | str,
    seed: int,
    weights: Sequence[float] = (),
) -> VecEnv:
    subs = sub_tasks(name)
    counts = split_envs(num_envs, list(weights) or [1.0] * len(subs), subs)
    envs = [make_one(sub, n, device, seed + 7919 * k) for k, (sub, n) in enumerate(zip(subs, counts))]
    return make_multitask_env(envs, subs)


def combine_presets(subs: Sequence[str], presets_of: Callable[[str], dict[str, dict[str, dict[str, Any]]]]):
    """algo -> preset name -> overrides for the multi-task run (see the module docstring); a preset name is offered
    when every sub-task has it."""
    per_task = [presets_of(s) for s in subs]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for algo in set.intersection(*(set(p) for p in per_task)):
        names = set.intersection(*(set(p[algo]) for p in per_task))
        out[algo] = {n: _combine([p[algo][n] for p in per_task]) for n in sorted(names)}
        if "default" in out[algo] and algo != "crossq":  # crossq's critic is its batch-renormalized MLP
            extra = BRC_REWARD_NORMALIZATION if algo not in ("fastsac", "crossq") else {}  # TD3 family only
            out[algo]["brc"] = merge(out[algo]["default"], BRC, extra)
        if "default" in out[algo] and algo in ("fasttd3", "pql"):  # the algorithms with --action-l2
            out[algo]["brc-cpu"] = merge(out[algo]["default"], BRC_REWARD_NORMALIZATION, BRC_CPU)
    return out


#: BRC (Nauman et al. 2025, "Bigger, Regularized, Categorical"): a wide BroNet critic (residual LayerNorm blocks,
#: ``nets.families``) trained by cross-entropy on a 101-bin categorical value distribution, conditioned on learnable
#: task embeddings, tasks sampled evenly. Width 4096 is the top of the BRO/BRC range (512 -> 4096, see
#: shared/REFERENCE.md), depth 2 BRO's. For the TD3 family also BRC's adaptive per-task reward normalization (every
#: task's largest |discounted return| scaled to v_max, ``algos/reward_normalization.py``) on its support [-10, 10].
BRC: dict[str, Any] = {
    "agent": {"critic_arch": "bronet", "critic_width": 4096, "critic_depth": 2, "num_atoms": 101,
              "task_embedding_dim": 32, "weight_decay": 0.1},
    "buffer": {"task_balanced_sampling": True},
}  # fmt: skip


BRC_REWARD_NORMALIZATION: dict[str, Any] = {"agent": {"reward_normalization": "brc", "v_min": -10.0, "v_max": 10.0}}


#: The CPU multi-task recipe measured in benchmarks/multitask (variant 'brc-l2-w512'): the default preset's sizes
#: with a 512-512 critic (BRC's lever is the critic's size), BRC's adaptive per-task reward normalization on
#: [-10, 10], and HER's squared-action penalty (lambda 0.03), which keeps the actor from parking at a constant
#: saturated action on one task while it learns the others.
BRC_CPU: dict[str, Any] = {"agent": {"action_l2": 0.03, "critic_hidden": (512, 512)}}


def _combine(presets: list[dict[str, Any]]) -> dict[str, Any]:
    def get(p: dict[str, Any], section: str | None, key: str, default: Any) -> Any:
        src = p if section is None else p.get(section, {})
        return src.get(key, default)

    agent: dict[str, Any] = {}
    for p in reversed(presets):  # networks and the other agent knobs: the first task's, then overridden below
        agent.update(p.get("agent", {}))
    gamma = max(get(p, "agent", "gamma", 0.99) for p in presets)
    agent["gamma"] = gamma

    def horizon(p: dict[str, Any]) -> float:
        """How much a task's values grow under the shared discount: (1 - gamma_k) / (1 - gamma) (a task's support
        bounds values of about r / (1 - gamma_k); reacher3's [-45, 1] at 0.97 becomes [-135, 3] at 0.99)."""
        return (1 - get(p, "agent", "gamma", 0.99)) / (1 - gamma) if gamma < 1 else 1.0

    agent["v_min"] = min(get(p, "agent", "v_min", -10.0) * horizon(p) for p in presets)
    agent["v_max"] = max(get(p, "agent", "v_max", 10.0) * horizon(p) for p in presets)
    agent["std_min"] = min(get(p, "agent", "std_min", 0.001) for p in presets)
    agent["std_max"] = max(get(p, "agent", "std_max", 0.4) for p in presets)
    agent["task_reward_scales"] = tuple(get(p, "agent", "reward_scale", 1.0) for p in presets)
    agent["reward_scale"] = 1.0
    out: dict[str, Any] = {"agent": agent}
    if all("num_envs" in p for p in presets):
        out["num_envs"] = sum(p["num_envs"] for p in presets)
        out["eval_envs"] = sum(p.get("eval_envs", p["num_envs"]) for p in presets)
    if all("total_env_steps" in p for p in presets):
        out["total_env_steps"] = sum(p["total_env_steps"] for p in presets)
    schedule = {k: v for p in presets for k, v in p.get("schedule", {}).items()}
    if all("utd" in p.get("schedule", {}) for p in presets):
        schedule["utd"] = sum(p["schedule"]["utd"] for p in presets)
    out["schedule"] = schedule
    buffer = {k: v for p in presets for k, v in p.get("buffer", {}).items()}
    if all("buffer_size" in p.get("buffer", {}) for p in presets):
        buffer["buffer_size"] = sum(p["buffer"]["buffer_size"] for p in presets)
    out["buffer"] = buffer
    return merge(out)  # a checked Preset
