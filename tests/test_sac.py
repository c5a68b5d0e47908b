"""FastSAC and CrossQ math: temperature step (hand computation), tanh-Gaussian log-density (torch.distributions),
batch renormalization statistics (hand computation), unit-norm weight projection, and the scalar-critic SAC losses
and gradients against torchrl's ``SACLoss`` on identical networks and batches."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from tensordict import TensorDict

from parallel_rl.algos.base import Context
from parallel_rl.algos.crossq import CrossQ
from parallel_rl.algos.fastsac import FastSAC
from parallel_rl.algos.sac_family import temperature_loss
from parallel_rl.config import AgentConfig
from parallel_rl.envs.base import EnvSpec
from parallel_rl.nets import BatchRenorm, SquashedGaussianActor, project_unit_norm

OBS, ACT = 3, 2


def make(cls, seed: int = 0, **hp):
    spec = EnvSpec(obs_dim=OBS, act_dim=ACT, num_envs=4, device=torch.device("cpu"), action_low=(-1.0,) * ACT,
                   action_high=(1.0,) * ACT, max_episode_steps=10)  # fmt: skip
    torch.manual_seed(seed)
    agent = AgentConfig(**{"critic_hidden": (16, 16), "actor_hidden": (16, 16), "num_atoms": 1, **hp})
    return cls(agent, Context(spec=spec, device=torch.device("cpu"), seed=seed))


def random_batch(n: int = 32, seed: int = 1, gamma: float = 0.97) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    terminated = torch.rand(n, generator=g) < 0.2
    data = {"obs": torch.randn(n, OBS, generator=g), "next_obs": torch.randn(n, OBS, generator=g),
            "action": torch.rand(n, ACT, generator=g) * 2 - 1, "reward": torch.randn(n, generator=g),
            "terminated": terminated, "discount": gamma * (~terminated).float()}  # fmt: skip
    return TensorDict(data, batch_size=[n])


# ---- temperature ---------------------------------------------------------------------------------------------------
def test_temperature_loss_and_gradient_by_hand():
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    log_prob = torch.tensor([-1.0, 0.5, 2.0])
    loss = temperature_loss(log_alpha, log_prob, target_entropy=-2.0)
    loss.backward()
    gap = ((-1.0 - 2.0) + (0.5 - 2.0) + (2.0 - 2.0)) / 3  # mean(log pi + target_entropy) = -1.5
    assert loss.item() == pytest.approx(-0.5 * gap)
    assert log_alpha.grad.item() == pytest.approx(-0.5 * gap)  # d(-alpha * gap)/d log_alpha = -alpha * gap


@pytest.mark.parametrize("cls", [FastSAC, CrossQ])
def test_temperature_step_moves_log_alpha_as_adamw_by_hand(cls):
    """One step of each algorithm's temperature optimizer: AdamW's first step is log_alpha * (1 - lr * wd) -
    lr * g / (|g| + eps) with g the hand gradient above (FastSAC: holosoma's inherited weight decay 0.01)."""
    algo = make(cls, alpha_init=0.2, alpha_lr=0.01, target_entropy_ratio=1.0)  # target entropy -2
    log_prob = torch.tensor([-3.0, 1.0])  # entropy 1 above the target: alpha must fall
    before = algo.temperature.log_alpha.item()
    algo.temperature_step(log_prob, algo.temperature_writer)
    g = -0.2 * ((-3.0 - 2.0 + 1.0 - 2.0) / 2)  # = +0.6
    wd = 0.01 if cls is FastSAC else 0.0
    expected = before * (1 - 0.01 * wd) - 0.01 * g / (abs(g) + 1e-8)
    assert algo.temperature.log_alpha.item() == pytest.approx(expected, abs=1e-7)
    assert algo.temperature().item() < 0.2


# ---- tanh-Gaussian policy ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bound", ["tanh", "clip"])
def test_squashed_gaussian_log_prob_matches_torch_distributions(bound):
    torch.manual_seed(0)
    actor = SquashedGaussianActor(OBS, ACT, (16,), log_std_min=-2.0, log_std_max=0.5, log_std_bound=bound)
    obs = torch.randn(64, OBS)
    action, log_prob = actor.sample(obs, torch.Generator().manual_seed(3))
    mean, log_std = actor.distribution(obs)
    assert (log_std >= -2.0).all() and (log_std <= 0.5).all()
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1),
        [torch.distributions.TanhTransform()],
    )
    mask = action.abs().amax(-1) < 0.999  # atanh of the sample stays accurate in float32
    assert mask.sum() > 40
    assert torch.allclose(log_prob[mask], reference.log_prob(action)[mask], atol=1e-4)
    assert torch.equal(actor(obs), torch.tanh(mean))  # the deterministic (deployed) action


