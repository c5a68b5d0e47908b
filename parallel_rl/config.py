"""The dataclasses a run is made of. tyro turns the field docstrings into ``--help``; every field is a flag.

Nested sections are flattened on the command line (``--utd``, not ``--schedule.utd``), so field names are unique
across sections.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

AlgoName = Literal["fasttd3", "pql", "dac", "dea", "vpl", "fastsac", "crossq"]
"""Values of ``--algo``: the keys of ``parallel_rl.algos.ALGORITHMS`` (a test keeps the two equal)."""
ALGOS: tuple[str, ...] = get_args(AlgoName)


@dataclass(frozen=True)
class AgentConfig:
    """Networks and update hyperparameters (shared by FastTD3 and PQL; a few fields apply to one of them)."""

    gamma: float = 0.99
    """Discount factor; used by the n-step targets too."""
    n_step: int = 1
    """Steps summed into the return before bootstrapping (stops at episode ends)."""
    tau: float = 0.1
    """Soft target update rate of the critic target: target += tau * (critic - target)."""
    critic_lr: float = 3e-4
    """AdamW learning rate of the critic."""
    actor_lr: float = 3e-4
    """AdamW learning rate of the actor."""
    weight_decay: float = 0.1
    """AdamW weight decay of both networks."""
    max_grad_norm: float = 0.0
    """Clip gradients to this global norm; 0 disables clipping."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of each critic."""
    actor_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor."""
    activation: Literal["relu", "elu", "silu", "tanh"] = "relu"
    """Hidden activation of both networks."""
    num_critics: int = 2
    """Critics in the ensemble; the target uses the member with the lowest mean (clipped double-Q)."""
    num_atoms: int = 101
    """C51 atoms; 1 selects a scalar critic trained by squared TD error."""
    v_min: float = -10.0
    """Lowest value of the C51 support (in units of scaled return)."""
    v_max: float = 10.0
    """Highest value of the C51 support."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before they are stored; choose it so returns fit in [v_min, v_max]."""
    std_min: float = 0.001
    """Smallest exploration noise std (actions in [-1, 1])."""
    std_max: float = 0.4
    """Largest exploration noise std. FastTD3 redraws each env's std from U[std_min, std_max] at its episode end;
    PQL fixes env i's std to linspace(std_min, std_max)[i]."""
    target_noise: float = 0.001
    """Target policy smoothing noise std (0 disables it)."""
    target_noise_clip: float = 0.5
    """Clip of the target policy smoothing noise."""
    normalize_obs: bool = True
    """Normalize observations with running statistics gathered from rollouts."""
    critic_arch: Literal["mlp", "bronet", "simbav2", "normed"] = "mlp"
    """Network family of each critic (``nets.families``; every algorithm but crossq): the plain MLP, BRO's BroNet
    (residual LayerNorm blocks), SimbaV2 (hyperspherical normalization, weights projected to unit norm after each
    step) or the bounded-norm FlashSAC/XQC family (batch/RMS normalization plus unit-norm weights; see
    --normed-norm)."""
    critic_width: int | None = None
    """Hidden width of the critic family (default: the MLP's --critic-hidden, else the family's published width:
    bronet 512, simbav2 512, normed 256)."""
    critic_depth: int | None = None
    """Hidden layers (mlp) or residual blocks (families) of the critic (default: as --critic-hidden for mlp, else
    bronet 2, simbav2 2, normed 2)."""
    actor_arch: Literal["mlp", "bronet", "simbav2", "normed"] = "mlp"
    """Network family of the actor (see --critic-arch; the deterministic actors: not fastsac, crossq); the deployed
    and exported policy uses it too."""
    actor_width: int | None = None
    """Hidden width of the actor family (default: --actor-hidden for mlp, else bronet 256, simbav2 128, normed
    128)."""
    actor_depth: int | None = None
    """Hidden layers or residual blocks of the actor (default: as --actor-hidden for mlp, else bronet 1, simbav2 1,
    normed 2)."""
    normed_norm: Literal["batch", "renorm", "rms"] = "batch"
    """Normalization of the 'normed' family: batch norm (FlashSAC), batch renormalization (CrossQ/XQC) or RMS norm
    (no batch statistics)."""
    dea_kappa_critic_init: float = -1.0
    """DEA: initial critic-side coefficient of the target mean + kappa x disagreement (-1 = clipped double-Q for two
    critics)."""
    dea_kappa_actor_init: float = 0.0
    """DEA: initial actor-side coefficient of the policy objective mean + kappa x disagreement."""
    dea_lr: float = 3e-4
    """DEA: Adam learning rate of the two directional coefficients."""
    vpl_beta_init: float = 1.0
    """VPL: initial pessimism of the target mean - beta x disagreement (1 = clipped double-Q for two critics)."""
    vpl_lr: float = 3e-4
    """VPL: Adam learning rate of the pessimism, fitted on validation batches (--td-validation-envs)."""
    dac_pessimism: float = 1.0
    """DAC: beta_lb of the conservative actor's lower bound mean - beta_lb x disagreement."""
    dac_kl_target: float = 0.05
    """DAC: KL per action dimension between the optimistic and conservative policies that the adjustments track."""
    dac_optimism_init: float = 1.0
    """DAC: initial optimism beta_ub of the optimistic actor's upper bound mean + beta_ub x disagreement."""
    dac_regularizer_init: float = 0.25
    """DAC: initial weight of the KL penalty of the optimistic actor."""
    dac_adjustment_lr: float = 3e-5
    """DAC: Adam learning rate (beta1 0.5) of the optimism and the KL weight."""
    dac_std_multiplier: float = 0.75
    """DAC: exploration noise of the optimistic actor = FastTD3's per-env std x this."""
    dac_shift_init_scale: float = 0.01
    """DAC: scale of the optimistic actor's initial output layer (it starts close to the conservative actor)."""
    actor_q_reduction: Literal["min", "mean"] = "min"
    """How the actor's objective reduces over the critic ensemble: the smallest expected Q (FastTD3's reference
    with use_cdq, PQL, CrossQ) or their mean (holosoma's FastSAC)."""
    action_l2: float = 0.0
    """fasttd3, pql, dac, vpl (the algorithms whose policy loss is ``common.td3_actor_loss``; refused elsewhere):
    weight of a penalty on the squared actions (in [-1, 1], mean over batch and action dims) added to
    the deterministic policy loss, as HER's DDPG does (Andrychowicz et al. 2017, ``action_l2`` = 1 there). It keeps
    the tanh from settling at the action bound, where it passes almost no gradient. 0 (default): FastTD3's and
    PQL's references, which have no such term."""
    # ---- SAC family (fastsac, crossq) -----------------------------------------------------------------------------
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """fastsac, crossq: AdamW betas of the actor and the critic (holosoma's FastSAC (0.9, 0.95); CrossQ (0.5,
    0.999))."""
    alpha_lr: float = 3e-4
    """fastsac, crossq: learning rate of the entropy temperature's optimizer (on log alpha)."""
    alpha_init: float = 0.001
    """fastsac, crossq: initial entropy temperature alpha (holosoma's FastSAC 0.001; SAC and CrossQ 1.0)."""
    target_entropy_ratio: float = 0.0
    """fastsac, crossq: the temperature tunes the policy's entropy towards -act_dim * target_entropy_ratio
    (holosoma's FastSAC 0, i.e. a target of 0 nats; SAC and CrossQ 1, i.e. -act_dim)."""
    log_std_min: float = -5.0
    """fastsac, crossq: lower bound of the Gaussian policy's log-std (holosoma -5; CrossQ -20)."""
    log_std_max: float = 0.0
    """fastsac, crossq: upper bound of the Gaussian policy's log-std (holosoma 0; CrossQ 2)."""
    layer_norm: bool = False
    """fastsac: LayerNorm after every hidden linear layer of the actor and the critic (holosoma's FastSAC)."""
    sac_target: Literal["per_member", "min"] = "per_member"
    """fastsac: each critic member's soft target comes from its own target network ('per_member', holosoma), or
    every member learns the target of the member with the lowest (expected) next value ('min', clipped double-Q)."""
    bn_momentum: float = 0.99
    """crossq: batch renormalization's running statistics move as running = m * running + (1 - m) * batch."""
    brn_warmup_steps: int = 100_000
    """crossq: training passes of each batch renormalization layer that use plain batch statistics before the
    running-statistics correction (r, d) starts (the reference's 100k)."""
    brn_r_max: float = 3.0
    """crossq: batch renormalization clips r to [1/r_max, r_max]."""
    brn_d_max: float = 5.0
    """crossq: batch renormalization clips d to [-d_max, d_max]."""
    weight_norm: bool = True
    """crossq: project every hidden unit's incoming weights to unit norm after each optimizer step (CrossQ + WN)."""
    task_embedding_dim: int = 16
    """Multi-task runs (``--task multi:...``): size of the learnable task embedding that actor and critic each
    concatenate to the normalized observation (BRC); 0 feeds a fixed one-hot task id instead."""
    task_reward_scales: tuple[float, ...] = ()
    """Multi-task runs: a reward scale per task of the model (--task order; with --init-from, the checkpoint's tasks
    then the new ones), applied on top of --reward-scale, so that every task's returns fit the shared value support
    [v_min, v_max]. Empty: 1 for every task."""
    obs_norm: Literal["unclipped", "clipped"] = "unclipped"
    """Observation normalization formula. 'unclipped': (x - mean) / (std + 0.01), FastTD3's reference
    (EmpiricalNormalization); 'clipped': (x - mean) / sqrt(var + 1e-8), clipped to [-10, 10]."""
    actor_init_scale: float = 0.01
    """Std of the normal initialization of the actor's output layer weights, bias zero (FastTD3's init_scale:
    initial actions near 0). 0 keeps PyTorch's default initialization (PQL's reference)."""
    clip_stored_actions: bool = False
    """Store exploration actions clipped to [-1, 1]. Off (FastTD3's reference): the buffer stores mean + noise
    unclipped and only the action sent to the env is clipped to its bounds."""
    actor_batch: Literal["critic", "own"] = "critic"
    """Batch of each policy update. 'critic': the batch of the critic update it follows (FastTD3's reference; in
    pipelined mode the P-learner redraws it with the V-learner's generator state); 'own': a batch of its own.
    Free mode always samples its own (the learners' interleaving is not fixed)."""
    cdq_pick: Literal["projected", "unprojected"] = "projected"
    """C51 clipped double-Q: take the target distribution of the member whose *projected* target has the lower
    mean (FastTD3's reference), or whose unprojected next-state distribution has the lower mean. They differ only
    when the support clamps the shifted atoms."""
    reward_normalization: Literal["none", "brc"] = "none"
    """Adaptive per-task reward normalization. 'brc' (BRC, Nauman et al. 2025): when a batch is sampled, each
    task's rewards are multiplied by v_max / M_k, M_k the largest |discounted return-to-go| (truncated episodes
    bootstrapped by their mean reward) over every step of the task's finished training episodes, so every task's
    values span [-v_max, v_max] of one support (needs --v-min <= -v_max). TD3 family (fasttd3, pql, dac, dea,
    vpl), one rank. See docs/algorithms.md."""


