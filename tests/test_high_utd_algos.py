"""DEA, VPL and DAC updates against hand computations on critics whose members output known constants, and network
resets: exactly the networks and their optimizer state change, nothing else."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from parallel_rl.algos.dac import Adjustment, adjustment_loss, conservative_loss, optimistic_loss
from parallel_rl.config import AgentConfig
from tests.test_runtime import make_algo

MEMBERS = [1.0, 2.0, 4.0]  # Q_i(s, a) of the three critics everywhere
MEAN = sum(MEMBERS) / 3
STD = math.sqrt(sum((q - MEAN) ** 2 for q in MEMBERS) / 3)  # population std: sqrt(14) / 3


def _constant_critics(algo, values=MEMBERS) -> None:
    """Every critic copy outputs Q_i = values[i] for any input: zero weights, output bias per member."""
    with torch.no_grad():
        for net in (algo.critic, algo.critic_target, algo.critic_for_plearner):
            for p in net.parameters():
                p.zero_()
            net.net[-1].bias.copy_(torch.tensor(values).view(-1, 1, 1))


def _hp(**kw) -> AgentConfig:
    return AgentConfig(num_atoms=1, num_critics=3, normalize_obs=False, critic_hidden=(4,), actor_hidden=(4,),
                       target_noise=0.0, weight_decay=0.0, **kw)  # fmt: skip


def _batch(reward, discount, obs_dim=2) -> TensorDict:
    n = len(reward)
    return TensorDict({"obs": torch.randn(n, obs_dim), "next_obs": torch.randn(n, obs_dim),
                       "action": torch.rand(n, 1) * 2 - 1, "reward": torch.tensor(reward),
                       "discount": torch.tensor(discount)}, batch_size=[n])  # fmt: skip


def test_dea_update_matches_a_hand_computation():
    torch.manual_seed(0)
    algo = make_algo("dea", _hp(dea_lr=0.01))
    _constant_critics(algo)
    reward, discount = [0.5, 5.0, 6.0], [0.9, 0.0, 0.0]
    # target y = r + d (mean + kappa_c * std) with kappa_c = -1; errors y - mean: -, +, +
    y = [r + d * (MEAN - STD) for r, d in zip(reward, discount)]
    critic_loss = sum(sum((q - t) ** 2 for t in y) / 3 for q in MEMBERS)
    direction = [math.copysign(1.0, t - MEAN) for t in y]
    assert direction == [-1.0, 1.0, 1.0]
    grad = STD * sum(direction) / 3  # both coefficients: disagreement (the same constant) x mean direction
    metrics = algo.update_critic(_batch(reward, discount))
    assert metrics["critic_loss"].item() == pytest.approx(critic_loss, rel=1e-5)
    assert metrics["ensemble_disagreement"].item() == pytest.approx(STD, rel=1e-5)
    # Adam's first step moves each parameter by lr against the sign of its gradient
    assert algo.kappa.critic.item() == pytest.approx(-1.0 - 0.01 * math.copysign(1, grad), abs=1e-6)
    assert algo.kappa.actor.item() == pytest.approx(0.0 - 0.01 * math.copysign(1, grad), abs=1e-6)
    # actor objective: mean + kappa_a * std at the actor's actions
    algo.kappa_for_plearner.load_state_dict(algo.kappa.state_dict())
    _constant_critics(algo)
    loss, _ = algo.actor_loss(algo.policy, algo.critic_for_plearner, _batch([0.0, 0.0], [0.0, 0.0]))
    assert loss.item() == pytest.approx(-(MEAN + algo.kappa.actor.item() * STD), rel=1e-5)


def test_dea_with_two_critics_starts_as_clipped_double_q():
    algo = make_algo("dea", AgentConfig(num_atoms=1, num_critics=2, normalize_obs=False, critic_hidden=(4,),
                                        actor_hidden=(4,), target_noise=0.0))  # fmt: skip
    _constant_critics(algo, [3.0, -1.0])
    metrics = algo.critic_loss(_batch([1.0], [0.5]))
    y = 1.0 + 0.5 * min(3.0, -1.0)  # mean - |Q1 - Q2| / 2 = min
    assert metrics.item() == pytest.approx((3.0 - y) ** 2 + (-1.0 - y) ** 2, rel=1e-6)


def test_vpl_fits_pessimism_on_the_validation_batch():
    torch.manual_seed(1)
    algo = make_algo("vpl", _hp(vpl_lr=0.05))
    _constant_critics(algo)
    train = _batch([1.0, -2.0, 0.5], [0.9, 0.9, 0.9])  # the runtime samples both batches at --batch-size
    val = _batch([0.0, 3.0, 1.0], [0.99, 0.0, 0.5])
    beta = 1.0
    y_train = [r + d * (MEAN - beta * STD) for r, d in zip([1.0, -2.0, 0.5], [0.9, 0.9, 0.9])]
    critic_loss = sum(sum((q - t) ** 2 for t in y_train) / 3 for q in MEMBERS)
    y_val = [r + d * (MEAN - beta * STD) for r, d in zip([0.0, 3.0, 1.0], [0.99, 0.0, 0.5])]
    val_loss = sum((MEAN - t) ** 2 for t in y_val) / 3
    grad = sum(2 * (MEAN - t) * d * STD for t, d in zip(y_val, [0.99, 0.0, 0.5])) / 3  # dL/dbeta
    batch = train.clone()
    batch["validation"] = val
    metrics = algo.update_critic(batch)
    assert metrics["critic_loss"].item() == pytest.approx(critic_loss, rel=1e-5)
    assert metrics["validation_target_error"].item() == pytest.approx(val_loss, rel=1e-5)
    assert algo.beta.item() == pytest.approx(beta - 0.05 * math.copysign(1, grad), abs=1e-6)
    with pytest.raises(ValueError, match="td-validation-envs"):
        algo.update_critic(train)


def test_dac_losses_and_adjustments_match_hand_computations():
    q = torch.tensor([[1.0, 3.0], [2.0, -1.0]])  # [members, B]
    mean, std = [1.5, 1.0], [0.5, 2.0]
    assert conservative_loss(q, 1.0).item() == pytest.approx(-((1.5 - 0.5) + (1.0 - 2.0)) / 2)
    u_c = torch.tensor([[0.1, -0.2], [0.0, 0.5]])
    u_o = torch.tensor([[0.3, -0.2], [0.0, 0.1]])
    sigma = 0.4
    kl = [(0.2**2) / (2 * sigma**2), (0.4**2) / (2 * sigma**2)]
    loss, kl_mean = optimistic_loss(q, u_c, u_o, torch.tensor(1.5), torch.tensor(0.25), sigma)
    assert kl_mean.item() == pytest.approx(sum(kl) / 2)
    expected = -sum(m + 1.5 * s for m, s in zip(mean, std)) / 2 + 0.25 * sum(kl) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    adj = Adjustment(0.25)
    assert adj().item() == pytest.approx(0.25, rel=1e-5)  # the log-tanh parameterization starts at its init

    class Pair(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.optimism, self.regularizer = Adjustment(1.0), Adjustment(0.25)

    pair = Pair()
    gap_loss = adjustment_loss(pair, torch.tensor(0.01), kl_target=0.05)  # KL below target
    assert gap_loss.item() == pytest.approx(1.0 * (0.01 - 0.05) - 0.25 * (0.01 - 0.05), rel=1e-5)
    gap_loss.backward()
    assert pair.optimism.raw.grad < 0 and pair.regularizer.raw.grad > 0  # optimism grows, KL weight shrinks


def test_dac_update_moves_both_actors_and_the_adjustments():
    torch.manual_seed(2)
    algo = make_algo("dac", AgentConfig(num_atoms=1, critic_hidden=(8,), actor_hidden=(8,), normalize_obs=False,
                                        dac_adjustment_lr=0.01))  # fmt: skip
    before = [p.clone() for p in (*algo.policy.parameters(), *algo.optimistic.parameters())]
    metrics = algo.update_actor(_batch([0.0] * 8, [0.9] * 8))
    after = [*algo.policy.parameters(), *algo.optimistic.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    # the optimistic actor starts within a 0.01-scaled shift: KL per dim below the 0.05 target
    assert metrics["dac_kl"].item() < 0.05
    assert algo.adjustments.optimism().item() > 1.0 and algo.adjustments.regularizer().item() < 0.25
    obs = TensorDict({"obs": torch.randn(4, 2)}, batch_size=[4])
    algo.optimistic_for_actor.load_state_dict(algo.optimistic.state_dict())
    algo.policy_for_actor.load_state_dict(algo.policy.state_dict())
    deterministic = algo.act(obs, explore=False)
    torch.testing.assert_close(deterministic, algo.policy(obs["obs"]))  # evaluation uses the conservative actor


@pytest.mark.parametrize("layers, shrink", [("all", 0.0), ("last", 0.0), ("all", 0.5)])
def test_reset_changes_exactly_the_networks_and_their_optimizer_state(layers, shrink):
    torch.manual_seed(3)
    hp = AgentConfig(num_atoms=11, critic_hidden=(8, 8), actor_hidden=(8, 8), critic_arch="simbav2", critic_width=8,
                     critic_depth=1)  # fmt: skip
    algo = make_algo("fasttd3", hp)
    batch = _batch([0.1] * 8, [0.9] * 8)
    for _ in range(3):  # optimizer moments exist
        algo.update_critic(batch)
        algo.update_actor(batch)
    algo.normalizer.update(torch.randn(16, 2))
    kept = {"normalizer": algo.normalizer.state_dict(), "noise_std": algo.noise_std.clone(),
            "generator": algo.generator.get_state()}  # fmt: skip
    old = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in algo.networks().items()}
    old_target = {k: v.clone() for k, v in algo.critic_target.state_dict().items()}
    rng = torch.get_rng_state()
    fresh_policy, fresh_critic = algo.build_policy(), algo.build_critic()  # what the reset will draw
    torch.set_rng_state(rng)
    algo.reset_networks(layers, shrink)
    fresh = {"actor": fresh_policy.state_dict(), "critic": fresh_critic.state_dict()}
    heads = {"actor": "net.4.", "critic": "net.head"}  # the MLP actor's last Linear, SimbaV2's head layers
    for name, net in algo.networks().items():
        for key, value in net.named_parameters():
            touched = layers == "all" or key.startswith(heads[name])
            expected = shrink * old[name][key] + (1 - shrink) * fresh[name][key] if touched else old[name][key]
            torch.testing.assert_close(value.detach(), expected, rtol=0, atol=1e-6, msg=f"{name}.{key}")
            optimizer = algo.actor_optimizer if name == "actor" else algo.critic_optimizer
            state = optimizer.state[value]
            assert all((v == 0).all() for v in state.values()) == touched, f"{name}.{key}"
    for key, value in algo.critic_target.named_parameters():  # the target follows the same rule
        touched = layers == "all" or key.startswith(heads["critic"])
        expected = shrink * old_target[key] + (1 - shrink) * fresh["critic"][key] if touched else old_target[key]
        torch.testing.assert_close(value.detach(), expected, rtol=0, atol=1e-6)
    assert all(torch.equal(v, kept["normalizer"][k]) for k, v in algo.normalizer.state_dict().items())
    assert torch.equal(algo.noise_std, kept["noise_std"]) and torch.equal(algo.generator.get_state(), kept["generator"])
    algo.update_critic(batch)  # and it trains on from there
    assert all(torch.isfinite(p).all() for p in algo.critic.parameters())
