"""The ``mjlab.tasks`` entry point: importing this module registers the off-policy variants of mjlab's velocity
tasks (``parallel_rl.integrations.mjlab``) and defines the agent config that mjlab's ``train`` parses
(``--agent.algo``, ``--agent.algorithm.<hyperparameter>``, ``--agent.schedule.utd``, ``--agent.buffer.batch-size``).
Imports mjlab."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from mjlab.rl import RslRlBaseRunnerCfg

from parallel_rl.config import AgentConfig, BufferConfig, ScheduleConfig, SpeedConfig
from parallel_rl.integrations.mjlab import FASTSAC_G1, G1_RECIPES, ROWS_PER_ENV, TRANSITIONS_PER_ENV


@dataclass
class OffPolicyRunnerCfg(RslRlBaseRunnerCfg):
    """Off-policy agent (parallel_rl) for mjlab's train/play scripts; OffPolicyRunner reads it as a dict."""

    class_name: str = "OffPolicyRunner"
    """Runner this config is for."""
    algo: str = "fasttd3"
    """Algorithm (parallel_rl.config.ALGOS: fasttd3, pql, and those added since); its hyperparameters are the
    algorithm section below (a variant's defaults are its own algorithm's recipe)."""
    num_steps_per_env: int = 1
    """Vectorized env steps per learning iteration (each with the critic/actor updates due for it)."""
    max_iterations: int = 100_000
    """Learning iterations (x num_steps_per_env x num_envs transitions)."""
    save_interval: int = 5_000
    """Iterations between checkpoints (model_<it>.pt in the run directory)."""
    log_interval: int = 50
    """Iterations between TensorBoard rows (gathering metrics waits for the device)."""
    logger: Literal["wandb", "tensorboard"] = "tensorboard"
    """OffPolicyRunner writes TensorBoard event files in rsl_rl's layout."""
    transitions_per_env: int = TRANSITIONS_PER_ENV
    """Replay capacity per env (FastTD3's unit); the buffer holds transitions_per_env x num_envs."""
    action_bound: float = 1.0
    """Policy actions lie in [-action_bound, action_bound] (mjlab scales them per joint)."""
    algorithm: AgentConfig = field(default_factory=AgentConfig)
    """Networks and update hyperparameters."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Update-to-data ratio, policy delay, learning start."""
    buffer: BufferConfig = field(default_factory=BufferConfig)
    """Replay batch size and storage type (its capacity comes from transitions_per_env)."""
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    """CUDA graphs, compile, bf16, tf32."""

    @classmethod
    def for_algo(cls, algo: str, **fields) -> OffPolicyRunnerCfg:
        """The G1 recipe of ``algo``; a recipe field this library's config lacks is an error, not dropped."""
        recipe = FASTSAC_G1 if algo == "fastsac" else G1_RECIPES[algo]
        sections = {}
        for name, key, default in (("algorithm", "agent", AgentConfig()), ("schedule", "schedule", ScheduleConfig()),
                                   ("buffer", "buffer", BufferConfig())):  # fmt: skip
            values = {k: v for k, v in recipe.get(key, {}).items() if not (key == "buffer" and k == "buffer_size")}
            sections[name] = dataclasses.replace(default, **values)
        fields.setdefault("transitions_per_env", ROWS_PER_ENV.get(algo, TRANSITIONS_PER_ENV))
        return cls(algo=algo, **sections, **fields)


from parallel_rl.integrations.mjlab import register_off_policy_tasks  # noqa: E402

register_off_policy_tasks()
