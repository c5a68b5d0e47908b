"""Exact ratio bookkeeping: how many critic and policy updates are due, in integer arithmetic.

Floats drift (0.1 * 10 != 1 in binary), so ratios are held as fractions: after ``k`` learning env steps exactly
``floor(utd * k)`` critic updates have run, and after ``v`` critic updates exactly ``floor(policy_ratio * v)``
policy updates. The realised ratios therefore equal the configured ones whenever the products are integers, and
are never off by more than one update otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


def as_fraction(x: float) -> Fraction:
    """The simple fraction a user meant by a float such as 0.25 or 0.333333."""
    return Fraction(x).limit_denominator(10_000)


@dataclass
class RatioScheduler:
    utd: float
    policy_ratio: float
    learning_starts: int = 2
    env_steps: int = 0
    """Vectorized env steps taken so far."""
    critic_updates: int = 0
    policy_updates: int = 0

    def __post_init__(self) -> None:
        self._utd = as_fraction(self.utd)
        self._policy_ratio = as_fraction(self.policy_ratio)

    @property
    def learning_env_steps(self) -> int:
        """Env steps since learning started (the denominator of the realised UTD)."""
        return max(0, self.env_steps - self.learning_starts + 1)

    def on_env_step(self) -> int:
        """Record one vectorized env step; returns the critic updates now due."""
        self.env_steps += 1
        return int(self._utd * self.learning_env_steps) - self.critic_updates

    def on_critic_update(self) -> int:
        """Record one critic update; returns the policy updates now due."""
        self.critic_updates += 1
        return int(self._policy_ratio * self.critic_updates) - self.policy_updates

    def on_policy_update(self) -> None:
        self.policy_updates += 1

    def realised(self, num_envs: int, batch_size: int) -> dict[str, float]:
        """Realised ratios: UTD (critic updates per learning env step), policy ratio, sigma (critic updates per
        transition) and replay ratio (critic updates x batch / transitions)."""
        transitions = self.env_steps * num_envs
        return {
            "utd_realised": self.critic_updates / max(1, self.learning_env_steps),
            "policy_ratio_realised": self.policy_updates / max(1, self.critic_updates),
            "sigma": self.critic_updates / max(1, transitions),
            "replay_ratio": self.critic_updates * batch_size / max(1, transitions),
        }

    def state_dict(self) -> dict[str, int]:
        return {"env_steps": self.env_steps, "critic_updates": self.critic_updates,
                "policy_updates": self.policy_updates}  # fmt: skip

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.env_steps, self.critic_updates = state["env_steps"], state["critic_updates"]
        self.policy_updates = state["policy_updates"]
