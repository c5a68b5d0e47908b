"""The built runtime of one run: env, buffers, algorithm, lanes, channels, components, scheduler and mode.

``build_engine`` makes every piece from a config and hands each its dependencies through its constructor; the
``Engine`` then runs iterations in the configured mode and gathers its whole training state. It knows nothing of
run directories, logging, evaluation or signals: the ``Trainer`` (``runtime/trainer.py``) adds those around it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
from tensordict import TensorDict

from parallel_rl.algos import Algorithm, Context, get_algorithm
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import ConfigError, TrainConfig
from parallel_rl.envs import VecEnv
from parallel_rl.envs.multitask import relayout
from parallel_rl.nets import DeployedPolicy
from parallel_rl.nets.task import body_and_head
from parallel_rl.runtime import distributed
from parallel_rl.runtime.accel import GraphedCall, autocast, maybe_compile
from parallel_rl.runtime.components import ActorComponent, PLearner, VLearner
from parallel_rl.runtime.distributed import DistContext
from parallel_rl.runtime.modes import FreeMode, PipelinedMode, SequentialMode, free_bound, free_reserve
from parallel_rl.runtime.scheduler import RatioScheduler
from parallel_rl.runtime.streams import Channel, Lane, alias_module

ALIAS_IN_SEQUENTIAL = True
"""Sequential mode lets a reader share its source's storage where the algorithm allows it (``Shared.may_alias``)
and the writer publishes after every update; tests switch it off to check that this changes no number."""

EnvFactory = Callable[[int, torch.device, int], VecEnv]
"""(num_envs, device, seed) -> VecEnv. The runtime never imports task code; launchers pass this in."""

ROLES = ("actor", "vlearner", "plearner")


def algo_context(cfg: TrainConfig, spec, device: torch.device, dist: DistContext, seed: int) -> Context:
    """The runtime's machinery as an algorithm sees it (``algos.base.Context``)."""
    speed = cfg.speed
    sync = all_reduce = None
    if dist.enabled:
        averagers = {role: distributed.grad_averager(dist, role) for role in ("vlearner", "plearner")}

        def sync(role, params):
            averagers[role](params)

        def all_reduce(role, tensor):
            return distributed.all_reduce_sum_(tensor, dist, role)

    return Context(
        spec=spec, device=device, seed=seed, autocast=lambda: autocast(device, speed),
        compile=lambda fn: maybe_compile(fn, speed), graph=lambda fn: GraphedCall(fn, enabled=speed.cuda_graphs),
        capturable=speed.cuda_graphs, sync_grads=sync, all_reduce_sum=all_reduce,
        closed_form=speed.closed_form_grads and device.type == "cpu" and not speed.compile and not speed.bf16,
    )  # fmt: skip


def make_buffers(
    cfg: TrainConfig, spec, device: torch.device, seed: int, env_groups: list[int] | None = None
) -> tuple[ReplayBuffer, ReplayBuffer | None]:
    """The training buffer and, with ``--td-validation-envs``, the held-out validation buffer of the last envs.
    ``env_groups`` (sizes of a multi-task env's contiguous task blocks) make sampling task-balanced."""
    hp = cfg.agent
    storage = torch.bfloat16 if cfg.buffer.storage_dtype == "bfloat16" else torch.float32
    held_out = cfg.td_validation_envs
    train_envs = spec.num_envs - held_out
    buffer = ReplayBuffer(
        train_envs, spec.obs_dim, spec.act_dim, cfg.buffer.buffer_size * train_envs // spec.num_envs, device,
        critic_obs_dim=spec.critic_obs_dim, storage_dtype=storage, n_step=hp.n_step, gamma=hp.gamma, seed=seed + 1,
        env_groups=env_groups,
        sampling=cfg.buffer.sampling,
    )  # fmt: skip
    val_buffer = None
    if held_out:
        val_buffer = ReplayBuffer(
            held_out, spec.obs_dim, spec.act_dim, max(cfg.buffer.buffer_size * held_out // spec.num_envs,
                                                      (hp.n_step + 2) * held_out),
            device, critic_obs_dim=spec.critic_obs_dim, storage_dtype=storage, n_step=hp.n_step, gamma=hp.gamma,
            seed=seed + 5, sampling=cfg.buffer.sampling,
        )  # fmt: skip
    return buffer, val_buffer


