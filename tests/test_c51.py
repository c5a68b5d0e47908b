"""C51 projection against a brute-force reference, mass conservation, and the clipped double-Q choice."""

from __future__ import annotations

import pytest
import torch

from parallel_rl.algos.common import categorical_projection, clipped_double_q_distribution, td_loss
from parallel_rl.nets import EnsembleCritic


def brute_force_projection(probs, reward, discount, support):
    """Atom by atom in plain Python: each shifted atom's mass goes to its two neighbours by linear interpolation."""
    v_min, v_max, n = float(support[0]), float(support[-1]), len(support)
    dz = (v_max - v_min) / (n - 1)
    out = [[0.0] * n for _ in range(len(probs))]
    for i in range(len(probs)):
        for j in range(n):
            tz = min(max(float(reward[i]) + float(discount[i]) * float(support[j]), v_min), v_max)
            b = (tz - v_min) / dz
            lo = int(b // 1)
            frac = b - lo
            if lo >= n - 1:  # exactly on the top atom
                out[i][n - 1] += float(probs[i][j])
            else:
                out[i][lo] += float(probs[i][j]) * (1 - frac)
                out[i][lo + 1] += float(probs[i][j]) * frac
    return torch.tensor(out, dtype=torch.float64)


@pytest.fixture
def support():
    return torch.linspace(-10.0, 10.0, 11, dtype=torch.float64)  # atoms 2 apart


def random_probs(n, atoms, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, atoms, generator=g, dtype=torch.float64), -1)


def test_matches_brute_force_on_random_targets(support):
    probs = random_probs(64, 11)
    g = torch.Generator().manual_seed(1)
    reward = torch.rand(64, generator=g, dtype=torch.float64) * 30 - 15  # includes targets outside the support
    discount = torch.rand(64, generator=g, dtype=torch.float64)
    discount[::4] = 0.0  # terminated transitions
    got = categorical_projection(probs, reward, discount, support)
    assert torch.allclose(got, brute_force_projection(probs, reward, discount, support), atol=1e-12)
    assert torch.allclose(got.sum(-1), torch.ones(64, dtype=torch.float64), atol=1e-12)


