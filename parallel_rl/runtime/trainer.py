"""A training run: the built ``Engine`` (``runtime/engine.py``) driven by a loop, with a ``RunLogger`` (metrics
rows), a ``Checkpointer`` (periodic, best and final checkpoints) and an ``Evaluator`` (the one evaluation protocol,
shared with ``launch.evaluate``)."""

from __future__ import annotations

import dataclasses
import math
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from parallel_rl.config import (
    ConfigError,
    TrainConfig,
    check_device_name,
    config_differences,
    default_run_dir,
    validate,
)
from parallel_rl.envs import VecEnv
from parallel_rl.io import load_checkpoint, open_run_logger, write_json
from parallel_rl.io.checkpoint import TRAINING_FIELDS, Checkpointer, policy_spec, resolve_resume
from parallel_rl.io.evaluation import Evaluator, evaluate_episodes
from parallel_rl.io.files import open_run_dir, truncate_logs
from parallel_rl.io.logger import RunLogger
from parallel_rl.memory import retain_freed_memory
from parallel_rl.nets import DeployedPolicy, resolve_spec
from parallel_rl.runtime import distributed
from parallel_rl.runtime.accel import configure_backends
from parallel_rl.runtime.distributed import DistContext
from parallel_rl.runtime.engine import EnvFactory, build_engine, total_iterations, transfer_env_factory
from parallel_rl.runtime.guards import StopSignals, TrainingInterrupted, check_finite
from parallel_rl.threads import apply_torch_threads, config_torch_threads

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation envs are reset with seed + this: never the training envs' seed, the same at every evaluation."""