class Engine:
    """Env, buffers, algorithm, components, channels, scheduler and mode of one run, already built and wired."""

    def __init__(
        self,
        cfg: TrainConfig,
        env: VecEnv,
        algo: Algorithm,
        buffer: ReplayBuffer,
        val_buffer: ReplayBuffer | None,
        actor: ActorComponent,
        vlearner: VLearner,
        plearner: PLearner,
        publishes: dict[str, list[Channel]],
        scheduler: RatioScheduler,
        dist: DistContext,
        diag_seed: int,
    ) -> None:
        self.cfg, self.env, self.algo, self.buffer, self.val_buffer = cfg, env, algo, buffer, val_buffer
        self.actor, self.vlearner, self.plearner = actor, vlearner, plearner
        self.publishes, self.scheduler, self.dist = publishes, scheduler, dist
        self.device = buffer.device
        self.channels = [c for role in ("actor", "plearner", "vlearner") for c in publishes[role]]
        s = cfg.schedule
        if s.mode == "sequential":
            self.mode = SequentialMode(self)
        elif s.mode == "pipelined":
            self.mode = PipelinedMode(self, serial=s.pipeline_serial)
        else:
            self.mode = FreeMode(self)
        self._diag_generator = torch.Generator(device=self.device)
        self._diag_generator.manual_seed(diag_seed)

    @property
    def transitions_per_iteration(self) -> int:
        """Transitions per vectorized env step over all ranks."""
        return self.cfg.num_envs * self.dist.world_size

    # ---- the schedule -----------------------------------------------------------------------------------------
    def iteration(self) -> None:
        """One vectorized env step and the learner work the mode runs with it (see ``runtime.modes``), then a network
        reset when one is due (``--reset-every``)."""
        self.mode.iteration()
        s = self.cfg.schedule
        if s.reset_every > 0 and self.scheduler.env_steps % s.reset_every == 0:
            self.mode.quiesce()
            self.algo.reset_networks(s.reset_layers, s.reset_shrink)
            for channel in self.channels:  # every replica sees the reset networks before the next step
                channel.publish()
                channel.pull()

    def finish(self) -> None:
        """Let the learners complete the updates due for the env steps taken (pipelined and free modes lag)."""
        self.mode.finish()

    def close(self) -> None:
        self.mode.close()

    # ---- the policy ---------------------------------------------------------------------------------------------
    def actor_policy_replica(self) -> torch.nn.Module:
        """The actor role's copy of the deployed policy (what rollouts use; never mid-update in another lane)."""
        policy = self.algo.deployed_modules()[1]
        return next(s.replica for s in self.algo.shared() if s.source is policy and s.reader == "actor")

    def deployed_policy(self, during_run: bool = False) -> DeployedPolicy:
        """Raw obs -> env action. ``during_run`` uses the actor's replica of the policy: in concurrent modes the
        trained policy may be mid-update in another lane."""
        low, high = self.env.spec.action_bounds(self.device)
        normalizer, trained = self.algo.deployed_modules()
        return DeployedPolicy(normalizer, self.actor_policy_replica() if during_run else trained, low, high).eval()

    # ---- metrics ------------------------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        world = self.dist.world_size  # an update of every rank uses world x batch_size samples
        out = self.scheduler.realised(self.cfg.num_envs * world, self.cfg.buffer.batch_size * world)
        if self.cfg.schedule.reset_every > 0:  # resets so far (a function of the env steps: resumes agree)
            out["resets"] = float(self.scheduler.env_steps // self.cfg.schedule.reset_every)
        out.update(self.actor.pop_episode_stats())
        if hasattr(self.env, "pop_task_episode_stats"):  # multi-task envs: episode_return/<task>, ...
            out.update(self.env.pop_task_episode_stats())
        out.update(self.vlearner.metrics.pop())
        out.update(self.plearner.metrics.pop())
        out.update(self.mode.wait_metrics())
        out.update(self.td_diagnostics())
        return out

    @torch.no_grad()
    def td_diagnostics(self) -> dict[str, float]:
        """TD-overfitting diagnostics (``--td-validation-envs``): the critic loss (``algo.critic_loss``) on a
        training batch and on a held-out validation batch, and parameter norms. A validation loss that grows while
        the training loss falls is the signature of TD overfitting at high UTD. Training's RNG is left untouched."""
        if self.val_buffer is None or self.val_buffer.extends < 2 or self.buffer.extends < 2:
            return {}
        if self.cfg.schedule.mode == "free":
            self.mode.quiesce()  # learner threads must not update the networks while they are read
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

    # ---- state --------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The whole training state (after ``mode.quiesce``): algorithm, components, channels, mode, env (when it
        can save itself), scheduler and optionally the buffers."""
        self.mode.quiesce()
        keep_buffer = self.cfg.checkpoint_buffer
        return {
            "algo": self.algo.state_dict(),
            "actor_state": self.actor.state_dict(),
            "vlearner_state": self.vlearner.state_dict(),
            "plearner_state": self.plearner.state_dict(),
            "channels": [c.state_dict() for c in self.channels],
            "runtime": self.mode.state_dict(),
            "env": self.env.state_dict() if hasattr(self.env, "state_dict") else None,
            "buffer": self.buffer.state_dict() if keep_buffer else None,
            "val_buffer": self.val_buffer.state_dict() if keep_buffer and self.val_buffer else None,
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
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
        self.mode.load_state_dict(state["runtime"])


def build_engine(
    cfg: TrainConfig,
    make_env: EnvFactory,
    device: torch.device,
    dist: DistContext,
    init_from: dict[str, Any] | None = None,
) -> Engine:
    """Build and wire every piece of a run (``dist`` already initialised, ``device`` resolved). ``init_from``: a
    loaded checkpoint whose network weights the algorithm starts from (``--init-from``, ``init_networks``)."""
    hp, s = cfg.agent, cfg.schedule
    torch.manual_seed(cfg.seed)  # the same network initialisation on every rank
    rank_seed = cfg.seed + dist.rank * distributed.RANK_SEED_STRIDE
    env = make_env(cfg.num_envs, device, rank_seed)
    spec = env.spec
    if spec.num_envs != cfg.num_envs:
        raise ValueError(f"env factory made {spec.num_envs} envs, config asks for {cfg.num_envs}")
    algo: Algorithm = get_algorithm(cfg.algo)(hp, algo_context(cfg, spec, device, dist, rank_seed + 2))
    if init_from is not None:
        init_networks(algo, init_from, spec.task_names, cfg.freeze)
    groups = getattr(env, "counts", None) if cfg.buffer.task_balanced_sampling else None
    buffer, val_buffer = make_buffers(cfg, spec, device, rank_seed, groups)
    shared = algo.shared()
    if dist.enabled:
        for module in algo.networks().values():
            distributed.broadcast_module_(module, dist)
        for item in shared:  # replicas start from the broadcast weights
            TensorDict.from_module(item.replica).data.update_(TensorDict.from_module(item.source).data)
    # Lanes and channels: each reader role reads its own replica, refreshed by the writer role's publish.
    concurrent = s.mode == "free" or (s.mode == "pipelined" and not s.pipeline_serial)
    deferred = s.mode == "pipelined"
    lanes = {role: Lane(device, role, concurrent) for role in ROLES}
    actor = ActorComponent(env, algo, buffer, rank_seed + 2, lanes["actor"], val_buffer=val_buffer)
    bs = cfg.buffer.batch_size
    vlearner = VLearner(algo, buffer, bs, lanes["vlearner"], rank_seed + 3, cfg.speed, val_buffer=val_buffer)
    # Free mode has no fixed order to replay the V-learner's draws in; pipelined mode replays them with
    # ``Learner.sample``, which does not draw the validation batch an algorithm like VPL takes beside each batch.
    replayable = s.mode == "sequential" or (
        s.mode == "pipelined" and not getattr(algo, "needs_validation_batch", False)
    )
    reuse = algo.reuse_critic_batch and replayable
    plearner = PLearner(algo, buffer, bs, lanes["plearner"], rank_seed + 4, cfg.speed, reuse=reuse)
    components = {"actor": actor, "vlearner": vlearner, "plearner": plearner}
    publishes: dict[str, list[Channel]] = {role: [] for role in ROLES}
    intervals = {"actor": 1, "vlearner": s.critic_publish_interval, "plearner": s.policy_publish_interval}
    aliased = []
    for item in shared:
        if s.mode == "sequential" and item.may_alias and intervals[item.writer] == 1 and ALIAS_IN_SEQUENTIAL:
            # Published after every write and nothing concurrent: the reader may read the source itself.
            alias_module(item.replica, item.source)
            aliased.append(item.name)
            continue
        channel = Channel(TensorDict.from_module(item.source).data, lanes[item.writer], lanes[item.reader],
                          TensorDict.from_module(item.replica).data, deferred)  # fmt: skip
        publishes[item.writer].append(channel)
        components[item.reader].inputs.append(channel)
    if s.mode != "sequential":
        # Learners sample published views of the buffer, never its live write positions.
        if s.mode == "pipelined":
            reserve = 2  # the actor's one step ahead writes at most a transition row and a final row
        else:
            reserve = free_reserve(s.utd, s.policy_ratio, free_bound(s.utd, s.policy_ratio, s.free_bound))
        if reserve > buffer.max_reserve():
            raise ConfigError(
                f"--buffer-size: free mode needs {reserve + hp.n_step + 2} rows per env (the actor may run "
                f"{reserve // 2} steps ahead of a learner), the buffer has {buffer.rows_per_env}; raise "
                f"--buffer-size to >= {(reserve + hp.n_step + 2) * cfg.num_envs} or lower --free-bound"
            )
        for learner in (vlearner, plearner):
            view = Channel(buffer.view_source(), lanes["actor"], learner.lane, deferred=deferred)
            learner.use_view(view, reserve)
            publishes["actor"].append(view)
        if vlearner.val_buffer is not None:  # VPL's validation batches, from published views too
            view = Channel(val_buffer.view_source(), lanes["actor"], vlearner.lane, deferred=deferred)
            vlearner.use_validation_view(view)
            publishes["actor"].append(view)
    scheduler = RatioScheduler(s.utd, s.policy_ratio, s.learning_starts, stabilize_every=s.stabilize_every,
                               stabilize_updates=s.stabilize_updates)  # fmt: skip
    engine = Engine(cfg, env, algo, buffer, val_buffer, actor, vlearner, plearner, publishes, scheduler, dist,
                    diag_seed=rank_seed + 6)  # fmt: skip
    engine.aliased = aliased  # the shared groups read in place (no channel), for tests and tools
    return engine


def transfer_env_factory(make_env: EnvFactory, ckpt: dict[str, Any], task: str) -> EnvFactory:
    """``--init-from`` a multi-task checkpoint: this run's task(s) presented in that model's layout (padded to its
    dimensions, its tasks keeping their ids, new tasks appended). Other checkpoints: ``make_env`` unchanged."""
    spec = ckpt["policy_spec"]
    if not spec.get("task_names"):
        return make_env

    def make(num_envs: int, device: torch.device, seed: int) -> VecEnv:
        try:
            return relayout(make_env(num_envs, device, seed), spec, task)
        except ValueError as e:
            raise ConfigError(f"--init-from: {e}") from None

    return make


def init_networks(algo: Algorithm, ckpt: dict[str, Any], task_names: tuple[str, ...], freeze: tuple[str, ...]) -> None:
    """Start actor and critic from a checkpoint's weights (``--init-from``), then freeze the ``freeze`` groups.

    Tasks are matched by name: a task of this run that the checkpoint was trained on keeps its embedding row, a
    new task keeps its fresh one. Normalizers, optimizers, counters and buffer start fresh as in any new run (a new
    task's observations have their own statistics). Replicas and target networks are made copies again."""
    saved_names = list(ckpt["policy_spec"].get("task_names") or [])
    rows = [saved_names.index(n) if n in saved_names else -1 for n in task_names]
    saved = ckpt.get("algo") or {}
    if "critic" not in saved:
        raise ConfigError("--init-from: the checkpoint holds no critic weights (its algorithm state has no 'critic')")
    nets = algo.networks()
    for name, state in (("actor", saved.get("actor", ckpt["actor"])), ("critic", saved["critic"])):
        own = nets[name].state_dict()
        for key, value in state.items():
            if key not in own:
                raise ConfigError(f"--init-from: the checkpoint's {name} has {key!r}, this run's has not (the same "
                                  "task kind, network sizes and --task-embedding-dim are needed)")  # fmt: skip
            if key.endswith("encoder.embedding") or key.endswith("_mask"):
                continue  # rows matched by task name below; masks follow this run's tasks
            if key.endswith("support") and (own[key].shape != value.shape or not torch.equal(own[key], value)):
                raise ConfigError(
                    f"--init-from: the checkpoint's critic support is [{value[0]:g}, {value[-1]:g}] "
                    f"with {value.numel()} atoms; use the same --v-min, --v-max, --num-atoms"
                )
            if own[key].shape != value.shape:
                raise ConfigError(
                    f"--init-from: {name} {key} has shape {tuple(value.shape)} in the checkpoint, "
                    f"{tuple(own[key].shape)} here (network sizes, atoms and critics must match)"
                )
            own[key].copy_(value)
        encoder = getattr(nets[name], "encoder", None)
        if encoder is not None and encoder.embedding_dim > 0:
            if state["encoder.embedding"].shape[-1] != encoder.embedding_dim:
                raise ConfigError("--init-from: --task-embedding-dim differs from the checkpoint's")
            encoder.load_rows_from({"embedding": state["encoder.embedding"]}, rows)
        elif encoder is not None and -1 in rows:
            raise ConfigError("--init-from: a new task needs a learnable embedding (--task-embedding-dim > 0); a "
                              "one-hot id cannot grow")  # fmt: skip
    refresh_network_copies(algo)
    for group in freeze:
        module = nets["actor"] if group.startswith("actor") else nets["critic"]
        if group.endswith("_body"):
            params = body_and_head(module)[0]
        else:
            params = [p for n, p in module.named_parameters() if not n.endswith("encoder.embedding")]
        for p in params:
            p.requires_grad_(False)


def refresh_network_copies(algo: Algorithm) -> None:
    """After weights were written into ``algo.networks()``: every replica (``algo.shared()``) and every target
    network (an algorithm attribute named ``*target*`` with a network's structure) becomes a copy again."""
    for item in algo.shared():
        TensorDict.from_module(item.replica).data.update_(TensorDict.from_module(item.source).data)
    nets = list(algo.networks().values())
    for attr, module in vars(algo).items():
        if "target" not in attr or not isinstance(module, torch.nn.Module):
            continue
        shapes = {k: v.shape for k, v in module.state_dict().items()}
        for net in nets:
            if {k: v.shape for k, v in net.state_dict().items()} == shapes:
                module.load_state_dict(net.state_dict())
                break


def total_iterations(cfg: TrainConfig, world_size: int) -> int:
    """Vectorized env steps of a run: ``total_env_steps`` counts transitions over all ranks."""
    return math.ceil(cfg.total_env_steps / (cfg.num_envs * world_size))
