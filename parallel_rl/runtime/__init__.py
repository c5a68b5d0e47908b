"""Actor, V-learner and P-learner components, the ratio scheduler, and the trainer that runs them."""

from parallel_rl.runtime.components import ActorComponent, PLearner, VLearner
from parallel_rl.runtime.scheduler import RatioScheduler
from parallel_rl.runtime.streams import Channel, Lane
from parallel_rl.runtime.trainer import EnvFactory, Trainer, evaluate_policy, resolve_device, train

__all__ = ["ActorComponent", "Channel", "EnvFactory", "Lane", "PLearner", "RatioScheduler", "Trainer", "VLearner",
           "evaluate_policy", "resolve_device", "train"]  # fmt: skip
