"""mjlab: the off-policy recipes for its velocity tasks, and the registration of ``<task id>-FastTD3`` /
``<task id>-FastSAC`` variants that mjlab's own ``train``/``play`` scripts run with ``OffPolicyRunner``.

mjlab imports every package registered under the ``mjlab.tasks`` entry-point group when it is imported; this
project's ``pyproject.toml`` registers ``parallel_rl.integrations.mjlab_tasks`` there, which calls
``register_off_policy_tasks()``. This module itself does not import mjlab (``tasks.presets_mjlab`` reads the recipes
from here without paying for it).

Why these numbers (the G1 velocity tasks):

- **Reward scale and value range.** mjlab's dt-scaled rewards are kept (returns equal mjlab PPO's). On the G1 the
  positive terms give at most about 6 * 0.02 = 0.12 per step, so with gamma 0.99 a perfect policy is worth about
  12; penalties push early values below 0: C51 on [-10, 15] with reward scale 1.
- **FastTD3** follows its published Isaac Lab velocity recipe (4 critic updates per env step, 8-step returns,
  gamma 0.99, critic 1024-512-256, actor 512-256-128, 251 atoms). The buffer holds 5120 transitions per env in
  bfloat16 instead of 10,240 in fp32, so that 4096 envs fit beside the simulator on an 80 GB GPU.
- **PQL** follows its paper (batch 8192, 8 critic updates per env step, 3-step returns, tau 0.05, lr 5e-4, grad clip
  0.5, 512-256-128 ELU, exploration std linspace(0.05, 0.8), 51 atoms, buffer 5e6).
"""

from __future__ import annotations

from typing import Any

VELOCITY_TASKS = ("Mjlab-Velocity-Flat-Unitree-G1", "Mjlab-Velocity-Rough-Unitree-G1",
                  "Mjlab-Velocity-Flat-Unitree-Go1", "Mjlab-Velocity-Rough-Unitree-Go1")  # fmt: skip
"""mjlab tasks that get off-policy variants (the G1 recipe is used for the Go1 too: same reward structure)."""

#: Variant suffix -> our algorithm name.
SUFFIXES = {"FastTD3": "fasttd3", "FastSAC": "fastsac"}

_G1_VALUE_RANGE = {"reward_scale": 1.0, "v_min": -10.0, "v_max": 15.0}
TRANSITIONS_PER_ENV = 5120

G1_RECIPES: dict[str, dict[str, Any]] = {
    "fasttd3": {
        "num_envs": 4096,
        "total_env_steps": 500_000_000,  # a ceiling: benchmarks stop on --max-wall-seconds
        "eval_envs": 256,
        "eval_every": 10_000_000,
        "schedule": {"utd": 4, "policy_ratio": 0.5},
        "buffer": {"buffer_size": 4096 * TRANSITIONS_PER_ENV, "batch_size": 32_768, "storage_dtype": "bfloat16"},
        "agent": {**_G1_VALUE_RANGE, "gamma": 0.99, "n_step": 8, "tau": 0.1, "critic_hidden": (1024, 512, 256),
                  "actor_hidden": (512, 256, 128), "activation": "relu", "num_atoms": 251, "std_min": 0.001,
                  "std_max": 0.4},
    },
    "pql": {
        "num_envs": 4096,
        "total_env_steps": 500_000_000,
        "eval_envs": 256,
        "eval_every": 10_000_000,
        "schedule": {"utd": 8, "policy_ratio": 0.5},
        "buffer": {"buffer_size": 5_000_000, "batch_size": 8192},
        "agent": {**_G1_VALUE_RANGE, "gamma": 0.99, "n_step": 3, "tau": 0.05, "critic_lr": 5e-4, "actor_lr": 5e-4,
                  "max_grad_norm": 0.5, "critic_hidden": (512, 256, 128), "actor_hidden": (512, 256, 128),
                  "activation": "elu", "num_atoms": 51, "std_min": 0.05, "std_max": 0.8, "target_noise": 0.0},
    },
}  # fmt: skip
"""algo -> TrainConfig overrides for the G1 velocity tasks (``tasks.presets_mjlab`` wraps them as typed presets)."""

#: holosoma's FastSAC (``config_values/algo.py``: fast_sac; the numbers of ``tasks.recipes.FASTSAC``), unchanged on
#: the G1 velocity tasks (gamma 0.97 and C51 on [-20, 20] were tuned on G1 locomotion), at 4096 envs with 1024 replay
#: rows per env. Used by the ``-FastSAC`` variants, registered once FastSAC is one of the library's algorithms.
FASTSAC_G1: dict[str, Any] = {
    "schedule": {"utd": 8, "policy_ratio": 0.25, "learning_starts": 10},
    "buffer": {"batch_size": 8192},
    "agent": {"critic_hidden": (768, 384, 192), "actor_hidden": (512, 256, 128), "activation": "silu",
              "layer_norm": True, "gamma": 0.97, "n_step": 1, "tau": 0.125, "critic_lr": 3e-4, "actor_lr": 3e-4,
              "alpha_lr": 3e-4, "alpha_init": 0.001, "target_entropy_ratio": 0.0, "log_std_min": -5.0,
              "log_std_max": 0.0, "weight_decay": 0.001, "adam_betas": (0.9, 0.95), "num_critics": 2,
              "num_atoms": 101, "v_min": -20.0, "v_max": 20.0, "max_grad_norm": 0.0},
}  # fmt: skip

#: Replay rows per env of each variant (FastTD3's unit): FastTD3 5120 (bf16), FastSAC 1024 (holosoma).
ROWS_PER_ENV = {"fasttd3": TRANSITIONS_PER_ENV, "fastsac": 1024}


def available_algos() -> tuple[str, ...]:
    """Our algorithms known to the config (FastSAC joins when its algorithm file exists)."""
    from parallel_rl.config import ALGOS

    return tuple(ALGOS)


def register_off_policy_tasks(task_ids: tuple[str, ...] = VELOCITY_TASKS) -> list[str]:
    """Register ``<task id>-FastTD3`` (and ``-FastSAC`` when FastSAC exists) with mjlab's registry; returns the
    registered ids. Idempotent; ids mjlab does not know are skipped."""
    from mjlab.tasks import registry

    from parallel_rl.integrations.mjlab_tasks import OffPolicyRunnerCfg
    from parallel_rl.integrations.rsl_rl import OffPolicyRunner

    known, done = set(registry.list_tasks()), []
    for task_id in task_ids:
        if task_id not in known:
            continue
        base = registry.load_rl_cfg(task_id)
        for suffix, algo in SUFFIXES.items():
            name = f"{task_id}-{suffix}"
            if algo not in available_algos() or name in known:
                continue
            agent = OffPolicyRunnerCfg.for_algo(algo, experiment_name=f"{base.experiment_name}_{algo}",
                                                obs_groups=dict(base.obs_groups))  # fmt: skip
            registry.register_mjlab_task(name, registry.load_env_cfg(task_id),
                                         registry.load_env_cfg(task_id, play=True), agent, OffPolicyRunner)  # fmt: skip
            done.append(name)
    return done
