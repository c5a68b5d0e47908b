"""Actors, distributional critics, normalizers and the blocks they are built from."""

from parallel_rl.nets.actor import Actor, DeployedPolicy
from parallel_rl.nets.batchrenorm import BatchRenorm, project_unit_norm
from parallel_rl.nets.critic import EnsembleCritic
from parallel_rl.nets.families import ARCHS, NetSpec, build_ensemble_net, resolve_spec, uses_batch_statistics
from parallel_rl.nets.gaussian import SquashedGaussianActor
from parallel_rl.nets.mlp import EnsembleLinear, ensemble_mlp, mlp
from parallel_rl.nets.normalizer import RunningNorm
from parallel_rl.nets.norms import has_projection, project_weights_
from parallel_rl.nets.task import TaskConditionedActor, TaskConditionedCritic, TaskEncoder

__all__ = [
    "ARCHS",
    "Actor",
    "BatchRenorm",
    "DeployedPolicy",
    "EnsembleCritic",
    "EnsembleLinear",
    "NetSpec",
    "RunningNorm",
    "SquashedGaussianActor",
    "TaskConditionedActor",
    "TaskConditionedCritic",
    "TaskEncoder",
    "build_ensemble_net",
    "ensemble_mlp",
    "has_projection",
    "mlp",
    "project_unit_norm",
    "project_weights_",
    "resolve_spec",
    "uses_batch_statistics",
]
