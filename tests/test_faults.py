"""Fault injection: signals during evaluation and checkpoint writes, SIGKILL + resume, a full disk, a read-only
directory, corrupted and crafted checkpoints, NaN rewards, a reused run directory, and bad command-line input.
Each case asserts what survived on disk and what the user was told (one line, no traceback).

Tiny configs, in-process where possible; subprocesses only where a real signal or pipe needs one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tasks
from parallel_rl.io import load_checkpoint, load_policy
from parallel_rl.io.checkpoint import list_checkpoints
from parallel_rl.io.files import RunDirError, RunDirLock
from parallel_rl.io.logger import MetricsLogger
from parallel_rl.runtime import Trainer
from parallel_rl.runtime.guards import NonFiniteError, TrainingInterrupted
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
CLI = ["--task", "pendulum", "--num-envs", "4", "--critic-hidden", "16", "16", "--actor-hidden", "16", "16",
       "--num-atoms", "11", "--v-min", "-50", "--v-max", "1", "--reward-scale", "0.1", "--learning-starts", "2",
       "--buffer-size", "4000", "--batch-size", "16", "--eval-envs", "4", "--no-progress", "--device", "cpu",
       "--torch-threads", "1", "--no-tensorboard", "--no-record-code-version"]  # fmt: skip


class KilledBySignal(Exception):
    """Stands in for the default action of SIGTERM (death) outside the run's own handlers."""


@contextlib.contextmanager
def sigterm_raises():
    """SIGTERM raises ``KilledBySignal`` unless the code under test installed its own handler."""

    def die(signum, frame):
        raise KilledBySignal(signum)

    previous = signal.signal(signal.SIGTERM, die)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def metrics_steps(run_dir: Path) -> list[int]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return [int(float(r["env_step"])) for r in csv.DictReader(f)]


