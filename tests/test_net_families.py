"""Network families (BroNet, SimbaV2, the bounded-norm FlashSAC/XQC family): invariants of each block, the batched
ensemble equal to its members evaluated one by one, batch-renorm statistics against a hand computation, graphs
free of host syncs and value-dependent branches, and export parity of actors built from every family."""

from __future__ import annotations

import math

import pytest
import torch

from parallel_rl.nets import (
    Actor,
    BatchRenorm,
    DeployedPolicy,
    EnsembleCritic,
    NetSpec,
    RunningNorm,
    build_ensemble_net,
)
from parallel_rl.nets.families import EnsembleBroNet, EnsembleNormedNet, EnsembleSimbaV2
from parallel_rl.nets.norms import (
    EnsembleBatchNorm,
    EnsembleRMSNorm,
    EnsembleUnitLinear,
    project_weights_,
    take_member,
)

SPECS = [
    NetSpec("mlp", 16, 2),
    NetSpec("bronet", 16, 2),
    NetSpec("simbav2", 16, 2),
    NetSpec("normed", 16, 2, norm="batch"),
    NetSpec("normed", 16, 2, norm="renorm"),
    NetSpec("normed", 16, 2, norm="rms"),
]
IDS = [f"{s.arch}-{s.norm}" if s.arch == "normed" else s.arch for s in SPECS]


def _adam_step(net: torch.nn.Module, x: torch.Tensor, steps: int = 3) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_batched_ensemble_equals_members_one_by_one(spec):
    torch.manual_seed(0)
    members, batch, in_dim, out_dim = 3, 32, 7, 5
    net = build_ensemble_net(spec, members, in_dim, out_dim).train()
    singles = [take_member(net, i) for i in range(members)]
    x = torch.randn(members, batch, in_dim) * 2 + 0.5  # a different batch per member
    for _ in range(2):  # twice: batch statistics updated by the first call feed the second
        out = net(x)
        assert out.shape == (members, batch, out_dim)
        per_member = torch.cat([singles[i](x[i : i + 1]) for i in range(members)])
        torch.testing.assert_close(out, per_member, rtol=1e-5, atol=1e-5)
    for name, buf in net.named_buffers():  # running statistics too, member by member
        for i in range(members):
            torch.testing.assert_close(buf[i : i + 1], dict(singles[i].named_buffers())[name])
    shared = torch.randn(batch, in_dim)  # [batch, in] is shared by every member
    torch.testing.assert_close(net.eval()(shared), net(shared.expand(members, -1, -1)))
    assert not torch.equal(out[0], out[1])  # members are initialized independently


def test_simbav2_features_stay_on_the_unit_sphere_and_weights_are_projected_after_a_step():
    torch.manual_seed(1)
    net = EnsembleSimbaV2(members=2, in_dim=6, out_dim=4, width=16, depth=2)
    x = torch.randn(64, 6) * 5
    units = [m for m in net.modules() if isinstance(m, EnsembleUnitLinear)]
    assert len(units) == 1 + 2 * 2 + 2  # embedder, two per block, head's two
    for unit in units:  # unit-norm weight vector per output unit at init
        torch.testing.assert_close(unit.weight.norm(dim=1), torch.ones_like(unit.weight[:, 0]))
    # Residual interpolation: each block keeps [members, batch, width] and its output is unit-norm.
    h = torch.nn.functional.pad(x, (0, 1), value=3.0)
    h = net.embed_scaler(net.embed(h / h.norm(dim=-1, keepdim=True)))
    h = h / h.norm(dim=-1, keepdim=True)
    for block in net.blocks:
        alpha = block.alpha.scaler * block.alpha.forward_scale
        torch.testing.assert_close(alpha, torch.full_like(alpha, 1 / 3))  # init 1/(depth+1)
        mlp_out = block.mlp(h)
        expected = h + alpha * (mlp_out - h)
        expected = expected / expected.norm(dim=-1, keepdim=True)
        h_next = block(h)
        assert h_next.shape == h.shape == (2, 64, 16)
        torch.testing.assert_close(h_next, expected)
        torch.testing.assert_close(h_next.norm(dim=-1), torch.ones(2, 64))
        h = h_next
    torch.testing.assert_close(net.features(x), h)
    _adam_step(net, x)
    drift = max((u.weight.norm(dim=1) - 1).abs().max().item() for u in units)
    assert drift > 1e-3  # the optimizer step leaves the sphere ...
    project_weights_(net)
    for unit in units:  # ... and the projection brings every weight vector back
        torch.testing.assert_close(unit.weight.norm(dim=1), torch.ones_like(unit.weight[:, 0]))