def test_log_prob_is_exact_at_saturation():
    """Where tanh(u) rounds to 1 the stable Jacobian stays finite (holosoma's log(1 - a^2 + 1e-6) would saturate)."""
    actor = SquashedGaussianActor(1, 1, (4,), log_std_min=-5.0, log_std_max=0.0, zero_init_heads=True)
    with torch.no_grad():
        actor.mean.bias.fill_(12.0)
    action, log_prob = actor.sample(torch.zeros(8, 1), torch.Generator().manual_seed(0))
    assert torch.all(action == 1.0) and torch.isfinite(log_prob).all()
    u = 12.0 + math.exp(-2.5) * torch.randn(8, 1, generator=torch.Generator().manual_seed(0))
    jac = 2 * (math.log(2) - u - torch.nn.functional.softplus(-2 * u))  # log(1 - tanh(u)^2)
    normal = torch.distributions.Normal(12.0, math.exp(-2.5)).log_prob(u)
    assert torch.allclose(log_prob, (normal - jac).squeeze(-1), atol=1e-4)


# ---- batch renormalization -----------------------------------------------------------------------------------------
def test_batch_renorm_running_statistics_and_outputs_by_hand():
    layer = BatchRenorm(2, momentum=0.9, eps=1e-3, r_max=1.5, d_max=0.5, warmup_steps=1)
    x1 = torch.tensor([[1.0, -2.0], [3.0, 0.0], [5.0, 4.0]])
    out1 = layer(x1)  # warm-up: plain batch normalization
    m1 = [3.0, 2.0 / 3.0]  # column means; the variances below are the biased (population) ones
    v1 = [((1 - 3) ** 2 + 0 + (5 - 3) ** 2) / 3, ((-2 - m1[1]) ** 2 + (0 - m1[1]) ** 2 + (4 - m1[1]) ** 2) / 3]
    for j in range(2):
        for i in range(3):
            assert out1[i, j].item() == pytest.approx((x1[i, j].item() - m1[j]) / math.sqrt(v1[j] + 1e-3), rel=1e-5)
    rm = [0.1 * m1[0], 0.1 * m1[1]]
    rv = [0.9 + 0.1 * v1[0], 0.9 + 0.1 * v1[1]]
    assert layer.running_mean.flatten().tolist() == pytest.approx(rm, rel=1e-6)
    assert layer.running_var.flatten().tolist() == pytest.approx(rv, rel=1e-6)
    assert layer.steps.item() == 1

    x2 = torch.tensor([[0.0, 1.0], [2.0, 1.5], [10.0, 2.0]])  # warmed up: renormalized with clipped r and d
    out2 = layer(x2)
    for j in range(2):
        col = [x2[i, j].item() for i in range(3)]
        mean = sum(col) / 3
        var = sum((c - mean) ** 2 for c in col) / 3
        r = min(max(math.sqrt(var + 1e-3) / math.sqrt(rv[j] + 1e-3), 1 / 1.5), 1.5)
        d = min(max((mean - rm[j]) / math.sqrt(rv[j] + 1e-3), -0.5), 0.5)
        for i in range(3):
            expected = (col[i] - (mean - d * math.sqrt(var) / r)) / math.sqrt(var / r**2 + 1e-3)
            assert out2[i, j].item() == pytest.approx(expected, rel=1e-4, abs=1e-5)
        rm[j], rv[j] = 0.9 * rm[j] + 0.1 * mean, 0.9 * rv[j] + 0.1 * var
    assert layer.running_mean.flatten().tolist() == pytest.approx(rm, rel=1e-6)
    assert layer.running_var.flatten().tolist() == pytest.approx(rv, rel=1e-6)

    layer.eval()  # evaluation: running statistics only, nothing updated
    out3 = layer(x2)
    for j in range(2):
        for i in range(3):
            assert out3[i, j].item() == pytest.approx((x2[i, j].item() - rm[j]) / math.sqrt(rv[j] + 1e-3), rel=1e-5)
    assert layer.steps.item() == 2