@dataclass(frozen=True)
class ScheduleConfig:
    """How often each component works, as exact ratios."""

    utd: float = 1.0
    """V-learner (critic) updates per vectorized env step; fractional values allowed (0.25 = one every 4 steps)."""
    policy_ratio: float = 0.5
    """P-learner (actor) updates per V-learner update (0.5 = TD3's delayed policy updates)."""
    learning_starts: int = 10
    """Vectorized env steps collected before the learners start (at least 2)."""
    policy_publish_interval: int = 1
    """P-learner updates between copies of the policy to the actor and the V-learner."""
    critic_publish_interval: int = 1
    """V-learner updates between copies of the critic to the P-learner."""
    stabilize_every: int = 0
    """SPEQ: learning env steps between offline stabilization phases (0: none). A phase runs --stabilize-updates
    critic-only updates on the buffer with no env step; they count in the realised UTD and sigma. SPEQ's published
    schedule is UTD 1 online and 75,000 updates every 10,000 single-env steps. Sequential mode only."""
    stabilize_updates: int = 0
    """SPEQ: critic updates per stabilization phase."""
    reset_every: int = 0
    """Reset the networks every this many vectorized env steps (0: never): parameters re-initialized (or shrunk and
    perturbed, --reset-shrink) and their optimizer state zeroed; buffer, normalizers and counters are kept.
    Sequential mode only."""
    reset_layers: Literal["all", "last"] = "all"
    """Which layers a reset touches: all of every network, or only each network's output layer."""
    reset_shrink: float = 0.0
    """Shrink-and-perturb factor: reset parameters = shrink x current + (1 - shrink) x fresh (0: full reset)."""
    mode: Literal["sequential", "pipelined", "free"] = "sequential"
    """How the actor, V-learner and P-learner are interleaved. 'sequential': the reference order, one after the
    other. 'pipelined': each iteration the learners train on data up to env step t-1 and on parameters published
    at the previous iteration while the actor produces step t, concurrently (CUDA streams; threads on a CPU);
    deterministic, and equal to --pipeline-serial. 'free': each component runs as fast as it can in its own
    thread; critic updates stay within --free-bound of utd x env steps."""
    pipeline_serial: bool = False
    """Pipelined mode only: run the pipelined schedule's three parts one after the other (the reference that the
    concurrent pipelined run equals bit for bit)."""
    free_bound: int = 0
    """Free mode only: critic updates stay within +-free_bound of utd x learning env steps, and policy updates
    within +-free_bound of policy_ratio x critic updates. At least ceil(utd) and ceil(policy_ratio) (one step's
    worth); 0 picks max(2, ceil(utd), ceil(policy_ratio))."""


