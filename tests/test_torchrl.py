"""torchrl environments in and out: built-in tasks as torchrl EnvBase (check_env_specs), any batched EnvBase as a
VecEnv (true final observations, terminated vs truncated), and FastTD3 learning Pendulum-v1 through torchrl."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("torchrl")
pytest.importorskip("gymnasium")

from torchrl.envs import GymEnv, SerialEnv  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from parallel_rl.config import ConfigError  # noqa: E402
from parallel_rl.envs.base import TorchVecEnv  # noqa: E402
from parallel_rl.integrations.torchrl import TorchRLVecEnv, as_torchrl_env  # noqa: E402
from tasks import TASKS, env_factory  # noqa: E402

GYM_TASK = "torchrl:parallel_rl.integrations.torchrl:gym_envs,env_id=Pendulum-v1,serial=true"  # GymEnv x 16


@pytest.mark.parametrize("name", list(TASKS))
def test_builtin_tasks_pass_check_env_specs(name):
    env = as_torchrl_env(TASKS[name].make(num_envs=3, device="cpu", seed=0))
    check_env_specs(env, break_when_any_done="both", seed=0)
    rollout = env.rollout(230, break_when_any_done=False)  # crosses every task's time limit
    assert rollout["next", "truncated"].any()


class Walk(TorchVecEnv):
    """A 1-D walk that terminates beyond |x| > 1 and is truncated after 20 steps: both kinds of episode end."""

    def __init__(self, num_envs: int, seed: int = 0) -> None:
        super().__init__(num_envs, 1, 1, -0.3, 0.3, 20, "cpu", seed)

    def _sample_initial_state(self, n):
        return self.uniform(n, -0.5, 0.5, dim=1)

    def _observe(self, state):
        return state

    def _dynamics(self, state, action):
        nxt = state + action
        return nxt, -nxt.abs().squeeze(-1), (nxt.abs() > 1).squeeze(-1)


def test_round_trip_keeps_final_observations_and_flags():
    """VecEnv -> torchrl EnvBase -> VecEnv gives back exactly what the env itself returns, through auto-resets after
    terminations and truncations."""
    direct, wrapped = Walk(4, seed=3), TorchRLVecEnv(as_torchrl_env(Walk(4, seed=3)), max_episode_steps=20)
    torch.testing.assert_close(wrapped.reset(seed=7)["obs"], direct.reset(seed=7)["obs"])
    actions = torch.Generator().manual_seed(0)
    terminated = truncated = 0
    for _ in range(100):
        action = (torch.rand(4, 1, generator=actions) * 2 - 1) * 0.3
        a, b = direct.step(action), wrapped.step(action)
        for key in ("obs", "final_obs", "reward", "terminated", "truncated"):
            torch.testing.assert_close(b[key], a[key], msg=key)
        terminated, truncated = terminated + int(a["terminated"].sum()), truncated + int(a["truncated"].sum())
    assert terminated >= 3 and truncated >= 3, (terminated, truncated)


def test_gym_final_observation_is_the_true_last_state():
    """On torchrl's GymEnv (Pendulum-v1, SerialEnv of 3), the observation reported at the time limit is the state
    reached from the previous one under Pendulum's dynamics (computed here by hand), not the reset state."""
    env = TorchRLVecEnv(SerialEnv(3, lambda: GymEnv("Pendulum-v1")))
    assert env.spec.max_episode_steps == 200  # read from Gymnasium's time limit
    obs = env.reset(seed=0)["obs"]
    for t in range(200):
        out = env.step(torch.zeros(3, 1))
        if t < 199:
            assert not (out["terminated"] | out["truncated"]).any()
            obs = out["obs"]
    assert out["truncated"].all() and not out["terminated"].any()
    theta, thdot = torch.atan2(obs[:, 1], obs[:, 0]), obs[:, 2]
    new_thdot = (thdot + 3 * 10.0 / 2 * torch.sin(theta) * 0.05).clamp(-8, 8)  # g = 10, l = m = 1, u = 0
    new_theta = theta + new_thdot * 0.05
    expected = torch.stack([torch.cos(new_theta), torch.sin(new_theta), new_thdot], -1)
    torch.testing.assert_close(out["final_obs"], expected, atol=1e-5, rtol=1e-5)
    assert (out["obs"] - out["final_obs"]).abs().max() > 1e-3  # obs is the reset state
    assert out["obs"][:, 2].abs().max() <= 1.0  # Pendulum resets thdot to U[-1, 1]
    assert not math.isnan(float(out["reward"].sum()))


def test_gym_env_with_num_envs_is_refused():
    """GymEnv(num_envs=N) wraps a NEXT_STEP vector env, whose final observations torchrl 0.14 reports as zeros: the
    adapter refuses it and says what to use."""
    env = GymEnv("Pendulum-v1", num_envs=2)
    try:
        with pytest.raises(ValueError, match="SAME_STEP"):
            TorchRLVecEnv(env)
    finally:
        env.close()


def test_task_name_errors_name_the_problem():
    with pytest.raises(ConfigError, match="<module>:<factory>"):
        env_factory("torchrl:no_factory_here")
    with pytest.raises(ConfigError, match="cannot import module 'not_a_module'"):
        env_factory("torchrl:not_a_module:make")
    with pytest.raises(ConfigError, match="no callable 'nope'"):
        env_factory("torchrl:parallel_rl.integrations.torchrl:nope")


@pytest.mark.learning
def test_fasttd3_learns_pendulum_through_torchrl(tmp_path):
    """FastTD3 on torchrl's GymEnv Pendulum-v1 (a SerialEnv of 16) reaches >= -300 (random: about -1200) in 12k
    transitions."""
    from launch.train import parse
    from parallel_rl.runtime import Trainer

    cfg = parse(["--task", GYM_TASK, "--preset", "cpu", "--num-envs", "16", "--eval-envs", "16", "--total-env-steps",
                 "12000", "--utd", "2", "--reward-scale", "0.1", "--v-min", "-50", "--v-max", "1", "--std-min", "0.05",
                 "--std-max", "0.8", "--critic-hidden", "128", "128", "--actor-hidden", "128", "128", "--num-atoms",
                 "51", "--device", "cpu", "--no-progress", "--seed", "0"])  # fmt: skip
    summary = Trainer(cfg, env_factory(GYM_TASK)).run(tmp_path)
    assert summary["env_steps"] <= 12_000
    assert summary["final_eval_return"] >= -300.0, summary
