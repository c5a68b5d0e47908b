"""MuJoCo Playground (MJX on JAX, or MuJoCo Warp) as a ``VecEnv``: batched, jit-compiled, zero-copy to torch.

Why not Playground's own wrappers: its brax auto-reset wrapper overwrites the observation of an ended episode with
the reset observation, so a time-out cannot bootstrap from the state it reached (FastTD3 forks Playground to get
it back). This adapter keeps the time limit and the auto-reset itself, inside one jit-compiled step:

1. step every env (``action_repeat`` physics steps, rewards summed);
2. ``terminated`` = the task's ``done``; ``truncated`` = the episode reached ``episode_length`` without terminating;
3. ``final_obs`` = the observation every env reached (the true last observation of an ended episode);
4. envs that ended are replaced by freshly reset ones (a full ``env.reset`` with a new key per env, computed only
   on steps where some env ended: ``lax.cond`` outside ``vmap``), and ``obs`` is their first observation.

Zero copies: outputs leave JAX through DLPack (``torch.from_dlpack``, same memory) and actions enter it the same
way. JAX arrays are immutable and never donated here except the simulator state, which torch never sees, so the
tensors handed out stay valid after later steps; treat them as read-only (writing into them would write into JAX
memory). On a GPU, JAX runs on the same device as torch, and its preallocation is limited
(``XLA_PYTHON_CLIENT_MEM_FRACTION``, default 0.3 here, if unset before JAX is first imported) so both fit.

Dict observations (Playground's locomotion tasks) map ``obs["state"]`` to ``obs`` and ``obs["privileged_state"]``
to ``critic_obs`` (asymmetric actor-critic); the keys are options.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from parallel_rl.envs._optional import require
from parallel_rl.envs.base import EnvSpec, check_action
from parallel_rl.envs.mujoco_render import cached_renderer

#: Share of GPU memory JAX may take when this module is the first to import it (torch needs the rest).
DEFAULT_JAX_MEM_FRACTION = "0.3"
#: Where compiled XLA programs are cached across processes (set PARALLEL_RL_JAX_CACHE=0 to disable).
DEFAULT_JAX_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "parallel_rl", "jax")
IMPLS = ("jax", "warp")


def prepare_environment() -> None:
    """Settings that must be in place before JAX and MuJoCo are first imported: JAX's share of GPU memory, and
    headless rendering (glfw needs a display; EGL does not). Call before importing ``jax`` or ``mujoco_playground``."""
    if "jax" not in sys.modules:
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", DEFAULT_JAX_MEM_FRACTION)
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and "mujoco" not in sys.modules:
        os.environ["MUJOCO_GL"] = "egl"


def _import_jax():
    prepare_environment()
    jax = require("playground", "jax")
    cache = os.environ.get("PARALLEL_RL_JAX_CACHE", DEFAULT_JAX_CACHE)
    if cache not in ("", "0") and not jax.config.jax_compilation_cache_dir:
        # Compiling the batched step takes tens of seconds on a CPU; the persistent cache makes later runs (the
        # benchmark's seeds, CI reruns) start in seconds.
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return jax


def jax_device_for(device: torch.device):
    """The JAX device that holds the same memory as torch's ``device`` (so DLPack hand-overs are free)."""
    jax = sys.modules["jax"]
    if device.type == "cpu":
        return jax.devices("cpu")[0]
    if device.type == "cuda":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError as e:
            raise RuntimeError(
                f"device {device}: JAX has no GPU backend; install the CUDA build of JAX "
                f'(pip install "jax[cuda12]") or run on --device cpu'
            ) from e
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= len(gpus):
            raise RuntimeError(f"device {device}: JAX sees only {len(gpus)} GPU(s)")
        return gpus[index]
    raise ValueError(f"device {device}: MuJoCo Playground runs on 'cpu' or 'cuda' devices")


def menagerie_path():
    """Where Playground looks for MuJoCo Menagerie (robot assets for locomotion and manipulation tasks)."""
    from mujoco_playground._src import mjx_env

    return mjx_env.MENAGERIE_PATH


def needs_menagerie(name: str) -> bool:
    from mujoco_playground._src import locomotion, manipulation

    return name in locomotion.ALL_ENVS or name in manipulation.ALL_ENVS


