"""FastAdamW: the same parameters, state and state_dict as torch.optim.AdamW(fused=True), step for step."""

from __future__ import annotations

import torch
from torch import nn

from parallel_rl.optim import FastAdamW


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(7, 32), nn.ReLU(), nn.Linear(32, 3))
    twin = nn.Sequential(nn.Linear(7, 32), nn.ReLU(), nn.Linear(32, 3))
    twin.load_state_dict(net.state_dict())
    return net, twin


def _train(net, opt, steps: int, skip_grad_of: nn.Parameter | None = None, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for i in range(steps):
        x, y = torch.randn(16, 7, generator=gen), torch.randn(16, 3, generator=gen)
        opt.zero_grad(set_to_none=True)
        (net(x) - y).square().mean().backward()
        if skip_grad_of is not None and i == 3:
            skip_grad_of.grad = None  # a parameter without a gradient this step: the parent's path
        opt.step()


def test_fast_adamw_matches_torch_adamw_bitwise():
    net, twin = _pair()
    ref = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.1, fused=True)
    fast = FastAdamW(twin.parameters(), lr=3e-3, weight_decay=0.1)
    _train(net, ref, 12, skip_grad_of=net[0].bias)
    _train(twin, fast, 12, skip_grad_of=twin[0].bias)
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)
    s_ref, s_fast = ref.state_dict(), fast.state_dict()
    assert s_ref["param_groups"] == s_fast["param_groups"]
    for i, st in s_ref["state"].items():
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(st[key], s_fast["state"][i][key]), (i, key)
    # The skipped parameter's step count lags by one in both: the fast path did not count it either.
    assert float(s_fast["state"][1]["step"]) == 11.0 and float(s_fast["state"][0]["step"]) == 12.0


def test_fast_adamw_state_dict_round_trip_and_lr_change():
    net, twin = _pair(3)
    ref = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0, fused=True)
    fast = FastAdamW(twin.parameters(), lr=1e-3, weight_decay=0.0)
    _train(net, ref, 4)
    _train(twin, fast, 4)
    fresh = FastAdamW(twin.parameters(), lr=1e-3, weight_decay=0.0)
    fresh.load_state_dict(fast.state_dict())  # as a checkpoint resume does
    for opt in (ref, fresh):
        opt.param_groups[0]["lr"] = 5e-4  # a schedule changing lr between steps
    _train(net, ref, 5, seed=7)
    _train(twin, fresh, 5, seed=7)
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_fast_adamw_zero_grad_sets_none():
    net, _ = _pair()
    opt = FastAdamW(net.parameters(), lr=1e-3)
    net(torch.randn(2, 7)).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_try_fast_step_is_step_without_the_wrapper_and_declines_when_step_is_watched():
    net, twin = _pair(5)
    ref = FastAdamW(net.parameters(), lr=2e-3, weight_decay=0.01)
    fast = FastAdamW(twin.parameters(), lr=2e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(2)
    for i in range(6):
        x = torch.randn(8, 7, generator=gen)
        for model, opt in ((net, ref), (twin, fast)):
            opt.zero_grad()
            model(x).square().mean().backward()
        ref.step()
        assert fast.try_fast_step() is (i > 0)  # the first step creates the state: the parent's step is needed
        if i == 0:
            fast.step()
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)
    twin(torch.randn(2, 7)).sum().backward()
    handle = fast.register_step_post_hook(lambda *args: None)
    assert not fast.try_fast_step()  # hooks run only inside step()
    handle.remove()
    torch.optim.lr_scheduler.StepLR(fast, step_size=1)  # wraps this instance's step to count the calls
    assert not fast.try_fast_step()
