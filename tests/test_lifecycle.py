"""Run lifecycle: exact resume after SIGKILL, SIGTERM -> checkpoint + exit status, corrupted checkpoints,
incompatible configs, NaN/Inf stops with its source while the last good checkpoint stays intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tasks
from parallel_rl.algos import ALGORITHMS
from parallel_rl.io import load_checkpoint
from parallel_rl.io.checkpoint import list_checkpoints
from parallel_rl.runtime import Trainer
from parallel_rl.runtime.guards import NonFiniteError
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--task", "pendulum", "--num-envs", "4", "--critic-hidden", "16", "16", "--actor-hidden", "16", "16",
         "--num-atoms", "11", "--v-min", "-50", "--v-max", "1", "--reward-scale", "0.1", "--learning-starts", "2",
         "--buffer-size", "4000", "--batch-size", "16", "--eval-envs", "4", "--no-progress", "--device", "cpu",
         "--torch-threads", "1", "--checkpoint-buffer"]  # fmt: skip


def _train(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "launch.train", *FLAGS, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for(path_fn, proc: subprocess.Popen, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = path_fn()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"training exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no checkpoint appeared in time")


def _training_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """The algorithm's whole saved state (networks, targets, normalizers, optimizer moments, exploration)."""
    out: dict[str, torch.Tensor] = {}

    def flatten(prefix: str, value) -> None:
        if torch.is_tensor(value):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}", v)

    flatten("algo", ckpt["algo"])
    return out


# DAC, DEA and VPL (issue 15) run the in-process twin of this test (tests/test_resets.py): three subprocesses per
# algorithm cost ~30 CPU-s each.
@pytest.mark.parametrize("algo", [a for a in ALGORITHMS if a not in ("dac", "dea", "vpl")])
def test_resume_after_sigkill_is_bit_identical(tmp_path, algo):
    total, every = 4 * 300, 4 * 120
    run = ("--algo", algo, "--total-env-steps", str(total))
    straight = _train(*run, "--run-dir", str(tmp_path / "a"))
    killed = _train(*run, "--checkpoint-every", str(every), "--run-dir", str(tmp_path / "b"))
    ckpt = _wait_for(lambda: next(iter(list_checkpoints(tmp_path / "b")), None), killed)
    killed.send_signal(signal.SIGKILL)  # no handler can run: the checkpoint on disk is all that survives
    killed.wait()
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-2000:]
    assert ckpt.name == f"step_{every:012d}.pt"
    resumed = _train(*run, "--run-dir", str(tmp_path / "b"), "--resume", str(ckpt))
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "final.pt")
    assert a["scheduler"] == b["scheduler"] and a["scheduler"]["critic_updates"] > 0
    sa, sb = _training_state(a), _training_state(b)
    assert sa.keys() == sb.keys() and len(sa) > 10
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_sigterm_writes_a_checkpoint_and_says_so(tmp_path):
    proc = _train("--total-env-steps", str(4 * 10**6), "--checkpoint-every", "400", "--run-dir", str(tmp_path))
    _wait_for(lambda: next(iter(list_checkpoints(tmp_path)), None), proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    err = proc.stderr.read()
    assert "stopped by SIGTERM" in err and "--resume" in err
    latest = list_checkpoints(tmp_path)[-1]
    ckpt = load_checkpoint(latest)
    assert ckpt["scheduler"]["env_steps"] * 4 == int(latest.stem.split("_")[1])


def test_corrupted_checkpoint_gives_a_clear_error_and_the_previous_still_loads(tmp_path):
    cfg = tiny_config(total_env_steps=4 * 60, checkpoint_every=4 * 20)
    Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    paths = list_checkpoints(tmp_path)
    assert len(paths) == 3
    data = paths[-1].read_bytes()
    paths[-1].write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted.*previous checkpoint is .*step_000000000160"):
        load_checkpoint(paths[-1])
    assert load_checkpoint(paths[-2])["scheduler"]["env_steps"] == 40


def test_resume_with_another_config_names_the_fields(tmp_path):
    Trainer(tiny_config(total_env_steps=4 * 30, checkpoint_every=4 * 30), tasks.env_factory("pendulum")).run(tmp_path)
    cfg = tiny_config(total_env_steps=4 * 60, resume="latest", run_dir=str(tmp_path),
                      agent={"gamma": 0.9}, schedule={"utd": 2})  # fmt: skip
    with pytest.raises(ValueError, match=r"(?s)--gamma: checkpoint has 0\.99, this run 0\.9.*--utd"):
        Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)


def test_resume_rejects_another_schema_version(tmp_path):
    Trainer(tiny_config(total_env_steps=4 * 30, checkpoint_every=4 * 30), tasks.env_factory("pendulum")).run(tmp_path)
    path = list_checkpoints(tmp_path)[-1]
    ckpt = torch.load(path, weights_only=False)
    ckpt["schema_version"] = 1
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="schema version 1"):
        load_checkpoint(path)


class NaNAfter:
    """Pendulum whose rewards become NaN from the given vectorized step on."""

    def __init__(self, num_envs, device, seed, after=70):
        from tasks.pendulum import Pendulum

        self.inner, self.after, self.steps = Pendulum(num_envs, device, seed), after, 0
        self.spec = self.inner.spec

    def reset(self, seed=None):
        return self.inner.reset(seed)

    def step(self, action):
        out = self.inner.step(action)
        self.steps += 1
        if self.steps >= self.after:
            out["reward"] = out["reward"] * float("nan")
        return out


def test_nan_from_the_env_stops_the_run_and_keeps_the_good_checkpoint(tmp_path):
    cfg = tiny_config(total_env_steps=4 * 200, checkpoint_every=4 * 50, log_every=10)
    with pytest.raises(NonFiniteError, match="environment returned a NaN/Inf .* between env steps 240 and 280"):
        Trainer(cfg, NaNAfter).run(tmp_path)
    (good,) = list_checkpoints(tmp_path)
    ckpt = load_checkpoint(good)
    assert ckpt["scheduler"]["env_steps"] == 50
    assert all(torch.isfinite(v).all() for v in ckpt["algo"]["critic"].values())
