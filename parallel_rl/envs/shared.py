"""One simulation per process (Isaac Lab, Isaac Gym): a second env request gets a view of the first.

The trainer builds a separate env for evaluation; these simulators cannot. ``SharedEnvView`` lets evaluation run on
the training env instead. The price, stated plainly: an evaluation resets the training env, so the actor's next
step starts from an observation the env no longer holds (one stale transition per env per evaluation), and
episode statistics around it are cut short. Prefer few evaluations (``--eval-every`` large) on these backends.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from tensordict import TensorDict

from parallel_rl.envs.base import VecEnv


class SharedEnvView:
    """The ``VecEnv`` protocol over an env that another component also uses (see the module docstring)."""

    def __init__(self, env: VecEnv, reason: str) -> None:
        self.env = env
        self.spec = env.spec
        warnings.warn(
            f"{reason}: evaluation shares the training env (one simulation per process); each evaluation resets it",
            stacklevel=2,
        )

    def reset(self, seed: int | None = None) -> TensorDict:
        # The seed is dropped: reseeding would re-seed the simulator's global RNG in the middle of training.
        return self.env.reset(seed=None)

    def step(self, action: torch.Tensor) -> TensorDict:
        return self.env.step(action)


_LIVE: dict[str, VecEnv] = {}


def single_simulation(backend: str, name: str, num_envs: int, build: Callable[[], VecEnv]) -> VecEnv:
    """The first request of a process builds the env; later ones (the trainer's evaluation env) get a view of it."""
    live = _LIVE.get(backend)
    if live is None:
        env = build()
        _LIVE[backend] = env
        return env
    if live.spec.num_envs != num_envs:
        raise ValueError(
            f"{name}: {backend} runs one simulation per process, made here with {live.spec.num_envs} envs; another "
            f"with {num_envs} envs cannot be made. Evaluation shares the training env: set --eval-envs "
            f"{live.spec.num_envs} (= --num-envs)"
        )
    return SharedEnvView(live, name)


def forget_simulations() -> None:
    """Drop the per-process env registry (tests that fake a simulator several times in one process)."""
    _LIVE.clear()
