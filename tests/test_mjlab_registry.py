"""The ``mjlab:`` task prefix, its presets and suites, and the message without mjlab; most of it needs no mjlab."""

from __future__ import annotations

import sys

import pytest

import tasks
from parallel_rl.config import ConfigError, TrainConfig, replace_nested, validate
from tasks import presets_mjlab

G1 = "mjlab:Mjlab-Velocity-Flat-Unitree-G1"


@pytest.fixture
def without_mjlab(monkeypatch):
    """Make every ``import mjlab...`` fail, as on a machine without the extra."""
    for name in [m for m in sys.modules if m == "mjlab" or m.startswith("mjlab.")] + ["mjlab"]:
        monkeypatch.setitem(sys.modules, name, None)
    presets_mjlab.mjlab_task_entry.cache_clear()
    yield
    presets_mjlab.mjlab_task_entry.cache_clear()


def test_mjlab_task_without_mjlab_fails_with_one_message_naming_the_extra(without_mjlab, capsys):
    with pytest.raises(ConfigError, match=r"parallel-rl\[mjlab\]"):
        tasks.check_installed(G1)
    from launch.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--task", G1])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --task mjlab:") and "pip install 'parallel-rl[mjlab]'" in err[0]


@pytest.mark.parametrize("algo", ["fasttd3", "pql"])
@pytest.mark.parametrize("name", ["default", "cpu"])
def test_g1_presets_are_valid_configs(algo: str, name: str):
    overrides = presets_mjlab.mjlab_preset(G1, algo, name)
    cfg = replace_nested(TrainConfig(task=G1, algo=algo, preset=name), overrides)
    validate(cfg)
    # The value support covers a perfect G1 policy's discounted dt-scaled return (~0.12 / (1 - 0.99) = 12).
    assert cfg.agent.v_min <= -10 and cfg.agent.v_max >= 12 and cfg.agent.reward_scale == 1.0
    if name == "default":
        assert cfg.num_envs == 4096
        expected = {"fasttd3": (4, 8, 32_768, 251), "pql": (8, 3, 8192, 51)}[algo]
        assert (cfg.schedule.utd, cfg.agent.n_step, cfg.buffer.batch_size, cfg.agent.num_atoms) == expected


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="did you mean 'cpu'"):
        presets_mjlab.mjlab_preset(G1, "fasttd3", "cpus")


def test_suites_are_well_formed_and_register_is_safe_without_the_benchmark_runner():
    from launch import mjlab_h2h

    keys = {"task", "algo", "preset", "seeds", "time_budget_s", "env_step_budget", "device"}
    assert {"humanoid", "smoke", "mjlab-h2h"} <= set(mjlab_h2h.SUITES)
    for suite, entries in mjlab_h2h.SUITES.items():
        for entry in entries:
            assert keys <= set(entry), (suite, entry)
            assert entry["task"].startswith("mjlab:") and entry["algo"] in ("fasttd3", "pql", mjlab_h2h.PPO)
    h2h = mjlab_h2h.SUITES["mjlab-h2h"]
    assert {e["algo"] for e in h2h} == {"fasttd3", mjlab_h2h.PPO} and all(e["seeds"] >= 2 for e in h2h)
    assert len({(e["task"], e["time_budget_s"], e["seeds"]) for e in h2h}) == 1  # same task, budget and seeds
    try:
        import launch.benchmark  # noqa: F401
    except ImportError:
        assert mjlab_h2h.register() is False


def test_return_at_equal_wall_clock():
    from launch.mjlab_h2h import return_at

    rows = [{"wall_seconds": 1.0, "return": 1.0}, {"wall_seconds": 5.0, "return": 2.0}]
    assert return_at(rows, 4.9) == 1.0 and return_at(rows, 5.0) == 2.0
    assert return_at(rows, 0.5) != return_at(rows, 0.5)  # nan before the first row


def test_unknown_mjlab_task_gets_a_suggestion():
    pytest.importorskip("mjlab", reason="mjlab is not installed (pip install 'parallel-rl[mjlab]')")
    presets_mjlab.mjlab_task_entry.cache_clear()
    with pytest.raises(ConfigError, match="did you mean 'Mjlab-Velocity-Flat-Unitree-G1'"):
        tasks.check_installed("mjlab:Mjlab-Velocity-Flat-Unitree-G2")
    assert tasks.presets_of(G1)["fasttd3"]["cpu"]["num_envs"] == 4