def test_targets_exactly_on_atoms_keep_unit_mass(support):
    """reward = 2 (one atom spacing), discount 1: every atom lands exactly on a neighbour (the floor == ceil case)."""
    probs = random_probs(5, 11)
    reward = torch.full((5,), 2.0, dtype=torch.float64)
    discount = torch.ones(5, dtype=torch.float64)
    got = categorical_projection(probs, reward, discount, support)
    expected = torch.zeros_like(probs)
    expected[:, 1:] = probs[:, :-1]  # shift by one atom...
    expected[:, -1] += probs[:, -1]  # ...and the top atom's mass is clamped onto the top atom
    assert torch.allclose(got, expected, atol=1e-12)
    assert torch.allclose(got.sum(-1), torch.ones(5, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(got, brute_force_projection(probs, reward, discount, support), atol=1e-12)


def test_terminal_target_is_a_point_mass_on_the_reward(support):
    probs = random_probs(3, 11)
    reward = torch.tensor([3.0, 4.0, 25.0], dtype=torch.float64)  # between atoms, on an atom, beyond v_max
    got = categorical_projection(probs, reward, torch.zeros(3, dtype=torch.float64), support)
    assert got[0, 6].item() == pytest.approx(0.5) and got[0, 7].item() == pytest.approx(0.5)  # 3 is between 2 and 4
    assert got[1, 7].item() == pytest.approx(1.0)  # 4 is atom 7
    assert got[2, 10].item() == pytest.approx(1.0)  # clamped to v_max
    assert torch.allclose(got.sum(-1), torch.ones(3, dtype=torch.float64))


def test_below_support_is_clamped(support):
    probs = random_probs(2, 11)
    got = categorical_projection(probs, torch.full((2,), -50.0, dtype=torch.float64),
                                 torch.full((2,), 0.9, dtype=torch.float64), support)  # fmt: skip
    assert torch.allclose(got[:, 0], torch.ones(2, dtype=torch.float64))


def test_clipped_double_q_takes_lower_mean_member():
    critic = EnsembleCritic(3, 1, hidden=(8,), num_atoms=5, v_min=-2, v_max=2)
    # member 0: mass on +2 for sample 0, on -2 for sample 1; member 1 the opposite.
    big = 50.0
    logits = torch.full((2, 2, 5), -big)
    logits[0, 0, 4] = logits[0, 1, 0] = big
    logits[1, 0, 0] = logits[1, 1, 4] = big
    picked = clipped_double_q_distribution(logits, critic)
    assert picked[0].argmax().item() == 0  # sample 0: member 1 has the lower mean (-2)
    assert picked[1].argmax().item() == 0  # sample 1: member 0 has the lower mean (-2)
    # a whole distribution is chosen, not an atom-wise minimum: it still sums to one
    assert torch.allclose(picked.sum(-1), torch.ones(2))


def test_scalar_critic_target_uses_min_of_members():
    critic = EnsembleCritic(3, 1, hidden=(8,), num_atoms=1)
    out = torch.zeros(2, 2, 1, requires_grad=True)
    target_out = torch.tensor([[[5.0], [1.0]], [[3.0], [7.0]]])  # mins: 3 and 1
    batch = {"reward": torch.tensor([1.0, 0.0]), "discount": torch.tensor([0.5, 1.0])}
    loss = td_loss(critic, out, target_out, batch)
    # targets: 1 + 0.5 * 3 = 2.5 and 0 + 1 * 1 = 1; prediction 0 -> per member mean((2.5^2 + 1^2)/2), summed over 2
    assert loss.item() == pytest.approx(2 * (2.5**2 + 1.0) / 2)


def test_both_critics_in_one_batched_call_match_separate_evaluation():
    torch.manual_seed(0)
    critic = EnsembleCritic(4, 2, hidden=(16, 16), num_atoms=7)
    obs, act = torch.randn(10, 4), torch.rand(10, 2) * 2 - 1
    out = critic(obs, act)
    assert out.shape == (2, 10, 7)
    x = torch.cat([obs, act], -1)
    for m in range(2):
        h = x
        for layer in critic.net:
            h = h @ layer.weight[m] + layer.bias[m] if hasattr(layer, "weight") else layer(h)
        assert torch.allclose(out[m], h, atol=1e-6)
    assert not torch.allclose(out[0], out[1])  # members are independently initialised


@pytest.mark.parametrize("members", [2, 3])
def test_members_projected_together_equal_each_member_projected_alone(support, members):
    """[M, B, A] input (indices computed once for all members) is bitwise the per-member projection, and the
    projected clipped double-Q pick equals the brute-force pick of the member with the lowest projected mean."""
    from parallel_rl.algos.common import projected_clipped_double_q

    g = torch.Generator().manual_seed(5)
    logits = torch.randn(members, 64, 11, generator=g, dtype=torch.float64) * 2
    reward = torch.rand(64, generator=g, dtype=torch.float64) * 30 - 15
    discount = torch.rand(64, generator=g, dtype=torch.float64) * (torch.rand(64, generator=g) > 0.2)
    probs = torch.softmax(logits, -1)
    together = categorical_projection(probs, reward, discount, support)
    alone = torch.stack([categorical_projection(probs[m], reward, discount, support) for m in range(members)])
    assert torch.equal(together, alone)
    means = (alone * support).sum(-1)
    pick = [min(range(members), key=lambda m: (float(means[m, i]), m)) for i in range(64)]
    expected = torch.stack([alone[pick[i], i] for i in range(64)])
    assert torch.equal(projected_clipped_double_q(logits, reward, discount, support), expected)
    assert len(set(pick)) > 1  # both branches of the choice are exercised
