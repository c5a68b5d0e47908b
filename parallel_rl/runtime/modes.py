"""How the actor, the V-learner and the P-learner are interleaved: sequential, pipelined or free.

All three modes run the same components and the same ``RatioScheduler`` arithmetic; they differ only in which
parameters and which buffer rows each piece of work sees, and in what runs at the same time.

- ``SequentialMode``: the reference order. Env step t, then the critic updates due at step t, each followed by the
  policy updates it makes due; parameters are published at the configured intervals and seen immediately.
- ``PipelinedMode``: iteration t runs three independent parts: the actor produces env step t; the V-learner does
  the critic updates that were due at step t-1, on the buffer as it was after step t-1 (a published *view*) and on
  the policy published at the end of iteration t-1; the P-learner does the policy updates due with them, against
  the critic published at the end of iteration t-1. Publications made during iteration t become visible only at
  the barrier that ends it. The parts share no mutable state, so running them concurrently (CUDA streams, or
  threads on a CPU) gives bit-for-bit what running them one after the other gives (``--pipeline-serial``).
- ``FreeMode``: the actor (the calling thread), the V-learner and the P-learner (one thread each) run as fast as
  they can, publishing immediately; a count-based limiter keeps critic updates within +-k of utd x env steps and
  policy updates within +-k of policy_ratio x critic updates, and learners sample views of the buffer that exclude
  every row the actor can overwrite while they hold them.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from parallel_rl.runtime.engine import Engine


def free_bound(utd: float, policy_ratio: float, requested: int) -> int:
    """The limiter's k. The bound cannot be tighter than one env step's worth of critic updates (ceil(utd)) or one
    critic update's worth of policy updates (ceil(policy_ratio)): below that, actor and learners would wait on
    each other forever. 0 selects the smallest safe value (at least 2)."""
    floor_k = max(math.ceil(utd), math.ceil(policy_ratio))
    if requested == 0:
        return max(2, floor_k)
    if requested < floor_k:
        raise ValueError(
            f"--free-bound {requested} is below one step's worth of updates (ceil(utd)={math.ceil(utd)}, "
            f"ceil(policy_ratio)={math.ceil(policy_ratio)}); use >= {floor_k} or 0 for automatic"
        )
    return requested


def free_reserve(utd: float, policy_ratio: float, k: int) -> int:
    """Buffer rows per env that the actor may overwrite while a free-mode learner holds a view.

    During one V-learner update the actor can get at most 2k/utd + 1 env steps past the view; during one P-learner
    update the V-learner can run at most 2k/policy_ratio + 2 updates, each letting the actor advance 1/utd steps
    more. A view may also be one publication old. Each env step writes at most two rows (transition + final row).
    """
    lead_steps = math.ceil((2 * k / policy_ratio + 2 * k + 3) / utd) + 3
    return 2 * lead_steps


def _publish(t: Engine, role: str) -> None:
    """Publish everything ``role`` writes (parameters, and the actor's buffer views) to its readers."""
    for channel in t.publishes[role]:
        channel.publish()


LAZY_PUBLISH = True
"""Sequential mode publishes lazily (``Channel.mark``); tests switch it off to check that this changes no number."""


def _mark(t: Engine, role: str) -> None:
    """Sequential mode: publish lazily (``Channel.mark``), or at once with ``LAZY_PUBLISH`` off."""
    for channel in t.publishes[role]:
        channel.mark() if LAZY_PUBLISH else channel.publish()


def _flush(t: Engine, role: str) -> None:
    """Copy ``role``'s marked publications now: ``role`` is about to change what they publish."""
    for channel in t.publishes[role]:
        channel.flush()


def _synchronize(device: torch.device) -> None:
    """Wait for every lane's queued GPU work (checkpoints read tensors the lanes may still be writing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SequentialMode:
    """The reference order (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.t = engine

    def iteration(self) -> None:
        t = self.t
        s, sched = t.cfg.schedule, t.scheduler
        # Publications are marked, and copied only when a reader pulls them (or, with an interval above 1, before
        # the writer changes its parameters again): a publication superseded unread costs nothing. Groups the
        # algorithm lets readers share (``Shared.may_alias``) have no channel at all here (``build_engine``).
        t.actor.step()
        _mark(t, "actor")
        for _ in range(sched.on_env_step()):
            if s.critic_publish_interval > 1:
                _flush(t, "vlearner")
            t.vlearner.update()
            t.plearner.follow(t.vlearner.last_batch)  # used when the algorithm reuses the critic's batch
            policy_due = sched.on_critic_update()
            if sched.critic_updates % s.critic_publish_interval == 0:
                _mark(t, "vlearner")
            for _ in range(policy_due):
                if s.policy_publish_interval > 1:
                    _flush(t, "plearner")
                t.plearner.update()
                sched.on_policy_update()
                if sched.policy_updates % s.policy_publish_interval == 0:
                    _mark(t, "plearner")
        for _ in range(sched.stabilization_due()):  # SPEQ: critic-only updates, no env step, no policy update
            if s.critic_publish_interval > 1:
                _flush(t, "vlearner")
            t.vlearner.update()
            sched.on_stabilization_update()
            if sched.critic_updates % s.critic_publish_interval == 0:
                _mark(t, "vlearner")

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass

    def wait_metrics(self) -> dict[str, float]:
        return {}

    def quiesce(self) -> None:
        """Nothing in flight between iterations (a GPU's queued work is waited for)."""
        _synchronize(self.t.device)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class PipelinedMode:
    """Learners one env step behind the actor, all three concurrent within an iteration (see the module docstring).

    The host decides every iteration's work before launching it (``plan``: for each critic update, the policy
    updates due after it), so nothing depends on timing. On a GPU the three parts are launched from this thread on
    their own streams and the barrier is a set of events; on a CPU the learners run in two worker threads."""

    def __init__(self, engine: Engine, serial: bool) -> None:
        self.t = engine
        self.serial = serial
        self.plan: list[int] = []
        threads = torch.get_num_threads()  # workers use the caller's intra-op thread count: same float reductions
        self.pool = (
            None
            if serial or engine.device.type == "cuda"
            else ThreadPoolExecutor(2, "learner", initializer=torch.set_num_threads, initargs=(threads,))
        )
        self.lanes = [engine.actor.lane, engine.vlearner.lane, engine.plearner.lane]

    def _commit(self) -> None:
        for channel in self.t.channels:
            channel.commit()

    def _barrier(self) -> None:
        """Every lane's later work waits for every lane's work so far (device-side; no host block)."""
        events = [lane.record() for lane in self.lanes]
        for lane in self.lanes:
            for event in events:
                lane.wait(event)

    def _critic_work(self, plan: list[int], publish: bool) -> None:
        for _ in plan:
            self.t.vlearner.update()
        if publish:
            _publish(self.t, "vlearner")

    def _policy_work(self, plan: list[int], publish: bool) -> None:
        plearner = self.t.plearner
        if plearner.reuse:  # each policy update takes the batch of the critic update it follows, redrawn
            for due in plan:
                plearner.redraw()
                for _ in range(due):
                    plearner.update()
        else:
            for _ in range(sum(plan)):
                plearner.update()
        if publish:
            _publish(self.t, "plearner")

    def _actor_work(self) -> None:
        self.t.actor.step()
        _publish(self.t, "actor")

    def _run(self, actor: bool) -> None:
        s, sched = self.t.cfg.schedule, self.t.scheduler
        plan, self.plan = self.plan, []
        c0, p0 = sched.critic_updates - len(plan), sched.policy_updates - sum(plan)
        publish_critic = sched.critic_updates // s.critic_publish_interval > c0 // s.critic_publish_interval
        publish_policy = sched.policy_updates // s.policy_publish_interval > p0 // s.policy_publish_interval
        if self.t.plearner.reuse:
            self.t.plearner.replay_from(self.t.vlearner.generator)  # before the V-learner draws anything
        futures: list[Future] = []
        if self.pool is not None:
            futures = [self.pool.submit(self._critic_work, plan, publish_critic),
                       self.pool.submit(self._policy_work, plan, publish_policy)]  # fmt: skip
            if actor:
                self._actor_work()
            for future in futures:
                future.result()
        else:
            if actor:
                self._actor_work()
            self._critic_work(plan, publish_critic)
            self._policy_work(plan, publish_policy)
        self._barrier()
        self._commit()

    def iteration(self) -> None:
        self._run(actor=True)
        sched = self.t.scheduler
        # The work due at this env step runs in the next iteration; the counters advance now (host arithmetic).
        for _ in range(sched.on_env_step()):
            policy_due = sched.on_critic_update()
            self.plan.append(policy_due)
            for _ in range(policy_due):
                sched.on_policy_update()

    def finish(self) -> None:
        """The learners' last share: the updates due at the final env step."""
        if self.plan:
            self._run(actor=False)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def wait_metrics(self) -> dict[str, float]:
        return {}

    def quiesce(self) -> None:
        """Between iterations every part has joined and channels are committed; only a GPU's queue may be busy."""
        _synchronize(self.t.device)

    def state_dict(self) -> dict:
        return {"plan": list(self.plan)}  # the learners' pending share: a resumed run does it next, as planned

    def load_state_dict(self, state: dict) -> None:
        self.plan = list(state["plan"])


class FreeMode:
    """Actor in the calling thread, V-learner and P-learner in their own threads, held within +-k by counts."""

    def __init__(self, engine: Engine) -> None:
        self.t = engine
        s = engine.cfg.schedule
        self.k = free_bound(s.utd, s.policy_ratio, s.free_bound)
        self._utd = engine.scheduler._utd
        self._ratio = engine.scheduler._policy_ratio
        self.cond = threading.Condition()
        self.stopping = False
        self.critic_done = False
        self.error: BaseException | None = None
        self.waited = {"actor": 0.0, "vlearner": 0.0, "plearner": 0.0}
        self._waited_logged = dict(self.waited)
        self.threads: list[threading.Thread] = []
        self.trace: list[tuple[int, int, int]] | None = None  # (env steps, critic, policy) at every change; tests

    # ---- targets (exact, as in RatioScheduler) --------------------------------------------------------------
    def _critic_target(self, env_steps: int) -> int:
        ls = self.t.scheduler.learning_starts
        return int(self._utd * max(0, env_steps - ls + 1))

    def _policy_target(self, critic_updates: int) -> int:
        return int(self._ratio * critic_updates)

    def _record(self) -> None:
        if self.trace is not None:
            sched = self.t.scheduler
            self.trace.append((sched.env_steps, sched.critic_updates, sched.policy_updates))

    def _wait(self, who: str, ready) -> bool:
        """Block (holding no lock afterwards) until ``ready()`` or an error; returns False on error."""
        start = time.perf_counter()
        with self.cond:
            while not ready() and self.error is None:
                self.cond.wait()
        self.waited[who] += time.perf_counter() - start
        return self.error is None

    # ---- the actor (calling thread) -------------------------------------------------------------------------
    def iteration(self) -> None:
        t, sched = self.t, self.t.scheduler
        if not self.threads:
            self._start()
        ok = self._wait("actor", lambda: self._critic_target(sched.env_steps + 1) - sched.critic_updates <= self.k)
        if not ok:
            self._raise()
        t.actor.step()
        _publish(t, "actor")
        with self.cond:
            sched.env_steps += 1
            self._record()
            self.cond.notify_all()

    # ---- learners (their own threads) -----------------------------------------------------------------------
    def _critic_may_run(self) -> bool:
        sched = self.t.scheduler
        target = self._critic_target(sched.env_steps)
        policy_ok = self._policy_target(sched.critic_updates + 1) - sched.policy_updates <= self.k
        if self.stopping:
            return (sched.critic_updates < target and policy_ok) or self._critic_finished()
        return sched.env_steps >= sched.learning_starts and sched.critic_updates + 1 <= target + self.k and policy_ok

    def _critic_finished(self) -> bool:
        sched = self.t.scheduler
        return self.stopping and sched.critic_updates >= self._critic_target(sched.env_steps)

    def _critic_loop(self) -> None:
        t, sched, s = self.t, self.t.scheduler, self.t.cfg.schedule
        while self._wait("vlearner", self._critic_may_run):
            if self._critic_finished():
                break
            t.vlearner.update()
            with self.cond:
                sched.critic_updates += 1
                self._record()
                self.cond.notify_all()
            if sched.critic_updates % s.critic_publish_interval == 0:
                _publish(t, "vlearner")
        with self.cond:
            self.critic_done = True
            self.cond.notify_all()

    def _policy_may_run(self) -> bool:
        sched = self.t.scheduler
        target = self._policy_target(sched.critic_updates)
        if self.critic_done:
            return True  # either catch up to the final target or stop
        return sched.policy_updates + 1 <= target + self.k and (not self.stopping or sched.policy_updates < target)

    def _policy_loop(self) -> None:
        t, sched, s = self.t, self.t.scheduler, self.t.cfg.schedule
        while self._wait("plearner", self._policy_may_run):
            with self.cond:
                if self.critic_done and sched.policy_updates >= self._policy_target(sched.critic_updates):
                    break
            t.plearner.update()
            with self.cond:
                sched.policy_updates += 1
                self._record()
                self.cond.notify_all()
            if sched.policy_updates % s.policy_publish_interval == 0:
                _publish(t, "plearner")

    def _guard(self, fn) -> None:
        try:
            fn()
        except BaseException as exc:  # surfaced in the actor's thread
            with self.cond:
                self.error = exc
                self.cond.notify_all()

    def _start(self) -> None:
        self.threads = [threading.Thread(target=self._guard, args=(fn,), name=name, daemon=True)
                        for fn, name in ((self._critic_loop, "vlearner"), (self._policy_loop, "plearner"))]  # fmt: skip
        for thread in self.threads:
            thread.start()

    def _raise(self) -> None:
        raise RuntimeError(f"a learner thread failed: {self.error!r}") from self.error

    def finish(self) -> None:
        """Stop the actor; learners finish exactly the updates due for the env steps taken, then exit."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join()
        self.threads = []
        if self.error is not None:
            self._raise()

    def quiesce(self) -> None:
        """Learners finish what is due and exit (they restart at the next iteration), so counters and parameters
        are consistent for a checkpoint."""
        self.finish()
        self.stopping = self.critic_done = False
        _synchronize(self.t.device)

    def state_dict(self) -> dict:
        return {"waited": dict(self.waited)}

    def load_state_dict(self, state: dict) -> None:
        self.waited = dict(state["waited"])
        self._waited_logged = dict(self.waited)

    def close(self) -> None:
        if self.threads:
            with self.cond:
                self.stopping = True
                if self.error is None:
                    self.error = RuntimeError("run closed")
                self.cond.notify_all()
            for thread in self.threads:
                thread.join()

    def wait_metrics(self) -> dict[str, float]:
        out = {f"wait_s_{k}": v - self._waited_logged[k] for k, v in self.waited.items()}
        self._waited_logged = dict(self.waited)
        return out


def bound_ok(trace: list[tuple[int, int, int]], utd: Fraction, ratio: Fraction, ls: int, k: int) -> bool:
    """Whether every recorded state keeps both counts within k of their targets (used by tests)."""
    for env_steps, critic, policy in trace:
        if abs(critic - int(utd * max(0, env_steps - ls + 1))) > k or abs(policy - int(ratio * critic)) > k:
            return False
    return True