def one_error_line(err: str, notes: tuple[str, ...] = ()) -> str:
    """The one ``error:`` line of ``err`` (the last line); other lines may only be notes starting with ``notes``."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: "), err
    assert all(line.startswith(notes) for line in lines[:-1]) if notes else len(lines) == 1, err
    return lines[-1]


def train_cli(args: list[str], capsys) -> tuple[int, str]:
    from launch.train import main

    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


# ---- D1: signals during evaluation and checkpoint writes ---------------------------------------------------------
class SignalOnEval:
    """Pendulum; the evaluation env (3 envs, unlike the 4 training envs) sends SIGTERM to this process at its 5th
    step: during the final evaluation."""

    def __init__(self, num_envs, device, seed):
        from tasks.pendulum import Pendulum

        self.inner, self.steps, self.is_eval = Pendulum(num_envs, device, seed), 0, num_envs == 3
        self.spec = self.inner.spec

    def reset(self, seed=None):
        return self.inner.reset(seed)

    def step(self, action):
        self.steps += 1
        if self.is_eval and self.steps == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.inner.step(action)


def test_sigterm_during_the_final_evaluation_keeps_the_trained_policy(tmp_path):
    cfg = tiny_config(total_env_steps=4 * 30, eval_envs=3, log_every=10)
    with sigterm_raises(), pytest.raises(TrainingInterrupted) as e:
        Trainer(cfg, SignalOnEval).run(tmp_path)
    assert e.value.exit_code == 143 and "during the final evaluation" in str(e.value)
    final = tmp_path / "checkpoints" / "final.pt"
    assert str(final) in str(e.value) and "launch.evaluate" in str(e.value)
    assert load_checkpoint(final)["scheduler"]["env_steps"] == 30  # the whole training is saved
    assert metrics_steps(tmp_path)[-1] == 4 * 30
    assert not (tmp_path / "summary.json").exists()  # no evaluation result was made up


def test_sigterm_during_a_checkpoint_write_is_deferred_not_lost(tmp_path, monkeypatch):
    import parallel_rl.io.checkpoint as ckpt_module

    real_save, writes = torch.save, []

    def save_with_signal(obj, f, *args, **kwargs):
        writes.append(f.name)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-write (before the bytes are out)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(ckpt_module.torch, "save", save_with_signal)
    cfg = tiny_config(total_env_steps=4 * 30, eval_envs=3)
    with sigterm_raises(), pytest.raises(TrainingInterrupted) as e:
        Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)  # only final.pt is written: the signal hits it
    final = tmp_path / "checkpoints" / "final.pt"
    assert len(writes) == 1 and load_checkpoint(final)["scheduler"]["env_steps"] == 30  # complete, readable
    assert e.value.exit_code == 143 and "during the final evaluation" in str(e.value)
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_sigterm_during_a_periodic_evaluation_saves_and_names_the_run_dir(tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(total_env_steps=4 * 200, eval_every=4 * 20), tasks.env_factory("pendulum"))
    real_evaluate = trainer.evaluate

    def evaluate_with_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", evaluate_with_signal)
    with sigterm_raises(), pytest.raises(TrainingInterrupted) as e:
        trainer.run(tmp_path)
    (ckpt,) = list_checkpoints(tmp_path)
    assert ckpt.name == f"step_{4 * 21:012d}.pt"  # evaluation at step 20 finished; saved and stopped at 21
    assert f"--run-dir {tmp_path}" in str(e.value) and "<this run dir>" not in str(e.value)
    assert metrics_steps(tmp_path)[-1] == 4 * 21


# ---- D2: resume truncates the logs -------------------------------------------------------------------------------
def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), purge_orphaned_data=True)
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_resume_from_an_earlier_checkpoint_logs_each_step_once(tmp_path):
    from parallel_rl.scaling.runtable import read_run_table, write_run_dir_table

    cfg = tiny_config(total_env_steps=4 * 60, checkpoint_every=4 * 20, log_every=5, checkpoint_buffer=True,
                      logging={"tensorboard": True, "record_code_version": False})  # fmt: skip
    Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    write_run_dir_table(tmp_path)  # what launch.train writes at the end
    before = (tmp_path / "metrics.csv").read_text().splitlines()
    middle = tmp_path / "checkpoints" / f"step_{4 * 40:012d}.pt"  # a SIGKILL after step 240 resumes from here
    resumed = dataclasses.replace(cfg, resume=str(middle))
    Trainer(resumed, tasks.env_factory("pendulum")).run(tmp_path)
    steps = metrics_steps(tmp_path)
    assert steps == sorted(set(steps)) and steps[-1] == 4 * 60  # each step once, in order
    after = (tmp_path / "metrics.csv").read_text().splitlines()
    kept = [line for line in before[1:] if int(float(line.split(",")[0])) <= 4 * 40]
    assert after[1 : 1 + len(kept)] == kept  # rows up to the checkpoint are the original ones
    table = read_run_table(tmp_path / "run_table.csv")
    assert all(r["env_step"] <= 4 * 40 for r in table)  # cut back too (rewritten by launch.train at the end)
    tb = tensorboard_steps(tmp_path, "critic_loss")
    assert tb == sorted(set(tb)) and tb[-1] == 4 * 60


def _popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "launch.train", *CLI, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_sigkill_then_resume_latest_keeps_the_logs_continuous_and_removes_temp_files(tmp_path):
    run = tmp_path / "run"
    args = ("--total-env-steps", str(4 * 200), "--checkpoint-every", str(4 * 60), "--log-every", "10",
            "--run-dir", str(run))  # fmt: skip
    proc = _popen(*args)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # a row logged after the newest checkpoint
        ckpts = list_checkpoints(run)
        if ckpts and max(metrics_steps(run), default=0) > int(ckpts[-1].stem.split("_")[1]):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run / "checkpoints" / ".step_000000000999.pt.x1.tmp").write_bytes(b"half a checkpoint")  # a write cut off
    assert max(metrics_steps(run)) > int(list_checkpoints(run)[-1].stem.split("_")[1])
    resumed = _popen(*args, "--resume", "latest")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    assert "removed 1 temporary file(s) left by an interrupted write" in err and "resume: dropped" in err
    assert not list(run.rglob("*.tmp"))
    steps = metrics_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 4 * 200
    from parallel_rl.scaling.runtable import curves, read_run_table

    curves(read_run_table(run / "run_table.csv"))  # `launch.scaling fit` accepts the run (no step twice)


# ---- D3: NaN reward with the default C51 critic and logging interval ------------------------------------------
class NaNAfter:
    def __init__(self, num_envs, device, seed, after=20):
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


def test_nan_reward_at_the_default_log_interval_is_the_documented_stop(tmp_path):
    cfg = tiny_config(total_env_steps=4 * 120)  # log_every: the default 50 (30 updates on NaN targets first)
    assert cfg.log_every == 50 and cfg.agent.num_atoms > 1
    with pytest.raises(NonFiniteError, match="environment returned a NaN/Inf .* between env steps 0 and 200"):
        Trainer(cfg, NaNAfter).run(tmp_path)
    assert not list_checkpoints(tmp_path) and not (tmp_path / "checkpoints" / "final.pt").exists()


def test_projection_of_a_nan_target_stays_in_bounds():
    from parallel_rl.algos.common import categorical_projection

    support = torch.linspace(-1, 1, 5)
    probs = torch.full((2, 5), 0.2)
    out = categorical_projection(probs, torch.tensor([float("nan"), 0.0]), torch.tensor([0.9, 0.9]), support)
    assert out.shape == (2, 5) and torch.allclose(out.sum(-1), torch.ones(2))


# ---- D4: run-directory reuse -------------------------------------------------------------------------------------
def test_a_run_dir_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, capsys):
    cfg = tiny_config(total_env_steps=4 * 30, checkpoint_every=4 * 10, eval_every=4 * 10)
    Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(RunDirError, match="already holds a run .*--resume latest.*--overwrite"):
        Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    assert {p: p.read_bytes() for p in before} == before  # untouched
    assert (tmp_path / "checkpoints" / "best.pt").stat().st_mode & 0o777 == 0o600  # private like the others
    code, err = train_cli([*CLI, "--total-env-steps", "120", "--run-dir", str(tmp_path)], capsys)
    assert code == 2 and "already holds a run" in one_error_line(err)
    cfg2 = tiny_config(total_env_steps=4 * 20, seed=1, overwrite=True)
    Trainer(cfg2, tasks.env_factory("pendulum")).run(tmp_path)
    assert metrics_steps(tmp_path) == [4 * 20]  # only the new run's rows
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["final.pt"]
    assert load_checkpoint(tmp_path / "checkpoints" / "final.pt")["config"]["seed"] == 1


def test_two_live_runs_in_one_dir_are_prevented(tmp_path):
    with RunDirLock(tmp_path):  # another run holds the directory
        with pytest.raises(RunDirError, match=r"another live run \(pid \d+\) is writing there"):
            Trainer(tiny_config(total_env_steps=4 * 10), tasks.env_factory("pendulum")).run(tmp_path)
    assert not (tmp_path / "metrics.csv").exists()
    Trainer(tiny_config(total_env_steps=4 * 10), tasks.env_factory("pendulum")).run(tmp_path)  # lock released


# ---- D5: full disk ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail with EFBIG, as writes on a full disk fail with ENOSPC (SIGXFSZ ignored)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_full_disk_never_cuts_metrics_csv(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False)
    for step in range(40):
        logger.log(step, {"critic_loss": 1.0 / (step + 1)})
    whole = (tmp_path / "metrics.csv").read_bytes()
    with file_size_limit(len(whole) + 40):
        with pytest.raises(OSError):  # a new column: the whole file is rewritten, wider
            logger.log(40, {"critic_loss": 0.5, "episode_return": -1234.5678})
        for step in range(41, 45):  # appends until the limit: the last one fails and is cut back
            with contextlib.suppress(OSError):
                logger.log(step, {"critic_loss": 0.123456789})
    data = (tmp_path / "metrics.csv").read_bytes()
    assert data.startswith(whole) and data.endswith(b"\n")  # nothing lost, no row cut mid-number
    rows = list(csv.DictReader(data.decode().splitlines()))
    steps = [int(r["env_step"]) for r in rows]
    assert steps[:40] == list(range(40)) and 40 not in steps  # the failed row is absent, not half there
    assert all(float(r["critic_loss"]) > 0 for r in rows)  # every row whole
    assert not list(tmp_path.glob("*.tmp"))


def test_a_full_disk_during_a_checkpoint_is_one_line_naming_what_was_kept(tmp_path, capsys):
    run = tmp_path / "run"
    with file_size_limit(64 * 1024):  # the checkpoint with its buffer is larger; the logs are not
        code, err = train_cli([*CLI, "--total-env-steps", "160", "--checkpoint-every", "80", "--checkpoint-buffer",
                               "--log-every", "5", "--run-dir", str(run)], capsys)  # fmt: skip
    line = one_error_line(err)
    assert (
        code == 1
        and "cannot write" in line
        and "File too large" in line
        and "kept: metrics.csv up to env step 80" in line
    )
    assert not list(run.rglob("*.tmp")) and not list_checkpoints(run)
    assert metrics_steps(run) == [20, 40, 60, 80]


# ---- read-only directory -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def read_only_dir(path: Path):
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_run_dir_is_one_line_before_any_work(tmp_path, capsys):
    with read_only_dir(tmp_path / "ro") as ro:
        code, err = train_cli([*CLI, "--run-dir", str(ro / "run")], capsys)
        assert not list(ro.iterdir())
    line = one_error_line(err)
    assert code == 2 and f"--run-dir {ro / 'run'}: cannot write there" in line and "nothing was written" in line


# ---- D6: corrupted, foreign and crafted checkpoints ----------------------------------------------------------
class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path, capsys):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"schema_version": 2, "policy_spec": Exploit(marker)}, path)
    with pytest.raises(ValueError, match=r"not a parallel_rl checkpoint: it refers to \w+\.system"):
        load_policy(path)
    assert not marker.exists()
    from launch.evaluate import main as evaluate

    with pytest.raises(SystemExit) as e:
        evaluate(["--checkpoint", str(path)])
    assert e.value.code == 2 and "refused without running it" in one_error_line(capsys.readouterr().err)
    code, err = train_cli([*CLI, "--run-dir", str(tmp_path / "run"), "--resume", str(path)], capsys)
    assert code == 2 and "not a parallel_rl checkpoint" in one_error_line(err)
    assert not marker.exists()


def test_foreign_truncated_and_incomplete_checkpoints_are_one_clear_error(tmp_path):
    cases = {
        "garbage.pt": (b"not a checkpoint at all", "not a readable parallel_rl checkpoint"),
        "tensor.pt": (torch.zeros(3), "not a parallel_rl checkpoint \\(no schema_version; it holds a Tensor\\)"),
        "fields.pt": ({"schema_version": 2}, "schema-2 checkpoint without policy_spec, actor, normalizer"),
        "spec.pt": ({"schema_version": 2, "policy_spec": {"obs_dim": 3}, "actor": {}, "normalizer": {}},
                    "without policy_spec.act_dim"),
    }  # fmt: skip
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        with pytest.raises(ValueError, match=message):
            load_policy(path)


def test_resume_of_a_checkpoint_missing_fields_is_one_line(tmp_path, capsys):
    from launch.train import main

    main([*CLI, "--total-env-steps", "80", "--checkpoint-every", "80", "--run-dir", str(tmp_path)])
    path = list_checkpoints(tmp_path)[-1]
    ckpt = load_checkpoint(path)
    del ckpt["rng"]
    torch.save(ckpt, path)
    code, err = train_cli([*CLI, "--total-env-steps", "160", "--run-dir", str(tmp_path), "--resume", str(path)],
                          capsys)  # fmt: skip
    assert code == 2 and "checkpoint without field 'rng'" in one_error_line(err, notes=("resume: ",))


# ---- D7: bad input is one line and exit 2 before any work ----------------------------------------------------
BAD_INPUT = {
    "device-tpu": (["--device", "tpu"], "--device: 'tpu' is not a device"),
    "device-meta": (["--device", "meta"], "--device: 'meta' is not a device"),
    "utd-inf": (["--utd", "inf"], "--utd: must be a finite number, got inf"),
    "policy-ratio-inf": (["--policy-ratio", "inf"], "--policy-ratio: must be a finite number"),
    "critic-lr-nan": (["--critic-lr", "nan"], "--critic-lr: must be a finite number, got nan"),
    "reward-scale-nan": (["--reward-scale", "nan"], "--reward-scale: must be a finite number"),
    "max-wall-seconds-nan": (["--max-wall-seconds", "nan"], "--max-wall-seconds: must be a finite number"),
    "task-typo": (["--task", "pendulm"], "did you mean 'pendulum'"),
    "resume-and-overwrite": (["--resume", "x.pt", "--overwrite"], "--overwrite"),
    "resume-missing-file": (["--resume", "missing.pt"], "--resume missing.pt: no such checkpoint file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    args, message = BAD_INPUT[case]
    code, err = train_cli([*CLI, "--run-dir", str(tmp_path / "run"), *args], capsys)
    assert code == 2 and message in one_error_line(err)
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_cuda_without_cuda_is_one_line(tmp_path, capsys):
    code, err = train_cli([*CLI, "--run-dir", str(tmp_path / "run"), "--device", "cuda"], capsys)
    assert code == 2 and "CUDA is not available on this machine" in one_error_line(err)


def test_a_run_dir_that_is_a_file_is_one_line_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = train_cli([*CLI, "--run-dir", str(tmp_path / "file")], capsys)
    assert code == 2 and "is an existing file" in one_error_line(err)


def test_a_gymnasium_id_typo_gets_a_did_you_mean(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    code, err = train_cli([*CLI, "--task", "gym:Hoper-v5", "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 2 and "did you mean 'Hopper-v5'" in one_error_line(err)


def test_help_into_a_closed_pipe_is_quiet():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "launch.train", "--help"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # like `| head` exiting before the help is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


# ---- first contact -----------------------------------------------------------------------------------------------
def test_a_gpu_sized_backend_preset_on_a_cpu_takes_the_cpu_preset_and_says_so(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from launch.train import cpu_seconds_per_step, parse, prepare

    task, run = "gym:Humanoid-v5", ["--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    cfg, _ = prepare(["--task", task, *run, "--num-envs", "4"])
    assert (cfg.preset, cfg.buffer.batch_size, cfg.num_envs) == ("cpu", 256, 4)  # flags still override it
    assert "using its 'cpu' preset (the default preset is GPU-sized: 128 envs, batch 32768)" in capsys.readouterr().err
    explicit, _ = prepare(["--task", task, *run, "--preset", "default"])
    err = capsys.readouterr().err
    assert explicit.preset == "default" and explicit.buffer.batch_size == 32768
    assert "a GPU-sized run (batch 32768) on a CPU: expect roughly" in err and "'cpu' preset" not in err
    # the estimate's calibration: the measured ~55 s per step of mjlab's G1 default preset on 2 cores, within 2x
    g1 = parse(["--task", "mjlab:Mjlab-Velocity-Flat-Unitree-G1", "--preset", "default"])
    assert 27 < cpu_seconds_per_step(g1) < 110
    assert prepare(["--task", "pendulum", *run])[0].preset == "default"  # built-in tasks are CPU-sized


def test_task_list_and_the_shipped_published_fits(tmp_path, capsys):
    from launch.scaling import main as scaling
    from launch.train import main

    with pytest.raises(SystemExit) as e:
        main(["--task", "list"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "pendulum" in out and "mjlab:" in out and "gym:" in out
    scaling(["budget", "--fits", str(ROOT / "benchmarks/scaling/published_gym_fits.json"), "--out",
             str(tmp_path / "b.json")])  # fmt: skip
    import json

    assert json.loads((tmp_path / "b.json").read_text())["k"] == pytest.approx(2.62e-9, rel=0.03)


def test_scaling_rejects_utd_zero_rows_and_binary_files_naming_them(tmp_path, capsys):
    from launch.scaling import main as scaling
    from parallel_rl.scaling.runtable import RUN_TABLE_COLUMNS

    table = tmp_path / "runs.csv"
    row = {"task": "t", "algo": "fasttd3", "utd": "0", "batch_size": "64", "lr": "1e-3", "critic_width": "16",
           "critic_params": "100", "seed": "0", "env_step": "10", "wall_seconds": "1", "return": "5"}  # fmt: skip
    table.write_text(",".join(RUN_TABLE_COLUMNS) + "\n" + ",".join(row.get(c, "") for c in RUN_TABLE_COLUMNS) + "\n")
    with pytest.raises(SystemExit) as e:
        scaling(["fit", "--runs", str(table), "--out", str(tmp_path / "f.json")])
    assert e.value.code == 2 and f"{table}, line 2: utd must be > 0" in one_error_line(capsys.readouterr().err)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 10)
    with pytest.raises(SystemExit) as e:
        scaling(["fit", "--runs", str(binary), "--out", str(tmp_path / "f.json")])
    assert e.value.code == 2 and f"{binary}: not a text CSV" in one_error_line(capsys.readouterr().err)


def test_temporary_files_of_a_killed_write_are_removed_at_the_next_start(tmp_path, capsys):
    cfg = tiny_config(total_env_steps=4 * 20, checkpoint_every=4 * 10)
    Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    stale = [tmp_path / "checkpoints" / ".step_000000000120.pt.k1.tmp", tmp_path / ".metrics.csv.k2.tmp"]
    for path in stale:
        path.write_bytes(b"cut off by SIGKILL")
    resumed = dataclasses.replace(cfg, total_env_steps=4 * 30, resume="latest", run_dir=str(tmp_path))
    Trainer(resumed, tasks.env_factory("pendulum")).run(tmp_path)
    assert "removed 2 temporary file(s) left by an interrupted write" in capsys.readouterr().err
    assert not any(p.exists() for p in stale) and not list(tmp_path.rglob("*.tmp"))
