"""Exact ratio bookkeeping: how many critic and policy updates are due, in integer arithmetic.

Floats drift (0.1 * 10 != 1 in binary), so ratios are held as fractions: after ``k`` learning env steps exactly
``floor(utd * k)`` critic updates have run, and after ``v`` critic updates exactly ``floor(policy_ratio * v)``
policy updates. The realised ratios therefore equal the configured ones whenever the products are integers, and
are never off by more than one update otherwise.

SPEQ (Romeo et al. 2025) adds offline *stabilization phases*: every ``stabilize_every`` learning env steps the
critic takes ``stabilize_updates`` extra updates on the fixed buffer, with no env step and no policy update in
between. They are counted like any critic update: ``critic_updates`` (and with it the realised UTD and sigma) is the
online updates plus the stabilization updates, exactly; ``policy_ratio`` applies to online updates only.
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
    """All critic updates: online plus stabilization."""
    policy_updates: int = 0
    stabilize_every: int = 0
    """Learning env steps between SPEQ stabilization phases (0: no phases)."""
    stabilize_updates: int = 0
    """Critic-only updates per stabilization phase."""
    stabilization_updates: int = 0
    """Critic updates taken in stabilization phases so far."""

    def __post_init__(self) -> None:
        if self.stabilize_every < 0 or self.stabilize_updates < 0:
            raise ValueError(f"stabilization phases need stabilize_every >= 0 and stabilize_updates >= 0, got "
                             f"{self.stabilize_every} and {self.stabilize_updates}")  # fmt: skip
        self._utd = as_fraction(self.utd)
        self._policy_ratio = as_fraction(self.policy_ratio)

    @property
    def learning_env_steps(self) -> int:
        """Env steps since learning started (the denominator of the realised UTD)."""
        return max(0, self.env_steps - self.learning_starts + 1)

    @property
    def online_critic_updates(self) -> int:
        return self.critic_updates - self.stabilization_updates

    def on_env_step(self) -> int:
        """Record one vectorized env step; returns the (online) critic updates now due."""
        self.env_steps += 1
        return int(self._utd * self.learning_env_steps) - self.online_critic_updates

    def on_critic_update(self) -> int:
        """Record one online critic update; returns the policy updates now due."""
        self.critic_updates += 1
        return int(self._policy_ratio * self.online_critic_updates) - self.policy_updates

    def stabilization_due(self) -> int:
        """Stabilization (critic-only) updates due now: ``stabilize_updates`` per completed phase period, minus those
        already taken. Cumulative, so a resumed run owes exactly what an uninterrupted one would."""
        if self.stabilize_every <= 0:
            return 0
        phases = self.learning_env_steps // self.stabilize_every
        return phases * self.stabilize_updates - self.stabilization_updates

    def on_stabilization_update(self) -> None:
        self.critic_updates += 1
        self.stabilization_updates += 1

    def on_policy_update(self) -> None:
        self.policy_updates += 1

    def realised(self, num_envs: int, batch_size: int) -> dict[str, float]:
        """Realised ratios: UTD (critic updates per learning env step), policy ratio (per online critic update),
        sigma (critic updates per transition) and replay ratio (critic updates x batch / transitions); every critic
        count includes stabilization updates."""
        transitions = self.env_steps * num_envs
        out = {
            "utd_realised": self.critic_updates / max(1, self.learning_env_steps),
            "policy_ratio_realised": self.policy_updates / max(1, self.online_critic_updates),
            "sigma": self.critic_updates / max(1, transitions),
            "replay_ratio": self.critic_updates * batch_size / max(1, transitions),
        }
        if self.stabilize_every > 0:
            out["stabilization_updates"] = float(self.stabilization_updates)
        return out

    def state_dict(self) -> dict[str, int]:
        return {"env_steps": self.env_steps, "critic_updates": self.critic_updates,
                "policy_updates": self.policy_updates, "stabilization_updates": self.stabilization_updates}  # fmt: skip

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.env_steps, self.critic_updates = state["env_steps"], state["critic_updates"]
        self.policy_updates = state["policy_updates"]
        self.stabilization_updates = state.get("stabilization_updates", 0)