@dataclass(frozen=True)
class BufferConfig:
    """Replay storage."""

    buffer_size: int = 1_000_000
    """Global capacity in transitions, split evenly into one circular stream per env."""
    batch_size: int = 256
    """Transitions per learner update."""
    storage_dtype: Literal["float32", "bfloat16"] = "float32"
    """Storage type of observations in the buffer (bfloat16 halves their memory)."""
    task_balanced_sampling: bool = False
    """Multi-task runs: draw each sample's task uniformly, then an env of that task, then a row (default: env
    uniformly, so tasks are sampled in proportion to their envs, i.e. to --task-weights)."""
    sampling: Literal["per_env", "uniform"] = "per_env"
    """'per_env': every batch takes max(1, batch_size // num_envs) rows from every env (FastTD3's reference; the
    batch then holds that times num_envs transitions); 'uniform': each row picks its env uniformly at random."""


@dataclass(frozen=True)
class SpeedConfig:
    """Options that change speed, not the algorithm (each has a parity test against the plain eager path)."""

    cuda_graphs: bool = False
    """Capture the V-learner update, the P-learner update and the actor's policy step as CUDA graphs (CUDA only)."""
    compile: bool = False
    """torch.compile the critic and actor losses (not together with --cuda-graphs)."""
    bf16: bool = False
    """bfloat16 autocast for the learners' forward passes (weights, optimizer state and targets stay float32).
    On a CPU only where it has native bf16 matmuls (AVX512-BF16 or AMX; there it measured 1.3x to 2.6x faster than
    float32), unless --cpu-bf16."""
    cpu_bf16: bool = False
    """Allow --bf16 on a CPU without native bf16 matmuls anyway (e.g. to test numerics), with a warning: there bf16
    autocast was measured 15x (256-unit networks) to 29x (FastTD3's networks) slower than float32."""
    tf32: bool = False
    """Allow TF32 matmuls on Ampere+ GPUs."""
    closed_form_grads: bool = True
    """On a CPU without --compile/--bf16: compute the TD3-family losses' gradients in closed form for plain ReLU
    networks (parallel_rl/algos/closed_form.py; the same values as autograd, whose bookkeeping cost about 9 % of
    loss plus backward at 256 units). Off: autograd everywhere."""
    keep_cpu_memory: bool = True
    """On a CPU (Linux, glibc): keep freed memory in the process instead of unmapping every large block when it is
    freed (``parallel_rl.memory``); at FastTD3's sizes this removed about 28,700 page faults per critic update. The
    process then keeps its peak heap; turn off to restore glibc's defaults."""


