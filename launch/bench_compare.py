"""Same-process comparisons behind ``launch.bench --reference`` and ``launch.bench --check``.

Timings on a shared machine move with the load, so nothing here is an absolute speed: every figure is a *ratio*
between two things timed in one process, interleaved round by round (A, B, A, B, ...), and the median over rounds
is kept. Whatever slows the machine down during a round slows both sides of that round's ratio.

- ``--reference PATH``: a checkout of the public younggyoseo/FastTD3 repository. Its networks, replay buffer and
  observation normalizer are imported unmodified; its update step is reproduced from its ``train.py``
  (``update_main``, ``update_pol``, ``soft_update`` and the loop that calls them) and timed against our runtime's
  learners at the same shapes.
- ``--check BASELINE.json``: figures of this code (critic and actor updates, sampling, a training iteration) as
  ratios to two references measured in the same process, a chain of bare matmuls and a bare ``nn.Sequential`` +
  AdamW update loop; the check fails when a ratio fell by more than the tolerance below the committed baseline.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.nets import onednn


# ---- timing -------------------------------------------------------------------------------------------------------
def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, seconds: float, warmup: int = 1, clock: str = "cpu"):
    """Rates (calls/s) of every function, per round: each round times each function in turn for about ``seconds``
    (at least one call). Returns ``{name: [rate of round 0, round 1, ...]}``.

    ``clock="cpu"`` counts this process's CPU seconds (``time.process_time``), right for single-threaded torch on a
    shared machine: time the scheduler gives to other processes is not charged to either side (memory bandwidth
    taken by them still is). ``clock="wall"`` counts elapsed seconds (needed with several torch threads)."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            calls, start = 0, now()
            while True:
                fn()
                calls += 1
                elapsed = now() - start
                if elapsed >= seconds:
                    break
            rates[name].append(calls / max(elapsed, 1e-9))
    return rates


def default_clock() -> str:
    """CPU seconds with one torch thread, wall seconds with several (their waits are part of the cost)."""
    return "cpu" if torch.get_num_threads() == 1 else "wall"


def round_ratios(rates: dict[str, list[float]], num: str, den: str) -> list[float]:
    """rate[num] / rate[den] of every round (the spread shows how steady the machine was)."""
    return [round(a / b, 3) for a, b in zip(rates[num], rates[den])]


