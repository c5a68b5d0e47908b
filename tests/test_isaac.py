"""Isaac Lab and Isaac Gym adapters against fakes that follow the real APIs (see tests/fake_isaac.py), and the
messages users get when Isaac is not installed."""

from __future__ import annotations

import math
import sys

import pytest
import torch

import tasks
from parallel_rl.config import ConfigError
from parallel_rl.envs import VecEnv
from parallel_rl.envs.shared import SharedEnvView, forget_simulations
from tests import fake_isaac
from tests.fake_isaac import STEP


@pytest.fixture
def isaaclab(monkeypatch):
    import parallel_rl.envs.isaac_lab as adapter

    fake_isaac.install(monkeypatch, fake_isaac.isaaclab_modules())
    monkeypatch.setattr(adapter, "_APP", None)
    monkeypatch.setattr(adapter, "_ENV_CREATED", False)
    forget_simulations()
    yield
    forget_simulations()


@pytest.fixture
def isaacgym(monkeypatch):
    fake_isaac.install(monkeypatch, fake_isaac.isaacgym_modules())
    forget_simulations()
    yield sys.modules["isaacgymenvs"]
    forget_simulations()


def right_then_left(n: int) -> torch.Tensor:
    """Actions pushing even envs right (they terminate beyond x = 1 after ~10 steps) and odd envs nowhere."""
    action = torch.zeros(n, 2)
    action[0::2, 0] = 1.0
    action[:, 1] = torch.linspace(-0.5, 0.5, n)
    return action


# ---- Isaac Lab ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task_id", fake_isaac.FAKE_LAB_IDS)
def test_isaaclab_spec_groups_and_device(isaaclab, task_id):
    env = tasks.make_env(f"isaaclab:{task_id},action_scale=2.0", num_envs=6, device="cpu", seed=0)
    assert isinstance(env, VecEnv)
    spec = env.spec
    assert (spec.obs_dim, spec.critic_obs_dim, spec.act_dim, spec.max_episode_steps) == (2, 3, 2, 10)
    assert spec.action_low == (-2.0, -2.0) and spec.action_high == (2.0, 2.0) and spec.device == torch.device("cpu")
    first = env.reset(seed=0)
    assert first["obs"].shape == (6, 2) and first["critic_obs"].shape == (6, 3)
    assert sys.modules["isaaclab.app"].AppLauncher.launches == 1
    base = env.base
    out = env.step(torch.full((6, 2), 5.0))  # beyond the bounds: clamped to the action scale
    assert torch.allclose(base.last_action, torch.full((6, 2), 2.0))
    for key in ("obs", "final_obs", "critic_obs", "final_critic_obs", "reward", "terminated", "truncated"):
        assert out[key].device == spec.device and out[key].shape[0] == 6, key
    assert out["terminated"].dtype == torch.bool and out["reward"].dtype == torch.float32


@pytest.mark.parametrize("task_id", fake_isaac.FAKE_LAB_IDS)
def test_isaaclab_time_outs_and_terminations_keep_true_final_obs(isaaclab, task_id):
    """Even envs run right (x += 0.2 per step) and terminate beyond x = 1 after 5-6 steps; odd envs stand still and
    time out at step 10. Every ended episode reports the state it ended in, not the reset state now in ``obs``."""
    env = tasks.make_env(f"isaaclab:{task_id},action_scale=2.0", num_envs=6, device="cpu", seed=1)
    env.reset(seed=1)
    base, action = env.base, right_then_left(6) * 2.0
    terminated_at = torch.full((6,), -1)
    for t in range(1, 11):
        x_before = base.x.clone()
        out = env.step(action)
        done = out["terminated"] | out["truncated"]
        assert not (out["terminated"] & out["truncated"]).any()
        expected_x = x_before + STEP * action[:, 0]
        assert torch.allclose(out["final_obs"][done, 0], expected_x[done])
        assert torch.allclose(out["final_critic_obs"][done, 0], expected_x[done])
        assert torch.equal(out["final_obs"][~done], out["obs"][~done])
        assert torch.equal(out["final_critic_obs"][~done], out["critic_obs"][~done])
        assert (out["obs"][done, 0].abs() <= 0.1).all() and (out["critic_obs"][done, 2] == 0).all()  # reset states
        terminated_at[out["terminated"] & (terminated_at < 0)] = t
        if t < 10:
            assert not out["truncated"].any()
    assert out["truncated"][1::2].all() and not out["truncated"][0::2].any()
    assert torch.allclose(out["final_critic_obs"][1::2, 2], torch.ones(3))  # the time-out's progress: 10/10
    assert ((terminated_at[0::2] >= 5) & (terminated_at[0::2] <= 6)).all() and (terminated_at[1::2] < 0).all()


def test_isaaclab_final_obs_capture_does_not_touch_observation_history(isaaclab):
    env = tasks.make_env("isaaclab:Isaac-Fake-Manager-v0", num_envs=4, device="cpu", seed=0)
    env.reset()
    manager = env.base.observation_manager
    for _ in range(25):  # several time-outs
        env.step(torch.zeros(4, 2))
    assert manager.history_updates == 25  # exactly the env's own update per step


def test_isaaclab_reset_mode_bootstraps_from_reset_obs(isaaclab):
    with pytest.warns(UserWarning, match="reset observation"):
        env = tasks.make_env("isaaclab:Isaac-Fake-Manager-v0,final_obs=reset", num_envs=2, device="cpu", seed=0)
    env.reset()
    for _ in range(10):
        out = env.step(torch.zeros(2, 2))
    assert out["truncated"].all() and torch.equal(out["final_obs"], out["obs"])


