"""Builds the components of a run from a config and an env factory, runs the schedule, logs, evaluates, saves."""

from __future__ import annotations

import dataclasses
import math
import random
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from parallel_rl.algos import Algorithm, Context, get_algorithm
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import ConfigError, TrainConfig, config_differences, validate
from parallel_rl.envs import VecEnv
from parallel_rl.io import load_checkpoint, open_run_logger, save_checkpoint, write_json
from parallel_rl.io.checkpoint import policy_spec, resolve_resume, rotate_checkpoints, step_checkpoint_path
from parallel_rl.nets import DeployedPolicy
from parallel_rl.runtime import distributed
from parallel_rl.runtime.accel import GraphedCall, autocast, configure_backends, maybe_compile
from parallel_rl.runtime.components import ActorComponent, PLearner, VLearner
from parallel_rl.runtime.distributed import DistContext
from parallel_rl.runtime.guards import StopSignals, TrainingInterrupted, check_finite
from parallel_rl.runtime.modes import FreeMode, PipelinedMode, SequentialMode, free_bound, free_reserve
from parallel_rl.runtime.scheduler import RatioScheduler
from parallel_rl.runtime.streams import Channel, Lane

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
    """One training run: builds env, buffer, networks, lanes, channels and components, and runs them in the
    configured mode (``runtime.modes``)."""

    def __init__(self, cfg: TrainConfig, make_env: EnvFactory, dist_ctx: DistContext | None = None) -> None:
        validate(cfg)
        self.cfg = cfg
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        self.dist = distributed.from_env() if dist_ctx is None else dist_ctx
        self.device = resolve_device(cfg.device)
        if self.dist.enabled:
            if cfg.schedule.mode == "free":
                raise ConfigError("--mode free: not supported with several ranks (update counts depend on timing, "
                                  "all-reduces need equal counts); use sequential or pipelined")  # fmt: skip
            if cfg.speed.cuda_graphs:
                raise ConfigError("--cuda-graphs: not supported with several ranks (collectives are not captured)")
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.dist.local_rank)
                torch.cuda.set_device(self.device)
            distributed.init(self.dist, self.device)
        if cfg.speed.cuda_graphs and self.device.type != "cuda":
            raise ConfigError("--cuda-graphs: CUDA graphs need a CUDA device; this run is on " + str(self.device))
        configure_backends(cfg.speed)
        self.make_env = make_env
        torch.manual_seed(cfg.seed)  # the same network initialisation on every rank
        rank_seed = cfg.seed + self.dist.rank * distributed.RANK_SEED_STRIDE
        self.env = make_env(cfg.num_envs, self.device, rank_seed)
        spec = self.env.spec
        if spec.num_envs != cfg.num_envs:
            raise ValueError(f"env factory made {spec.num_envs} envs, config asks for {cfg.num_envs}")
        hp = cfg.agent
        self.algo: Algorithm = get_algorithm(cfg.algo)(hp, self._algo_context(rank_seed + 2))
        storage = torch.bfloat16 if cfg.buffer.storage_dtype == "bfloat16" else torch.float32
        held_out = cfg.td_validation_envs
        train_envs = spec.num_envs - held_out
        self.buffer = ReplayBuffer(
            train_envs, spec.obs_dim, spec.act_dim, cfg.buffer.buffer_size * train_envs // spec.num_envs,
            self.device, critic_obs_dim=spec.critic_obs_dim, storage_dtype=storage, n_step=hp.n_step,
            gamma=hp.gamma, seed=rank_seed + 1,
        )  # fmt: skip
        self.val_buffer = None
        if held_out:
            self.val_buffer = ReplayBuffer(
                held_out, spec.obs_dim, spec.act_dim, max(cfg.buffer.buffer_size * held_out // spec.num_envs,
                                                          (hp.n_step + 2) * held_out),
                self.device, critic_obs_dim=spec.critic_obs_dim, storage_dtype=storage, n_step=hp.n_step,
                gamma=hp.gamma, seed=rank_seed + 5,
            )  # fmt: skip
        shared = self.algo.shared()
        if self.dist.enabled:
            for module in self.algo.networks().values():
                distributed.broadcast_module_(module, self.dist)
            for s_ in shared:  # replicas start from the broadcast weights
                TensorDict.from_module(s_.replica).data.update_(TensorDict.from_module(s_.source).data)
        # Lanes and channels: each reader role reads its own replica, refreshed by the writer role's publish.
        s = cfg.schedule
        concurrent = s.mode == "free" or (s.mode == "pipelined" and not s.pipeline_serial)
        deferred = s.mode == "pipelined"
        dev = self.device
        self.lanes: dict[str, Lane] = {n: Lane(dev, n, concurrent) for n in ("actor", "vlearner", "plearner")}
        self.actor = ActorComponent(self.env, self.algo, self.buffer, rank_seed, self.lanes["actor"],
                                    val_buffer=self.val_buffer)  # fmt: skip
        bs = cfg.buffer.batch_size
        self.vlearner = VLearner(self.algo, self.buffer, bs, self.lanes["vlearner"], rank_seed + 3, cfg.speed)
        self.plearner = PLearner(self.algo, self.buffer, bs, self.lanes["plearner"], rank_seed + 4, cfg.speed)
        components = {"actor": self.actor, "vlearner": self.vlearner, "plearner": self.plearner}
        self.publishes: dict[str, list[Channel]] = {role: [] for role in components}
        for item in shared:
            channel = Channel(TensorDict.from_module(item.source).data, self.lanes[item.writer],
                              self.lanes[item.reader], TensorDict.from_module(item.replica).data, deferred)  # fmt: skip
            self.publishes[item.writer].append(channel)
            components[item.reader].inputs.append(channel)
        if s.mode != "sequential":
            # Learners sample published views of the buffer, never its live write positions.
            if s.mode == "pipelined":
                reserve = 2  # the actor's one step ahead writes at most a transition row and a final row
            else:
                reserve = free_reserve(s.utd, s.policy_ratio, free_bound(s.utd, s.policy_ratio, s.free_bound))
            if reserve > self.buffer.max_reserve():
                raise ConfigError(
                    f"--buffer-size: free mode needs {reserve + hp.n_step + 2} rows per env (the actor may run "
                    f"{reserve // 2} steps ahead of a learner), the buffer has {self.buffer.rows_per_env}; raise "
                    f"--buffer-size to >= {(reserve + hp.n_step + 2) * cfg.num_envs} or lower --free-bound"
                )
            for learner in (self.vlearner, self.plearner):
                view = Channel(self.buffer.view_source(), self.lanes["actor"], learner.lane, deferred=deferred)
                learner.use_view(view, reserve)
                self.publishes["actor"].append(view)
        self.channels = [c for role in ("actor", "plearner", "vlearner") for c in self.publishes[role]]
        self.scheduler = RatioScheduler(cfg.schedule.utd, cfg.schedule.policy_ratio, cfg.schedule.learning_starts)
        # total_env_steps counts transitions over all ranks; num_envs is per rank.
        self.total_iterations = math.ceil(cfg.total_env_steps / (cfg.num_envs * self.dist.world_size))
        self._eval_env: VecEnv | None = None
        self._diag_generator = torch.Generator(device=self.device)
        self._diag_generator.manual_seed(rank_seed + 6)
        # Where the run is: iterations done, training seconds so far, best return at a checkpoint (resumed too).
        self.progress: dict[str, float] = {"iteration": 0, "wall_seconds": 0.0, "best_return": -math.inf}
        if s.mode == "sequential":
            self.runtime = SequentialMode(self)
        elif s.mode == "pipelined":
            self.runtime = PipelinedMode(self, serial=s.pipeline_serial)
        else:
            self.runtime = FreeMode(self)

    # ---- the schedule -----------------------------------------------------------------------------------------
    def iteration(self) -> None:
        """One vectorized env step and the learner work the mode runs with it (see ``runtime.modes``)."""
        self.runtime.iteration()

    def finish(self) -> None:
        """Let the learners complete the updates due for the env steps taken (pipelined and free modes lag)."""
        self.runtime.finish()

    def _algo_context(self, seed: int) -> Context:
        """The runtime's machinery as the algorithm sees it (``algos.base.Context``)."""
        speed, device, dist = self.cfg.speed, self.device, self.dist
        sync = all_reduce = None
        if dist.enabled:
            averagers = {role: distributed.grad_averager(dist, role) for role in ("vlearner", "plearner")}

            def sync(role, params):
                averagers[role](params)

            def all_reduce(role, tensor):
                return distributed.all_reduce_sum_(tensor, dist, role)

        return Context(
            spec=self.env.spec, device=device, seed=seed, autocast=lambda: autocast(device, speed),
            compile=lambda fn: maybe_compile(fn, speed), graph=lambda fn: GraphedCall(fn, enabled=speed.cuda_graphs),
            capturable=speed.cuda_graphs, sync_grads=sync, all_reduce_sum=all_reduce,
        )  # fmt: skip

    def actor_policy_replica(self) -> torch.nn.Module:
        """The actor role's copy of the deployed policy (what rollouts use; never mid-update in another lane)."""
        policy = self.algo.deployed_modules()[1]
        return next(s.replica for s in self.algo.shared() if s.source is policy and s.reader == "actor")

    def deployed_policy(self, policy: torch.nn.Module | None = None) -> DeployedPolicy:
        low, high = self.env.spec.action_bounds(self.device)
        normalizer, trained = self.algo.deployed_modules()
        return DeployedPolicy(normalizer, trained if policy is None else policy, low, high).eval()

    @torch.no_grad()
    def evaluate(self, during_run: bool = False) -> dict[str, float]:
        """Deterministic evaluation on a separate env (built once, reseeded each time so evaluations compare).

        During a run it evaluates the actor's copy of the policy: in concurrent modes the trained policy may be
        mid-update in another lane."""
        seed = self.cfg.seed + EVAL_SEED_OFFSET
        if self._eval_env is None:
            self._eval_env = self.make_env(self.cfg.eval_envs, self.device, seed)
        policy = self.actor_policy_replica() if during_run else None
        with self.actor.lane.active():
            return evaluate_policy(self.deployed_policy(policy), self._eval_env, seed=seed)

    def checkpoint_payload(self) -> dict[str, Any]:
        spec, hp = self.env.spec, self.cfg.agent
        return {
            "config": dataclasses.asdict(self.cfg),
            "policy_spec": policy_spec(
                spec.obs_dim, spec.act_dim, hp.actor_hidden, hp.activation, spec.action_low, spec.action_high
            ),  # fmt: skip
            "actor": self.algo.deployed_modules()[1].state_dict(),
            "normalizer": self.algo.deployed_modules()[0].state_dict(),
            "algo": self.algo.state_dict(),
            "param_counts": {name: sum(p.numel() for p in net.parameters())
                             for name, net in self.algo.networks().items()},  # fmt: skip
            "scheduler": self.scheduler.state_dict(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The whole training state: ``checkpoint_payload`` (what a deployed policy needs) plus optimizers, RNGs,
        channels, actor, learners, env (when it can save itself), scheduler and optionally the buffer."""
        self.runtime.quiesce()
        env_state = self.env.state_dict() if hasattr(self.env, "state_dict") else None
        return {
            **self.checkpoint_payload(),
            "actor_state": self.actor.state_dict(),
            "vlearner_state": self.vlearner.state_dict(),
            "plearner_state": self.plearner.state_dict(),
            "channels": [c.state_dict() for c in self.channels],
            "runtime": self.runtime.state_dict(),
            "env": env_state,
            "buffer": self.buffer.state_dict() if self.cfg.checkpoint_buffer else None,
            "val_buffer": self.val_buffer.state_dict() if self.cfg.checkpoint_buffer and self.val_buffer else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },  # fmt: skip
            "progress": dict(self.progress),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the run saved in ``state`` (see ``state_dict``); the configs must agree (``--resume``)."""
        diffs = config_differences(state["config"], self.cfg)
        if diffs:
            raise ConfigError("cannot resume: the checkpoint was trained with another configuration:\n  "
                              + "\n  ".join(diffs))  # fmt: skip
        self.algo.load_state_dict(state["algo"])
        self.vlearner.load_state_dict(state["vlearner_state"])
        self.plearner.load_state_dict(state["plearner_state"])
        for channel, saved in zip(self.channels, state["channels"], strict=True):
            channel.load_state_dict(saved)
        env_restored = state["env"] is not None and hasattr(self.env, "load_state_dict")
        if env_restored:
            self.env.load_state_dict(state["env"])
        else:
            print("resume: this env cannot save its state; envs restart from a reset", file=sys.stderr)
        self.actor.load_state_dict(state["actor_state"], env_restored)
        if state.get("val_buffer") is not None and self.val_buffer is not None:
            self.val_buffer.load_state_dict(state["val_buffer"])
        if state["buffer"] is not None:
            self.buffer.load_state_dict(state["buffer"])
        else:
            print("resume: the checkpoint holds no replay buffer (--checkpoint-buffer); refilling it from new "
                  "experience", file=sys.stderr)  # fmt: skip
        self.scheduler.load_state_dict(state["scheduler"])
        self.runtime.load_state_dict(state["runtime"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.progress.update(state["progress"])

    @torch.no_grad()
    def td_diagnostics(self) -> dict[str, float]:
        """TD-overfitting diagnostics (``--td-validation-envs``): the critic loss, computed the same way, on a
        training batch and on a held-out validation batch, and parameter norms. A validation loss that grows while
        the training loss falls is the signature of TD overfitting at high UTD. Training's RNG is left untouched."""
        if self.val_buffer is None or self.val_buffer.extends < 2 or self.buffer.extends < 2:
            return {}
        if self.cfg.schedule.mode == "free":
            self.runtime.quiesce()  # learner threads must not update the networks while they are read
        bs, nets = self.cfg.buffer.batch_size, self.algo.networks()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            losses = [self.algo.critic_loss(buffer.sample(bs, self._diag_generator))
                      for buffer in (self.buffer, self.val_buffer)]  # fmt: skip
        norms = [torch.linalg.vector_norm(torch.cat([p.flatten() for p in nets[name].parameters()]))
                 for name in ("critic", "actor")]  # fmt: skip
        train, val, critic_norm, actor_norm = torch.stack(losses + norms).tolist()
        return {"td_loss_train_batch": train, "td_loss_validation": val, "td_validation_gap": val - train,
                "critic_param_norm": critic_norm, "actor_param_norm": actor_norm}  # fmt: skip

    def metrics(self) -> dict[str, float]:
        world = self.dist.world_size  # an update of every rank uses world x batch_size samples
        out = self.scheduler.realised(self.cfg.num_envs * world, self.cfg.buffer.batch_size * world)
        out.update(self.actor.pop_episode_stats())
        out.update(self.vlearner.metrics.pop())
        out.update(self.plearner.metrics.pop())
        out.update(self.runtime.wait_metrics())
        out.update(self.td_diagnostics())
        return out

    def _save(self, run_dir: Path, row: dict[str, float]) -> Path:
        """A periodic checkpoint (after the finite checks passed), the newest ``keep_checkpoints`` kept, and
        best.pt when the latest return is the best so far."""
        path = save_checkpoint(step_checkpoint_path(run_dir, self.scheduler.env_steps * self._per_iteration),
                               self.state_dict())  # fmt: skip
        rotate_checkpoints(run_dir, self.cfg.keep_checkpoints)
        ret = row.get("eval_return", row.get("episode_return", math.nan))
        if math.isfinite(ret) and ret > self.progress["best_return"]:
            self.progress["best_return"] = ret
            shutil.copyfile(path, path.parent / "best.pt")
        return path

    def run(self, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Train for ``total_env_steps``; write config, metrics, checkpoints and summary under ``run_dir``.

        With several ranks every rank trains; rank 0 alone logs, evaluates and writes files. SIGINT/SIGTERM save a
        checkpoint and raise ``TrainingInterrupted``; NaN/Inf raise ``NonFiniteError`` before any checkpoint is
        written over the last good one."""
        cfg, main = self.cfg, self.dist.is_main
        per_iteration = self._per_iteration = cfg.num_envs * self.dist.world_size
        run_dir = Path(run_dir or cfg.run_dir or default_run_dir(cfg))
        if cfg.resume:
            path = resolve_resume(cfg.resume, run_dir)
            self.load_state_dict(load_checkpoint(path, map_location=self.device))
            if main:
                print(f"resumed from {path} at env step {self.scheduler.env_steps * per_iteration}", file=sys.stderr)
        first = int(self.progress["iteration"]) + 1
        logger = bar = None
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "config.json", {**dataclasses.asdict(cfg), "resolved_device": str(self.device),
                                                 "world_size": self.dist.world_size})  # fmt: skip
            logger = open_run_logger(run_dir, cfg, extra={"resolved_device": str(self.device),
                                                          "world_size": self.dist.world_size})  # fmt: skip
            bar = _progress(self.total_iterations * per_iteration, cfg.progress)
            if bar is not None:
                bar.update((first - 1) * per_iteration)
        start = last_time = time.perf_counter() - self.progress["wall_seconds"]
        last_steps, last_updates = first - 1, self.scheduler.critic_updates + self.scheduler.policy_updates
        eval_seconds = 0.0  # excluded from wall_seconds, which is training time
        eval_period = max(1, cfg.eval_every // per_iteration) if cfg.eval_every > 0 else 0
        ckpt_period = max(1, cfg.checkpoint_every // per_iteration) if cfg.checkpoint_every > 0 else 0
        last_return = float("nan")  # episodes end in bursts; show the latest mean rather than flicker to nan
        stopped_early = reached_target = False
        signals = StopSignals()
        try:
            with signals:
                for it in range(first, self.total_iterations + 1):
                    self.iteration()
                    self.progress["iteration"] = it
                    out_of_time = cfg.max_wall_seconds > 0 and time.perf_counter() - start - eval_seconds >= (
                        cfg.max_wall_seconds
                    )
                    out_of_time |= reached_target  # decided at the previous evaluation (rank 0)
                    if cfg.max_wall_seconds > 0 or cfg.stop_at_return is not None:
                        out_of_time = distributed.agree(out_of_time, self.dist)  # ranks stop at the same step
                    interrupted = signals.received is not None
                    if self.dist.enabled:
                        interrupted = distributed.agree(interrupted, self.dist)  # every rank saves and stops
                    last = it == self.total_iterations or out_of_time or interrupted
                    if it == self.total_iterations or out_of_time:
                        self.finish()  # an interrupted run keeps its pending work in the checkpoint instead
                    evaluate_now = eval_period > 0 and (it % eval_period == 0 or last) and not interrupted
                    checkpoint_now = ckpt_period > 0 and it % ckpt_period == 0 or interrupted
                    if main and (it % cfg.log_every == 0 or last or evaluate_now or checkpoint_now):
                        now = time.perf_counter()
                        sched = self.scheduler
                        updates = sched.critic_updates + sched.policy_updates
                        row = self.metrics()
                        check_finite(row, self.algo.networks(), self.actor.env_nonfinite,
                                     (last_steps * per_iteration, it * per_iteration))  # fmt: skip
                        row["env_steps_per_s"] = (it - last_steps) * per_iteration / max(now - last_time, 1e-9)
                        row["updates_per_s"] = (updates - last_updates) / max(now - last_time, 1e-9)
                        row["wall_seconds"] = now - start - eval_seconds
                        self.progress["wall_seconds"] = row["wall_seconds"]
                        if evaluate_now:
                            stats = self.evaluate(during_run=not last)
                            row["eval_return"], row["eval_return_std"] = stats["return_mean"], stats["return_std"]
                            row["eval_episode_length"] = stats["length_mean"]
                            eval_seconds += time.perf_counter() - now
                            if cfg.stop_at_return is not None and stats["return_mean"] >= cfg.stop_at_return:
                                reached_target = True
                        logger.log(it * per_iteration, row)
                        last_return = row.get("episode_return", last_return)
                        if checkpoint_now:
                            saved = self._save(run_dir, row)
                        if bar is not None:
                            bar.update((it - last_steps) * per_iteration)
                            bar.set_postfix(
                                steps_s=f"{row['env_steps_per_s']:.0f}", upd_s=f"{row['updates_per_s']:.0f}",
                                ret=f"{last_return:.1f}",
                            )  # fmt: skip
                        last_time, last_steps, last_updates = time.perf_counter(), it, updates
                    if interrupted:
                        signum = signals.received or signal.SIGTERM
                        raise TrainingInterrupted(signum, it * per_iteration, str(saved) if main else "")
                    if out_of_time:
                        stopped_early = it < self.total_iterations
                        break
        except BaseException:
            if logger is not None:
                logger.close()
            raise
        finally:
            self.runtime.close()
            if bar is not None:
                bar.close()
        train_seconds = time.perf_counter() - start - eval_seconds
        sched = self.scheduler
        summary = {
            "task": cfg.task,
            "algo": cfg.algo,
            "seed": cfg.seed,
            "device": str(self.device),
            "mode": cfg.schedule.mode,
            "rank": self.dist.rank,
            "world_size": self.dist.world_size,
            "env_steps": sched.env_steps * per_iteration,
            "vector_env_steps": sched.env_steps,
            "critic_updates": sched.critic_updates,
            "policy_updates": sched.policy_updates,
            **sched.realised(per_iteration, cfg.buffer.batch_size * self.dist.world_size),
            "train_seconds": train_seconds,
            "stopped_by_time_limit": stopped_early and not reached_target,
            "stopped_at_return": reached_target,
            "critic_params": sum(p.numel() for p in self.algo.networks()["critic"].parameters()),
            "actor_params": sum(p.numel() for p in self.algo.networks()["actor"].parameters()),
        }
        if not main:
            return summary
        eval_stats = self.evaluate()
        ckpt = save_checkpoint(run_dir / "checkpoints" / "final.pt", self.state_dict())
        summary.update({
            "final_eval_return": eval_stats["return_mean"],
            "final_eval_return_std": eval_stats["return_std"],
            "final_eval_episode_length": eval_stats["length_mean"],
            "eval_envs": cfg.eval_envs,
            "wall_seconds": time.perf_counter() - start,
            "checkpoint": str(ckpt),
            "run_dir": str(run_dir),
        })  # fmt: skip
        write_json(run_dir / "summary.json", summary)
        logger.log_final(summary["env_steps"], summary)
        logger.close()
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
