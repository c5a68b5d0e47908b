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

from tasks.backend import PQL_OWN, PQL_RULES, CpuScale, Preset, cpu_preset, cpu_presets, merge

__all__ = ["CROSSQ", "FASTSAC", "FASTTD3", "PQL", "PQL_RULES", "cpu_presets", "crossq_for", "fastsac_for", "fasttd3",
           "merge", "pql_for", "sac_presets"]  # fmt: skip

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
        # The reference's learning_starts=10 updates once more than 10 steps are stored, i.e. from its 12th env
        # step on; ours counts the env steps collected when the first update runs.
        "schedule": {"utd": 2, "policy_ratio": 0.5, "learning_starts": 12},
        "buffer": {"batch_size": 32_768},
    }
)

PQL = merge(
    PQL_OWN,
    Preset(
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
    ),
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


# ---- the SAC family ------------------------------------------------------------------------------------------------
FASTSAC = Preset(
    {
        "agent": {
            "critic_hidden": (768, 384, 192), "actor_hidden": (512, 256, 128), "activation": "silu",
            "layer_norm": True, "gamma": 0.97, "n_step": 1, "tau": 0.125, "critic_lr": 3e-4, "actor_lr": 3e-4,
            "alpha_lr": 3e-4, "alpha_init": 0.001, "target_entropy_ratio": 0.0, "log_std_min": -5.0,
            "log_std_max": 0.0, "weight_decay": 0.001, "adam_betas": (0.9, 0.95), "num_critics": 2,
            "num_atoms": 101, "v_min": -20.0, "v_max": 20.0, "max_grad_norm": 0.0, "actor_q_reduction": "mean",
            "sac_target": "per_member", "normalize_obs": True,
        },
        "schedule": {"utd": 8, "policy_ratio": 0.25, "learning_starts": 10},
        "buffer": {"batch_size": 8192},
    }
)  # fmt: skip
"""holosoma's FastSAC (``config_values/algo.py``: fast_sac): 8 updates per env step with the actor every 4th
(policy_frequency 4), 1024 buffer rows per env (set by ``fastsac_for``), bf16 autocast on GPU (``--bf16``)."""

CROSSQ = Preset(
    {
        "agent": {
            "critic_hidden": (2048, 2048), "actor_hidden": (256, 256), "activation": "relu", "gamma": 0.99,
            "n_step": 1, "critic_lr": 1e-3, "actor_lr": 1e-3, "alpha_lr": 1e-3, "alpha_init": 1.0,
            "target_entropy_ratio": 1.0, "log_std_min": -20.0, "log_std_max": 2.0, "weight_decay": 0.0,
            "adam_betas": (0.5, 0.999), "num_critics": 2, "num_atoms": 1, "max_grad_norm": 0.0,
            "actor_q_reduction": "min", "normalize_obs": False, "bn_momentum": 0.99, "brn_warmup_steps": 100_000,
            "weight_norm": True,
        },
        "schedule": {"utd": 1, "policy_ratio": 1 / 3},
        "buffer": {"buffer_size": 1_000_000, "batch_size": 256, "sampling": "uniform"},
    }
)  # fmt: skip
"""CrossQ's reference (adityab/CrossQ ``train.py``, algo crossq): Adam lr 1e-3 with beta1 0.5, policy delay 3, UTD 1,
critic 2048-2048, batch renormalization (momentum 0.99), no target network, no observation normalization (the input
batch renormalization does it), plus weight normalization (Palenicek et al. 2025)."""

#: FastSAC's and CrossQ's update rules at CPU scale, besides network sizes and the task's value knobs.
FASTSAC_RULES = {k: v for k, v in FASTSAC["agent"].items() if k not in ("critic_hidden", "actor_hidden",
                 *TASK_VALUE_KEYS)}  # fmt: skip
CROSSQ_RULES = {k: v for k, v in CROSSQ["agent"].items() if k not in ("critic_hidden", "actor_hidden",
                *TASK_VALUE_KEYS)}  # fmt: skip


def fastsac_for(task_preset: dict[str, Any], keep_values: bool = True, **sections: Any) -> Preset:
    """holosoma's FastSAC recipe at the scale of a task's FastTD3 preset (env count, budget, evaluation envs), with
    1024 buffer rows per env. ``keep_values``: the task's discount, value range and reward scale replace holosoma's
    (gamma 0.97, C51 on [-20, 20], tuned for its humanoid locomotion rewards); tasks of that kind pass False."""
    num_envs = task_preset.get("num_envs", 1024)
    scale = {k: task_preset[k] for k in ("num_envs", "eval_envs", "total_env_steps") if k in task_preset}
    scale["buffer"] = {"buffer_size": 1024 * num_envs}
    agent = {k: v for k, v in task_preset.get("agent", {}).items() if k in TASK_VALUE_KEYS} if keep_values else {}
    return merge(FASTSAC, scale, {"agent": agent}, sections)


def crossq_for(task_preset: dict[str, Any], **sections: Any) -> Preset:
    """CrossQ + WN at the scale of a task's FastTD3 preset (not published for massively parallel sims: our choice):
    CrossQ's rules, the task's discount and reward scale, env count and budget, learning after 5000 transitions."""
    num_envs = task_preset.get("num_envs", 1024)
    scale = {k: task_preset[k] for k in ("num_envs", "eval_envs", "total_env_steps") if k in task_preset}
    agent = {k: v for k, v in task_preset.get("agent", {}).items() if k in ("gamma", "reward_scale")}
    starts = {"schedule": {"learning_starts": max(10, -(-5000 // num_envs))}}
    return merge(CROSSQ, scale, starts, {"agent": agent}, sections)


def sac_presets(default: dict[str, Any], keep_values: bool = True, scale: CpuScale | None = None,
                **sections: Any) -> dict[str, dict[str, Preset]]:  # fmt: skip
    """``fastsac`` and ``crossq`` presets of a task from its FastTD3 ``default``: the recipes at its scale, and
    ``cpu`` = the CPU rule (``backend.cpu_preset``) with each algorithm's update rules."""
    cpu = cpu_preset(default, "fasttd3", scale or CpuScale())
    values = {k: v for k, v in default.get("agent", {}).items() if k in TASK_VALUE_KEYS}
    return {
        "fastsac": {"default": fastsac_for(default, keep_values, **sections),
                    "cpu": merge(cpu, {"agent": {**FASTSAC_RULES, **values}, "schedule": {"policy_ratio": 0.25}})},
        "crossq": {"default": crossq_for(default, **sections),
                   "cpu": merge(cpu, {"agent": {**CROSSQ_RULES, "num_atoms": 1}, "schedule": {"policy_ratio": 1 / 3},
                                      "buffer": {"sampling": "uniform"}})},
    }  # fmt: skip