def test_isaaclab_one_simulation_per_process(isaaclab):
    env = tasks.make_env("isaaclab:Isaac-Fake-Manager-v0", num_envs=4, device="cpu", seed=0)
    with pytest.warns(UserWarning, match="shares the training env"):
        view = tasks.make_env("isaaclab:Isaac-Fake-Manager-v0", num_envs=4, device="cpu", seed=5)
    assert isinstance(view, SharedEnvView) and view.env is env
    with pytest.raises(ValueError, match="--eval-envs 4"):
        tasks.make_env("isaaclab:Isaac-Fake-Manager-v0", num_envs=8, device="cpu", seed=5)


def test_isaaclab_fasttd3_trains_end_to_end(isaaclab, tmp_path):
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    cfg = tiny_config(task="isaaclab:Isaac-Fake-Direct-v0", num_envs=4, eval_envs=4, total_env_steps=120,
                      agent={"v_min": -20.0, "v_max": 20.0})  # fmt: skip
    with pytest.warns(UserWarning, match="shares the training env"):
        summary = Trainer(cfg, tasks.env_factory(cfg.task)).run(tmp_path)
    assert summary["critic_updates"] > 0 and math.isfinite(summary["final_eval_return"])


# ---- Isaac Gym ----------------------------------------------------------------------------------------------------
def test_isaacgym_spec_and_fresh_reset(isaacgym):
    env = tasks.make_env("isaacgym:FakeAnt", num_envs=6, device="cpu", seed=0)
    spec = env.spec
    assert (spec.obs_dim, spec.critic_obs_dim, spec.act_dim, spec.max_episode_steps) == (2, 3, 2, 20)
    assert spec.action_low == (-1.0, -1.0) and spec.device == torch.device("cpu")
    task = isaacgym.made[-1]
    first = env.reset()
    assert (task.progress_buf == 0).all() and (task.reset_buf == 0).all()  # every env started a fresh episode
    assert (first["obs"][:, 0].abs() <= 0.1).all() and first["critic_obs"].shape == (6, 3)


def test_isaacgym_time_outs_are_truncations_with_lazy_reset_final_obs(isaacgym):
    env = tasks.make_env("isaacgym:FakeAnt", num_envs=6, device="cpu", seed=0)
    env.reset()
    task, action = isaacgym.made[-1], right_then_left(6)  # even envs pass x = 1 after ~10 steps, odd ones time out
    seen_timeout = seen_termination = False
    ended_before = torch.zeros(6, dtype=torch.bool)
    for _ in range(40):
        x_before = task.x.clone()
        out = env.step(action)
        done = out["terminated"] | out["truncated"]
        assert torch.equal(done, task.reset_buf.bool())
        assert torch.equal(out["truncated"], task.extras["time_outs"] & done)
        # Lazy reset: the observation that comes with the done flag is the state the episode ended in ...
        going = ~ended_before
        assert torch.allclose(out["final_obs"][going, 0], (x_before + STEP * action[:, 0])[going])
        # ... and envs that ended at the previous step were reset during this one.
        assert (out["obs"][ended_before, 0].abs() <= 0.1).all()
        ended_before = done
        seen_timeout |= bool(out["truncated"].any())
        seen_termination |= bool(out["terminated"].any())
    assert seen_timeout and seen_termination


def test_isaacgym_reward_is_not_the_tasks_buffer(isaacgym):
    env = tasks.make_env("isaacgym:FakeAnt", num_envs=2, device="cpu", seed=0)
    env.reset()
    out = env.step(torch.ones(2, 2))
    kept = out["reward"].clone()
    env.step(-torch.ones(2, 2))
    assert torch.equal(out["reward"], kept)


def test_isaacgym_fasttd3_trains_end_to_end(isaacgym, tmp_path):
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    cfg = tiny_config(task="isaacgym:FakeAnt", num_envs=4, eval_envs=4, total_env_steps=120,
                      agent={"v_min": -20.0, "v_max": 20.0})  # fmt: skip
    with pytest.warns(UserWarning, match="shares the training env"):
        summary = Trainer(cfg, tasks.env_factory(cfg.task)).run(tmp_path)
    assert summary["critic_updates"] > 0 and math.isfinite(summary["final_eval_return"])


def test_isaacgym_must_be_imported_before_torch(tmp_path, monkeypatch):
    """Isaac Gym installed but not imported, torch already imported: one message saying what to do."""
    from parallel_rl.envs.isaac_gym import IMPORT_ORDER_MESSAGE, import_isaacgymenvs

    (tmp_path / "isaacgym").mkdir()
    (tmp_path / "isaacgym" / "__init__.py").write_text("raise ImportError('PyTorch was imported before isaacgym')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "isaacgym", raising=False)
    with pytest.raises(RuntimeError) as info:
        import_isaacgymenvs()
    assert str(info.value) == IMPORT_ORDER_MESSAGE


def test_launchers_import_isaacgym_first_only_when_asked():
    from launch._isaacgym_first import import_isaacgym_if_requested

    assert not import_isaacgym_if_requested(["--task", "pendulum"])
    assert not import_isaacgym_if_requested(["--task", "isaacgym:Ant"])  # torch is already imported here


# ---- not installed ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task, names",
    [("isaaclab:Isaac-Velocity-Flat-H1-v0", "Isaac Lab"), ("isaacgym:Ant", "Isaac Gym")],
)
def test_missing_isaac_gives_one_clear_message(task, names, capsys):
    from launch.train import main

    if any(m in sys.modules for m in ("isaaclab", "isaacgym")):
        pytest.skip("Isaac is installed here")
    with pytest.raises(ConfigError, match=f"{names} is not installed"):
        tasks.env_factory(task)
    with pytest.raises(SystemExit) as exit_info:
        main(["--task", task, "--algo", "fasttd3", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --task {task}: {names} is not installed"), err
    assert "install" in err[0] and "http" in err[0]