def median_ratio(rates: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of rate[num] / rate[den] (each round's two rates were measured back to back)."""
    return statistics.median(a / b for a, b in zip(rates[num], rates[den]))


def load_average() -> list[float] | None:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---- references measured in the same process ----------------------------------------------------------------------
def mlp_dims(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> list[tuple[int, int]]:
    dims = [in_dim, *hidden, out_dim]
    return list(zip(dims[:-1], dims[1:]))


class MatmulChain:
    """The matmuls of one critic update and nothing else: the policy's forward for the target action, the target
    critics' forward, the critics' forward and their backward (weight gradients for every layer, input gradients
    for all but the first), as ``bmm``/``mm`` into preallocated outputs. Its FLOP rate is what the update could
    reach if everything around the matmuls were free.

    ``update="actor"``: the matmuls of one policy update instead: the policy's forward, the (frozen) critics'
    forward, their input gradients down to the action, and the policy's backward (weight gradients for every
    layer, input gradients for all but the first).

    ``gemm="torch"``: every product through torch's default ``mm``/``bmm``; ``gemm="ours"``: through the kernels
    our CPU update picks at this batch (``nets.onednn``: forward and input-gradient products member by member in
    oneDNN from ``MIN_ROWS`` rows, weight gradients on ``mm``), the chain our update's speed is bounded by."""

    def __init__(self, obs_dim: int, act_dim: int, critic_hidden, actor_hidden, num_atoms: int, batch: int,
                 members: int = 2, update: str = "critic", gemm: str = "torch") -> None:  # fmt: skip
        self.ops: list[tuple[Callable, tuple]] = []
        self.flops = 0.0
        self.onednn = gemm == "ours" and onednn.AVAILABLE and batch >= onednn.MIN_ROWS
        actor = mlp_dims(obs_dim, tuple(actor_hidden), act_dim)
        critic = mlp_dims(obs_dim + act_dim, tuple(critic_hidden), num_atoms)
        for a, b in actor:
            self._add(torch.mm, (batch, a), (a, b), "product")
        if update == "actor":
            for a, b in critic:
                self._add(torch.bmm, (members, batch, a), (members, a, b), "product")
            for a, b in critic:
                self._add(torch.bmm, (members, batch, b), (members, b, a), "product")  # input gradient, to the action
            for i, (a, b) in enumerate(actor):
                self._add(torch.mm, (a, batch), (batch, b), "weight gradient")
                if i > 0:
                    self._add(torch.mm, (batch, b), (b, a), "product")  # input gradient
            return
        for _ in range(2):  # target critics, then the trained critics
            for a, b in critic:
                self._add(torch.bmm, (members, batch, a), (members, a, b), "product")
        for i, (a, b) in enumerate(critic):
            self._add(torch.bmm, (members, a, batch), (members, batch, b), "weight gradient")
            if i > 0:
                self._add(torch.bmm, (members, batch, b), (members, b, a), "product")  # input gradient

    def _add(self, op: Callable, x_shape: tuple, w_shape: tuple, kind: str) -> None:
        x, w = torch.randn(*x_shape), torch.randn(*w_shape)
        out = torch.empty(*x_shape[:-1], w_shape[-1])
        if self.onednn and kind == "product":  # as nets/onednn.py computes them (fresh outputs, one per member)
            wt = w.transpose(-1, -2)
            self.ops.append((_onednn_product, (x, wt, out)))
        elif self.onednn and len(x_shape) == 3:  # weight gradients: mm member by member, as nets/onednn.py
            self.ops.append((_mm_per_member, (x, w, out)))
        else:
            self.ops.append((op, (x, w, out)))
        batch = x_shape[0] if len(x_shape) == 3 else 1
        self.flops += 2.0 * batch * x_shape[-2] * x_shape[-1] * w_shape[-1]

    def __call__(self) -> None:
        for op, (x, w, out) in self.ops:
            op(x, w, out=out)


def _onednn_product(x: torch.Tensor, wt: torch.Tensor, out: torch.Tensor) -> None:
    """x @ wt.T in oneDNN (member by member for 3-d x); ``out`` unused: oneDNN returns fresh outputs."""
    if x.dim() == 2:
        onednn.linear(x, wt, None)
    else:
        for m in range(x.shape[0]):
            onednn.linear(x[m], wt[m], None)


def _mm_per_member(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
    for m in range(x.shape[0]):
        torch.mm(x[m], w[m], out=out[m])


def bare_update_loop(in_dim: int, hidden: tuple[int, ...], out_dim: int, batch: int, seed: int = 0):
    """A plain ``nn.Sequential`` MLP, squared-error loss and AdamW step on fixed data: the cheapest update loop
    torch can run at these shapes, and the reference the update figures of ``--check`` are divided by."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in mlp_dims(in_dim, hidden, out_dim):
        layers += [nn.Linear(a, b), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=0.1)
    x, y = torch.randn(batch, in_dim), torch.randn(batch, out_dim)

    def step() -> None:
        loss = (net(x) - y).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


# ---- FastTD3, imported unmodified and driven as its train.py drives it ---------------------------------------------
def reference_commit(path: str | Path) -> str:
    """The checkout's commit: ``git rev-parse HEAD``, or a ``COMMIT`` file beside an exported tree."""
    path = Path(path)
    if (path / ".git").exists():  # a checkout of its own (not a tree inside another repository)
        try:
            out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                                 check=True, timeout=30)  # fmt: skip
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    commit = path / "COMMIT"
    return commit.read_text().strip() if commit.is_file() else "unknown"


def import_fasttd3(path: str | Path):
    """FastTD3's ``fast_td3`` package from a checkout (its modules unmodified)."""
    path = Path(path).resolve()
    if not (path / "fast_td3" / "fast_td3.py").is_file():
        raise SystemExit(f"--reference: {path} is not a FastTD3 checkout (no fast_td3/fast_td3.py); clone "
                         "https://github.com/younggyoseo/FastTD3 and pass its directory")  # fmt: skip
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    import fast_td3.fast_td3 as nets
    import fast_td3.fast_td3_utils as utils

    return nets, utils


class FastTD3Reference:
    """FastTD3's update step as its ``train.py`` defines it (defaults: C51 twin critic with clipped double Q,
    target policy noise 0.001 clipped at 0.5, bootstrap unless terminated and not truncated, AdamW with tensor
    learning rates, no gradient clipping, fp32, no compile; observations normalized by ``EmpiricalNormalization``
    in training mode on every sampled batch; ``soft_update`` after every critic update; with ``num_updates`` 2 and
    ``policy_frequency`` 2 the policy update follows the second critic update on the same batch). Also the per-update
    bookkeeping train.py does at these settings: the identity reward normalizer, the disabled autocast contexts and
    ``GradScaler`` calls, the zero gradient-norm tensor and the ``logs_dict`` entries, as our learners return
    their metrics."""

    def __init__(self, path: str | Path, obs_dim: int, act_dim: int, critic_hidden_dim: int, actor_hidden_dim: int,
                 batch: int, num_envs: int, rows: int, n_step: int = 1, fills: int = 32, num_atoms: int = 101,
                 v_min: float = -10.0, v_max: float = 10.0, seed: int = 0) -> None:  # fmt: skip
        nets, utils = import_fasttd3(path)
        torch.manual_seed(seed)
        self.gamma, self.tau, self.policy_noise, self.noise_clip = 0.99, 0.1, 0.001, 0.5
        self.batch, self.num_envs = batch, num_envs
        self.actor = nets.Actor(n_obs=obs_dim, n_act=act_dim, num_envs=num_envs, init_scale=0.01,
                                hidden_dim=actor_hidden_dim)  # fmt: skip
        kw = dict(n_obs=obs_dim, n_act=act_dim, num_atoms=num_atoms, v_min=v_min, v_max=v_max,
                  hidden_dim=critic_hidden_dim, sim_type="", sim_dimension=64, seq_len=8)  # fmt: skip
        self.qnet, self.qnet_target = nets.Critic(**kw), nets.Critic(**kw)
        self.qnet_target.load_state_dict(self.qnet.state_dict())
        self.q_optimizer = torch.optim.AdamW(list(self.qnet.parameters()), lr=torch.tensor(3e-4), weight_decay=0.1)
        self.actor_optimizer = torch.optim.AdamW(list(self.actor.parameters()), lr=torch.tensor(3e-4),
                                                 weight_decay=0.1)  # fmt: skip
        self.obs_normalizer = utils.EmpiricalNormalization(shape=obs_dim, device="cpu")
        self.reward_normalizer = torch.nn.Identity()  # train.py without --reward_normalization
        # train.py: autocast and a GradScaler enabled only for AMP on CUDA (fp16 for the scaler); off on a CPU.
        self.scaler = torch.amp.GradScaler(enabled=False)
        self.logs: dict[str, torch.Tensor] = {}
        self.rb = utils.SimpleReplayBuffer(n_env=num_envs, buffer_size=rows, n_obs=obs_dim, n_act=act_dim,
                                           n_critic_obs=obs_dim, n_steps=n_step, gamma=self.gamma,
                                           device="cpu")  # fmt: skip
        gen = torch.Generator().manual_seed(seed)
        for _ in range(fills):
            done = (torch.rand(num_envs, generator=gen) < 0.01).long()
            self.rb.extend(TensorDict({
                "observations": torch.randn(num_envs, obs_dim, generator=gen),
                "actions": torch.rand(num_envs, act_dim, generator=gen) * 2 - 1,
                "next": {"rewards": torch.randn(num_envs, generator=gen), "dones": done,
                         "truncations": torch.zeros_like(done),
                         "observations": torch.randn(num_envs, obs_dim, generator=gen)},
            }, batch_size=[num_envs]))  # fmt: skip

    def sample(self) -> TensorDict:
        return self.rb.sample(max(1, self.batch // self.num_envs))

    def normalized_sample(self) -> TensorDict:
        data = self.sample()
        data["observations"] = self.obs_normalizer(data["observations"])
        data["next"]["observations"] = self.obs_normalizer(data["next"]["observations"])
        data["next"]["rewards"] = self.reward_normalizer(data["next"]["rewards"])
        return data

    @staticmethod
    def _autocast():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=False)

    def update_main(self, data: TensorDict) -> None:
        with self._autocast():
            observations, next_observations = data["observations"], data["next"]["observations"]
            actions, rewards = data["actions"], data["next"]["rewards"]
            dones, truncations = data["next"]["dones"].bool(), data["next"]["truncations"].bool()
            bootstrap = (truncations | ~dones).float()
            clipped_noise = torch.randn_like(actions).mul(self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
            next_actions = (self.actor(next_observations) + clipped_noise).clamp(-1.0, 1.0)
            discount = self.gamma ** data["next"]["effective_n_steps"]
            with torch.no_grad():
                q1_proj, q2_proj = self.qnet_target.projection(next_observations, next_actions, rewards, bootstrap,
                                                               discount)  # fmt: skip
                q1_value, q2_value = self.qnet_target.get_value(q1_proj), self.qnet_target.get_value(q2_proj)
                target = torch.where(q1_value.unsqueeze(1) < q2_value.unsqueeze(1), q1_proj, q2_proj)
            qf1, qf2 = self.qnet(observations, actions)
            qf_loss = (
                -torch.sum(target * torch.log_softmax(qf1, dim=1), dim=1).mean()
                - torch.sum(target * torch.log_softmax(qf2, dim=1), dim=1).mean()
            )
        self.q_optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(qf_loss).backward()
        self.scaler.unscale_(self.q_optimizer)
        critic_grad_norm = torch.tensor(0.0)  # train.py without --use_grad_norm_clipping
        self.scaler.step(self.q_optimizer)
        self.scaler.update()
        self.logs["critic_grad_norm"] = critic_grad_norm.detach()
        self.logs["qf_loss"] = qf_loss.detach()
        self.logs["qf_max"] = q1_value.max().detach()
        self.logs["qf_min"] = q1_value.min().detach()

    def update_pol(self, data: TensorDict) -> None:
        with self._autocast():
            qf1, qf2 = self.qnet(data["observations"], self.actor(data["observations"]))
            value = torch.minimum(self.qnet.get_value(torch.softmax(qf1, dim=1)),
                                  self.qnet.get_value(torch.softmax(qf2, dim=1)))  # fmt: skip
            actor_loss = -value.mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(actor_loss).backward()
        self.scaler.unscale_(self.actor_optimizer)
        actor_grad_norm = torch.tensor(0.0)
        self.scaler.step(self.actor_optimizer)
        self.scaler.update()
        self.logs["actor_grad_norm"] = actor_grad_norm.detach()
        self.logs["actor_loss"] = actor_loss.detach()

    @torch.no_grad()
    def soft_update(self) -> None:
        src = [p.data for p in self.qnet.parameters()]
        tgt = [p.data for p in self.qnet_target.parameters()]
        torch._foreach_mul_(tgt, 1.0 - self.tau)
        torch._foreach_add_(tgt, src, alpha=self.tau)

    def critic_update(self) -> None:
        self.update_main(self.normalized_sample())
        self.soft_update()

    def two_critic_one_actor(self) -> None:
        """``for i in range(num_updates=2)``: sample, normalize, update_main, update_pol when i % 2 == 1,
        soft_update."""
        for i in range(2):
            data = self.normalized_sample()
            self.update_main(data)
            if i % 2 == 1:
                self.update_pol(data)
            self.soft_update()


# ---- ours, through the runtime's learners ------------------------------------------------------------------------
class Ours:
    """Our runtime's V-learner and P-learner (pull, sample, normalize, update, target update) at given shapes, on a
    buffer filled by real env steps of the benchmark task."""

    def __init__(self, critic_hidden, actor_hidden, batch: int, num_envs: int, seed: int = 0, fills: int = 32):
        import tasks
        from launch.bench import NET_TASK, BenchConfig, NetSetting, _train_config
        from parallel_rl.runtime import Trainer

        setting = NetSetting("cmp", tuple(critic_hidden), tuple(actor_hidden), 101, batch)
        tcfg = _train_config(setting, torch.device("cpu"), num_envs, BenchConfig(seed=seed, utd=2.0),
                             learning_starts=10**9)  # fmt: skip
        self.trainer = Trainer(tcfg, tasks.env_factory(NET_TASK))
        for _ in range(fills):
            self.trainer.iteration()
        self.obs_dim, self.act_dim = self.trainer.env.spec.obs_dim, self.trainer.env.spec.act_dim
        self.v, self.p = self.trainer.vlearner, self.trainer.plearner
        self.reuse = bool(getattr(getattr(self.trainer, "algo", None), "reuse_critic_batch", False))

    def critic_update(self) -> None:
        self.v.update()

    def two_critic_one_actor(self) -> None:
        self.v.update()
        batch = self.v.update()
        if self.reuse and isinstance(batch, TensorDict):
            self.p.update(batch)
        else:
            self.p.update()

    def close(self) -> None:
        self.trainer.runtime.close()


# ---- launch.bench --reference --------------------------------------------------------------------------------------
#: (name, critic hidden_dim, actor hidden_dim, batch): FastTD3's networks are hidden_dim, hidden_dim/2, hidden_dim/4.
REFERENCE_SHAPES = (("small", 256, 256, 256), ("fasttd3", 1024, 512, 4096))


def _widths(hidden_dim: int) -> tuple[int, int, int]:
    return hidden_dim, hidden_dim // 2, hidden_dim // 4


def run_reference(path: str, rounds: int = 3, seconds: float = 0.5, num_envs: int = 64, seed: int = 0) -> dict:
    """Our learners against FastTD3's update step at each shape of ``REFERENCE_SHAPES``, FastTD3's buffer against
    ours at batch 4096 (n-step 1 and 3), and our critic update's FLOP rate against a bare matmul chain."""
    out: dict[str, Any] = {"reference": str(path), "reference_commit": reference_commit(path), "rows": [],
                           "clock": "process CPU" if default_clock() == "cpu" else "wall"}  # fmt: skip

    def row(**kw) -> None:
        kw["load_avg"] = load_average()
        out["rows"].append(kw)
        print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in kw.items()),
              flush=True)  # fmt: skip

    for name, critic_dim, actor_dim, batch in REFERENCE_SHAPES:
        large = batch >= 4096
        ours = Ours(_widths(critic_dim), _widths(actor_dim), batch, num_envs, seed)
        ref = FastTD3Reference(path, ours.obs_dim, ours.act_dim, critic_dim, actor_dim, batch, num_envs, rows=256,
                               seed=seed)  # fmt: skip
        chunk = 0.0 if large else seconds  # large shapes: one update per chunk (about a second each on a CPU)
        pairs = (
            ("critic update", ours.critic_update, ref.critic_update),
            ("2 critic + 1 actor", ours.two_critic_one_actor, ref.two_critic_one_actor),
        )
        for what, mine, theirs in pairs:
            rates = interleaved({"ours": mine, "fasttd3": theirs}, rounds, chunk, clock=default_clock())
            row(shapes=name, figure=what, batch=batch, ours_per_s=statistics.median(rates["ours"]),
                fasttd3_per_s=statistics.median(rates["fasttd3"]), ratio=median_ratio(rates, "ours", "fasttd3"),
                rounds=round_ratios(rates, "ours", "fasttd3"))  # fmt: skip
        # Both shapes: at FastTD3's, the FLOP-rate target (against torch's default matmuls, as the issue states it);
        # at the small ones, the bound on any speed-up (an update that were nothing but its matmuls would run at
        # the chain's rate). Where our update takes other kernels (nets/onednn.py), the same against a chain of
        # those kernels.
        dims = (ours.obs_dim, ours.act_dim, _widths(critic_dim), _widths(actor_dim), 101, batch)
        gemms = ("torch", "ours") if MatmulChain(*dims, gemm="ours").onednn else ("torch",)
        for gemm in gemms:
            chain = MatmulChain(*dims, gemm=gemm)
            rates = interleaved({"ours": ours.critic_update, "chain": chain}, rounds, chunk, clock=default_clock())
            flops = chain.flops
            what = "bare matmul chain" + (", our kernels (oneDNN)" if gemm == "ours" else "")
            row(shapes=name, figure=f"critic update FLOP rate / {what}", batch=batch,
                ours_tflops=statistics.median(rates["ours"]) * flops / 1e12,
                chain_tflops=statistics.median(rates["chain"]) * flops / 1e12,
                ratio=median_ratio(rates, "ours", "chain"), rounds=round_ratios(rates, "ours", "chain"))  # fmt: skip
        # The bound on the 2 + 1 ratio: the matmuls of 2 critic updates and 1 policy update, nothing else, on the
        # kernels our update takes, against FastTD3's whole loop. No implementation that computes these products
        # with these kernels can beat FastTD3 by more than this ratio.
        policy_chain = MatmulChain(*dims, update="actor", gemm=gemms[-1])

        def chains(chain: MatmulChain = chain, policy_chain: MatmulChain = policy_chain) -> None:
            chain()
            chain()
            policy_chain()

        rates = interleaved({"chain": chains, "fasttd3": ref.two_critic_one_actor}, rounds, chunk,
                            clock=default_clock())  # fmt: skip
        row(shapes=name, figure="2 critic + 1 actor, bare matmul chains (bound on ours / FastTD3)", batch=batch,
            ours_per_s=statistics.median(rates["chain"]), fasttd3_per_s=statistics.median(rates["fasttd3"]),
            ratio=median_ratio(rates, "chain", "fasttd3"), rounds=round_ratios(rates, "chain", "fasttd3"))  # fmt: skip
        ours.close()
    from launch.bench import filled_buffer

    envs, rows, batch = 1024, 64, 4096
    for n_step in (1, 3):
        buffer = filled_buffer(torch.device("cpu"), envs, rows, 48, seed)
        if n_step != 1:
            from parallel_rl.buffer import ReplayBuffer

            filled = buffer
            buffer = ReplayBuffer(envs, filled.obs.shape[-1], filled.action.shape[-1], envs * rows, n_step=n_step,
                                  seed=seed)  # fmt: skip
            buffer.load_state_dict(filled.state_dict())
        ref = FastTD3Reference(path, buffer.obs.shape[-1], buffer.action.shape[-1], 256, 256, batch, envs, rows,
                               n_step=n_step, fills=48, seed=seed)  # fmt: skip
        rates = interleaved(
            {"ours": lambda b=buffer: b.sample(batch), "fasttd3": ref.sample},
            2 * rounds + 1,
            seconds,
            clock=default_clock(),
        )
        row(shapes=f"buffer {envs} envs x {rows} rows", figure=f"sample n_step {n_step}", batch=batch,
            ours_per_s=statistics.median(rates["ours"]), fasttd3_per_s=statistics.median(rates["fasttd3"]),
            ratio=median_ratio(rates, "ours", "fasttd3"), rounds=round_ratios(rates, "ours", "fasttd3"))  # fmt: skip
    return out


def reference_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Side by side with FastTD3 (same process, interleaved)",
        "",
        f"- command: `{results['command']}`",
        f"- reference: younggyoseo/FastTD3 at commit `{results['reference_commit']}` ({results['reference']}), "
        "networks, buffer and normalizer imported unmodified; update step reproduced from its train.py",
        f"- date: {m['date']}; CPU: {m['cpu_model']}, {m['cpu_cores_usable']} usable cores, torch threads "
        f"{m['torch_threads']}, torch {m['torch_version']}",
        f"- load average (1, 5, 15 min) before / after: {m['load_avg_start']} / {results['load_avg_end']}",
        "- freed memory kept in the process (glibc mallopt, `parallel_rl.memory`, as our CPU runs do by default), "
        f"for both sides: {results.get('keep_cpu_memory', False)}",
        "",
        "ratio = ours / FastTD3 (or / the bare matmul chain) in updates (or samples) per second: the median over "
        "rounds of the two rates measured back to back, each round's ratio listed; > 1 means ours is faster. Rates "
        f"count {results.get('clock', 'process CPU')} seconds. Ours = the runtime's V-learner / P-learner updates "
        "(sequential mode: replicas aliased, the policy update reusing the critic update's batch).",
        "",
        "| shapes | figure | batch | ours | FastTD3 / chain | ratio | per round | load avg at row |",
        "|---|---|--:|--:|--:|--:|---|---|",
    ]
    for r in results["rows"]:
        if "ours_tflops" in r:
            ours, theirs = f"{r['ours_tflops']:.3g} TFLOP/s", f"{r['chain_tflops']:.3g} TFLOP/s"
        else:
            ours, theirs = f"{r['ours_per_s']:.3g}/s", f"{r['fasttd3_per_s']:.3g}/s"
        lines.append(f"| {r['shapes']} | {r['figure']} | {r['batch']} | {ours} | {theirs} | {r['ratio']:.2f}x | "
                     f"{r.get('rounds', '')} | {r['load_avg']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


# ---- launch.bench --check ----------------------------------------------------------------------------------------
#: Figure -> the same-process reference it is divided by.
CHECK_FIGURES = {
    "critic_update": "update_loop",
    "actor_update": "update_loop",
    "critic_flop_rate": "matmul_chain",
    "sample_n1": "update_loop",
    "sample_n3": "update_loop",
    "train_iteration": "update_loop",
}


def measure_check(rounds: int = 5, seconds: float = 0.2, seed: int = 0) -> dict[str, float]:
    """This code's figures as ratios to the same-process references, at small shapes (the default networks, batch
    256) so that the whole measurement takes well under a minute."""
    import tasks
    from launch.bench import filled_buffer
    from parallel_rl.buffer import ReplayBuffer
    from parallel_rl.config import TrainConfig
    from parallel_rl.runtime import Trainer

    hidden, batch = (256, 256), 256
    ours = Ours(hidden, hidden, batch, 64, seed)
    chain = MatmulChain(ours.obs_dim, ours.act_dim, hidden, hidden, 101, batch)
    loop = bare_update_loop(ours.obs_dim + ours.act_dim, hidden, 101, batch, seed)
    buffer1 = filled_buffer(torch.device("cpu"), 1024, 64, 48, seed)
    buffer3 = ReplayBuffer(1024, buffer1.obs.shape[-1], buffer1.action.shape[-1], 1024 * 64, n_step=3, seed=seed)
    buffer3.load_state_dict(buffer1.state_dict())
    # The no-argument training job, past learning_starts: env step, critic and policy updates, publications.
    job = Trainer(TrainConfig(progress=False, seed=seed, torch_threads=torch.get_num_threads()),
                  tasks.env_factory(TrainConfig.task))  # fmt: skip
    for _ in range(job.cfg.schedule.learning_starts + 2):
        job.iteration()
    fns = {
        "matmul_chain": chain,
        "update_loop": loop,
        "critic_update": ours.critic_update,
        "actor_update": ours.p.update,
        "critic_flop_rate": ours.critic_update,
        "sample_n1": lambda: buffer1.sample(4096),
        "sample_n3": lambda: buffer3.sample(4096),
        "train_iteration": job.iteration,
    }
    rates = interleaved(fns, rounds, seconds, clock=default_clock())
    ours.close()
    job.runtime.close()
    return {name: median_ratio(rates, name, ref) for name, ref in CHECK_FIGURES.items()}


def compare(baseline: dict[str, float], current: dict[str, float], tolerance: float) -> list[dict[str, Any]]:
    """One verdict per baseline figure: ``ok`` unless the current ratio is below ``(1 - tolerance)`` x the
    baseline's (a figure missing now fails too). Figures only in ``current`` are reported as new, never failing."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"--tolerance must be in [0, 1), got {tolerance}")
    verdicts = []
    for name, base in baseline.items():
        now = current.get(name)
        change = None if now is None else now / base
        ok = change is not None and change >= 1 - tolerance
        verdicts.append({"figure": name, "baseline": base, "current": now, "change": change, "ok": ok})
    for name in current.keys() - baseline.keys():
        verdicts.append({"figure": name, "baseline": None, "current": current[name], "change": None, "ok": True})
    return verdicts


def verdict_table(verdicts: list[dict[str, Any]], tolerance: float) -> str:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3g}"

    lines = [f"| figure | reference | baseline ratio | current ratio | current / baseline | "
             f"verdict (fail below {1 - tolerance:.2f}) |", "|---|---|--:|--:|--:|---|"]  # fmt: skip
    for v in verdicts:
        verdict = "ok" if v["ok"] else "FAIL"
        if v["baseline"] is None:
            verdict = "new (not in the baseline)"
        lines.append(f"| {v['figure']} | {CHECK_FIGURES.get(v['figure'], '?')} | {fmt(v['baseline'])} | "
                     f"{fmt(v['current'])} | {fmt(v['change'])} | {verdict} |")  # fmt: skip
    return "\n".join(lines)