def test_ensemble_batch_renorm_keeps_statistics_per_member():
    layer = BatchRenorm(1, members=2, momentum=0.5)
    x = torch.tensor([[[1.0], [3.0]], [[10.0], [30.0]]])  # [members, batch, dim]
    layer(x)
    assert layer.running_mean.flatten().tolist() == pytest.approx([1.0, 10.0])


# ---- weight normalization ------------------------------------------------------------------------------------------
def test_project_unit_norm_by_hand():
    w = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    project_unit_norm([w], dim=1)
    assert torch.allclose(w, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))


def test_crossq_hidden_weights_are_unit_norm_after_every_step():
    algo = make(CrossQ, normalize_obs=False, weight_norm=True, critic_lr=0.05, actor_lr=0.05)
    hidden = algo.critic_hidden_weights + algo.actor_hidden_weights
    assert len(algo.critic_hidden_weights) == 2 and len(algo.actor_hidden_weights) == 2
    outputs = [algo.critic.net[-1].weight, algo.policy.mean.weight]
    for step in range(4):
        before = [w.clone() for w in hidden]
        algo.update_critic(random_batch(seed=step))
        algo.update_actor(random_batch(seed=step))
        for w, b in zip(hidden, before):
            assert not torch.equal(w, b)  # the step moved them...
            norms = torch.linalg.vector_norm(w, dim=1)
            assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # ...and the projection brought them back
    assert not all(torch.allclose(torch.linalg.vector_norm(w, dim=1), torch.ones(1)) for w in outputs)


def test_crossq_critic_uses_one_joint_pass_and_diagnostic_loss_has_no_side_effects():
    algo = make(CrossQ, normalize_obs=False)
    calls = []
    handle = algo.critic.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    batch = random_batch(n=32)
    state = {k: v.clone() for k, v in algo.critic.state_dict().items()}
    rng = torch.get_rng_state()
    algo.critic_loss(batch)
    assert all(torch.equal(v, algo.critic.state_dict()[k]) for k, v in state.items())
    assert torch.equal(rng, torch.get_rng_state())
    calls.clear()
    algo.update_critic(batch)
    handle.remove()
    assert calls == [torch.Size([2, 64, 1])]  # (s, a) and (s', a') together: 2 members x (32 + 32)
    brn = [m for m in algo.critic.modules() if isinstance(m, BatchRenorm)]
    assert all(m.steps.item() == 1 for m in brn)  # the diagnostic pass restored its counter: one training pass