def test_bronet_blocks_are_layernormed_residuals():
    torch.manual_seed(2)
    net = EnsembleBroNet(members=2, in_dim=5, out_dim=3, width=12, depth=2)
    x = torch.randn(2, 40, 5) * 3
    pre = net.inp_norm(net.inp(x))  # LayerNorm: zero mean, unit variance per sample at init (unit gain, zero bias)
    torch.testing.assert_close(pre.mean(-1), torch.zeros(2, 40), atol=1e-5, rtol=0)
    torch.testing.assert_close(pre.var(-1, correction=0), torch.ones(2, 40), atol=1e-3, rtol=0)
    h = torch.relu(pre)
    for block in net.blocks:
        branch = block.ln2(block.fc2(torch.relu(block.ln1(block.fc1(h)))))
        out = block(h)
        assert out.shape == h.shape == (2, 40, 12)
        torch.testing.assert_close(out, h + branch)
        h = out
    with torch.no_grad():  # zero second-LayerNorm gains: every block is the identity, the net is head(relu(LN(Wx)))
        for block in net.blocks:
            block.ln2.weight.zero_()
    torch.testing.assert_close(net(x), net.head(torch.relu(pre)))
    assert not any(hasattr(m, "project_") for m in net.modules())  # BRO regularizes by LayerNorm, not projection


@pytest.mark.parametrize("norm", ["batch", "renorm", "rms"])
def test_normed_family_bounds_weights_gains_and_features(norm):
    torch.manual_seed(3)
    net = EnsembleNormedNet(members=2, in_dim=6, out_dim=4, width=8, depth=2, norm=norm).train()
    x = torch.randn(128, 6) * 4 + 2
    _adam_step(net, x)
    project_weights_(net)
    for m in net.modules():
        if isinstance(m, EnsembleUnitLinear):
            torch.testing.assert_close(m.weight.norm(dim=1), torch.ones_like(m.weight[:, 0]))
        if isinstance(m, EnsembleBatchNorm):  # (gain, bias) held at the norm of the all-ones vector
            d = m.weight.shape[-1]
            norm_sq = (m.weight.square() + m.bias.square()).sum(-1)
            torch.testing.assert_close(norm_sq, torch.full_like(norm_sq, d))
        if isinstance(m, EnsembleRMSNorm):
            d = m.weight.shape[-1]
            torch.testing.assert_close(m.weight.square().sum(-1), torch.full((2, 1), float(d)))
    with torch.no_grad():
        net.post_norm.weight.fill_(1.0)
    feats = net.features(x)  # post-RMSNorm with unit gains: every feature vector has RMS 1
    torch.testing.assert_close(feats.square().mean(-1), torch.ones(2, 128), atol=1e-4, rtol=0)
    for block in net.blocks:  # inverted residual: [members, batch, width] in and out
        assert block(torch.randn(2, 128, 8)).shape == (2, 128, 8)
    assert block.w1.weight.shape == (2, 8, 32)  # expansion 4


