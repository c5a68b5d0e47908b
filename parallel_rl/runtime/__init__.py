"""Actor, V-learner and P-learner components, the ratio scheduler, the engine that wires them, and the trainer."""

from parallel_rl.runtime.components import ActorComponent, PLearner, VLearner
from parallel_rl.runtime.engine import Engine, build_engine
from parallel_rl.runtime.scheduler import RatioScheduler
from parallel_rl.runtime.streams import Channel, Lane
from parallel_rl.runtime.trainer import EnvFactory, Trainer, evaluate_policy, resolve_device, train

__all__ = ["ActorComponent", "Channel", "Engine", "EnvFactory", "Lane", "PLearner", "RatioScheduler", "Trainer",
           "VLearner", "build_engine", "evaluate_policy", "resolve_device", "train"]  # fmt: skip