@dataclass(frozen=True)
class LoggingConfig:
    """Where metrics go besides metrics.csv (always written) and what is recorded about the run."""

    tensorboard: bool = True
    """Write TensorBoard event files (scalars and the hyperparameters) under <run_dir>/tensorboard."""
    wandb: bool = False
    """Also log to Weights & Biases (pip install 'parallel-rl[wandb]'); its files go under <run_dir>/wandb."""
    wandb_project: str = "parallel_rl"
    """W&B project."""
    wandb_entity: str | None = None
    """W&B entity (user or team); default: your W&B default entity."""
    wandb_group: str | None = None
    """W&B group, e.g. one per sweep or per seed set."""
    wandb_mode: Literal["online", "offline"] = "online"
    """'offline' writes the W&B run locally only (upload later with `wandb sync <run_dir>/wandb/offline-run-*`)."""
    record_code_version: bool = True
    """Record the git commit and the uncommitted diff of the code in code_version.json and code.diff."""


@dataclass(frozen=True)
class TrainConfig:
    """Train an off-policy agent on a vectorized task."""

    task: str = "pendulum"
    """Task name from the registry (see --help of tasks, or `python -m launch.train --task list`)."""
    algo: AlgoName = "fasttd3"
    """Algorithm."""
    preset: str = "default"
    """Named preset of (task, algo) whose values become the defaults; any flag still overrides them."""
    seed: int = 0
    """Seed of envs, networks, exploration and replay sampling."""
    device: str = "auto"
    """'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    num_envs: int = 64
    """Parallel environments stepped together."""
    total_env_steps: int = 20_000
    """Training length in transitions (vectorized steps x num_envs)."""
    run_dir: str | None = None
    """Run directory; default runs/<task>-<algo>-seed<seed>-<time>."""
    eval_envs: int = 64
    """Environments for the final deterministic evaluation (one episode each)."""
    log_every: int = 50
    """Vectorized env steps between metric rows."""
    eval_every: int = 0
    """Transitions (env steps x num_envs) between deterministic evaluations logged as ``eval_return`` in
    metrics.csv (0: only the final evaluation). Benchmarks and scaling sweeps read these rows."""
    max_wall_seconds: float = 0.0
    """Stop training after this many seconds of wall-clock (0: no limit); the run still evaluates and saves."""
    td_validation_envs: int = 0
    """TD-overfitting diagnostics: this many envs feed a held-out validation buffer (same policy and task, never
    trained on); each metrics row then has the TD loss on a validation batch beside the same loss on a training
    batch, and the critic's and actor's parameter norms. 0 disables them."""
    stop_at_return: float | None = None
    """Stop training once a periodic evaluation (--eval-every) reaches this return (sweeps stop paying for runs
    that already crossed their highest threshold)."""
    checkpoint_every: int = 0
    """Transitions between full checkpoints (networks, optimizers, RNGs, counters; 0: only the final one)."""
    keep_checkpoints: int = 3
    """Periodic checkpoints kept (the newest ones); best.pt (highest return when saved) is kept besides."""
    checkpoint_buffer: bool = False
    """Include the replay buffer in checkpoints (large; needed for a resume that continues bit for bit)."""
    resume: str | None = None
    """Resume from a checkpoint file, or 'latest' (the newest under <run-dir>/checkpoints; needs --run-dir)."""
    overwrite: bool = False
    """Replace the run already in --run-dir (its logs, checkpoints and TensorBoard files are deleted). Without it
    (or --resume) a run directory that holds a run is refused, so two runs never mix."""
    progress: bool = True
    """Show a progress bar."""
    torch_threads: int = 0
    """CPU threads for torch. 0 chooses from the cores this process may use (CPU affinity and cgroup quota, not the
    machine's core count) and the network size: 1 thread when the largest matmul (batch x widths) is below 2**25
    multiply-adds (the default networks), else one per available core. On a machine shared with other jobs use 1
    (or cores / jobs): a parallel region waits for its slowest thread, and a thread sharing a busy core is slow."""
    task_weights: tuple[float, ...] = ()
    """Multi-task runs (``--task multi:a,b,c``): share of the envs (training and evaluation) each task gets, in
    --task order, e.g. ``--task-weights 1 2 2``. Empty: equal shares."""
    init_from: str | None = None
    """Start the networks (and normalizer statistics) from this checkpoint instead of at random, then train as a new
    run (optimizers, counters and buffer start fresh). From a multi-task checkpoint a task it was not trained on
    gets a new task id with a freshly initialized embedding (transfer to a new task)."""
    freeze: tuple[Literal["actor", "critic", "actor_body", "critic_body"], ...] = ()
    """With --init-from: parameter groups kept fixed. 'actor'/'critic': the whole network except its task
    embedding; 'actor_body'/'critic_body': all but the embedding and the output layer."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


class ConfigError(ValueError):
    """A configuration value that cannot work; raised before any training starts."""


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?|mps")
"""Devices a run can use; checked as text so that a typo fails before torch is imported."""


def check_device_name(device: str) -> None:
    if not DEVICE_PATTERN.fullmatch(device):
        raise ConfigError(f"--device: {device!r} is not a device this library trains on{suggest(device, DEVICES)} "
                          f"(valid: auto, cpu, cuda, cuda:N, mps)")  # fmt: skip


DEVICES = ("auto", "cpu", "cuda", "mps")


def _non_finite_fields(cfg: object, prefix: str = "") -> list[tuple[str, float]]:
    """(flag name, value) of every float field of ``cfg`` and its sections that is NaN or infinite."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += _non_finite_fields(value)
        elif isinstance(value, float) and not math.isfinite(value):
            out.append((f.name, value))
    return out


def validate(cfg: TrainConfig) -> None:
    """Fail early, once, naming the field and what would be valid."""

    def bad(name: str, msg: str) -> None:
        raise ConfigError(f"--{name.replace('_', '-')}: {msg}")

    s, b, a = cfg.schedule, cfg.buffer, cfg.agent
    for name, value in _non_finite_fields(cfg):  # NaN passes every comparison below and inf breaks the schedule
        bad(name, f"must be a finite number, got {value}")
    check_device_name(cfg.device)
    if cfg.resume and cfg.overwrite:
        bad("overwrite", "deletes the run that --resume continues; give one of them")
    if cfg.algo not in ALGOS:
        bad("algo", f"unknown algorithm {cfg.algo!r}; valid: {', '.join(ALGOS)}")
    if cfg.torch_threads < 0:
        bad("torch_threads", f"must be >= 0 (0 = chosen from the available cores and the network size), "
                             f"got {cfg.torch_threads}")  # fmt: skip
    if cfg.num_envs < 1:
        bad("num_envs", f"must be >= 1, got {cfg.num_envs}")
    if cfg.eval_envs < 1:
        bad("eval_envs", f"must be >= 1, got {cfg.eval_envs}")
    if not 0 <= cfg.td_validation_envs < cfg.num_envs:
        bad("td_validation_envs", f"must be in [0, num_envs) (some envs must still feed training), "
                                  f"got {cfg.td_validation_envs} of {cfg.num_envs}")  # fmt: skip
    if cfg.checkpoint_every < 0:
        bad("checkpoint_every", f"must be >= 0 (0 = only the final checkpoint), got {cfg.checkpoint_every}")
    if cfg.keep_checkpoints < 1:
        bad("keep_checkpoints", f"must be >= 1, got {cfg.keep_checkpoints}")
    if cfg.resume == "latest" and not cfg.run_dir:
        bad("resume", "'latest' looks in <run-dir>/checkpoints: give --run-dir of the run to resume")
    if cfg.eval_every < 0:
        bad("eval_every", f"must be >= 0 (0 disables periodic evaluation), got {cfg.eval_every}")
    if cfg.stop_at_return is not None and cfg.eval_every <= 0:
        bad("stop_at_return", "needs periodic evaluations: set --eval-every too")
    if cfg.max_wall_seconds < 0:
        bad("max_wall_seconds", f"must be >= 0 (0 = no limit), got {cfg.max_wall_seconds}")
    if cfg.total_env_steps < cfg.num_envs:
        bad("total_env_steps", f"must be >= num_envs ({cfg.num_envs}), got {cfg.total_env_steps}")
    if not s.utd > 0:
        bad("utd", f"must be > 0 (critic updates per env step, e.g. 0.25, 1, 4), got {s.utd}")
    if not s.policy_ratio > 0:
        bad("policy_ratio", f"must be > 0 (actor updates per critic update, e.g. 0.5 or 1), got {s.policy_ratio}")
    if s.learning_starts < 2:
        bad(
            "learning_starts",
            f"must be >= 2 env steps (a transition needs its next observation), got {s.learning_starts}",
        )
    if s.free_bound < 0:
        bad("free_bound", f"must be >= 0 updates (0 = automatic), got {s.free_bound}")
    if s.mode == "free" and 0 < s.free_bound < max(math.ceil(s.utd), math.ceil(s.policy_ratio)):
        bad("free_bound", f"{s.free_bound} is below one step's worth of updates: use >= "
                          f"{max(math.ceil(s.utd), math.ceil(s.policy_ratio))} or 0 for automatic")  # fmt: skip
    if s.stabilize_every < 0 or s.stabilize_updates < 0 or (s.stabilize_every > 0) != (s.stabilize_updates > 0):
        bad("stabilize_every", f"SPEQ phases need both --stabilize-every and --stabilize-updates > 0 (or both 0), "
                               f"got {s.stabilize_every} and {s.stabilize_updates}")  # fmt: skip
    if s.reset_every < 0:
        bad("reset_every", f"must be >= 0 vectorized env steps (0 = never), got {s.reset_every}")
    if not 0.0 <= s.reset_shrink < 1.0:
        bad("reset_shrink", f"must be in [0, 1) (0 = full reset), got {s.reset_shrink}")
    if (s.stabilize_every > 0 or s.reset_every > 0) and s.mode != "sequential":
        bad("mode", "SPEQ stabilization phases and resets run in --mode sequential only")
    if cfg.algo in ("dac", "dea", "vpl") and a.num_critics < 2:
        bad("num_critics", f"{cfg.algo} aggregates an ensemble's disagreement: needs >= 2 critics")
    if cfg.algo == "vpl" and cfg.td_validation_envs < 1:
        bad("td_validation_envs", "vpl fits its pessimism on the validation buffer: needs >= 1 held-out env")
    for side in ("critic", "actor"):
        width, depth = getattr(a, f"{side}_width"), getattr(a, f"{side}_depth")
        if width is not None and width < 1:
            bad(f"{side}_width", f"must be >= 1, got {width}")
        if depth is not None and depth < (1 if getattr(a, f"{side}_arch") == "mlp" else 0):
            bad(f"{side}_depth", f"must be >= 1 for mlp (hidden layers), >= 0 for a family (blocks), got {depth}")
    if cfg.speed.cuda_graphs and cfg.speed.compile:
        bad("cuda_graphs", "choose one of --cuda-graphs and --compile (compiled code is not captured here)")
    if cfg.speed.cuda_graphs and cfg.algo in ("fastsac", "crossq"):
        why = "its P-learner samples actions from a generator it owns, which graph capture may not replay"
        bad("cuda_graphs", f"not supported with --algo {cfg.algo} yet ({why}); drop --cuda-graphs")
    if cfg.speed.bf16 and _runs_on_cpu(cfg.device) and not cpu_has_native_bf16():
        if not cfg.speed.cpu_bf16:
            bad("bf16", f"this CPU has no native bf16 matmuls (AVX512-BF16 or AMX), where bfloat16 autocast makes "
                        f"every update {CPU_BF16_SLOWDOWN} slower than float32: drop --bf16, or add --cpu-bf16 to "
                        "run it anyway")  # fmt: skip
        warnings.warn(f"--bf16 --cpu-bf16: bfloat16 autocast on a CPU without native bf16 matmuls, expect updates "
                      f"{CPU_BF16_SLOWDOWN} slower than float32", stacklevel=2)  # fmt: skip
    if cfg.speed.cuda_graphs and cfg.device == "cpu":
        bad("cuda_graphs", "CUDA graphs need a CUDA device; drop --cuda-graphs on CPU")
    if s.policy_publish_interval < 1 or s.critic_publish_interval < 1:
        bad("policy_publish_interval", "publish intervals must be >= 1")
    if b.batch_size < 1:
        bad("batch_size", f"must be >= 1, got {b.batch_size}")
    if b.buffer_size < cfg.num_envs * (a.n_step + 2):
        bad("buffer_size", f"must hold at least n_step + 2 rows per env: >= {cfg.num_envs * (a.n_step + 2)}, "
                           f"got {b.buffer_size}")  # fmt: skip
    capacity = (b.buffer_size // cfg.num_envs) * cfg.num_envs
    if b.batch_size > capacity:
        bad("batch_size", f"{b.batch_size} is larger than the buffer can hold ({capacity} transitions for "
                          f"buffer_size={b.buffer_size} over {cfg.num_envs} envs); use <= {capacity}")  # fmt: skip
    if a.n_step < 1:
        bad("n_step", f"must be >= 1, got {a.n_step}")
    if not 0 <= a.gamma <= 1:
        bad("gamma", f"must be in [0, 1], got {a.gamma}")
    if not 0 < a.tau <= 1:
        bad("tau", f"must be in (0, 1], got {a.tau}")
    if a.num_atoms < 1:
        bad("num_atoms", f"must be >= 1 (1 = scalar critic), got {a.num_atoms}")
    if a.num_atoms > 1 and not a.v_min < a.v_max:
        bad("v_min", f"must be < v_max, got v_min={a.v_min}, v_max={a.v_max}")
    if a.num_critics < 1:
        bad("num_critics", f"must be >= 1, got {a.num_critics}")
    if cfg.algo in ("fastsac", "crossq") and a.actor_arch != "mlp":
        bad("actor_arch", f"{cfg.algo}'s Gaussian actor is an MLP (--actor-hidden); the network families serve the "
                          f"deterministic actors of fasttd3, pql, dac, dea and vpl")  # fmt: skip
    if cfg.algo == "crossq" and a.critic_arch != "mlp":
        bad("critic_arch", "crossq's critic is its batch-renormalized MLP (--critic-hidden); for a batch- or "
                           "RMS-normalized critic use --critic-arch normed with another algorithm")  # fmt: skip
    if a.actor_init_scale < 0:
        bad("actor_init_scale", f"must be >= 0 (0 = PyTorch's default init), got {a.actor_init_scale}")
    if a.action_l2 < 0:
        bad("action_l2", f"must be >= 0 (0 = no penalty), got {a.action_l2}")
    if a.action_l2 > 0 and cfg.algo in ("fastsac", "crossq", "dea"):  # their policy losses have no such term
        bad("action_l2", f"applies to fasttd3, pql, dac and vpl, not to {cfg.algo} (whose policy loss is its own)")
    if not 0 <= a.std_min <= a.std_max:
        bad("std_min", f"need 0 <= std_min <= std_max, got {a.std_min}, {a.std_max}")
    if a.critic_lr <= 0:
        bad("critic_lr", f"must be > 0, got {a.critic_lr}")
    if a.actor_lr <= 0:
        bad("actor_lr", f"must be > 0, got {a.actor_lr}")
    for name in ("weight_decay", "max_grad_norm", "target_noise", "target_noise_clip"):
        if getattr(a, name) < 0:
            bad(name, f"must be >= 0, got {getattr(a, name)}")
    if not all(0 <= beta < 1 for beta in a.adam_betas):
        bad("adam_betas", f"both betas must be in [0, 1), got {a.adam_betas}")
    if a.alpha_lr <= 0:
        bad("alpha_lr", f"must be > 0, got {a.alpha_lr}")
    if a.alpha_init <= 0:
        bad("alpha_init", f"must be > 0 (the temperature is learned as log alpha), got {a.alpha_init}")
    if not a.log_std_min < a.log_std_max:
        bad("log_std_min", f"must be < log_std_max, got log_std_min={a.log_std_min}, log_std_max={a.log_std_max}")
    if not 0 <= a.bn_momentum < 1:
        bad("bn_momentum", f"must be in [0, 1) (0.99 = slow running statistics), got {a.bn_momentum}")
    if a.brn_warmup_steps < 0:
        bad("brn_warmup_steps", f"must be >= 0, got {a.brn_warmup_steps}")
    if a.brn_r_max < 1:
        bad("brn_r_max", f"must be >= 1 (r is clipped to [1/r_max, r_max]), got {a.brn_r_max}")
    if a.brn_d_max < 0:
        bad("brn_d_max", f"must be >= 0, got {a.brn_d_max}")
    multi = cfg.task.startswith("multi:")
    if a.task_embedding_dim < 0:
        bad("task_embedding_dim", f"must be >= 0 (0 = one-hot task id), got {a.task_embedding_dim}")
    if any(not w > 0 for w in cfg.task_weights):
        bad("task_weights", f"every weight must be > 0, got {list(cfg.task_weights)}")
    if any(not r > 0 for r in a.task_reward_scales):
        bad("task_reward_scales", f"every scale must be > 0, got {list(a.task_reward_scales)}")
    if a.reward_normalization == "brc":
        if cfg.algo in ("fastsac", "crossq"):
            bad("reward_normalization", f"'brc' is implemented for the TD3 family (fasttd3, pql, dac, dea, vpl), "
                                        f"not --algo {cfg.algo}; use 'none'")  # fmt: skip
        if not a.v_max > 0 or a.v_min > -a.v_max:
            bad("reward_normalization", f"'brc' scales every task's values into [-v_max, v_max]: needs v_max > 0 and "
                                        f"--v-min <= -v_max, got v_min={a.v_min}, v_max={a.v_max}")  # fmt: skip
    if cfg.freeze and not cfg.init_from:
        bad("freeze", "freezing parameters needs trained ones: give --init-from CHECKPOINT too")
    if multi and cfg.td_validation_envs:
        bad("td_validation_envs", "not supported with --task multi:... (the held-out envs would all be the last "
                                  "task's); use 0")  # fmt: skip
    if not multi and not cfg.init_from and (cfg.task_weights or b.task_balanced_sampling or a.task_reward_scales):
        bad("task_weights", "--task-weights, --task-balanced-sampling and --task-reward-scales apply to multi-task "
                            "runs only: use --task multi:<task>,<task>,...")  # fmt: skip


def default_run_dir(cfg: TrainConfig) -> Path:
    """runs/<task>-<algo>-seed<seed>-<time> (the task name made file-safe)."""
    task = re.sub(r"[^A-Za-z0-9_.-]+", "_", cfg.task)
    return Path("runs") / f"{task}-{cfg.algo}-seed{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


#: Per-update slowdown of bf16 autocast against float32 measured on a CPU without native bf16 matmuls (issue 16).
CPU_BF16_SLOWDOWN = "15x (256-unit networks) to 29x (FastTD3's networks)"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN's check: AVX512-BF16, AMX); elsewhere they are
    emulated, far slower than float32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _runs_on_cpu(device: str) -> bool:
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device.split(":")[0] == "cpu"


def replace_nested(cfg: TrainConfig, overrides: dict) -> TrainConfig:
    """Apply ``{"num_envs": 4, "agent": {"gamma": 0.9}}``-style overrides to a frozen config."""
    changes = {}
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            names = [f.name for f in dataclasses.fields(cfg)]
            hint = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(f"unknown config field {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        current = getattr(cfg, key)
        changes[key] = replace_nested(current, value) if dataclasses.is_dataclass(current) else value
    return dataclasses.replace(cfg, **changes)


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {hint[0]!r}?" if hint else ""


#: Fields a resumed run may change: they decide how long and how visibly it runs, not what it computes.
RESUME_MAY_CHANGE = frozenset({
    "total_env_steps", "run_dir", "progress", "log_every", "eval_every", "eval_envs", "max_wall_seconds",
    "stop_at_return",
    "checkpoint_every", "keep_checkpoints", "checkpoint_buffer", "resume", "overwrite", "torch_threads", "device",
    *(f.name for f in dataclasses.fields(LoggingConfig)),
})  # fmt: skip


def config_differences(saved: dict, cfg: TrainConfig) -> list[str]:
    """``--flag: checkpoint has X, this run Y`` for every field that must match to resume a checkpoint."""

    def flat(d: dict, out: dict) -> dict:
        for key, value in d.items():
            if isinstance(value, dict):
                flat(value, out)
            else:
                out[key] = list(value) if isinstance(value, (tuple, list)) else value
        return out

    a, b = flat(saved, {}), flat(dataclasses.asdict(cfg), {})
    return [
        f"--{key.replace('_', '-')}: checkpoint has {a.get(key)!r}, this run {b.get(key)!r}"
        for key in sorted(set(a) | set(b))
        if key not in RESUME_MAY_CHANGE and a.get(key) != b.get(key)
    ]
