"""Actors, distributional critics, normalizers and the blocks they are built from."""

from parallel_rl.nets.actor import Actor, DeployedPolicy
from parallel_rl.nets.critic import EnsembleCritic
from parallel_rl.nets.mlp import EnsembleLinear, ensemble_mlp, mlp
from parallel_rl.nets.normalizer import RunningNorm

__all__ = ["Actor", "DeployedPolicy", "EnsembleCritic", "EnsembleLinear", "RunningNorm", "ensemble_mlp", "mlp"]
