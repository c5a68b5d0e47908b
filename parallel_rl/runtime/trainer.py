"""Builds the components of a run from a config and an env factory, runs the schedule, logs, evaluates, saves."""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from parallel_rl.algos import get_algorithm
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import TrainConfig, validate
from parallel_rl.envs import VecEnv
from parallel_rl.io import MetricsLogger, save_checkpoint, write_json
from parallel_rl.io.checkpoint import policy_spec
from parallel_rl.nets import Actor, DeployedPolicy, EnsembleCritic, RunningNorm
from parallel_rl.runtime.components import ActorComponent, PLearner, Published, VLearner
from parallel_rl.runtime.scheduler import RatioScheduler

EnvFactory = Callable[[int, torch.device, int], VecEnv]
"""(num_envs, device, seed) -> VecEnv. The trainer never imports task code; launchers pass this in."""

EVAL_SEED_OFFSET = 1_000_003


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def default_run_dir(cfg: TrainConfig) -> Path:
    task = re.sub(r"[^A-Za-z0-9_.-]+", "_", cfg.task)
    return Path("runs") / f"{task}-{cfg.algo}-seed{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


class Trainer:
    """One training run in the sequential reference order: actor step, then the critic updates due, each followed
    by the policy updates due, with parameter copies published at the configured intervals."""

    def __init__(self, cfg: TrainConfig, make_env: EnvFactory) -> None:
        validate(cfg)
        self.cfg = cfg
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        self.device = resolve_device(cfg.device)
        self.make_env = make_env
        torch.manual_seed(cfg.seed)
        self.env = make_env(cfg.num_envs, self.device, cfg.seed)
        spec = self.env.spec
        if spec.num_envs != cfg.num_envs:
            raise ValueError(f"env factory made {spec.num_envs} envs, config asks for {cfg.num_envs}")
        hp = cfg.agent
        self.algo = get_algorithm(cfg.algo)
        self.normalizer = RunningNorm(spec.obs_dim).to(self.device)
        self.critic_normalizer = (
            None if spec.critic_obs_dim is None else RunningNorm(spec.critic_obs_dim).to(self.device)
        )
        self.policy = Actor(spec.obs_dim, spec.act_dim, hp.actor_hidden, hp.activation).to(self.device)
        critic_in = spec.critic_obs_dim or spec.obs_dim
        self.critic = EnsembleCritic(
            critic_in, spec.act_dim, hp.critic_hidden, hp.num_atoms, hp.v_min, hp.v_max, hp.num_critics, hp.activation
        ).to(self.device)
        storage = torch.bfloat16 if cfg.buffer.storage_dtype == "bfloat16" else torch.float32
        self.buffer = ReplayBuffer(
            spec.num_envs, spec.obs_dim, spec.act_dim, cfg.buffer.buffer_size, self.device,
            critic_obs_dim=spec.critic_obs_dim, storage_dtype=storage, n_step=hp.n_step, gamma=hp.gamma,
            seed=cfg.seed + 1,
        )  # fmt: skip
        # Published copies: each consumer reads its own copy, refreshed by the owner at the configured interval.
        self.policy_to_actor = Published(self.policy)
        self.policy_to_vlearner = Published(self.policy)
        self.critic_to_plearner = Published(self.critic)
        self.norm_to_learners = [Published(self.normalizer), Published(self.normalizer)]
        cnorm = [Published(self.critic_normalizer), Published(self.critic_normalizer)] if self.critic_normalizer else []
        self.actor = ActorComponent(
            self.env, self.algo, hp, self.policy_to_actor.copy, self.normalizer, self.buffer, cfg.seed + 2,
            critic_normalizer=self.critic_normalizer,
        )  # fmt: skip
        bs = cfg.buffer.batch_size
        self.vlearner = VLearner(self.algo, hp, self.critic, self.policy_to_vlearner, self.norm_to_learners[0],
                                 self.buffer, bs, critic_normalizer=cnorm[0] if cnorm else None)  # fmt: skip
        self.plearner = PLearner(self.algo, hp, self.policy, self.critic_to_plearner, self.norm_to_learners[1],
                                 self.buffer, bs, critic_normalizer=cnorm[1] if cnorm else None)  # fmt: skip
        self.normalizer_channels = self.norm_to_learners + cnorm
        self.scheduler = RatioScheduler(cfg.schedule.utd, cfg.schedule.policy_ratio, cfg.schedule.learning_starts)
        self.total_iterations = math.ceil(cfg.total_env_steps / cfg.num_envs)
        self._eval_env: VecEnv | None = None

    # ---- the schedule -----------------------------------------------------------------------------------------
    def iteration(self) -> None:
        """One vectorized env step and the learner work it makes due."""
        s, sched = self.cfg.schedule, self.scheduler
        self.actor.step()
        for channel in self.normalizer_channels:
            channel.publish()
        for _ in range(sched.on_env_step()):
            self.vlearner.update()
            policy_due = sched.on_critic_update()
            if sched.critic_updates % s.critic_publish_interval == 0:
                self.critic_to_plearner.publish()
            for _ in range(policy_due):
                self.plearner.update()
                sched.on_policy_update()
                if sched.policy_updates % s.policy_publish_interval == 0:
                    self.policy_to_actor.publish()
                    self.policy_to_vlearner.publish()

    def deployed_policy(self) -> DeployedPolicy:
        low, high = self.env.spec.action_bounds(self.device)
        return DeployedPolicy(self.normalizer, self.policy, low, high).eval()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Deterministic evaluation on a separate env (built once, reseeded each time so evaluations compare)."""
        seed = self.cfg.seed + EVAL_SEED_OFFSET
        if self._eval_env is None:
            self._eval_env = self.make_env(self.cfg.eval_envs, self.device, seed)
        return evaluate_policy(self.deployed_policy(), self._eval_env, seed=seed)

    def checkpoint_payload(self) -> dict[str, Any]:
        spec, hp = self.env.spec, self.cfg.agent
        return {
            "config": dataclasses.asdict(self.cfg),
            "policy_spec": policy_spec(
                spec.obs_dim, spec.act_dim, hp.actor_hidden, hp.activation, spec.action_low, spec.action_high
            ),  # fmt: skip
            "actor": self.policy.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.vlearner.critic_target.state_dict(),
            "normalizer": self.normalizer.state_dict(),
            "critic_normalizer": None if self.critic_normalizer is None else self.critic_normalizer.state_dict(),
            "critic_optimizer": self.vlearner.optimizer.state_dict(),
            "actor_optimizer": self.plearner.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def metrics(self) -> dict[str, float]:
        out = self.scheduler.realised(self.cfg.num_envs, self.cfg.buffer.batch_size)
        out.update(self.actor.pop_episode_stats())
        out.update(self.vlearner.metrics.pop())
        out.update(self.plearner.metrics.pop())
        return out

    def run(self, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Train for ``total_env_steps``; write config, metrics, checkpoint and summary under ``run_dir``."""
        cfg = self.cfg
        run_dir = Path(run_dir or cfg.run_dir or default_run_dir(cfg))
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", {**dataclasses.asdict(cfg), "resolved_device": str(self.device)})
        logger = MetricsLogger(run_dir)
        bar = _progress(self.total_iterations * cfg.num_envs, cfg.progress)
        start = last_time = time.perf_counter()
        last_steps = last_updates = 0
        eval_seconds = 0.0  # excluded from wall_seconds, which is training time
        eval_period = max(1, cfg.eval_every // cfg.num_envs) if cfg.eval_every > 0 else 0
        last_return = float("nan")  # episodes end in bursts; show the latest mean rather than flicker to nan
        stopped_early = False
        try:
            for it in range(1, self.total_iterations + 1):
                self.iteration()
                out_of_time = cfg.max_wall_seconds > 0 and time.perf_counter() - start - eval_seconds >= (
                    cfg.max_wall_seconds
                )
                last = it == self.total_iterations or out_of_time
                evaluate_now = eval_period > 0 and (it % eval_period == 0 or last)
                if it % cfg.log_every == 0 or last or evaluate_now:
                    now = time.perf_counter()
                    sched = self.scheduler
                    updates = sched.critic_updates + sched.policy_updates
                    row = self.metrics()
                    row["env_steps_per_s"] = (it - last_steps) * cfg.num_envs / max(now - last_time, 1e-9)
                    row["updates_per_s"] = (updates - last_updates) / max(now - last_time, 1e-9)
                    row["wall_seconds"] = now - start - eval_seconds
                    if evaluate_now:
                        stats = self.evaluate()
                        row["eval_return"], row["eval_return_std"] = stats["return_mean"], stats["return_std"]
                        row["eval_episode_length"] = stats["length_mean"]
                        eval_seconds += time.perf_counter() - now
                    logger.log(it * cfg.num_envs, row)
                    last_return = row.get("episode_return", last_return)
                    if bar is not None:
                        bar.update((it - last_steps) * cfg.num_envs)
                        bar.set_postfix(
                            steps_s=f"{row['env_steps_per_s']:.0f}", upd_s=f"{row['updates_per_s']:.0f}",
                            ret=f"{last_return:.1f}",
                        )  # fmt: skip
                    last_time, last_steps, last_updates = time.perf_counter(), it, updates
                if out_of_time:
                    stopped_early = it < self.total_iterations
                    break
        finally:
            if bar is not None:
                bar.close()
            logger.close()
        train_seconds = time.perf_counter() - start - eval_seconds
        eval_stats = self.evaluate()
        ckpt = save_checkpoint(run_dir / "checkpoints" / "final.pt", self.checkpoint_payload())
        sched = self.scheduler
        summary = {
            "task": cfg.task,
            "algo": cfg.algo,
            "seed": cfg.seed,
            "device": str(self.device),
            "final_eval_return": eval_stats["return_mean"],
            "final_eval_return_std": eval_stats["return_std"],
            "final_eval_episode_length": eval_stats["length_mean"],
            "eval_envs": cfg.eval_envs,
            "env_steps": sched.env_steps * cfg.num_envs,
            "vector_env_steps": sched.env_steps,
            "critic_updates": sched.critic_updates,
            "policy_updates": sched.policy_updates,
            **sched.realised(cfg.num_envs, cfg.buffer.batch_size),
            "train_seconds": train_seconds,
            "stopped_by_time_limit": stopped_early,
            "wall_seconds": time.perf_counter() - start,
            "checkpoint": str(ckpt),
            "run_dir": str(run_dir),
        }
        write_json(run_dir / "summary.json", summary)
        return summary


@torch.no_grad()
def evaluate_policy(policy: torch.nn.Module, env: VecEnv, seed: int | None = None) -> dict[str, float]:
    """Deterministic return of the first episode of every env (one host sync at the end)."""
    spec = env.spec
    obs = env.reset(seed=seed)["obs"]
    total = torch.zeros(spec.num_envs, device=spec.device)
    length = torch.zeros(spec.num_envs, device=spec.device)
    running = torch.ones(spec.num_envs, dtype=torch.bool, device=spec.device)
    for _ in range(spec.max_episode_steps):
        out = env.step(policy(obs))
        total += out["reward"] * running
        length += running.float()
        running &= ~(out["terminated"] | out["truncated"])
        obs = out["obs"]
    ret = total.cpu()
    return {"return_mean": ret.mean().item(), "return_std": ret.std(unbiased=False).item(),
            "length_mean": length.mean().item()}  # fmt: skip


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", unit_scale=True, dynamic_ncols=True, desc="env steps")


def train(cfg: TrainConfig, make_env: EnvFactory) -> dict[str, Any]:
    """Library entry point: build a ``Trainer`` and run it."""
    return Trainer(cfg, make_env).run()
