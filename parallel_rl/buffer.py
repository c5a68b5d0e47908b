"""On-device replay buffer: per-env circular streams, n-step returns at sample time, next obs found by index.

Why hand-written rather than torchrl's ReplayBuffer: the n-step targets must stop at episode ends, bootstrap
truncations from the env's true final observation, and never store the next observation twice; and sampling must
not synchronise with the host. torchrl's buffers store ``next`` explicitly and compute n-step when writing.

Layout. The global capacity is split into ``num_envs`` streams of ``rows_per_env`` rows. Each env step appends one
row per env holding (obs, action, reward, terminated, done). The next observation of a row is the following row of
the same stream. When an episode ends, the env's true final observation is appended as an extra *final row*
(never sampled as a transition start), and the next episode starts after it. So every transition finds its next
observation at index + 1, truncations bootstrap from the true final observation, and the memory overhead is one
row per episode instead of a second copy of every observation.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from parallel_rl.fasttd import tensordict_of

#: Candidate draws per sample; the first that is a transition row (not a final row) is used. See ``sample``.
_CANDIDATES = 4


class ReplayBuffer:
    """Preallocated replay storage on one device; ``extend`` once per vectorized env step, ``sample`` per update."""

    def __init__(
        self,
        num_envs: int,
        obs_dim: int,
        act_dim: int,
        capacity: int,
        device: torch.device | str = "cpu",
        *,
        critic_obs_dim: int | None = None,
        storage_dtype: torch.dtype = torch.float32,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
        env_groups: list[int] | None = None,
        sampling: str = "uniform",
    ) -> None:
        rows = capacity // num_envs
        if rows < n_step + 2:
            raise ValueError(
                f"buffer capacity {capacity} gives {rows} rows per env for {num_envs} envs; need at least "
                f"n_step + 2 = {n_step + 2}: raise buffer_size to >= {(n_step + 2) * num_envs}"
            )
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if sampling not in ("uniform", "per_env"):
            raise ValueError(f"sampling must be 'uniform' or 'per_env', got {sampling!r}")
        self.sampling = sampling
        self.num_envs, self.rows_per_env, self.n_step, self.gamma = num_envs, rows, n_step, gamma
        self.device = torch.device(device)
        self.storage_dtype = storage_dtype
        e, r = num_envs, rows
        kw = {"device": self.device}
        self.obs = torch.zeros(e, r, obs_dim, dtype=storage_dtype, **kw)
        self.critic_obs = (
            None if critic_obs_dim is None else torch.zeros(e, r, critic_obs_dim, dtype=storage_dtype, **kw)
        )
        self.action = torch.zeros(e, r, act_dim, **kw)
        self.reward = torch.zeros(e, r, **kw)
        self.terminated = torch.zeros(e, r, dtype=torch.bool, **kw)
        self.done = torch.zeros(e, r, dtype=torch.bool, **kw)
        self.is_final = torch.zeros(e, r, dtype=torch.bool, **kw)
        self.ptr = torch.zeros(e, dtype=torch.int64, **kw)  # next row to write, per env
        self.count = torch.zeros(e, dtype=torch.int64, **kw)  # rows written, capped at rows_per_env
        self._envs = torch.arange(e, **kw)
        self._per_env_cache: dict[int, torch.Tensor] = {}  # per-env sampling: rows per env -> env index of each row
        self._discounts = gamma ** torch.arange(n_step + 1, dtype=torch.float32, **kw)
        self._gamma = float(self._discounts[1])  # the float32 value, for the one-step discount below
        self._offsets = torch.arange(n_step, **kw)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.extends = 0  # host-side count of env steps stored; no sync needed to know how much data there is
        # Task-balanced sampling (multi-task runs): envs come in contiguous groups of these sizes (one per task);
        # a sample picks a group uniformly, then an env of it.
        self.group_sizes = self.group_starts = None
        if env_groups is not None:
            if sum(env_groups) < num_envs or min(env_groups) < 1:
                raise ValueError(f"env_groups {env_groups} must be positive sizes covering the {num_envs} envs")
            sizes, starts, at = [], [], 0
            for size in env_groups:  # groups beyond num_envs (held-out envs) are cut off
                if at < num_envs:
                    sizes.append(min(size, num_envs - at))
                    starts.append(at)
                at += size
            self.group_sizes = torch.tensor(sizes, dtype=torch.int64, **kw)
            self.group_starts = torch.tensor(starts, dtype=torch.int64, **kw)

    @property
    def capacity(self) -> int:
        return self.num_envs * self.rows_per_env

    @property
    def num_transitions(self) -> int:
        """Transitions added so far (env steps x envs), whether or not still resident."""
        return self.extends * self.num_envs

    @torch.no_grad()
    def extend(self, step: TensorDict) -> None:
        """Append one vectorized step: ``obs`` (the observation acted on), ``action``, ``reward``, ``terminated``,
        ``truncated`` and ``final_obs`` (the true next observation; used only where the episode ended)."""
        e, p, rows = self._envs, self.ptr, self.rows_per_env
        done = step["terminated"] | step["truncated"]
        self.obs[e, p] = step["obs"].to(self.storage_dtype)
        self.action[e, p] = step["action"]
        self.reward[e, p] = step["reward"]
        self.terminated[e, p] = step["terminated"]
        self.done[e, p] = done
        self.is_final[e, p] = False
        # Final rows: written only where an episode ended; elsewhere the row keeps its contents (it may still be
        # the oldest live transition of that stream).
        p1 = (p + 1) % rows
        self.obs[e, p1] = torch.where(done.unsqueeze(-1), step["final_obs"].to(self.storage_dtype), self.obs[e, p1])
        self.is_final[e, p1] = done | self.is_final[e, p1]
        if self.critic_obs is not None:
            self.critic_obs[e, p] = step["critic_obs"].to(self.storage_dtype)
            final_c = step["final_critic_obs"].to(self.storage_dtype)
            self.critic_obs[e, p1] = torch.where(done.unsqueeze(-1), final_c, self.critic_obs[e, p1])
        advance = 1 + done.long()
        # In place: published views (``view_source``) alias these tensors.
        self.ptr.copy_((p + advance) % rows)
        self.count.copy_(torch.clamp(self.count + advance, max=rows))
        self.extends += 1

    _STATE = ("obs", "critic_obs", "action", "reward", "terminated", "done", "is_final", "ptr", "count")

    def state_dict(self) -> dict:
        """The stored transitions and positions (resuming with them continues sampling exactly)."""
        out = {name: getattr(self, name) for name in self._STATE}
        return {**out, "extends": self.extends, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for name in self._STATE:
            if getattr(self, name) is not None:
                getattr(self, name).copy_(state[name])
        self.extends = state["extends"]
        self.generator.set_state(state["generator"])

    def view_source(self) -> TensorDict:
        """The write position of every stream (aliases, updated in place by ``extend``). A concurrent runtime
        publishes copies of it as *views*: a learner sampling from a view sees only rows written before it."""
        return TensorDict({"ptr": self.ptr, "count": self.count}, batch_size=[self.num_envs])

    def max_reserve(self) -> int:
        """The largest ``reserve`` a view can have and still leave ``n_step + 2`` rows per stream to sample."""
        return self.rows_per_env - self.n_step - 2

    @torch.no_grad()
    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        view: TensorDict | None = None,
        reserve: int = 0,
    ) -> TensorDict:
        """Transitions with n-step targets: env uniform (or task then env uniform with ``env_groups``), or with
        ``sampling='per_env'`` ``max(1, batch_size // num_envs)`` rows from every env (the batch then holds that times
        ``num_envs``); then row uniform within the env's stream.

        Returns ``obs``, ``action``, ``reward`` (the discounted n-step sum), ``next_obs`` (the observation to
        bootstrap from), ``discount`` (gamma**k, or 0 when the window ended in a termination) and ``steps`` (k).
        Needs at least two ``extend`` calls. Never synchronises with an accelerator (on a CPU it skips the final-row
        fallback's kernels when no sample needs it).

        ``generator`` defaults to the buffer's own; each concurrent learner passes its own so that the draws do not
        depend on how the learners interleave. ``view`` (a copy of ``view_source()``) samples the buffer as it was
        when the view was taken; ``reserve`` excludes the oldest rows of each stream, which an actor running ahead
        of the view may overwrite meanwhile (two rows per env step it can take).
        """
        rows = self.rows_per_env
        gen = self.generator if generator is None else generator
        all_ptr, all_count = (self.ptr, self.count) if view is None else (view["ptr"], view["count"])
        base = None
        if self.sampling == "per_env":
            env, base = self._per_env_rows(max(1, batch_size // self.num_envs))
            batch_size = env.shape[0]
        elif self.group_sizes is None:
            env = torch.randint(0, self.num_envs, (batch_size,), generator=gen, device=self.device)
        else:
            group = torch.randint(0, self.group_sizes.shape[0], (batch_size,), generator=gen, device=self.device)
            u_env = torch.rand(batch_size, generator=gen, device=self.device)
            size = self.group_sizes[group]
            env = self.group_starts[group] + (u_env * size).long().clamp(max=size - 1)
        ptr, count = all_ptr.index_select(0, env), all_count.index_select(0, env)
        if reserve > 0:
            count = count.clamp(max=rows - reserve)
        # Rows that may start a transition: every written row except the newest (its next obs is not known yet)
        # and except final rows. Draw a few candidates, keep the first that is a transition row: that is exactly
        # uniform over the stream's transition rows unless all candidates are final rows (probability about
        # (1/episode_length)**4), in which case we take the neighbouring transition row.
        n_candidates = (count - 1).clamp(min=1).unsqueeze(-1)
        u = torch.rand((batch_size, _CANDIDATES), generator=gen, device=self.device)
        age = (u * n_candidates).long().clamp(max=n_candidates - 1)  # 0 = the newest complete row
        cand = (ptr.unsqueeze(-1) - 2 - age) % rows
        if base is None:
            base = env * rows  # flat index of each stream's row 0: one index_select per field, not 2-D indexing
        final = self.is_final.view(-1).index_select(0, (base.unsqueeze(-1) + cand).view(-1)).view(cand.shape)
        first = final.int().argmin(dim=-1, keepdim=True)  # the first candidate that is not a final row (else 0)
        row = cand.gather(-1, first).squeeze(-1)
        row_final = final.gather(-1, first).squeeze(-1)
        # Fallback: the row before a final row is the transition that ended there, unless the final row is the
        # oldest sampleable row (its predecessor is then not data: the newest row of a full stream, or a reserved
        # row), in which case the row after it is used. The oldest row of a stream that never wrapped is a first
        # observation, never a final row.
        # On a CPU, where asking costs no device sync, the fallback's kernels run only for a batch that needs them.
        if self.device.type != "cpu" or bool(row_final.any()):
            oldest = ((ptr - count) % rows) == row
            fallback = torch.where(oldest, row + 1, row - 1) % rows
            row = torch.where(row_final, fallback, row)
        return self.transitions(env, row, ptr=ptr, base=base)

    def _per_env_rows(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Env index of each row of a per-env batch, ``k`` rows per env, and the flat index of each of those envs'
        row 0: constants, built once per ``k`` (never written to downstream)."""
        if k not in self._per_env_cache:
            env = self._envs.repeat_interleave(k)
            self._per_env_cache[k] = (env, env * self.rows_per_env)
        return self._per_env_cache[k]

    @torch.no_grad()
    def transitions(
        self, env: torch.Tensor, row: torch.Tensor, ptr: torch.Tensor | None = None, base: torch.Tensor | None = None
    ) -> TensorDict:
        """The n-step transitions starting at rows ``row`` of streams ``env`` (both [B] int64); see ``sample``.
        ``ptr`` is the streams' write position the window must stop before (default: the live one); ``base`` is
        ``env * rows_per_env`` when the caller has it.

        Every field is read with one ``index_select`` on its flattened storage (observation and next observation
        together), which is several times faster on a CPU than 2-D advanced indexing."""
        rows = self.rows_per_env
        batch_size = env.shape[0]
        base = env * rows if base is None else base
        flat = base + row
        if self.n_step == 1:
            # The window is the start row alone: a valid start is never the newest row, and nothing ends before
            # it, so the n-step sums reduce to the row's own reward and the next observation is the next row.
            terminated = self.terminated.view(-1).index_select(0, flat)
            reward = self.reward.view(-1).index_select(0, flat)
            discount = torch.where(terminated, 0.0, self._gamma)  # gamma * (1 - terminated), in one kernel
            length = torch.ones_like(row)
            next_flat = base + (row + 1) % rows
        else:
            ptr = self.ptr.index_select(0, env) if ptr is None else ptr
            # n-step window: rows row..row+n-1, stopping after the first done and before the newest row.
            steps_to_newest = (ptr - 1 - row) % rows  # >= 1 for a valid start
            win = (base.unsqueeze(-1) + (row.unsqueeze(-1) + self._offsets) % rows).view(-1)  # [B * n] flat
            done_w = self.done.view(-1).index_select(0, win).view(batch_size, self.n_step)
            in_data = self._offsets < steps_to_newest.unsqueeze(-1)
            # alive[k]: step k belongs to the window (no done before it, and its row is complete)
            ended_before = torch.cumsum(done_w.long(), dim=-1) - done_w.long()
            alive = in_data & (ended_before == 0)
            length = alive.long().sum(-1)  # >= 1
            reward_w = self.reward.view(-1).index_select(0, win).view(batch_size, self.n_step)
            reward = (reward_w * self._discounts[: self.n_step] * alive).sum(-1)
            last = base + (row + length - 1) % rows
            terminated = self.terminated.view(-1).index_select(0, last)
            discount = self._discounts[length] * (~terminated).float()
            next_flat = base + (row + length) % rows
        both = torch.cat([flat, next_flat])
        obs = self.obs.view(-1, self.obs.shape[-1]).index_select(0, both).float()
        out = {
            "obs": obs[:batch_size],
            "action": self.action.view(-1, self.action.shape[-1]).index_select(0, flat),
            "reward": reward,
            "next_obs": obs[batch_size:],
            "discount": discount,
            "steps": length,
        }
        if self.critic_obs is not None:
            critic_obs = self.critic_obs.view(-1, self.critic_obs.shape[-1]).index_select(0, both).float()
            out["critic_obs"], out["next_critic_obs"] = critic_obs[:batch_size], critic_obs[batch_size:]
        return tensordict_of(out, (batch_size,), self.device)  # built right here: no per-entry checks
