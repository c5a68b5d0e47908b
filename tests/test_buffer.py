"""Replay buffer: n-step targets by hand across termination and truncation, next obs by index, sampling."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from parallel_rl.buffer import ReplayBuffer


def step_td(obs, action, reward, terminated, truncated, final_obs) -> TensorDict:
    n = len(obs)
    return TensorDict(
        {
            "obs": torch.tensor(obs, dtype=torch.float32).view(n, 1),
            "action": torch.tensor(action, dtype=torch.float32).view(n, 1),
            "reward": torch.tensor(reward, dtype=torch.float32),
            "terminated": torch.tensor(terminated),
            "truncated": torch.tensor(truncated),
            "final_obs": torch.tensor(final_obs, dtype=torch.float32).view(n, 1),
        },
        batch_size=[n],
    )


def fill_one_env(buf: ReplayBuffer, steps):
    """steps: list of (obs, reward, terminated, truncated, final_obs) for a single env."""
    for i, (o, r, term, trunc, fin) in enumerate(steps):
        buf.extend(step_td([o], [float(i)], [r], [term], [trunc], [fin]))


# One env, gamma 0.5, n_step 3. Episode A: obs 0,1,2, truncated after obs 2 (true final obs 100).
# Episode B: obs 10, 11, terminated after obs 11 (final obs 200, must never be used). Episode C: obs 20, 21, 22.
EPISODES = [
    (0.0, 1.0, False, False, 1.0),
    (1.0, 2.0, False, False, 2.0),
    (2.0, 4.0, False, True, 100.0),
    (10.0, 8.0, False, False, 11.0),
    (11.0, 16.0, True, False, 200.0),
    (20.0, 32.0, False, False, 21.0),
    (21.0, 64.0, False, False, 22.0),
    (22.0, 128.0, False, False, 23.0),
]


@pytest.fixture
def filled() -> ReplayBuffer:
    buf = ReplayBuffer(1, 1, 1, capacity=64, n_step=3, gamma=0.5)
    fill_one_env(buf, EPISODES)
    return buf


def transition_at(buf: ReplayBuffer, obs_value: float) -> TensorDict:
    rows = (buf.obs[0, :, 0] == obs_value) & ~buf.is_final[0]
    row = int(rows.nonzero()[0])
    return buf.transitions(torch.tensor([0]), torch.tensor([row]))[0]


@pytest.mark.parametrize(
    "start, reward, next_obs, discount, steps",
    [
        # full 3-step window inside episode A, ends on the truncation: bootstrap from the true final obs 100
        (0.0, 1 + 0.5 * 2 + 0.25 * 4, 100.0, 0.125, 3),
        # window shortened by the truncation after 2 steps; still bootstraps (gamma^2) from obs 100
        (1.0, 2 + 0.5 * 4, 100.0, 0.25, 2),
        (2.0, 4.0, 100.0, 0.5, 1),
        # episode B ends in a termination: no bootstrap (discount 0), never reaches episode C
        (10.0, 8 + 0.5 * 16, 200.0, 0.0, 2),
        (11.0, 16.0, 200.0, 0.0, 1),
        # episode C: full window, then a window cut by the newest data (obs 22's next obs is not stored yet)
        (20.0, 32 + 0.5 * 64, 22.0, 0.25, 2),
        (21.0, 64.0, 22.0, 0.5, 1),
    ],
)
def test_nstep_by_hand(filled, start, reward, next_obs, discount, steps):
    t = transition_at(filled, start)
    assert t["obs"].item() == start
    assert t["reward"].item() == pytest.approx(reward)
    assert t["next_obs"].item() == next_obs
    assert t["discount"].item() == pytest.approx(discount)
    assert t["steps"].item() == steps


def test_next_obs_not_stored_twice(filled):
    # 8 steps + one final row per ended episode (2) = 10 rows; no separate next-observation storage exists.
    assert int(filled.count[0]) == 10
    assert not hasattr(filled, "next_obs")
    assert filled.is_final[0].sum().item() == 2


def test_sample_never_starts_at_final_or_newest_row(filled):
    torch.manual_seed(0)
    batch = filled.sample(4096)
    starts = set(batch["obs"].squeeze(-1).tolist())
    # every complete transition is reachable; the final rows (100, 200) and the newest row (22) never start one
    assert starts == {0.0, 1.0, 2.0, 10.0, 11.0, 20.0, 21.0}
    counts = torch.bincount(batch["obs"].squeeze(-1).long(), minlength=22)[[0, 1, 2, 10, 11, 20, 21]].float()
    # uniform over the 7 transitions: each ~585 of 4096; allow generous sampling noise
    assert (counts - 4096 / 7).abs().max() < 120


def test_wraparound_keeps_transitions_consistent():
    """A small ring overwritten many times: every sampled transition is self-consistent with its episode."""
    num_envs, rows = 3, 7
    buf = ReplayBuffer(num_envs, 1, 1, capacity=num_envs * rows, n_step=2, gamma=0.9)
    # obs encode (episode, t) as 100*episode + t; episode length 4 truncated, env e offset by e steps
    t = torch.tensor([0, 1, 2])
    ep = torch.zeros(3, dtype=torch.long)
    for _ in range(50):
        obs = (100 * ep + t).float()
        trunc = t == 3
        buf.extend(step_td(obs.tolist(), [0.0] * 3, [1.0] * 3, [False] * 3, trunc.tolist(), (obs + 1).tolist()))
        ep = torch.where(trunc, ep + 1, ep)
        t = torch.where(trunc, torch.zeros_like(t), t + 1)
    batch = buf.sample(2000)
    o, nxt, steps = batch["obs"].squeeze(-1), batch["next_obs"].squeeze(-1), batch["steps"]
    assert torch.equal(nxt, o + steps.float())  # next obs is exactly `steps` later in the same episode
    assert torch.all((steps == 2) | ((o % 100) + steps == 4) | (steps == 1))
    assert torch.allclose(batch["reward"], torch.where(steps == 2, torch.tensor(1.9), torch.tensor(1.0)))


def test_bf16_storage_halves_obs_memory_and_returns_float32():
    buf32 = ReplayBuffer(2, 5, 1, capacity=20)
    buf16 = ReplayBuffer(2, 5, 1, capacity=20, storage_dtype=torch.bfloat16)
    assert buf16.obs.element_size() * 2 == buf32.obs.element_size()
    for buf in (buf16, buf32):
        for i in range(3):
            buf.extend(
                TensorDict(
                    {
                        "obs": torch.full((2, 5), 1.0 + i / 3),
                        "action": torch.zeros(2, 1),
                        "reward": torch.ones(2),
                        "terminated": torch.zeros(2, dtype=torch.bool),
                        "truncated": torch.zeros(2, dtype=torch.bool),
                        "final_obs": torch.zeros(2, 5),
                    },  # fmt: skip
                    batch_size=[2],
                )
            )
    b16, b32 = buf16.sample(8), buf32.sample(8)  # same seed and contents -> same rows
    assert b16["obs"].dtype == torch.float32
    assert not torch.equal(b16["obs"], b32["obs"])  # 1 + 1/3 is not representable in bf16...
    assert torch.allclose(b16["obs"], b32["obs"], atol=1e-2)  # ...but close


def test_too_small_capacity_is_rejected():
    with pytest.raises(ValueError, match="buffer_size"):
        ReplayBuffer(10, 3, 1, capacity=20, n_step=3)


def test_sampling_is_seeded():
    a, b = ReplayBuffer(1, 1, 1, capacity=64, n_step=3, seed=5), ReplayBuffer(1, 1, 1, capacity=64, n_step=3, seed=5)
    fill_one_env(a, EPISODES)
    fill_one_env(b, EPISODES)
    assert torch.equal(a.sample(32)["obs"], b.sample(32)["obs"])


def _reference_sample(buf: ReplayBuffer, batch_size: int, gen: torch.Generator, view=None, reserve: int = 0):
    """The sampler as it was before the index_select rewrite (2-D indexing, full n-step window even at n = 1):
    the rewrite must draw exactly the same transitions from the same generator state."""
    rows = buf.rows_per_env
    src = buf.view_source() if view is None else view
    env = torch.randint(0, buf.num_envs, (batch_size,), generator=gen)
    ptr, count = src["ptr"][env], src["count"][env]
    if reserve > 0:
        count = count.clamp(max=rows - reserve)
    n_candidates = (count - 1).clamp(min=1).unsqueeze(-1)
    u = torch.rand((batch_size, 4), generator=gen)
    age = (u * n_candidates).long().clamp(max=n_candidates - 1)
    cand = (ptr.unsqueeze(-1) - 2 - age) % rows
    ok = ~buf.is_final[env.unsqueeze(-1), cand]
    first = ok.int().argmax(dim=-1, keepdim=True)
    row, row_ok = cand.gather(-1, first).squeeze(-1), ok.gather(-1, first).squeeze(-1)
    oldest = ((ptr - count) % rows) == row
    row = torch.where(row_ok, row, torch.where(oldest, row + 1, row - 1) % rows)
    offsets = torch.arange(buf.n_step)
    discounts = buf.gamma ** torch.arange(buf.n_step + 1, dtype=torch.float32)
    win = (row.unsqueeze(-1) + offsets) % rows
    e2 = env.unsqueeze(-1)
    done_w = buf.done[e2, win]
    alive = (offsets < ((ptr - 1 - row) % rows).unsqueeze(-1)) & (torch.cumsum(done_w.long(), -1) - done_w.long() == 0)
    length = alive.long().sum(-1)
    last = win.gather(-1, (length - 1).unsqueeze(-1)).squeeze(-1)
    next_row = (row + length) % rows
    out = {
        "obs": buf.obs[env, row].float(),
        "action": buf.action[env, row],
        "reward": (buf.reward[e2, win] * discounts[: buf.n_step] * alive).sum(-1),
        "next_obs": buf.obs[env, next_row].float(),
        "discount": discounts[length] * (~buf.terminated[env, last]).float(),
        "steps": length,
    }
    if buf.critic_obs is not None:
        out["critic_obs"], out["next_critic_obs"] = (
            buf.critic_obs[env, row].float(),
            buf.critic_obs[env, next_row].float(),
        )
    return out


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("storage_dtype", [torch.float32, torch.bfloat16])
def test_sampler_draws_exactly_what_the_reference_sampler_draws(n_step, storage_dtype):
    """Many short episodes (terminations and truncations), streams that wrapped several times, a view taken
    mid-way with a reserve, an asymmetric critic: every field equals the reference sampler's, draw for draw."""
    envs, obs_dim = 6, 3
    buf = ReplayBuffer(envs, obs_dim, 2, capacity=envs * 11, n_step=n_step, gamma=0.9, critic_obs_dim=5,
                       storage_dtype=storage_dtype)  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    view = None
    for t in range(40):
        ended = torch.rand(envs, generator=gen) < 0.25
        term = ended & (torch.rand(envs, generator=gen) < 0.5)
        step = {
            "obs": torch.randn(envs, obs_dim, generator=gen),
            "action": torch.randn(envs, 2, generator=gen),
            "reward": torch.randn(envs, generator=gen),
            "terminated": term,
            "truncated": ended & ~term,
            "final_obs": torch.randn(envs, obs_dim, generator=gen),
            "critic_obs": torch.randn(envs, 5, generator=gen),
            "final_critic_obs": torch.randn(envs, 5, generator=gen),
        }
        buf.extend(TensorDict(step, batch_size=[envs]))
        if t == 30:
            view = buf.view_source().clone()
    for v, reserve in ((None, 0), (view, 3)):
        g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
        for _ in range(3):
            got = buf.sample(500, generator=g1, view=v, reserve=reserve)
            want = _reference_sample(buf, 500, g2, view=v, reserve=reserve)
            assert set(got.keys()) == set(want)
            for key, value in want.items():
                assert torch.equal(got[key], value), key


def test_sampler_matches_the_reference_with_and_without_final_row_fallbacks():
    """The CPU sampler skips the fallback's kernels when every sample found a transition row among its candidates:
    a batch from streams without episode ends (never a fallback) and one from one-step episodes (half the rows
    final, so some samples need the fallback) both equal the reference sampler's, draw for draw."""
    for episode_ends in (False, True):
        buf = ReplayBuffer(4, 2, 1, capacity=4 * 16, n_step=1, gamma=0.9)
        gen = torch.Generator().manual_seed(3)
        for _ in range(20):
            done = torch.full((4,), episode_ends)
            buf.extend(TensorDict({"obs": torch.randn(4, 2, generator=gen), "action": torch.randn(4, 1, generator=gen),
                                   "reward": torch.randn(4, generator=gen), "terminated": done,
                                   "truncated": torch.zeros(4, dtype=torch.bool),
                                   "final_obs": torch.randn(4, 2, generator=gen)}, batch_size=[4]))  # fmt: skip
        g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
        got, want = buf.sample(256, generator=g1), _reference_sample(buf, 256, g2)
        for key, value in want.items():
            assert torch.equal(got[key], value), (episode_ends, key)
