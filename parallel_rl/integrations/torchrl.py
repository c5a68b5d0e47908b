"""torchrl environments in and out.

- ``TorchRLVecEnv(env)``: any batched torchrl ``EnvBase`` (batch size ``[num_envs]``) behind our ``VecEnv``
  protocol, so the trainer runs on torchrl's wrappers (Gym, DM Control, Brax, Isaac Lab, ...). torchrl keeps the
  true last observation of an episode in ``("next", obs)`` and resets through ``step_and_maybe_reset``; that is
  exactly our ``final_obs`` / ``obs`` pair, so truncations bootstrap from the right state.
- ``as_torchrl_env(env)``: one of our ``VecEnv`` (e.g. a built-in task) as a torchrl ``EnvBase`` that passes
  ``check_env_specs``. Our envs reset themselves inside ``step``; the adapter reports the true final observation as
  ``("next", "observation")`` and hands out the already-reset observation when torchrl asks for a partial reset.

torchrl is imported lazily (``pip install torchrl``); this module is importable without it.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict

from parallel_rl.envs.base import EnvSpec, VecEnv, check_action

INSTALL_HINT = "torchrl is not installed: pip install 'torchrl>=0.14' (it needs the tensordict release it pins)"


def _torchrl():
    try:
        import torchrl.envs as envs
    except ModuleNotFoundError as e:
        raise ImportError(f"{INSTALL_HINT} (missing module: {e.name})") from e
    return envs


class TorchRLVecEnv:
    """A batched torchrl ``EnvBase`` as a ``VecEnv``.

    ``obs_key`` names the actor's observation (default ``"observation"``, or the only observation key);
    ``critic_obs_key`` an optional privileged critic observation. ``max_episode_steps`` bounds evaluation episodes;
    it is read from a Gymnasium time limit or a ``StepCounter`` transform when not given.
    """

    def __init__(
        self,
        env: Any,
        *,
        max_episode_steps: int | None = None,
        obs_key: str | None = None,
        critic_obs_key: str | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        _torchrl()
        if len(env.batch_size) != 1:
            raise ValueError(
                f"TorchRLVecEnv needs a batched env with batch_size [num_envs], got {list(env.batch_size)} (wrap "
                "single envs in torchrl.envs.SerialEnv/ParallelEnv, or create GymEnv(..., num_envs=N))"
            )
        _reject_lost_final_obs(env)
        self.env = env
        num_envs = int(env.batch_size[0])
        self.device = torch.device(device) if device is not None else (env.device or torch.device("cpu"))
        keys = [k for k in env.observation_spec.keys(True, True) if isinstance(k, str)]
        self.obs_key = obs_key or ("observation" if "observation" in keys else (keys[0] if len(keys) == 1 else None))
        if self.obs_key not in keys:
            raise ValueError(f"obs_key: choose the observation to act on among {keys} (got {obs_key!r})")
        if critic_obs_key is not None and critic_obs_key not in keys:
            raise ValueError(f"critic_obs_key: {critic_obs_key!r} is not an observation of this env; have {keys}")
        self.critic_obs_key = critic_obs_key
        self.action_key, self.reward_key = env.action_key, env.reward_key
        action_spec = env.full_action_spec[self.action_key]
        space = getattr(action_spec, "space", None)
        if not hasattr(space, "low"):
            raise ValueError(
                f"TorchRLVecEnv needs a bounded continuous action spec, got {type(action_spec).__name__} (wrap the "
                "env with torchrl's ActionScaling/clip transforms or give it a Bounded action spec)"
            )
        low = space.low.reshape(num_envs, -1)[0].float()
        high = space.high.reshape(num_envs, -1)[0].float()
        self._action_shape = tuple(action_spec.shape)
        steps = max_episode_steps if max_episode_steps is not None else _infer_max_steps(env)
        if steps is None:
            raise ValueError(
                "max_episode_steps: this torchrl env does not say how long its episodes are; give it (task option "
                "max_episode_steps=N, or TorchRLVecEnv(env, max_episode_steps=N))"
            )
        obs_shape = env.observation_spec[self.obs_key].shape
        critic_dim = None
        if critic_obs_key is not None:
            critic_dim = int(torch.Size(env.observation_spec[critic_obs_key].shape[1:]).numel())
        self.spec = EnvSpec(
            obs_dim=int(torch.Size(obs_shape[1:]).numel()),
            act_dim=int(low.numel()),
            num_envs=num_envs,
            device=self.device,
            action_low=tuple(low.tolist()),
            action_high=tuple(high.tolist()),
            max_episode_steps=int(steps),
            critic_obs_dim=critic_dim,
        )
        self._low, self._high = self.spec.action_bounds(self.device)
        done_keys = {k for k in env.done_keys if isinstance(k, str)}
        self._has_terminated, self._has_truncated = "terminated" in done_keys, "truncated" in done_keys
        self._td: Any = None

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    def _flat(self, td: Any, key: str) -> torch.Tensor:
        return td.get(key).reshape(self.num_envs, -1).to(self.device, torch.float32)

    def _observations(self, td: Any, prefix: str = "") -> dict[str, torch.Tensor]:
        out = {f"{prefix}obs": self._flat(td, self.obs_key)}
        if self.critic_obs_key is not None:
            out[f"{prefix}critic_obs"] = self._flat(td, self.critic_obs_key)
        return out

    def reset(self, seed: int | None = None) -> TensorDict:
        if seed is not None:
            self.env.set_seed(seed)
        self._td = self.env.reset()
        return TensorDict(self._observations(self._td), batch_size=[self.num_envs], device=self.device)

    def step(self, action: torch.Tensor) -> TensorDict:
        check_action(action, self.spec)
        if self._td is None:
            self.reset()
        action = torch.maximum(torch.minimum(action.float(), self._high), self._low)
        self._td.set(self.action_key, action.reshape(self._action_shape).to(self.env.device or self.device))
        stepped, self._td = self.env.step_and_maybe_reset(self._td)
        nxt = stepped.get("next")
        done = nxt.get("done").reshape(self.num_envs).to(self.device, torch.bool)
        # Without a "terminated" key every end is a termination; without "truncated" whatever is not terminated.
        terminated = nxt.get("terminated").reshape(self.num_envs).bool() if self._has_terminated else done
        terminated = terminated.to(self.device)
        truncated = (nxt.get("truncated").reshape(self.num_envs).bool().to(self.device) if self._has_truncated
                     else done) & ~terminated  # fmt: skip
        final = self._observations(nxt, prefix="final_")
        return TensorDict(
            {
                **self._observations(self._td),
                **final,
                "reward": nxt.get(self.reward_key).reshape(self.num_envs).to(self.device, torch.float32),
                "terminated": terminated,
                "truncated": truncated,
            },
            batch_size=[self.num_envs],
            device=self.device,
        )

    def close(self) -> None:
        if not self.env.is_closed:
            self.env.close()


def _reject_lost_final_obs(env: Any) -> None:
    """torchrl's GymEnv(num_envs=N) builds a Gymnasium vector env in NEXT_STEP autoreset mode, where torchrl 0.14
    reports the last observation of every episode as zeros; training on it would bootstrap from garbage."""
    try:
        import gymnasium
    except ModuleNotFoundError:
        return
    from torchrl.envs import TransformedEnv

    base = env.base_env if isinstance(env, TransformedEnv) else env
    inner = base.__dict__.get("_env")  # __dict__: batched envs forward unknown attributes to their workers
    if getattr(inner, "autoreset_mode", None) == gymnasium.vector.AutoresetMode.NEXT_STEP:
        raise ValueError(
            "this torchrl Gym env wraps a Gymnasium vector env in NEXT_STEP autoreset mode, whose final observations "
            "torchrl reports as zeros; use SerialEnv(N, lambda: GymEnv(id)) or GymWrapper(gymnasium.make_vec(id, N, "
            "vector_kwargs={'autoreset_mode': gymnasium.vector.AutoresetMode.SAME_STEP}))"
        )


def _infer_max_steps(env: Any) -> int | None:
    """Episode length from a StepCounter transform or a Gymnasium time limit, when the env says it (attributes are
    read from ``__dict__``: torchrl's batched envs forward unknown attributes to their workers)."""
    from torchrl.envs import TransformedEnv
    from torchrl.envs.batched_envs import BatchedEnvBase

    if isinstance(env, BatchedEnvBase):
        env.start() if env.is_closed else None
        workers = env.__dict__.get("_envs")
        return _infer_max_steps(workers[0]) if workers and not isinstance(workers[0], int) else None
    if isinstance(env, TransformedEnv):
        for t in env.transform if hasattr(env.transform, "__iter__") else [env.transform]:
            if getattr(t, "max_steps", None) is not None:
                return int(t.max_steps)
        return _infer_max_steps(env.base_env)
    inner = env.__dict__.get("_env")
    spec = getattr(inner, "spec", None)
    if spec is None and getattr(inner, "envs", None):
        spec = getattr(inner.envs[0], "spec", None)
    steps = getattr(spec, "max_episode_steps", None)
    return int(steps) if steps is not None else None


def as_torchrl_env(env: VecEnv, obs_key: str = "observation", critic_obs_key: str = "critic_observation") -> Any:
    """One of our ``VecEnv`` (e.g. ``tasks.pendulum.Pendulum(num_envs=8)``) as a torchrl ``EnvBase``."""
    envs = _torchrl()
    return _make_env_class(envs)(env, obs_key, critic_obs_key)


_ENV_CLASS: Any = None


def _make_env_class(envs: Any) -> type:
    """The EnvBase subclass is defined on first use so that importing this module never imports torchrl."""
    global _ENV_CLASS
    if _ENV_CLASS is not None:
        return _ENV_CLASS
    from torchrl.data import Bounded, Categorical, Composite, Unbounded

    class VecEnvAsTorchRL(envs.EnvBase):
        """torchrl view of a self-resetting ``VecEnv``: ``("next", obs)`` is the true final observation, and a
        partial reset returns the observations the env already reset to inside its step."""

        def __init__(self, vec_env: VecEnv, obs_key: str, critic_obs_key: str) -> None:
            spec = vec_env.spec
            n = spec.num_envs
            super().__init__(device=spec.device, batch_size=torch.Size([n]))
            self.vec_env, self.obs_key, self.critic_obs_key = vec_env, obs_key, critic_obs_key
            self._has_critic = spec.critic_obs_dim is not None
            observations = {obs_key: Unbounded((n, spec.obs_dim), device=spec.device)}
            if self._has_critic:
                observations[critic_obs_key] = Unbounded((n, spec.critic_obs_dim), device=spec.device)
            self.observation_spec = Composite(observations, shape=(n,), device=spec.device)
            low, high = spec.action_bounds(spec.device)
            self.action_spec = Bounded(low.expand(n, -1), high.expand(n, -1), (n, spec.act_dim), device=spec.device)
            self.reward_spec = Unbounded((n, 1), device=spec.device)
            flag = Categorical(2, (n, 1), dtype=torch.bool, device=spec.device)
            self.done_spec = Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=(n,),
                                       device=spec.device)  # fmt: skip
            self._pending: TensorDict | None = None
            self._seed: int | None = None

        def _obs(self, out: TensorDict, prefix: str = "") -> dict[str, torch.Tensor]:
            obs = {self.obs_key: out[f"{prefix}obs"]}
            if self._has_critic:
                obs[self.critic_obs_key] = out[f"{prefix}critic_obs"]
            return obs

        def _flags(self, terminated: torch.Tensor, truncated: torch.Tensor) -> dict[str, torch.Tensor]:
            terminated, truncated = terminated.bool().unsqueeze(-1), truncated.bool().unsqueeze(-1)
            return {"done": terminated | truncated, "terminated": terminated, "truncated": truncated}

        def _reset(self, tensordict: Any = None, **kwargs: Any) -> TensorDict:
            n = self.batch_size[0]
            partial = tensordict is not None and "_reset" in tensordict.keys() and self._pending is not None
            if partial:  # the envs that ended already reset inside step(); their observations are pending
                obs = self._pending
            else:
                obs = self.vec_env.reset(seed=self._seed)
                self._seed = None
            zeros = torch.zeros(n, dtype=torch.bool, device=self.device)
            return TensorDict({**self._obs(obs), **self._flags(zeros, zeros)}, batch_size=[n], device=self.device)

        def _step(self, tensordict: Any) -> TensorDict:
            out = self.vec_env.step(tensordict.get("action"))
            self._pending = out.select(*(k for k in ("obs", "critic_obs") if k in out.keys()))
            final_key = "final_" if "final_obs" in out.keys() else ""
            return TensorDict(
                {**self._obs(out, final_key), "reward": out["reward"].unsqueeze(-1).float(),
                 **self._flags(out["terminated"], out["truncated"])},
                batch_size=self.batch_size, device=self.device,
            )  # fmt: skip

        def _set_seed(self, seed: int | None) -> None:
            self._seed = seed

    _ENV_CLASS = VecEnvAsTorchRL
    return VecEnvAsTorchRL


def gym_envs(
    num_envs: int,
    device: str | torch.device = "cpu",
    env_id: str = "Pendulum-v1",
    serial: bool = False,
    **make_kwargs: Any,
):
    """``num_envs`` Gymnasium envs as one batched torchrl env
    (``--task torchrl:parallel_rl.integrations.torchrl:gym_envs,env_id=Pendulum-v1``): a ``GymWrapper`` over a
    Gymnasium vector env in SAME_STEP autoreset mode (fast, one process), or with ``serial=true`` a ``SerialEnv`` of
    torchrl ``GymEnv``s (one per env, reset by torchrl).

    Why not ``GymEnv(env_id, num_envs=N)``: it builds a NEXT_STEP vector env whose final observations torchrl 0.14
    reports as zeros (``TorchRLVecEnv`` refuses it)."""
    envs = _torchrl()
    if serial:
        return envs.SerialEnv(num_envs, lambda: envs.GymEnv(env_id, **make_kwargs), device=device)
    import gymnasium

    vec = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                             vector_kwargs={"autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP},
                             **make_kwargs)  # fmt: skip
    return envs.GymWrapper(vec, device=device)
