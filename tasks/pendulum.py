"""Pendulum swing-up, identical to Gymnasium's Pendulum-v1 (dynamics, observation, reward, start states, 200 steps).

Returns are therefore comparable with published Pendulum-v1 numbers (solved is about -150 to -200).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from parallel_rl.envs import TorchVecEnv, angle_normalize
from parallel_rl.envs.draw import Canvas, env_state

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
G = 10.0
M = 1.0
L = 1.0


class Pendulum(TorchVecEnv):
    """State is (theta, theta_dot); theta = 0 is upright. Observation (cos theta, sin theta, theta_dot)."""

    render_fps = 1 / DT
    """Control steps per second of simulated time (real-time playback of evaluation videos)."""

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", seed: int = 0, **kwargs) -> None:
        super().__init__(
            num_envs, obs_dim=3, act_dim=1, action_low=-MAX_TORQUE, action_high=MAX_TORQUE,
            max_episode_steps=200, device=device, seed=seed, **kwargs,
        )  # fmt: skip

    def _sample_initial_state(self, n: int) -> torch.Tensor:
        return torch.stack([self.uniform(n, -math.pi, math.pi), self.uniform(n, -1.0, 1.0)], dim=-1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        th, thdot = state[:, 0], state[:, 1]
        return torch.stack([torch.cos(th), torch.sin(th), thdot], dim=-1)

    def _dynamics(self, state: torch.Tensor, action: torch.Tensor):
        th, thdot = state[:, 0], state[:, 1]
        u = action[:, 0]
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        new_thdot = thdot + (3 * G / (2 * L) * torch.sin(th) + 3.0 / (M * L**2) * u) * DT
        new_thdot = new_thdot.clamp(-MAX_SPEED, MAX_SPEED)
        new_th = th + new_thdot * DT
        terminated = torch.zeros_like(th, dtype=torch.bool)
        return torch.stack([new_th, new_thdot], dim=-1), -cost, terminated

    def render(self, env_index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """The pendulum of env ``env_index`` as uint8 RGB [height, width, 3]; upright (theta = 0) points up."""
        th = env_state(self.state, env_index)[0]
        canvas = Canvas(width, height, extent=1.25 * L)
        tip = (-L * math.sin(th), L * math.cos(th))  # theta grows counter-clockwise, as Gymnasium draws it
        canvas.segment((0.0, 0.0), tip, 0.2 * L, (204, 77, 77))
        canvas.circle((0.0, 0.0), 0.05 * L, (40, 40, 40))
        return canvas.to_uint8()
