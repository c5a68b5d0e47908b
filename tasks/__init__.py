"""Built-in torch-native tasks, simulator backends, the task registry, and per-task, per-algorithm presets.

Task names: built-in tasks by name (``pendulum``); simulator tasks as ``<backend>:<task>[,option=value,...]``
(``playground:CheetahRun``, ``isaaclab:Isaac-Velocity-Flat-H1-v0``, ``isaacgym:Ant``, ``gym:Humanoid-v5``), resolved
through ``BACKENDS``. Presets are nested override dicts applied on top of ``TrainConfig``'s defaults; flags on the
command line override them again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parallel_rl.config import ConfigError, suggest
from parallel_rl.envs._optional import BackendUnavailable
from tasks import multitask, presets_gym, presets_isaacgym, presets_isaaclab, presets_playground, presets_torchrl
from tasks.backend import Backend, CpuScale, Preset, TaskName, cpu_presets, merge, parse_task_name
from tasks.recipes import CROSSQ_RULES, FASTSAC_RULES, TASK_VALUE_KEYS

if TYPE_CHECKING:  # annotations only: naming a task (``--help``, presets) must not import torch
    import torch

    from parallel_rl.envs import VecEnv


def _lazy(module: str, name: str) -> Callable[..., VecEnv]:
    """The env class ``module.name``, imported when the first env is made (the registry imports no torch)."""

    def make(*args: Any, **kwargs: Any) -> VecEnv:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    make.__qualname__ = make.__name__ = name
    return make


@dataclass(frozen=True)
class TaskEntry:
    make: Callable[..., VecEnv]
    description: str
    presets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """algo -> preset name -> overrides."""


# The built-in tasks' presets are CPU-sized: 32 envs, 4 critic updates per env step, the task's own budget.


def _cpu_presets(total_env_steps: int, agent: dict[str, Any]) -> dict[str, dict[str, Preset]]:
    scale = CpuScale(num_envs=32, total_env_steps=total_env_steps, utd=4, eval_envs=None, buffer_size=None, hidden=None)
    presets = cpu_presets({"agent": agent}, scale)
    # DAC, DEA and VPL are built on FastTD3 and start from its preset; VPL holds out 2 envs for its validation buffer.
    fasttd3 = presets["fasttd3"]
    values = {k: v for k, v in agent.items() if k in TASK_VALUE_KEYS}
    run = {"num_envs": 32, "total_env_steps": total_env_steps, "buffer": {"batch_size": 256}}
    return {"fasttd3": {"default": fasttd3}, "pql": {"default": presets["pql"]}, "dac": {"default": fasttd3},
            "dea": {"default": fasttd3}, "vpl": {"default": merge(fasttd3, {"td_validation_envs": 2})},
            "fastsac": {"default": merge(run, _FASTSAC_CPU, {"agent": values})},
            "crossq": {"default": merge(run, _CROSSQ_CPU, {"agent": {"gamma": values["gamma"]} if "gamma" in values
                                                             else {}})}}  # fmt: skip


# FastSAC and CrossQ at CPU scale: their update rules (tasks/recipes.py) with 128-128 networks and 4 critic updates per
# vectorized step of 32 envs (as FastTD3 here; 1/8 per transition, where holosoma runs 8 per step of 1024+ envs and
# CrossQ 1 per transition), the actor every 4th (FastSAC) or 3rd (CrossQ) critic update.
_FASTSAC_CPU = {"agent": {**FASTSAC_RULES, "critic_hidden": (128, 128), "actor_hidden": (128, 128)},
                "schedule": {"utd": 4, "policy_ratio": 0.25}}  # fmt: skip
# CrossQ's reference samples uniformly over the buffer (not batch / num_envs rows per env, as FastTD3 and FastSAC).
_CROSSQ_CPU = {"agent": {**CROSSQ_RULES, "critic_hidden": (128, 128), "actor_hidden": (128, 128)},
               "schedule": {"utd": 4, "policy_ratio": 1 / 3},
               "buffer": {"sampling": "uniform"}}  # fmt: skip


TASKS: dict[str, TaskEntry] = {
    # Rewards in [-16.3, 0]; scaled by 0.1, the discounted values of a competent policy lie within [-50, 1].
    # Budget 24k transitions (the main job's): FastTD3 with these defaults solves it by 12k to 16k on seeds 0-2
    # (about -140 to -165; benchmarks/algorithms), so 40k spent most of the job's minute on a solved task.
    "pendulum": TaskEntry(
        _lazy("tasks.pendulum", "Pendulum"),
        "Gymnasium Pendulum-v1 in torch (obs 3, act 1, 200 steps)",
        _cpu_presets(24_000, {"reward_scale": 0.1, "v_min": -50.0, "v_max": 1.0, "std_min": 0.05, "std_max": 0.8}),
    ),
    # Rewards in [0, 1]: discounted values lie in [0, 100].
    "cartpole-swingup": TaskEntry(
        _lazy("tasks.cartpole_swingup", "CartpoleSwingup"),
        "cart-pole swing-up, continuous force (obs 5, act 1, 200 steps, terminates off the track)",
        _cpu_presets(80_000, {"v_min": -1.0, "v_max": 101.0, "std_min": 0.05, "std_max": 0.8}),
    ),
    # The same cart-pole started upright (the multi-task benchmark's held-out transfer task).
    "cartpole-balance": TaskEntry(
        _lazy("tasks.cartpole_swingup", "CartpoleBalance"),
        "cart-pole balance: the swing-up cart-pole started near upright (obs 5, act 1, 200 steps)",
        _cpu_presets(40_000, {"v_min": -1.0, "v_max": 101.0, "std_min": 0.05, "std_max": 0.8}),
    ),
    # Rewards in about [-1.3, 0]; gamma 0.97 keeps values within [-45, 0].
    "reacher3": TaskEntry(
        _lazy("tasks.reacher", "Reacher3"),
        "planar 3-link arm reaching a random target (obs 13, act 3, 100 steps)",
        _cpu_presets(100_000, {"gamma": 0.97, "v_min": -45.0, "v_max": 1.0, "std_min": 0.05, "std_max": 0.6}),
    ),
}


from tasks import presets_mjlab  # noqa: E402  (after TaskEntry: presets_mjlab builds TaskEntry rows)

#: Simulator backends by task-name prefix. A backend is one row: how to make its envs, its presets, its install check.
BACKENDS: dict[str, Backend] = {
    "playground": presets_playground.BACKEND,
    "isaaclab": presets_isaaclab.BACKEND,
    "isaacgym": presets_isaacgym.BACKEND,
    "gym": presets_gym.BACKEND,
    "mjlab": presets_mjlab.BACKEND,
    "torchrl": presets_torchrl.BACKEND,
}


def resolve(name: str) -> TaskName:
    """Parse and validate a task name: a built-in task, or a known backend prefix (``multi:...`` names: each of
    their tasks, see ``tasks.multitask``)."""
    if multitask.is_multi(name):
        multitask.check(name, resolve)
        return TaskName("multi", name[len(multitask.PREFIX) :], {})
    parsed = parse_task_name(name)
    if parsed.backend is None:
        task_entry(name)
    elif parsed.backend not in BACKENDS:
        raise ConfigError(
            f"--task {name!r}: unknown backend {parsed.backend!r}{suggest(parsed.backend, list(BACKENDS))} "
            f"(backends: {', '.join(f'{b}:<task>' for b in BACKENDS)})"
        )
    return parsed


def task_entry(name: str) -> TaskEntry:
    if name not in TASKS:
        raise ConfigError(
            f"--task: unknown task {name!r}{suggest(name, list(TASKS))} (built-in: {', '.join(TASKS)}; simulator "
            f"tasks: {', '.join(f'{b}:<task>' for b in BACKENDS)})"
        )
    return TASKS[name]


def make_env(
    name: str, num_envs: int, device: torch.device | str = "cpu", seed: int = 0, task_weights: tuple = ()
) -> VecEnv:
    """``num_envs`` envs of task ``name``; ``task_weights`` split them among the tasks of a ``multi:`` name."""
    if multitask.is_multi(name):
        multitask.check(name, resolve)
        return multitask.make(name, make_env, num_envs, device, seed, task_weights)
    parsed = resolve(name)
    if parsed.backend is None:
        return task_entry(name).make(num_envs=num_envs, device=device, seed=seed)
    return BACKENDS[parsed.backend].make(parsed.task, num_envs, device, seed, **parsed.options)


def presets_of(task: str) -> dict[str, dict[str, dict[str, Any]]]:
    """algo -> preset name -> overrides, for any task name (options after the task name do not change presets)."""
    if multitask.is_multi(task):
        return multitask.combine_presets(multitask.check(task, resolve), presets_of)
    parsed = resolve(task)
    if parsed.backend is None:
        return task_entry(task).presets
    return BACKENDS[parsed.backend].presets(parsed.task)


def preset(task: str, algo: str, name: str = "default") -> dict[str, Any]:
    presets = presets_of(task).get(algo, {"default": {}})
    if name not in presets:
        raise ConfigError(
            f"--preset: no preset {name!r} for task {task!r} with algo {algo!r}{suggest(name, list(presets))} "
            f"(available: {', '.join(presets)})"
        )
    return presets[name]


def check_installed(name: str) -> None:
    """Fail early, with one message naming what to install, when a simulator task's backend is missing."""
    if multitask.is_multi(name):
        for sub in multitask.check(name, resolve):
            check_installed(sub)
        return
    parsed = resolve(name)
    if parsed.backend is not None:
        try:
            BACKENDS[parsed.backend].check(parsed.task)
        except (BackendUnavailable, ConfigError) as e:
            raise ConfigError(f"--task {name}: {e}") from None