def task_names() -> tuple[str, ...]:
    """Every Playground task, including those registered at run time (``registry.ALL_ENVS`` is fixed at import)."""
    prepare_environment()
    require("playground", "mujoco_playground")
    from mujoco_playground._src import dm_control_suite, locomotion, manipulation

    return tuple(dm_control_suite.ALL_ENVS) + tuple(locomotion.ALL_ENVS) + tuple(manipulation.ALL_ENVS)


def check_task_name(name: str) -> None:
    """Raise ``ValueError`` with a suggestion if Playground has no task ``name``."""
    names = task_names()
    if name not in names:
        import difflib

        hint = difflib.get_close_matches(name, list(names), n=1)
        raise ValueError(
            f"playground:{name}: no such MuJoCo Playground environment"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
            + f" (known: {', '.join(names)})"
        )


def _load_raw_env(name: str, overrides: dict[str, Any]):
    check_task_name(name)
    registry = sys.modules["mujoco_playground"].registry
    if needs_menagerie(name) and not menagerie_path().exists():
        try:
            from mujoco_playground._src import mjx_env

            mjx_env.ensure_menagerie_exists()  # clones from GitHub when online
        except Exception as e:  # noqa: BLE001 - any failure means the same thing to the user
            raise RuntimeError(
                f"playground:{name} needs MuJoCo Menagerie assets, which Playground downloads from GitHub on first "
                f"use, and the download failed ({type(e).__name__}). Fetch them once with internet access: "
                f"git clone https://github.com/google-deepmind/mujoco_menagerie {menagerie_path()} "
                f"&& git -C {menagerie_path()} checkout {mjx_env.MENAGERIE_COMMIT_SHA}"
            ) from e
    config = registry.get_default_config(name)
    flat = dict(overrides)
    unknown = [k for k in flat if not _has_config_key(config, k)]
    if unknown:
        raise ValueError(
            f"playground:{name}: unknown config option(s) {', '.join(unknown)}; this task's config has: "
            f"{', '.join(sorted(config.keys()))}"
        )
    return registry.load(name, config_overrides=flat)


def _has_config_key(config, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:
            return False
        node = node[part]
    return True


@dataclass
class _Program:
    """The jit-compiled batched step of one task configuration (shared by all its envs: compile once), and the
    placeholder state that ``reset`` steps from."""

    raw_env: Any
    reset: Any
    step: Any
    episode_length: int
    action_repeat: int


_PROGRAMS: dict[tuple, _Program] = {}


def _build_program(jax, raw_env, obs_key: str, critic_obs_key: str, donate: bool) -> _Program:
    jnp, lax = jax.numpy, jax.lax
    config = raw_env._config  # the merged config (defaults + overrides) that the env was built with
    episode_length = int(config.episode_length)
    action_repeat = int(config.get("action_repeat", 1))
    reset_batch = jax.vmap(raw_env.reset)
    split_each = jax.vmap(lambda key: jax.random.split(key))

    def step_repeated(state, action):
        if action_repeat == 1:
            return raw_env.step(state, action)

        def body(carry, _):
            s, total, ended = carry
            stepped = raw_env.step(s, action)
            # An episode that ended mid-repeat stays in the state it ended in and earns nothing more.
            s = jax.tree.map(lambda old, new: jnp.where(ended, old, new), s, stepped)
            total = total + jnp.where(ended, 0.0, stepped.reward)
            return (s, total, ended | (stepped.done > 0.5)), None

        init = (state, jnp.zeros_like(state.reward), jnp.zeros((), dtype=bool))
        (s, total, ended), _ = lax.scan(body, init, None, length=action_repeat)
        return s.replace(reward=total, done=ended.astype(s.done.dtype))

    step_batch = jax.vmap(step_repeated)

    def strong(tree):
        # Playground's reset may return weakly typed leaves (e.g. ``data.time`` set from a Python float) where step
        # returns strong ones; jit would then compile the step twice (for the reset's types and for its own).
        return jax.tree.map(lambda x: x.astype(x.dtype), tree)

    def split_obs(obs):
        if isinstance(obs, Mapping):
            return obs[obs_key], obs.get(critic_obs_key)
        return obs, None

    def step(state_without_obs, obs, steps, keys, action, reset_all):
        """One step of every env with auto-reset. ``reset_all`` resets every env whatever happened: ``reset()`` is
        this same program run from a placeholder state, so the task's reset is compiled once, not twice."""
        nxt = step_batch(state_without_obs.replace(obs=obs), action)
        steps = steps + action_repeat
        terminated = nxt.done > 0.5
        truncated = (steps >= episode_length) & ~terminated
        done = terminated | truncated | reset_all
        pairs = split_each(keys)

        def fresh_states(reset_keys):
            fresh = reset_batch(reset_keys)
            return jax.tree.map(lambda f, n: f.astype(n.dtype), fresh, nxt)

        # Outside vmap, cond really branches: resets cost nothing on steps where no episode ended.
        fresh = lax.cond(done.any(), fresh_states, lambda _: nxt, pairs[:, 1])

        def pick(f, n):
            return jnp.where(done.reshape((-1,) + (1,) * (n.ndim - 1)), f, n)

        new = strong(jax.tree.map(pick, fresh, nxt))
        actor, critic = split_obs(new.obs)
        final_actor, final_critic = split_obs(nxt.obs)
        out = {
            "obs": actor.astype(jnp.float32),
            "final_obs": final_actor.astype(jnp.float32),
            "reward": nxt.reward.astype(jnp.float32),
            "terminated": terminated,
            "truncated": truncated,
        }
        if critic is not None:
            out["critic_obs"] = critic.astype(jnp.float32)
            out["final_critic_obs"] = final_critic.astype(jnp.float32)
        return new.replace(obs=None), new.obs, jnp.where(done, 0, steps), pairs[:, 0], out

    shapes_by_count: dict[int, Any] = {}

    def placeholder(num_envs: int):
        """A zero state of the right structure and types: the starting point of ``reset`` (never observed). Fresh
        arrays every time: on a GPU the step consumes (donates) them."""
        if num_envs not in shapes_by_count:
            keys = jax.ShapeDtypeStruct((num_envs, 2), jnp.uint32)
            # The step's output types are the reset's made strong (if a task differed, jit would compile once more).
            shapes_by_count[num_envs] = jax.eval_shape(lambda k: strong(reset_batch(k)), keys)
        state = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes_by_count[num_envs])
        return state.replace(obs=None), state.obs

    # Donating the simulator state lets XLA update it in place (it can be large); observations are never donated
    # because torch may still be reading them.
    step_jit = jax.jit(step, donate_argnums=(0,) if donate else ())
    return _Program(raw_env, placeholder, step_jit, episode_length, action_repeat)


