"""``--action-l2``: HER's squared-action penalty on the deterministic policy loss, checked against a hand
computation (a linear two-member critic, so min-Q is a per-sample minimum of two dot products)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from launch.train import parse
from parallel_rl.algos.common import td3_actor_loss
from parallel_rl.config import ConfigError, validate


class LinearQ(nn.Module):
    """Q_m(s, a) = w_m . a for two members: [members, B, 1] as the ensemble critics return."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.tensor([[1.0, 2.0], [0.5, -1.0]])

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return (action @ self.w.T).T.unsqueeze(-1)

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        return out.squeeze(-1)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_action_l2_adds_the_mean_squared_action_to_the_policy_loss(l2):
    actions = torch.tensor([[0.5, -0.25], [-1.0, 0.75], [0.1, 0.2]])
    actor = lambda obs: actions  # noqa: E731
    batch = {"obs": torch.zeros(3, 4)}
    loss, _ = td3_actor_loss(actor, LinearQ(), batch, "min", l2)
    # by hand: Q1 = a0 + 2 a1, Q2 = 0.5 a0 - a1 per row; min over members; mean over rows; + l2 * mean(a^2)
    rows = [(0.5 - 0.5, 0.25 + 0.25), (-1.0 + 1.5, -0.5 - 0.75), (0.1 + 0.4, 0.05 - 0.2)]
    expected = -sum(min(q1, q2) for q1, q2 in rows) / 3
    expected += l2 * (0.25 + 0.0625 + 1.0 + 0.5625 + 0.01 + 0.04) / 6
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_negative_action_l2_is_refused():
    with pytest.raises(ConfigError, match="action-l2"):
        validate(parse(["--task", "pendulum", "--action-l2", "-0.1"]))


@pytest.mark.parametrize("algo", ["fastsac", "crossq", "dea"])
def test_action_l2_is_refused_where_the_policy_loss_ignores_it(algo):
    with pytest.raises(ConfigError, match="action-l2"):
        validate(parse(["--task", "pendulum", "--algo", algo, "--action-l2", "0.03"]))
    validate(parse(["--task", "pendulum", "--algo", algo]))  # the default (0) stays valid