def env_factory(name: str, task_weights: tuple = ()):
    """The (num_envs, device, seed) -> VecEnv callable the trainer takes. Checks the name and that its simulator is
    installed now, so that a missing package is reported before anything starts."""
    check_installed(name)
    if task_weights and not multitask.is_multi(name):
        raise ConfigError(f"--task-weights: {name!r} is one task; weights split the envs of a multi:... task")
    if task_weights:
        n_tasks = len(multitask.sub_tasks(name))
        if len(task_weights) != n_tasks:
            raise ConfigError(f"--task-weights: {len(task_weights)} weights for the {n_tasks} tasks of {name!r}")
    return lambda num_envs, device, seed: make_env(name, num_envs, device, seed, tuple(task_weights))


def named_presets() -> dict[str, tuple[str, Preset, str, str, str]]:
    """Every tuned (task, algo, preset) as one name, ``<task>-<algo>[-<preset>]``: the subcommands of
    ``python -m launch.train <name> [--flag value ...]``. Value: (description, preset, task, algo, preset name)."""
    names: list[str] = list(TASKS)
    for prefix, backend in BACKENDS.items():
        names += [f"{prefix}:{t}" for t in backend.tuned]
    out = {}
    for task in names:
        for algo, by_name in presets_of(task).items():
            for name, p in by_name.items():
                key = f"{task}-{algo}" + ("" if name == "default" else f"-{name}")
                out[key] = (f"{algo} on {task}, preset {name!r}", p, task, algo, name)
    return out