class PlaygroundVecEnv:
    """``num_envs`` copies of a MuJoCo Playground task on one device, behind the ``VecEnv`` protocol.

    ``impl`` selects the physics: ``"jax"`` (MJX, CPU or GPU) or ``"warp"`` (MuJoCo Warp, NVIDIA GPU only).
    ``config_overrides`` are Playground config entries (dotted keys for nested ones, e.g.
    ``{"episode_length": 500, "push_config.enable": False}``).
    """

    def __init__(
        self,
        name: str,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        *,
        impl: str = "jax",
        config_overrides: dict[str, Any] | None = None,
        obs_key: str = "state",
        critic_obs_key: str = "privileged_state",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.device = torch.device(device)
        if impl == "warp" and self.device.type != "cuda":
            raise ValueError("impl='warp' (MuJoCo Warp) needs an NVIDIA GPU: use --device cuda, or impl=jax on a CPU")
        jax = _import_jax()
        self._jax = jax
        self.jax_device = jax_device_for(self.device)
        self.name = name
        overrides = {"impl": impl, **(config_overrides or {})}
        key = (name, tuple(sorted((k, repr(v)) for k, v in overrides.items())), obs_key, critic_obs_key,
               str(self.jax_device))  # fmt: skip
        if key not in _PROGRAMS:
            raw_env = _load_raw_env(name, overrides)
            _PROGRAMS[key] = _build_program(jax, raw_env, obs_key, critic_obs_key, self.jax_device.platform != "cpu")
        self.program = _PROGRAMS[key]
        self.raw_env = self.program.raw_env
        size = self.raw_env.observation_size
        critic_dim = None
        if isinstance(size, Mapping):
            if obs_key not in size:
                raise ValueError(f"playground:{name}: observation has keys {list(size)}, no {obs_key!r} (obs_key)")
            obs_dim = int(np.prod(size[obs_key]))
            critic_dim = int(np.prod(size[critic_obs_key])) if critic_obs_key in size else None
        else:
            obs_dim = int(size)
        act_dim = int(self.raw_env.action_size)
        self.spec = EnvSpec(
            obs_dim=obs_dim,
            act_dim=act_dim,
            num_envs=num_envs,
            device=self.device,
            action_low=(-1.0,) * act_dim,
            action_high=(1.0,) * act_dim,
            max_episode_steps=math.ceil(self.program.episode_length / self.program.action_repeat),
            critic_obs_dim=critic_dim,
        )
        self._seed = seed
        self._keys = None
        self._sim_state = None  # the simulator state without observations (donated on GPU)
        self._obs_tree = None  # observations of the current state, as JAX arrays
        self._steps = None
        self._jax_out: dict[str, Any] = {}  # the JAX arrays behind the last tensors handed out
        self._renderers: dict[tuple[int, int], Any] = {}
        self._low, self._high = self.spec.action_bounds()

    @property
    def num_envs(self) -> int:
        return self.spec.num_envs

    @property
    def state(self):
        """The current batched Playground ``State`` (observations included), e.g. to step the raw env from it. On a
        GPU the next ``step`` consumes its simulator arrays (donation): copy what you need to keep."""
        if self._sim_state is None:
            raise RuntimeError("call reset() first")
        return self._sim_state.replace(obs=self._obs_tree)

    @property
    def episode_steps(self) -> torch.Tensor:
        """Physics steps taken in the current episode of each env (what the time limit counts)."""
        return torch.from_dlpack(self._steps)

    def _to_torch(self, out: dict[str, Any]) -> TensorDict:
        self._jax_out = out
        tensors = {k: torch.from_dlpack(v) for k, v in out.items()}
        return TensorDict(tensors, batch_size=[self.num_envs], device=self.device)

    def reset(self, seed: int | None = None) -> TensorDict:
        jax = self._jax
        if seed is not None or self._keys is None:
            base = jax.random.PRNGKey(self._seed if seed is None else seed)
            self._keys = jax.device_put(jax.random.split(base, self.num_envs), self.jax_device)
        jnp = jax.numpy
        sim_state, obs_tree = self.program.reset(self.num_envs)
        steps = jnp.zeros(self.num_envs, jnp.int32)
        action = jnp.zeros((self.num_envs, self.spec.act_dim), jnp.float32)
        # Committed to the device like every later input, so that the first step compiles the program that all
        # later steps reuse (uncommitted inputs would make jit compile a second time).
        sim_state, obs_tree, steps, action = jax.device_put((sim_state, obs_tree, steps, action), self.jax_device)
        self._sim_state, self._obs_tree, self._steps, self._keys, out = self.program.step(
            sim_state, obs_tree, steps, self._keys, action, True
        )
        return self._to_torch({k: out[k] for k in ("obs", "critic_obs") if k in out})

    def step(self, action: torch.Tensor) -> TensorDict:
        if self._sim_state is None:
            raise RuntimeError("call reset() before step()")
        check_action(action, self.spec)
        action = torch.maximum(torch.minimum(action.float(), self._high.to(action.device)), self._low.to(action.device))
        if action.device != self.device:
            action = action.to(self.device)
        jax_action = self._jax.dlpack.from_dlpack(action.contiguous())
        self._sim_state, self._obs_tree, self._steps, self._keys, out = self.program.step(
            self._sim_state, self._obs_tree, self._steps, self._keys, jax_action, False
        )
        return self._to_torch(out)

    # ---- rendering ------------------------------------------------------------------------------------------
    def render(self, env_index: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
        """RGB image (uint8 [height, width, 3]) of env ``env_index`` in its current state, with MuJoCo's renderer.

        Uses the model's first camera when it has one (Playground's DM Control and locomotion models put a tracking
        camera first), the free camera otherwise. Needs an OpenGL context: MUJOCO_GL=egl (the default here when
        there is no display) or osmesa.
        """
        import mujoco

        if not 0 <= env_index < self.num_envs:
            raise IndexError(f"env_index {env_index} out of range for {self.num_envs} envs")
        data = self.state.data
        model = self.raw_env.mj_model
        d = mujoco.MjData(model)
        for field in ("qpos", "qvel", "mocap_pos", "mocap_quat"):
            value = np.asarray(getattr(data, field)[env_index])
            if value.size:
                getattr(d, field)[:] = value.reshape(getattr(d, field).shape)
        mujoco.mj_forward(model, d)
        renderer = cached_renderer(self._renderers, model, width, height)
        renderer.update_scene(d, camera=0 if model.ncam > 0 else -1)
        return renderer.render().copy()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
