"""Typed presets: every preset of every backend builds a valid TrainConfig; a misspelled or mistyped field fails when
the preset is defined (at import), naming the field; tuned presets are tyro subcommands whose --help shows them."""

from __future__ import annotations

import sys

import pytest

import tasks
from launch import train as train_cli
from parallel_rl.config import ConfigError, TrainConfig, replace_nested
from tasks.backend import CpuScale, Preset, cpu_preset

#: Every backend's tuned tasks, one untuned name per backend (its generic presets), and the built-in tasks.
ALL_TASKS = [
    *tasks.TASKS,
    *(f"{prefix}:{t}" for prefix, backend in tasks.BACKENDS.items() for t in backend.tuned),
    "playground:AcrobotSwingup", "playground:Go1JoystickFlatTerrain", "isaaclab:Isaac-Ant-v0", "isaacgym:Anymal",
    "gym:Hopper-v5", "torchrl:parallel_rl.integrations.torchrl:gym_envs",
]  # fmt: skip


@pytest.mark.parametrize("task", ALL_TASKS)
def test_every_preset_of_every_backend_builds(task):
    presets = tasks.presets_of(task)
    assert {"fasttd3", "pql"} <= set(presets)
    for algo, by_name in presets.items():
        assert "default" in by_name
        for name, preset in by_name.items():
            assert isinstance(preset, Preset)
            cfg = preset.build(task=task, algo=algo, preset=name)  # validates
            assert cfg == replace_nested(TrainConfig(task=task, algo=algo, preset=name), preset)
            for key, value in preset.get("agent", {}).items():
                assert getattr(cfg.agent, key) == value


def test_misspelled_field_fails_at_import_naming_it(tmp_path, monkeypatch):
    (tmp_path / "my_presets.py").write_text(
        "from tasks.backend import Preset\nG1 = Preset(num_envs=16, agent={'gama': 0.97})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"'agent\.gama'.*did you mean 'gamma'"):
        __import__("my_presets")
    sys.modules.pop("my_presets", None)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"num_env": 4}, r"'num_env'.*did you mean 'num_envs'"),
        ({"num_envs": "16"}, r"'num_envs': '16' is not a int"),
        ({"num_envs": True}, r"'num_envs': True is not a int"),
        ({"schedule": {"mode": "fast"}}, r"'schedule.mode': 'fast' is not a"),
        ({"agent": {"critic_hidden": (256, "256")}}, r"'agent.critic_hidden'"),
        ({"agent": 0.99}, r"'agent': a section"),
    ],
)
def test_bad_fields_and_types_are_named(fields, message):
    with pytest.raises(ConfigError, match=message):
        Preset(fields)


def test_presets_are_immutable_and_types_accept_what_the_config_does():
    p = Preset(agent={"gamma": 1, "critic_hidden": (64, 64)}, run_dir=None, schedule={"utd": 0.25})
    with pytest.raises(TypeError, match="immutable"):
        p["num_envs"] = 4
    assert replace_nested(TrainConfig(), p).schedule.utd == 0.25


def test_one_cpu_rule_keeps_task_values_and_pql_rules():
    task = Preset(num_envs=4096, agent={"gamma": 0.97, "v_min": -500.0, "v_max": 500.0, "n_step": 3, "tau": 0.3,
                                        "critic_hidden": (1024, 512)})  # fmt: skip
    fasttd3 = cpu_preset(task, "fasttd3", CpuScale(num_envs=8, total_env_steps=1000))
    assert fasttd3["num_envs"] == 8 and fasttd3["total_env_steps"] == 1000
    assert fasttd3["agent"] == {"gamma": 0.97, "v_min": -500.0, "v_max": 500.0, "n_step": 3,
                                "critic_hidden": (256, 256), "actor_hidden": (256, 256)}  # fmt: skip
    pql = cpu_preset(task, "pql")
    assert pql["agent"]["tau"] == 0.05 and pql["agent"]["n_step"] == 3 and pql["agent"]["std_max"] == 0.8


def test_named_presets_are_tyro_subcommands(capsys):
    cfg = train_cli.parse(["pendulum-pql", "--num-envs", "8"])
    assert (cfg.task, cfg.algo, cfg.num_envs, cfg.agent.n_step, cfg.agent.reward_scale) == (
        "pendulum",
        "pql",
        8,
        3,
        0.1,
    )
    cfg = train_cli.parse(["playground:CheetahRun-fasttd3-cpu"])
    assert cfg.preset == "cpu" and cfg.num_envs == 16 and cfg.agent.v_max == 500.0
    with pytest.raises(SystemExit):
        train_cli.parse(["isaaclab:Isaac-Velocity-Flat-H1-v0-fasttd3", "--help"])
    out = capsys.readouterr().out
    assert "--num-atoms" in out and "(default: 251)" in out and "(default: 4096)" in out  # the preset's values
    cfg = train_cli.parse(["playground:CheetahRun-fasttd3", "--preset", "cpu"])  # the same as ...-fasttd3-cpu
    assert cfg.preset == "cpu" and cfg.num_envs == 16
    with pytest.raises(ConfigError, match="did you mean 'pendulum-pql'"):
        train_cli.parse(["pendulum-pq"])
