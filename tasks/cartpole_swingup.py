"""Cart-pole swing-up with a continuous force, pole starting down.

Equations (the classic Barto-Sutton-Anderson cart-pole, frictionless; theta = 0 is upright):

    temp      = (F + m_p * l * theta_dot**2 * sin(theta)) / (m_c + m_p)
    theta_acc = (g * sin(theta) - cos(theta) * temp) / (l * (4/3 - m_p * cos(theta)**2 / (m_c + m_p)))
    x_acc     = temp - m_p * l * theta_acc * cos(theta) / (m_c + m_p)

with g = 9.8, m_c = 1.0, m_p = 0.1, l = 0.5 (half pole length), F = 10 * action, action in [-1, 1], integrated with
semi-implicit Euler, 10 substeps of 0.01 s per 0.1 s control step (an action repeat, as DM Control agents
use on this task); 200 control steps (20 s) per episode.

Reward (shaped like DM Control's smooth swing-up reward), each factor in [0, 1]:

    upright        = 1 - |wrap(theta)| / pi        (linear in the angle, so swinging up pays from the bottom)
    centered       = (1 + exp(-x**2)) / 2
    small_control  = (4 + (1 - action**2)) / 5
    small_velocity = (1 + exp(-theta_dot**2 / 25)) / 2
    reward         = upright * centered * small_control * small_velocity

so a return of 200 is the ceiling and a pole left hanging earns about 0. The track ends at |x| = 3 in inelastic
walls (the cart stops there); an unstable simulation (non-finite state) would terminate the episode.
Observation: (x, cos theta, sin theta, x_dot, theta_dot).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from parallel_rl.envs import TorchVecEnv, angle_normalize
from parallel_rl.envs.draw import Canvas, env_state

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
HALF_LENGTH = 0.5
FORCE_SCALE = 10.0
SUBSTEP_DT = 0.01
SUBSTEPS = 10
TRACK_LIMIT = 3.0


class CartpoleSwingup(TorchVecEnv):
    render_fps = 1 / (SUBSTEP_DT * SUBSTEPS)
    """Control steps per second of simulated time (real-time playback of evaluation videos)."""

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", seed: int = 0, **kwargs) -> None:
        super().__init__(
            num_envs, obs_dim=5, act_dim=1, action_low=-1.0, action_high=1.0,
            max_episode_steps=200, device=device, seed=seed, **kwargs,
        )  # fmt: skip

    def _sample_initial_state(self, n: int) -> torch.Tensor:
        state = self.uniform(n, -0.05, 0.05, dim=4)  # state = (x, theta, x_dot, theta_dot)
        state[:, 1] += math.pi  # pole hanging down
        return state

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        x, th, xd, thd = state.unbind(-1)
        return torch.stack([x, torch.cos(th), torch.sin(th), xd, thd], dim=-1)

    def _dynamics(self, state: torch.Tensor, action: torch.Tensor):
        u = action[:, 0]
        force = FORCE_SCALE * u
        x, th, xd, thd = state.unbind(-1)
        total_mass = MASS_CART + MASS_POLE
        for _ in range(SUBSTEPS):
            sin, cos = torch.sin(th), torch.cos(th)
            temp = (force + MASS_POLE * HALF_LENGTH * thd**2 * sin) / total_mass
            th_acc = (GRAVITY * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos**2 / total_mass))
            x_acc = temp - MASS_POLE * HALF_LENGTH * th_acc * cos / total_mass
            xd = xd + SUBSTEP_DT * x_acc
            thd = thd + SUBSTEP_DT * th_acc
            x = x + SUBSTEP_DT * xd
            th = th + SUBSTEP_DT * thd
            at_wall = x.abs() > TRACK_LIMIT
            x = x.clamp(-TRACK_LIMIT, TRACK_LIMIT)
            xd = torch.where(at_wall, torch.zeros_like(xd), xd)
        upright = 1 - angle_normalize(th).abs() / math.pi
        centered = (1 + torch.exp(-(x**2))) / 2
        small_control = (4 + (1 - u**2)) / 5
        small_velocity = (1 + torch.exp(-(thd**2) / 25)) / 2
        reward = upright * centered * small_control * small_velocity
        terminated = ~torch.isfinite(th)
        return torch.stack([x, th, xd, thd], dim=-1), reward, terminated

    def render(self, env_index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """Env ``env_index`` as uint8 RGB [height, width, 3]: track with its walls, cart, pole (positive theta leans
        towards +x)."""
        x, th = env_state(self.state, env_index)[:2]
        pole = 2 * HALF_LENGTH
        # Show the whole track horizontally and the pole's full circle vertically, whatever the aspect ratio.
        extent = max((TRACK_LIMIT + 0.4) * height / width, pole + 0.3)
        canvas = Canvas(width, height, extent=extent)
        canvas.segment((-TRACK_LIMIT - 0.2, 0.0), (TRACK_LIMIT + 0.2, 0.0), 0.03, (120, 120, 120))
        for wall in (-TRACK_LIMIT - 0.2, TRACK_LIMIT + 0.2):
            canvas.rectangle((wall, 0.0), (0.04, 0.25), (80, 80, 80))
        canvas.rectangle((x, 0.0), (0.2, 0.1), (60, 90, 160))
        canvas.segment((x, 0.0), (x + pole * math.sin(th), pole * math.cos(th)), 0.06, (204, 150, 77))
        canvas.circle((x, 0.0), 0.035, (40, 40, 40))
        return canvas.to_uint8()


class CartpoleBalance(CartpoleSwingup):
    """The same cart-pole, reward and limits with the pole starting near upright (|theta| < 0.2 rad, as DM Control's
    balance task starts it): keep it up. A held-out task for transfer from the multi-task built-in set."""

    def _sample_initial_state(self, n: int) -> torch.Tensor:
        state = self.uniform(n, -0.05, 0.05, dim=4)  # (x, theta, x_dot, theta_dot)
        state[:, 1] = self.uniform(n, -0.2, 0.2)
        return state
