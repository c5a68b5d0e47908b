"""The two published recipes, as TrainConfig overrides that the backend presets start from.

Sources (numbers only; see ../shared/REFERENCE.md):

- FastTD3 (Seo et al. 2025): C51 twin critic 1024-512-256, actor 512-256-128, ReLU; AdamW lr 3e-4, weight decay
  0.1; critic target tau 0.1; batch 32,768; 2 critic updates per env step (4 on Isaac Lab velocity tasks); policy
  every 2nd critic update; per-env exploration std from U[0.001, 0.4]; target policy noise 0.001 clipped at 0.5;
  101 atoms (251 on Isaac Lab). FastTD3's ``buffer_size`` is per env: ours is the global capacity, so it is
  multiplied by the env count. FastTD3's ``total_timesteps`` counts vectorized steps: ours counts transitions.
- PQL (Li et al. 2023): 4096 envs, batch 8192, buffer 5e6, 3-step returns, gamma 0.99, tau 0.05, AdamW lr 5e-4,
  gradient clip 0.5, MLP 512-256-128 ELU, 8 critic updates per env step, 1 policy update per 2 critic updates,
  per-env std linspace(0.05, 0.8), PQL-D's C51 with 51 atoms on [-10, 10], reward scale 0.01 on Ant, Humanoid and
  the hands, no target policy smoothing.
"""

from __future__ import annotations

from typing import Any

from tasks.backend import PQL_RULES, Preset, cpu_presets, merge

__all__ = ["FASTTD3", "PQL", "PQL_RULES", "cpu_presets", "fasttd3", "merge", "pql_for"]

FASTTD3 = Preset(
    {
        "agent": {
            "critic_hidden": (1024, 512, 256),
            "actor_hidden": (512, 256, 128),
            "activation": "relu",
            "tau": 0.1,
            "critic_lr": 3e-4,
            "actor_lr": 3e-4,
            "weight_decay": 0.1,
            "num_atoms": 101,
            "std_min": 0.001,
            "std_max": 0.4,
            "target_noise": 0.001,
            "target_noise_clip": 0.5,
            "max_grad_norm": 0.0,
        },
        "schedule": {"utd": 2, "policy_ratio": 0.5, "learning_starts": 10},
        "buffer": {"batch_size": 32_768},
    }
)

PQL = Preset(
    {
        "num_envs": 4096,
        "eval_envs": 4096,
        "agent": {
            "critic_hidden": (512, 256, 128),
            "actor_hidden": (512, 256, 128),
            "activation": "elu",
            "n_step": 3,
            "gamma": 0.99,
            "tau": 0.05,
            "critic_lr": 5e-4,
            "actor_lr": 5e-4,
            "max_grad_norm": 0.5,
            "num_atoms": 51,
            "v_min": -10.0,
            "v_max": 10.0,
            "std_min": 0.05,
            "std_max": 0.8,
            "target_noise": 0.0,
        },
        "schedule": {"utd": 8, "policy_ratio": 0.5, "learning_starts": 10},
        "buffer": {"buffer_size": 5_000_000, "batch_size": 8192},
    }
)

#: The value-range knobs a task sets for itself; PQL presets of non-Isaac-Gym tasks keep these from the task.
TASK_VALUE_KEYS = ("gamma", "v_min", "v_max", "reward_scale")


def fasttd3(num_envs: int, buffer_per_env: int, vector_steps: int, **sections: Any) -> Preset:
    """FastTD3's recipe at FastTD3's scale: ``buffer_per_env`` and ``vector_steps`` in FastTD3's own units."""
    scale = {"num_envs": num_envs, "eval_envs": num_envs, "total_env_steps": vector_steps * num_envs,
             "buffer": {"buffer_size": buffer_per_env * num_envs}}  # fmt: skip
    return merge(FASTTD3, scale, sections)


def pql_for(task_preset: dict[str, Any], **sections: Any) -> Preset:
    """PQL's recipe on a task tuned for FastTD3 (not published: our choice): PQL's networks, ratios, n-step and
    exploration, with the task's discount, value range, reward scale and env-step budget."""
    agent = {k: v for k, v in task_preset.get("agent", {}).items() if k in TASK_VALUE_KEYS}
    budget = {"total_env_steps": task_preset["total_env_steps"]} if "total_env_steps" in task_preset else {}
    return merge(PQL, budget, {"agent": agent}, sections)