# ---- network families in FastSAC's critic (--critic-arch) -----------------------------------------------------------
@pytest.mark.parametrize("norm", ["batch", "rms"])
def test_fastsac_family_critic_is_built_projected_and_sees_batch_statistics_jointly(norm):
    from parallel_rl.nets.families import EnsembleNormedNet
    from parallel_rl.nets.norms import EnsembleUnitLinear

    algo = make(FastSAC, normalize_obs=False, critic_arch="normed", critic_width=8, critic_depth=1, normed_norm=norm,
                critic_lr=0.05)  # fmt: skip
    assert isinstance(algo.critic.net, EnsembleNormedNet) and isinstance(algo.critic_target.net, EnsembleNormedNet)
    calls = []
    handle = algo.critic.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    algo.update_critic(random_batch(n=32))
    handle.remove()
    # batch norm: (s, a) and (s', a') in one pass of 2 x 32; RMS norm (no batch statistics): (s, a) alone
    assert calls == [torch.Size([2, 64 if norm == "batch" else 32, 1])]
    for net in (algo.critic, algo.critic_target):  # projected after the step and after the soft update
        for m in net.modules():
            if isinstance(m, EnsembleUnitLinear):
                norms = m.weight.norm(dim=1)
                torch.testing.assert_close(norms, torch.ones_like(norms))


def test_sac_family_rejects_network_families_it_does_not_build():
    from parallel_rl.config import ConfigError, TrainConfig, validate

    for algo, field in [("fastsac", "actor_arch"), ("crossq", "actor_arch"), ("crossq", "critic_arch")]:
        cfg = TrainConfig(algo=algo)
        cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, **{field: "bronet"}))
        with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')}: {algo}"):
            validate(cfg)


# ---- torchrl oracle: the scalar-critic SAC losses ------------------------------------------------------------------
torchrl = pytest.importorskip("torchrl", reason="torchrl (the dev extra) is the oracle of these tests")