def test_batch_renorm_statistics_match_a_hand_computation():
    x = torch.tensor([[1.0, 10.0], [3.0, 14.0], [5.0, 12.0], [7.0, 4.0]]).unsqueeze(0)  # [1 member, 4, 2 features]
    mean = torch.tensor([4.0, 10.0])
    var = torch.tensor([5.0, 14.0])  # biased: ((9+1+1+9)/4, (0+16+4+36)/4)
    bn = EnsembleBatchNorm(1, 2, momentum=0.05, eps=1e-3, renorm=True, warmup_steps=1)
    y = bn.train()(x)  # warm-up call: plain batch norm
    torch.testing.assert_close(y[0], (x[0] - mean) / torch.sqrt(var + 1e-3))
    ra_mean, ra_var = 0.05 * mean, 0.95 + 0.05 * var  # running = 0.95 running + 0.05 batch (biased var)
    torch.testing.assert_close(bn.running_mean.view(2), ra_mean)
    torch.testing.assert_close(bn.running_var.view(2), ra_var)
    assert bn.steps.tolist() == [1]
    y = bn(x)  # renormalized: r, d from the running statistics before this batch
    ra_std = torch.sqrt(ra_var + 1e-3)
    r = (torch.sqrt(var + 1e-3) / ra_std).clamp(1 / 3, 3)
    d = ((mean - ra_mean) / ra_std).clamp(-5, 5)
    assert float(d[1]) == 5.0  # (10 - 0.5) / sqrt(1.651) = 7.4 > 5: the clip is exercised
    expected = (x[0] - (mean - d * torch.sqrt(var) / r)) / torch.sqrt(var / r**2 + 1e-3)
    torch.testing.assert_close(y[0], expected)
    approx = (x[0] - mean) / torch.sqrt(var) * r + d  # the textbook form, up to eps
    torch.testing.assert_close(y[0], approx, atol=5e-3, rtol=0)
    bn.eval()
    torch.testing.assert_close(bn(x)[0], (x[0] - bn.running_mean[0]) / torch.sqrt(bn.running_var[0] + 1e-3))
    plain = EnsembleBatchNorm(1, 2, momentum=0.25)  # FlashSAC's batch norm: running variance unbiased
    plain.train()(x)
    torch.testing.assert_close(plain.running_var.view(2), 0.75 + 0.25 * var * 4 / 3)


def _batch_renorm_by_brute_force(xs, rate, eps, r_max, d_max, warmup, renorm, unbiased):
    """Ioffe's algorithm one member and one feature at a time, in float64 Python: the normalized outputs (before the
    affine) of each call and the running (mean, var) after it."""
    members, _, dim = xs[0].shape
    rm = [[0.0] * dim for _ in range(members)]
    rv = [[1.0] * dim for _ in range(members)]
    outs, stats = [], []
    for step, x in enumerate(xs):
        out = torch.zeros(x.shape, dtype=torch.float64)
        for m in range(members):
            for j in range(dim):
                col = [float(v) for v in x[m, :, j]]
                n = len(col)
                mu = sum(col) / n
                var = sum((c - mu) ** 2 for c in col) / n
                norm_mu, norm_var = mu, var
                if renorm and step >= warmup:
                    sd_run = math.sqrt(rv[m][j] + eps)
                    r = min(max(math.sqrt(var + eps) / sd_run, 1 / r_max), r_max)
                    d = min(max((mu - rm[m][j]) / sd_run, -d_max), d_max)
                    norm_mu, norm_var = mu - d * math.sqrt(var) / r, var / r**2
                for i, c in enumerate(col):
                    out[m, i, j] = (c - norm_mu) / math.sqrt(norm_var + eps)
                rm[m][j] += rate * (mu - rm[m][j])
                rv[m][j] += rate * ((var * n / (n - 1) if unbiased else var) - rv[m][j])
        outs.append(out)
        stats.append((torch.tensor(rm, dtype=torch.float64), torch.tensor(rv, dtype=torch.float64)))
    return outs, stats


