"""The built-in benchmark suites (data only; ``launch.benchmark`` runs them).

Thresholds and published figures, and where they come from:

- Playground G1/T1 joystick and Isaac Lab H1/G1 flat velocity: the threshold is PPO's final return in the learning
  curves FastTD3 published (FastTD3 repository, ``data/playground_result.json`` and ``data/isaaclab_result.json``);
  "published" is the wall-clock at which FastTD3's curve first reaches it there (one A100 80GB), consistent with
  the paper's claims (G1/T1 in 25-39 min, Isaac Lab G1 50 min, H1 36 min).
- Playground HumanoidWalk/HumanoidRun and Gymnasium Humanoid-v5: no published FastTD3/PQL figure; the thresholds
  are ours (DM Control returns are in [0, 1000]: 500 is a steady walk, 200 a clumsy run; Humanoid-v5: 5000).
- smoke: pendulum's threshold is the learning tests' (-300); the short-episode CheetahRun and HalfCheetah
  thresholds are ours (some forward progress within a CPU-sized budget).
"""

from __future__ import annotations

from launch.benchmark import Suite, SuiteTask, register_suite

_FASTTD3_DATA = "PPO's final return in FastTD3's published curves"

_SMALL = {"critic_hidden": (128, 128), "actor_hidden": (128, 128)}

SMOKE = register_suite(
    Suite(
        name="smoke",
        description="Minutes on a 2-core CPU: built-in pendulum (both algorithms), a short-episode Playground "
        "CheetahRun (MJX on CPU) and a short-episode Gymnasium HalfCheetah-v5, one seed, tiny budgets. It checks "
        "that every path runs end to end and records what a CPU does; it says nothing about GPU-scale speed.",
        tasks=(
            SuiteTask(
                "pendulum",
                threshold=-300.0,
                time_budget_s=75,
                env_step_budget=32_000,
                overrides={"eval_every": 2000, "eval_envs": 16, "torch_threads": 1},
                algos=("fasttd3", "pql"),
                threshold_source="the learning tests' threshold",
            ),
            SuiteTask(
                "playground:CheetahRun,episode_length=200",
                threshold=20.0,
                time_budget_s=150,
                env_step_budget=150_000,
                preset="cpu",
                algos=("fasttd3",),
                overrides={
                    "eval_envs": 16,
                    "eval_every": 10_000,
                    "torch_threads": 1,
                    "utd": 1,
                    "buffer_size": 150_000,
                    "agent": _SMALL,
                },  # fmt: skip
                threshold_source="ours: about 1 m/s average speed over 200-step episodes",
            ),
            SuiteTask(
                "gym:HalfCheetah-v5,max_episode_steps=200",
                threshold=0.0,
                time_budget_s=120,
                env_step_budget=200_000,
                preset="cpu",
                algos=("fasttd3",),
                overrides={
                    "eval_envs": 16,
                    "eval_every": 10_000,
                    "torch_threads": 1,
                    "utd": 1,
                    "buffer_size": 200_000,
                    "agent": _SMALL,
                },  # fmt: skip
                threshold_source="ours: net forward progress over 200-step episodes",
            ),
        ),
        algos=("fasttd3", "pql"),
        seeds=(0,),
        device="cpu",
    )
)