def resolve_device(name: str) -> torch.device:
    """``--device`` -> a device this machine has; ``ConfigError`` (one line, exit 2) otherwise."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")  # fmt: skip
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: MPS is not available on this machine; use --device cpu (or auto)")
    return device


def setup_process(cfg: TrainConfig, dist: DistContext) -> torch.device:
    """Process-wide setup before anything is built: threads, device, process group, backend switches."""
    apply_torch_threads(config_torch_threads(cfg))
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.speed.keep_cpu_memory:
        retain_freed_memory()
    if dist.enabled:
        if cfg.schedule.mode == "free":
            raise ConfigError("--mode free: not supported with several ranks (update counts depend on timing, "
                              "all-reduces need equal counts); use sequential or pipelined")  # fmt: skip
        if cfg.speed.cuda_graphs:
            raise ConfigError("--cuda-graphs: not supported with several ranks (collectives are not captured)")
        if device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
            torch.cuda.set_device(device)
        distributed.init(dist, device)
    if cfg.speed.cuda_graphs and device.type != "cuda":
        raise ConfigError("--cuda-graphs: CUDA graphs need a CUDA device; this run is on " + str(device))
    configure_backends(cfg.speed)
    return device


class Trainer:
    """One training run: an ``Engine`` (built here from the config and the env factory) plus the loop of ``run``.

    The engine's pieces are exposed as attributes (``algo``, ``buffer``, ``actor``, ``vlearner``, ``scheduler``...)
    for tests and tools; ``runtime`` is the mode object (``runtime.modes``)."""

    def __init__(self, cfg: TrainConfig, make_env: EnvFactory, dist_ctx: DistContext | None = None) -> None:
        validate(cfg)
        self.dist = distributed.from_env() if dist_ctx is None else dist_ctx
        self.device = setup_process(cfg, self.dist)
        init = load_checkpoint(cfg.init_from, map_location=self.device) if cfg.init_from else None
        if init is not None:  # transfer from a multi-task model: its layout, new tasks get new ids
            make_env = transfer_env_factory(make_env, init, cfg.task)
        self.cfg, self.make_env = cfg, make_env
        self.engine = engine = build_engine(cfg, make_env, self.device, self.dist, init_from=init)
        self.env, self.algo, self.buffer, self.val_buffer = engine.env, engine.algo, engine.buffer, engine.val_buffer
        self.actor, self.vlearner, self.plearner = engine.actor, engine.vlearner, engine.plearner
        self.scheduler, self.channels, self.runtime = engine.scheduler, engine.channels, engine.mode
        self.total_iterations = total_iterations(cfg, self.dist.world_size)
        seed = cfg.seed + EVAL_SEED_OFFSET
        self.evaluator = Evaluator(lambda: make_env(cfg.eval_envs, self.device, seed), cfg.eval_envs, seed)
        # Where the run is: iterations done, training seconds so far, best return at a checkpoint (resumed too).
        self.progress: dict[str, float] = {"iteration": 0, "wall_seconds": 0.0, "best_return": -math.inf}

    # ---- the schedule (delegated) -----------------------------------------------------------------------------
    def iteration(self) -> None:
        self.engine.iteration()

    def finish(self) -> None:
        self.engine.finish()

    def deployed_policy(self, policy: torch.nn.Module | None = None) -> DeployedPolicy:
        if policy is None:
            return self.engine.deployed_policy()
        low, high = self.env.spec.action_bounds(self.device)
        return DeployedPolicy(self.algo.deployed_modules()[0], policy, low, high).eval()

    @torch.no_grad()
    def evaluate(
        self, during_run: bool = False, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, Any] | None:
        """The deterministic policy under the evaluation protocol (``io/evaluation.py``). During a run it is the
        actor's copy of the policy: in concurrent modes the trained policy may be mid-update in another lane.
        Returns None when ``should_stop()`` became true (a signal arrived)."""
        with self.actor.lane.active():
            return self.evaluator(self.engine.deployed_policy(during_run=during_run), should_stop=should_stop)

    # ---- state --------------------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        """What a deployed policy needs (``load_policy``): config, policy spec, actor and normalizer weights; plus
        the algorithm's state and its networks' parameter counts."""
        spec, hp = self.env.spec, self.cfg.agent
        normalizer, policy = self.algo.deployed_modules()
        arch = resolve_spec("actor", hp.actor_arch, hp.actor_width, hp.actor_depth, tuple(hp.actor_hidden),
                            hp.activation, hp.normed_norm)  # fmt: skip
        return {
            "config": dataclasses.asdict(self.cfg),
            "policy_spec": policy_spec(
                spec.obs_dim,
                spec.act_dim,
                hp.actor_hidden,
                hp.activation,
                spec.action_low,
                spec.action_high,
                arch,
                **self._task_spec(),
                obs_norm=getattr(normalizer, "formula", "clipped"),
            ),  # fmt: skip
            "actor": policy.state_dict(),
            "normalizer": normalizer.state_dict(),
            "algo": self.algo.state_dict(),
            "param_counts": {
                name: sum(p.numel() for p in net.parameters()) for name, net in self.algo.networks().items()
            },  # fmt: skip
            "scheduler": self.scheduler.state_dict(),
        }

    def _task_spec(self) -> dict[str, Any]:
        """What a deployed multi-task policy needs besides the single-task spec: its tasks, their dimensions and
        action bounds (the env takes [-1, 1] actions; a deployed policy maps them to the selected task's bounds)."""
        spec, env = self.env.spec, self.env
        if not spec.task_names:
            return {}
        unit = ([-1.0] * spec.act_dim, [1.0] * spec.act_dim)  # tasks of the model that this env does not run
        bounds = {n: (env.task_action_low[k].tolist(), env.task_action_high[k].tolist())
                  for k, n in enumerate(env.names)}  # fmt: skip
        return {"task_names": list(spec.task_names), "task_dims": [list(d) for d in spec.task_dims],
                "task_embedding_dim": self.cfg.agent.task_embedding_dim,
                "task_action_low": [bounds.get(n, unit)[0] for n in spec.task_names],
                "task_action_high": [bounds.get(n, unit)[1] for n in spec.task_names]}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The whole training state: ``checkpoint_payload``, the engine's state (components, channels, mode, env,
        optional buffer), RNGs and progress."""
        return {
            **self.checkpoint_payload(),
            **self.engine.state_dict(),
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
            raise ConfigError("cannot resume: the checkpoint was trained with another configuration: "
                              + "; ".join(diffs))  # fmt: skip
        self.engine.load_state_dict(state)
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.progress.update(state["progress"])

    def metrics(self) -> dict[str, float]:
        return self.engine.metrics()

    # ---- the loop -----------------------------------------------------------------------------------------------
    def run(self, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Train for ``total_env_steps``; write config, metrics, checkpoints and summary under ``run_dir``.

        With several ranks every rank trains; rank 0 alone logs, evaluates and writes files. SIGINT/SIGTERM save a
        checkpoint and raise ``TrainingInterrupted``; NaN/Inf raise ``NonFiniteError`` before any checkpoint is
        written over the last good one."""
        cfg, main = self.cfg, self.dist.is_main
        run_dir = Path(run_dir or cfg.run_dir or default_run_dir(cfg))
        lock = None
        if main:  # refuse a directory holding another run, lock it, remove temporary files of a killed write
            lock, notes = open_run_dir(run_dir, resume=bool(cfg.resume), overwrite=cfg.overwrite)
            for note in notes:
                print(note, file=sys.stderr)
        # Signals only set a flag from here to the end of the run: no checkpoint write or evaluation is cut off.
        # The loop's own handler (below) saves and stops at the next step; after the loop this one makes the
        # final evaluation stop at its next env step, final.pt being already written.
        self._end_signals = StopSignals()
        try:
            with self._end_signals:
                return self._run(run_dir)
        finally:
            if lock is not None:
                lock.release()

    def _resume(self, run_dir: Path) -> int | None:
        """Load ``--resume``; on rank 0 cut the logs back to the checkpoint's step (the rows after it are logged
        again by this run). Returns the TensorBoard purge step (None on other ranks)."""
        path = resolve_resume(self.cfg.resume, run_dir)
        state = load_checkpoint(path, map_location=self.device, require=TRAINING_FIELDS)
        try:
            self.load_state_dict(state)
        except KeyError as e:
            raise ValueError(f"{path}: checkpoint without field {e.args[0]!r} (damaged, or written by another "
                             "version of parallel_rl)") from None  # fmt: skip
        step = self.scheduler.env_steps * self.engine.transitions_per_iteration
        if not self.dist.is_main:
            return None
        print(f"resumed from {path} at env step {step}", file=sys.stderr)
        dropped = truncate_logs(run_dir, step)
        if dropped:
            print(f"resume: dropped the rows logged after env step {step} (this run logs them again): "
                  + ", ".join(f"{n} from {name}" for name, n in dropped.items()), file=sys.stderr)  # fmt: skip
        return step + 1

    def _run(self, run_dir: Path) -> dict[str, Any]:
        cfg, main = self.cfg, self.dist.is_main
        per_iteration = self.engine.transitions_per_iteration
        purge_step = self._resume(run_dir) if cfg.resume else None
        first = int(self.progress["iteration"]) + 1
        checkpointer = Checkpointer(run_dir, cfg.keep_checkpoints, self.progress["best_return"])
        logger: RunLogger | None = None
        sched = self.scheduler
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            extra = {"resolved_device": str(self.device), "world_size": self.dist.world_size}
            write_json(run_dir / "config.json", {**dataclasses.asdict(cfg), **extra})
            logger = RunLogger(open_run_logger(run_dir, cfg, extra=extra, purge_step=purge_step),
                               self.total_iterations * per_iteration,
                               (first - 1) * per_iteration, sched.critic_updates + sched.policy_updates,
                               cfg.progress)  # fmt: skip
        start = time.perf_counter() - self.progress["wall_seconds"]
        last_logged = first - 1
        eval_seconds = 0.0  # excluded from wall_seconds, which is training time
        eval_period = max(1, cfg.eval_every // per_iteration) if cfg.eval_every > 0 else 0
        ckpt_period = max(1, cfg.checkpoint_every // per_iteration) if cfg.checkpoint_every > 0 else 0
        stopped_early = reached_target = False
        signals = StopSignals()
        try:
            with signals:
                for it in range(first, self.total_iterations + 1):
                    self.iteration()
                    self.progress["iteration"] = it
                    if logger is not None:
                        logger.advance(per_iteration)
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
                        updates = sched.critic_updates + sched.policy_updates
                        row = self.metrics()
                        check_finite(row, self.algo.networks(), self.actor.env_nonfinite,
                                     (last_logged * per_iteration, it * per_iteration))  # fmt: skip
                        row.update(logger.throughput(it * per_iteration, updates))
                        row["wall_seconds"] = now - start - eval_seconds
                        self.progress["wall_seconds"] = row["wall_seconds"]
                        if evaluate_now:
                            stats = self.evaluate(during_run=not last)
                            row["eval_return"], row["eval_return_std"] = stats["return_mean"], stats["return_std"]
                            row["eval_episode_length"] = stats["length_mean"]
                            for task, value in stats.get("return_per_task", {}).items():
                                row[f"eval_return/{task}"] = value
                            eval_seconds += time.perf_counter() - now
                            if cfg.stop_at_return is not None and stats["return_mean"] >= cfg.stop_at_return:
                                reached_target = True
                        logger.log(it * per_iteration, updates, row, final=last)
                        if checkpoint_now:
                            ret = row.get("eval_return", row.get("episode_return", math.nan))
                            saved = checkpointer.save_periodic(it * per_iteration, self.state_dict(), ret)
                            self.progress["best_return"] = checkpointer.best_return
                        last_logged = it
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
            self.engine.close()
            if logger is not None:
                logger.close_bar()
        train_seconds = time.perf_counter() - start - eval_seconds
        nets = self.algo.networks()
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
            "critic_params": sum(p.numel() for p in nets["critic"].parameters()),
            "actor_params": sum(p.numel() for p in nets["actor"].parameters()),
        }
        if signals.received is not None and self._end_signals.received is None:
            self._end_signals.received = signals.received  # arrived as the loop ended: not lost
        if not main:
            return summary
        try:  # final.pt first: the trained policy is on disk whatever happens during the evaluation
            ckpt = checkpointer.save_final(self.state_dict())
            end = self._end_signals
            eval_stats = self.evaluate(should_stop=lambda: end.received is not None)
            if eval_stats is None or end.received is not None:
                raise TrainingInterrupted(end.received or signal.SIGTERM, summary["env_steps"], str(ckpt),
                                          during="the final evaluation")  # fmt: skip
        except BaseException:
            logger.close()
            raise
        summary.update({
            "final_eval_return": eval_stats["return_mean"],
            "final_eval_return_std": eval_stats["return_std"],
            "final_eval_episode_length": eval_stats["length_mean"],
            **({"final_eval_return_per_task": eval_stats["return_per_task"]} if "return_per_task" in eval_stats
               else {}),
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
    """The evaluation protocol with one episode per env (``io.evaluation.evaluate_episodes``)."""
    return evaluate_episodes(policy, env, env.spec.num_envs, seed=seed)


def train(cfg: TrainConfig, make_env: EnvFactory) -> dict[str, Any]:
    """Library entry point: build a ``Trainer`` and run it."""
    return Trainer(cfg, make_env).run()