@pytest.mark.parametrize("renorm", [True, False], ids=["renorm", "batch"])
def test_one_batch_renorm_core_serves_crossq_and_the_normed_family(renorm):
    """CrossQ's BatchRenorm and the normed family's EnsembleBatchNorm share ``batch_norm_statistics_``: over calls
    that cross the warm-up and exercise both clips, their outputs, input gradients and running statistics agree to
    1e-6 with each other and with a float64 brute force (plain batch norm: also with torch's own batch_norm)."""
    members, batch, dim, warmup, rate = 2, 16, 3, 2, 0.2
    gen = torch.Generator().manual_seed(7)
    # Means and spreads drift every call: after the warm-up r and d are clipped for about half the features and
    # not for the others (r 14 of 24, d 11 of 24), so both branches of both clips act.
    xs = [torch.randn(members, batch, dim, generator=gen) * (1 + 0.3 * k) + 0.2 * k for k in range(6)]
    kw = dict(eps=1e-3, r_max=1.5, d_max=0.5, warmup_steps=warmup)
    layers = [EnsembleBatchNorm(members, dim, momentum=rate, renorm=renorm, **kw)]
    if renorm:
        layers.append(BatchRenorm(dim, members=members, momentum=1 - rate, **kw))  # flax momentum convention
    expected, stats = _batch_renorm_by_brute_force(xs, rate, 1e-3, 1.5, 0.5, warmup, renorm, unbiased=not renorm)
    results = []
    for layer in layers:
        outs, grads, running = [], [], []
        for x in xs:
            x = x.clone().requires_grad_(True)
            y = layer(x)
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
            outs.append(y.detach())
            grads.append(x.grad)
            running.append((layer.running_mean.clone(), layer.running_var.clone()))
        for y, want, (mean, var), (want_mean, want_var) in zip(outs, expected, running, stats):
            torch.testing.assert_close(y.double(), want, atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(mean.double().view(members, dim), want_mean, atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(var.double().view(members, dim), want_var, atol=1e-6, rtol=1e-6)
        results.append((outs, grads))
    if renorm:
        (outs_a, grads_a), (outs_b, grads_b) = results
        for a, b in zip(outs_a + grads_a, outs_b + grads_b):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    else:  # torch's batch norm, member by member: the same outputs and (unbiased) running variance
        rm, rv = torch.zeros(members, dim), torch.ones(members, dim)
        for x, y in zip(xs, results[0][0]):
            for m in range(members):
                ref = torch.nn.functional.batch_norm(x[m], rm[m], rv[m], training=True, momentum=rate, eps=1e-3)
                torch.testing.assert_close(y[m], ref, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(layers[0].running_var.view(members, dim), rv, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("spec", SPECS[1:], ids=IDS[1:])
def test_training_step_has_no_host_sync_or_value_branch(spec):
    """torch.export traces symbolically and fails on .item(), data-dependent control flow and host reads: what
    CUDA-graph capture forbids. The training-mode forward (batch statistics updated in place) must trace."""
    critic = EnsembleCritic(6, 2, num_atoms=11, members=2, spec=spec).train()
    obs, act = torch.randn(16, 6), torch.randn(16, 2)
    program = torch.export.export(critic, (obs, act))
    torch.testing.assert_close(program.module()(obs, act).shape, critic(obs, act).shape)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_fasttd3_small_actor_init_touches_only_a_free_output_layer(spec):
    """--actor-init-scale (FastTD3: 0.01) re-initializes the output layer of the plain MLP and of BroNet and
    nothing else; SimbaV2 and the normed family, whose output weights are projected to unit norm, keep their init
    (it once hit the normed family's last batch norm, and failed on the RMS variant and SimbaV2: no module with a
    bias)."""
    torch.manual_seed(5)
    plain = Actor(5, 2, spec=spec).state_dict()
    torch.manual_seed(5)
    small = Actor(5, 2, spec=spec, init_scale=0.01).state_dict()
    changed = sorted(k for k in plain if not torch.equal(plain[k], small[k]))
    if spec.arch in ("simbav2", "normed"):
        assert changed == []
        return
    head = "net.head" if spec.arch == "bronet" else f"net.{len(Actor(5, 2, spec=spec).net) - 1}"
    # BroNet's head bias starts at zero anyway (orthogonal init, zero biases); the MLP's is zeroed here.
    assert changed == ([f"{head}.weight"] if spec.arch == "bronet" else [f"{head}.bias", f"{head}.weight"])
    assert small[f"{head}.weight"].std().item() == pytest.approx(0.01, rel=0.5)
    assert not small[f"{head}.bias"].any()


def test_actor_of_every_family_exports_with_parity(tmp_path):
    """One ONNX and one TorchScript file hold the actors of every family side by side (one export, to keep the suite
    fast); each family's slice of the output must match torch within 1e-5."""
    pytest.importorskip("onnx", reason="ONNX export tests need pip install '.[export]'")
    pytest.importorskip("onnxruntime", reason="ONNX export tests need pip install '.[export]'")
    pytest.importorskip("onnxscript", reason="ONNX export tests need pip install '.[export]'")
    from parallel_rl.io.export import export_onnx, export_torchscript, onnx_outputs, torchscript_outputs

    torch.manual_seed(4)
    obs_dim, act_dim = 5, 2
    actors = [Actor(obs_dim, act_dim, spec=s) for s in SPECS[1:]]
    for a in actors:  # non-trivial batch-norm running statistics
        a.train()
        for _ in range(3):
            a(torch.randn(64, obs_dim) * 2 + 1)

    class SideBySide(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.actors = torch.nn.ModuleList(actors)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.cat([a(obs) for a in self.actors], dim=-1)

    norm = RunningNorm(obs_dim)
    norm.update(torch.randn(100, obs_dim) * 3 + 2)
    width = act_dim * len(actors)
    policy = DeployedPolicy(norm, SideBySide(), -2 * torch.ones(width), 2 * torch.ones(width)).eval()
    obs = norm.mean + 4 * norm.var.sqrt() * (2 * torch.rand(257, obs_dim) - 1)
    with torch.no_grad():
        expected = policy(obs).numpy()
    got_onnx = onnx_outputs(export_onnx(policy, tmp_path / "p.onnx"), obs)
    got_ts = torchscript_outputs(export_torchscript(policy, tmp_path / "p.ts"), obs)
    for i in range(len(actors)):
        cols = slice(i * act_dim, (i + 1) * act_dim)
        assert abs(got_onnx[:, cols] - expected[:, cols]).max() <= 1e-5, IDS[i + 1]
        assert abs(got_ts[:, cols] - expected[:, cols]).max() <= 1e-5, IDS[i + 1]
    assert abs(expected).max() > 0.1  # not a trivially constant policy


def test_spec_validation_names_the_choices():
    with pytest.raises(ValueError, match="mlp, bronet, simbav2, normed"):
        NetSpec("resnet")
    with pytest.raises(ValueError, match="batch, renorm, rms"):
        NetSpec("normed", norm="layer")
    with pytest.raises(ValueError, match="depth >= 1"):
        NetSpec("mlp", depth=0)
    assert math.isclose(
        sum(p.numel() for p in build_ensemble_net(NetSpec("mlp", 8, 1), 2, 3, 1).parameters()), 2 * (3 * 8 + 8 + 8 + 1)
    )


def test_checkpoint_rebuilds_a_family_actor(tmp_path):
    """load_policy (what export and evaluation use) rebuilds the actor's family from the checkpoint alone."""
    from parallel_rl.io import load_policy
    from parallel_rl.runtime import Trainer
    from tasks import env_factory
    from tests.conftest import tiny_config

    cfg = tiny_config(total_env_steps=4 * 20, agent={"actor_arch": "normed", "actor_width": 8, "actor_depth": 1})
    trainer = Trainer(cfg, env_factory("pendulum"))
    trainer.run(tmp_path)
    policy = load_policy(tmp_path / "checkpoints" / "final.pt")
    assert isinstance(policy.actor.net, EnsembleNormedNet)
    obs = torch.randn(33, 3) * 2
    with torch.no_grad():
        torch.testing.assert_close(policy(obs), trainer.deployed_policy().cpu()(obs))