def _gpu(task: str, threshold: float, minutes: float, budget: int, evals: int = 30, **kw) -> SuiteTask:
    return SuiteTask(task, threshold=threshold, time_budget_s=minutes * 60, env_step_budget=budget,
                     overrides={"eval_every": budget // evals}, **kw)  # fmt: skip


HUMANOID = register_suite(
    Suite(
        name="humanoid",
        description="GPU scale: humanoid locomotion in MuJoCo Playground (DM Control humanoid, Unitree G1 and "
        "Booster T1 joystick), Isaac Lab (H1 and G1 flat velocity) and Gymnasium Humanoid-v5, with the published "
        "presets, each run time-boxed. Playground's G1/T1 need MuJoCo Menagerie (see the README); Isaac Lab tasks "
        "need Isaac Lab and evaluate on the training simulation (one per process).",
        tasks=(
            _gpu("playground:HumanoidWalk", 500.0, 30, 150_000 * 1024, threshold_source="ours (DM Control scale)"),
            _gpu("playground:HumanoidRun", 200.0, 30, 150_000 * 1024, threshold_source="ours (DM Control scale)"),
            _gpu(
                "playground:G1JoystickFlatTerrain",
                23.38,
                60,
                100_000 * 1024,
                threshold_source=_FASTTD3_DATA,
                published={"fasttd3": "28.9 min, 20.5M env steps (A100)"},
            ),
            _gpu(
                "playground:T1JoystickFlatTerrain",
                34.45,
                60,
                100_000 * 1024,
                threshold_source=_FASTTD3_DATA,
                published={"fasttd3": "39.2 min, 35.8M env steps (A100)"},
            ),
            _gpu(
                "isaaclab:Isaac-Velocity-Flat-H1-v0",
                33.71,
                60,
                75_000 * 4096,
                evals=15,
                threshold_source=_FASTTD3_DATA,
                published={"fasttd3": "35.8 min, 143M env steps (A100)"},
            ),
            _gpu(
                "isaaclab:Isaac-Velocity-Flat-G1-v0",
                28.16,
                60,
                50_000 * 4096,
                evals=15,
                threshold_source=_FASTTD3_DATA,
                published={"fasttd3": "49.7 min, 143M env steps (A100)"},
            ),
            _gpu("gym:Humanoid-v5,vectorization=async", 5000.0, 60, 100_000 * 128, threshold_source="ours"),
        ),  # fmt: skip
        algos=("fasttd3", "pql"),
        seeds=(0, 1, 2),
        device="cuda",
    )
)


_CPU_RUN = {"eval_envs": 16, "torch_threads": 1}

ALGORITHMS = register_suite(
    Suite(
        name="algorithms",
        description="Learning curves of every algorithm (FastTD3, PQL, FastSAC, CrossQ + WN) on the built-in tasks "
        "and a short-episode Playground CheetahRun, 3 seeds, each run a fixed CPU-sized env-step budget (pendulum "
        "16k, cartpole-swingup 40k, reacher3 24k with the tasks' default presets; CheetahRun 10k with the cpu preset "
        "and 128-128 networks; a 900 s wall-clock cap per run is only a guard). About 50 minutes of CPU (two "
        "workers: about 25 minutes on an idle 2-core machine): it compares the algorithms' early learning on a "
        "small CPU, not their final performance.",
        tasks=(
            SuiteTask(
                "pendulum",
                threshold=-300.0,
                time_budget_s=900,
                env_step_budget=16_000,
                overrides={**_CPU_RUN, "eval_every": 2000},
                threshold_source="the learning tests' threshold",
            ),
            SuiteTask(
                "cartpole-swingup",
                threshold=80.0,
                time_budget_s=900,
                env_step_budget=40_000,
                overrides={**_CPU_RUN, "eval_every": 4000},
                threshold_source="the learning tests' threshold",
            ),
            SuiteTask(
                "reacher3",
                threshold=-20.0,
                time_budget_s=900,
                env_step_budget=24_000,
                overrides={**_CPU_RUN, "eval_every": 4000},
                threshold_source="ours: the fingertip within about 0.2 of the target on average",
            ),
            SuiteTask(
                "playground:CheetahRun,episode_length=200",
                threshold=20.0,
                time_budget_s=900,
                env_step_budget=10_000,
                preset="cpu",
                overrides={**_CPU_RUN, "eval_every": 2000, "utd": 1, "buffer_size": 150_000, "agent": _SMALL},
                threshold_source="ours: about 1 m/s average speed over 200-step episodes (as the smoke suite)",
            ),
        ),  # fmt: skip
        algos=("fasttd3", "pql", "fastsac", "crossq"),
        seeds=(0, 1, 2),
        device="cpu",
    )
)