def _torchrl_sac(algo: FastSAC, gamma: float):
    """torchrl's SACLoss over networks equal to ``algo``'s: the same actor module (TanhNormal over its mean and
    std), and one plain MLP per critic member holding that member's weights (online and target)."""
    from tensordict.nn import TensorDictModule
    from torchrl.modules import ProbabilisticActor, TanhNormal
    from torchrl.objectives import SACLoss

    class LocScale(torch.nn.Module):
        def __init__(self, actor):
            super().__init__()
            self.actor = actor

        def forward(self, obs):
            mean, log_std = self.actor.distribution(obs)
            return mean, log_std.exp()

    class Member(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(OBS + ACT, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                                           torch.nn.ReLU(), torch.nn.Linear(16, 1))  # fmt: skip

        def forward(self, obs, action):
            return self.net(torch.cat([obs, action], -1))

    actor = ProbabilisticActor(
        TensorDictModule(LocScale(algo.policy), in_keys=["observation"], out_keys=["loc", "scale"]),
        in_keys=["loc", "scale"], distribution_class=TanhNormal,
        distribution_kwargs={"low": -1.0, "high": 1.0, "tanh_loc": False, "safe_tanh": False}, return_log_prob=True,
    )  # fmt: skip
    qvalue = TensorDictModule(Member(), in_keys=["observation", "action"], out_keys=["state_action_value"])
    loss = SACLoss(actor, qvalue, num_qvalue_nets=2, loss_function="l2", alpha_init=algo.temperature().item(),
                   target_entropy=algo.target_entropy)  # fmt: skip
    loss.make_value_estimator(gamma=gamma)

    def load(params, critic):
        layers = [m for m in critic.net if hasattr(m, "weight")]
        for i, layer in enumerate(layers):
            params["module", "net", str(2 * i), "weight"].data.copy_(layer.weight.detach().transpose(1, 2))
            params["module", "net", str(2 * i), "bias"].data.copy_(layer.bias.detach().squeeze(1))

    load(loss.qvalue_network_params, algo.critic)
    load(loss.target_qvalue_network_params, algo.critic_target)
    return loss


def _as_torchrl(batch: TensorDict, gamma: float) -> TensorDict:
    n = batch.shape[0]
    terminated = batch["terminated"].unsqueeze(-1)
    return TensorDict({"observation": batch["obs"], "action": batch["action"],
                       "next": {"observation": batch["next_obs"], "reward": batch["reward"].unsqueeze(-1),
                                "done": terminated, "terminated": terminated}}, batch_size=[n])  # fmt: skip


def test_fastsac_scalar_losses_and_gradients_match_torchrl_sacloss():
    gamma = 0.97
    algo = make(FastSAC, num_atoms=1, sac_target="min", actor_q_reduction="min", normalize_obs=False,
                alpha_init=0.3, activation="relu")  # fmt: skip
    with torch.no_grad():  # a target network different from the online one
        for p in algo.critic_target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    algo.critic_for_plearner.load_state_dict(algo.critic.state_dict())
    algo.policy_for_vlearner.load_state_dict(algo.policy.state_dict())
    algo.temperature_for_reader.load_state_dict(algo.temperature.state_dict())
    oracle = _torchrl_sac(algo, gamma)
    batch = random_batch(n=64, gamma=gamma)
    td = _as_torchrl(batch, gamma)

    # critic: ours is 0.5 * squared error summed over members; torchrl's "l2" is the squared error (no 0.5)
    torch.manual_seed(11)  # both sample a' ~ pi(.|s') from the default generator, in the same order
    ours, _, _ = algo.soft_td_loss(batch)
    torch.manual_seed(11)
    theirs, _ = oracle.qvalue_v2_loss(td)
    assert (2 * ours).item() == pytest.approx(theirs.item(), rel=1e-5)
    ours_grad = torch.autograd.grad(2 * ours, algo.critic.net[0].weight)[0]  # [members, in, out]
    theirs_grad = torch.autograd.grad(theirs, oracle.qvalue_network_params["module", "net", "0", "weight"])[0]
    assert torch.allclose(ours_grad.transpose(1, 2), theirs_grad, atol=1e-5)

    # actor: E[alpha log pi - min_i Q_i], same reparameterized noise
    algo.policy_generator = torch.default_generator
    torch.manual_seed(12)
    ours_actor, _ = algo.actor_loss(batch)
    torch.manual_seed(12)
    theirs_actor, meta = oracle.actor_loss(td)
    assert ours_actor.item() == pytest.approx(theirs_actor.item(), rel=1e-5)
    weight = algo.policy.trunk[0].weight
    ours_g = torch.autograd.grad(ours_actor, weight)[0]
    theirs_g = torch.autograd.grad(theirs_actor, oracle.actor_network_params["module", "0", "module", "actor",
                                                                             "trunk", "0", "weight"])[0]  # fmt: skip
    assert torch.allclose(ours_g, theirs_g, atol=1e-5)

    # temperature: torchrl differentiates log_alpha * (...), the references alpha * (...): same sign, gradients
    # differ by the factor alpha (a design difference, checked here rather than hidden)
    log_prob = meta["log_prob"]
    ours_t = temperature_loss(algo.temperature.log_alpha, log_prob, algo.target_entropy)
    theirs_t = oracle.alpha_loss(log_prob).mean()
    g_ours = torch.autograd.grad(ours_t, algo.temperature.log_alpha)[0]
    g_theirs = torch.autograd.grad(theirs_t, oracle.log_alpha)[0]
    assert g_ours.item() == pytest.approx(0.3 * g_theirs.item(), rel=1e-5)


# ---- configuration -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["fastsac", "crossq"])
def test_cli_accepts_the_sac_algorithms_and_rejects_bad_values_by_name(algo):
    from launch.train import parse
    from parallel_rl.config import ConfigError, validate

    cfg = parse(["--algo", algo, "--alpha-init", "0.2", "--target-entropy-ratio", "1"])
    validate(cfg)
    assert cfg.algo == algo and cfg.agent.alpha_init == 0.2 and cfg.agent.target_entropy_ratio == 1.0
    bad = [(["--alpha-init", "0"], "--alpha-init"), (["--log-std-min", "5"], "--log-std-min"),
           (["--bn-momentum", "1"], "--bn-momentum"), (["--adam-betas", "0.9", "1.0"], "--adam-betas")]  # fmt: skip
    for flags, name in bad:
        with pytest.raises(ConfigError, match=name):
            validate(parse(["--algo", algo, *flags]))
