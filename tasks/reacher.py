"""Planar three-link arm reaching a random target (13-dimensional observation, 3 joint torques).

Each joint is a damped double integrator, ``q_ddot = 10 * a - 1 * q_dot`` with ``a`` in [-1, 1], joint speeds
clipped to +-10 rad/s, semi-implicit Euler with dt = 0.05 s, 100 steps (5 s) per episode. Links are 0.4, 0.3 and
0.2 long; the target is drawn uniformly in angle and in radius [0.2, 0.85]. As in Gymnasium's Reacher the reward is
``-|fingertip - target| - 0.01 * |a|**2``. Observation: cos q (3), sin q (3), q_dot (3), target (2),
fingertip - target (2).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from parallel_rl.envs import TorchVecEnv
from parallel_rl.envs.draw import Canvas, env_state

LINKS = (0.4, 0.3, 0.2)
GAIN = 10.0
DAMPING = 1.0
MAX_JOINT_SPEED = 10.0
DT = 0.05


class Reacher3(TorchVecEnv):
    render_fps = 1 / DT
    """Control steps per second of simulated time (real-time playback of evaluation videos)."""

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", seed: int = 0, **kwargs) -> None:
        super().__init__(
            num_envs, obs_dim=13, act_dim=3, action_low=-1.0, action_high=1.0,
            max_episode_steps=100, device=device, seed=seed, **kwargs,
        )  # fmt: skip
        self._links = torch.tensor(LINKS, dtype=self.dtype, device=self.device)

    def _sample_initial_state(self, n: int) -> torch.Tensor:
        q = torch.cat([self.uniform(n, -math.pi, math.pi, 1), self.uniform(n, -0.5, 0.5, 2)], dim=-1)
        qd = torch.zeros_like(q)
        radius = self.uniform(n, 0.2, 0.85)
        angle = self.uniform(n, -math.pi, math.pi)
        target = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
        return torch.cat([q, qd, target], dim=-1)  # state = (q[3], q_dot[3], target[2])

    def _fingertip(self, q: torch.Tensor) -> torch.Tensor:
        phi = torch.cumsum(q, dim=-1)
        return torch.stack([(self._links * torch.cos(phi)).sum(-1), (self._links * torch.sin(phi)).sum(-1)], dim=-1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        q, qd, target = state[:, :3], state[:, 3:6], state[:, 6:8]
        return torch.cat([torch.cos(q), torch.sin(q), qd, target, self._fingertip(q) - target], dim=-1)

    def _dynamics(self, state: torch.Tensor, action: torch.Tensor):
        q, qd, target = state[:, :3], state[:, 3:6], state[:, 6:8]
        qd = (qd + DT * (GAIN * action - DAMPING * qd)).clamp(-MAX_JOINT_SPEED, MAX_JOINT_SPEED)
        q = q + DT * qd
        distance = torch.linalg.vector_norm(self._fingertip(q) - target, dim=-1)
        reward = -distance - 0.01 * (action**2).sum(-1)
        terminated = torch.zeros_like(distance, dtype=torch.bool)
        return torch.cat([q, qd, target], dim=-1), reward, terminated

    def render(self, env_index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """Env ``env_index`` seen from above as uint8 RGB [height, width, 3]: the arm, its joints and the target."""
        state = env_state(self.state, env_index)
        q, target = state[:3], state[6:8]
        canvas = Canvas(width, height, extent=1.05 * sum(LINKS))
        canvas.circle((0.0, 0.0), sum(LINKS), (232, 232, 226))  # the reachable disc
        canvas.circle(tuple(target), 0.05, (200, 60, 60))
        joint, phi = (0.0, 0.0), 0.0
        for link, angle in zip(LINKS, q):
            phi += angle
            end = (joint[0] + link * math.cos(phi), joint[1] + link * math.sin(phi))
            canvas.segment(joint, end, 0.04, (60, 90, 160))
            canvas.circle(joint, 0.03, (40, 40, 40))
            joint = end
        canvas.circle(joint, 0.025, (230, 170, 40))  # fingertip
        return canvas.to_uint8()
