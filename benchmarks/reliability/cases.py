"""Try every bad input and fault of docs/reliability.md through the command-line entry points (in one process, with
tiny runs) and print the table: exit status, what was printed on stderr, what survived on disk.

    PYTHONPATH=. python benchmarks/reliability/cases.py > benchmarks/reliability/cases.md

Signals are sent by the process to itself from inside a wrapped env (so they land at a known moment); a full disk is
a file-size limit (writes fail with EFBIG as they fail with ENOSPC on a full disk); a read-only directory is a
read-only tmpfs when run as root, a 0555 directory otherwise.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import tasks  # noqa: E402
from launch.evaluate import main as evaluate_main  # noqa: E402
from launch.scaling import main as scaling_main  # noqa: E402
from launch.train import main as train_main  # noqa: E402
from parallel_rl.io.files import RunDirLock  # noqa: E402

TINY = ["--task", "pendulum", "--num-envs", "4", "--critic-hidden", "16", "16", "--actor-hidden", "16", "16",
        "--num-atoms", "11", "--v-min", "-50", "--v-max", "1", "--reward-scale", "0.1", "--learning-starts", "2",
        "--buffer-size", "4000", "--batch-size", "16", "--eval-envs", "4", "--no-progress", "--device", "cpu",
        "--torch-threads", "1", "--no-tensorboard", "--no-record-code-version"]  # fmt: skip
TMP = Path(tempfile.mkdtemp(prefix="reliability-"))
ROWS: list[tuple[str, str, str, str]] = []


def call(fn: Callable[[list[str]], object], args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            fn(args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


def survived(run: Path | None) -> str:
    if run is None or not run.exists():
        return "nothing (no run directory)"
    if run.is_file():
        return "the file, unchanged"
    parts = []
    ck = run / "checkpoints"
    names = sorted(p.name for p in ck.glob("*.pt")) if ck.is_dir() else []
    if names:
        parts.append("checkpoints " + ", ".join(names))
    if (run / "metrics.csv").is_file():
        with (run / "metrics.csv").open(newline="") as f:
            steps = [r["env_step"] for r in csv.DictReader(f)]
        parts.append(f"metrics.csv ({len(steps)} rows, last env step {steps[-1] if steps else '-'})")
    if (run / "summary.json").is_file():
        parts.append("summary.json")
    tmp = list(run.rglob("*.tmp"))
    if tmp:
        parts.append(f"{len(tmp)} temporary file(s)")
    return ", ".join(parts) or "no checkpoint, metrics row or summary"


def shown(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    text = " / ".join(lines) if lines else "(nothing)"
    text = text.replace(str(TMP), "<tmp>")
    assert "Traceback" not in err, err
    return text.replace("|", "\\|")


def case(name: str, fn, args: list[str], run: Path | None) -> None:
    code, err = call(fn, args)
    ROWS.append((name, str(code), shown(err), survived(run)))


def finished_run(path: Path, *extra: str) -> Path:
    call(train_main, [*TINY, "--total-env-steps", "160", "--checkpoint-every", "80", "--run-dir", str(path), *extra])
    return path


class SignalAt:
    """Pendulum that sends ``sig`` to this process at training step ``at`` or evaluation step ``eval_at``."""

    at: int | None = None
    eval_at: int | None = None
    sig = signal.SIGTERM
    nan_after: int | None = None

    def __init__(self, num_envs, device, seed):
        from tasks.pendulum import Pendulum

        self.inner, self.steps, self.is_eval = Pendulum(num_envs, device, seed), 0, num_envs == 3
        self.spec = self.inner.spec

    def reset(self, seed=None):
        return self.inner.reset(seed)

    def step(self, action):
        self.steps += 1
        if self.steps == (self.eval_at if self.is_eval else self.at):
            os.kill(os.getpid(), self.sig)
        out = self.inner.step(action)
        if self.nan_after is not None and not self.is_eval and self.steps >= self.nan_after:
            out["reward"] = out["reward"] * float("nan")
        return out


@contextlib.contextmanager
def env(**attrs):
    cls = type("Wrapped", (SignalAt,), attrs)
    real = tasks.env_factory
    tasks.env_factory = lambda name: cls
    try:
        yield
    finally:
        tasks.env_factory = real


@contextlib.contextmanager
def file_size_limit(limit: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@contextlib.contextmanager
def read_only(path: Path):
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def main() -> None:
    r = lambda name: TMP / name  # noqa: E731
    # ---- bad input ------------------------------------------------------------------------------------------------
    for name, args in [
        ("`--device cuda` (no CUDA)", ["--device", "cuda"]),
        ("`--device tpu`", ["--device", "tpu"]),
        ("`--device meta`", ["--device", "meta"]),
        ("`--utd inf`", ["--utd", "inf"]),
        ("`--policy-ratio inf`", ["--policy-ratio", "inf"]),
        ("`--critic-lr nan`", ["--critic-lr", "nan"]),
        ("`--reward-scale nan`", ["--reward-scale", "nan"]),
        ("`--max-wall-seconds nan`", ["--max-wall-seconds", "nan"]),
        ("`--task pendulm`", ["--task", "pendulm"]),
        ("`--task gym:Hoper-v5`", ["--task", "gym:Hoper-v5"]),
        ("`--algo td3`", ["--algo", "td3"]),
        ("`--preset fast`", ["--preset", "fast"]),
        ("`--resume missing.pt`", ["--resume", str(TMP / "missing.pt")]),
        ("`--resume x.pt --overwrite`", ["--resume", "x.pt", "--overwrite"]),
    ]:
        case(name, train_main, [*TINY, *args, "--run-dir", str(r("bad"))], r("bad"))
    (TMP / "afile").write_text("x")
    case("`--run-dir` is an existing file", train_main, [*TINY, "--run-dir", str(TMP / "afile")], TMP / "afile")
    with read_only(TMP / "ro") as ro:
        case("`--run-dir` on a read-only file system", train_main, [*TINY, "--run-dir", str(ro / "run")], ro / "run")
    done = finished_run(r("done"))
    case(
        "`--run-dir` holding a finished run (no `--resume`/`--overwrite`)",
        train_main,
        [*TINY, "--run-dir", str(done)],
        done,
    )
    r("live").mkdir()
    with RunDirLock(r("live")):
        case("`--run-dir` of a live run (locked)", train_main, [*TINY, "--run-dir", str(r("live"))], r("live"))
    case(
        "`--resume latest` with another `--gamma`",
        train_main,
        [*TINY, "--total-env-steps", "320", "--gamma", "0.9", "--resume", "latest", "--run-dir", str(done)],
        done,
    )
    # ---- checkpoints ----------------------------------------------------------------------------------------------
    evil, marker = TMP / "evil.pt", TMP / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"schema_version": 2, "policy_spec": Exploit()}, evil)
    case("`launch.evaluate --checkpoint` crafted pickle (runs a shell command when unpickled)", evaluate_main,
         ["--checkpoint", str(evil)], None)  # fmt: skip
    assert not marker.exists()
    (TMP / "garbage.pt").write_bytes(b"not a checkpoint")
    case("`launch.evaluate --checkpoint` not a checkpoint", evaluate_main, ["--checkpoint", str(TMP / "garbage.pt")],
         None)  # fmt: skip
    torch.save({"schema_version": 2}, TMP / "fields.pt")
    case("`launch.evaluate --checkpoint` schema 2 without fields", evaluate_main,
         ["--checkpoint", str(TMP / "fields.pt")], None)  # fmt: skip
    trunc = finished_run(r("trunc"))
    step = sorted((trunc / "checkpoints").glob("step_*.pt"))[-1]
    step.write_bytes(step.read_bytes()[:1000])
    case("`--resume` of a truncated checkpoint", train_main,
         [*TINY, "--total-env-steps", "320", "--resume", str(step), "--run-dir", str(trunc)], trunc)  # fmt: skip
    with read_only(TMP / "ro2") as ro:
        case("`launch.evaluate --out` on a read-only file system", evaluate_main,
             ["--checkpoint", str(done / "checkpoints" / "final.pt"), "--num-envs", "2", "--out", str(ro / "s.json")],
             None)  # fmt: skip
    # ---- faults during a run --------------------------------------------------------------------------------------
    with env(at=60):
        case(
            "SIGTERM during training",
            train_main,
            [*TINY, "--total-env-steps", "4000", "--checkpoint-every", "80", "--run-dir", str(r("term"))],
            r("term"),
        )
    with env(eval_at=5):
        case(
            "SIGTERM during the final evaluation",
            train_main,
            [*TINY, "--total-env-steps", "160", "--eval-envs", "3", "--run-dir", str(r("evalterm"))],
            r("evalterm"),
        )
    with env(at=60, sig=signal.SIGINT):
        case("SIGINT (Ctrl-C) during training", train_main,
             [*TINY, "--total-env-steps", "4000", "--run-dir", str(r("int"))], r("int"))  # fmt: skip
    with env(nan_after=20):
        case("NaN reward (C51 critic, default `--log-every`)", train_main,
             [*TINY, "--total-env-steps", "800", "--run-dir", str(r("nan"))], r("nan"))  # fmt: skip
    with file_size_limit(64 * 1024):
        case("full disk while writing a checkpoint", train_main,
             [*TINY, "--total-env-steps", "320", "--checkpoint-every", "80", "--checkpoint-buffer", "--log-every", "5",
              "--run-dir", str(r("full"))], r("full"))  # fmt: skip
    killed = finished_run(r("killed"), "--log-every", "5")
    (killed / "checkpoints" / "final.pt").unlink()
    (killed / "summary.json").unlink()
    (killed / "checkpoints" / ".step_000000000240.pt.abc.tmp").write_bytes(b"half")
    last = sorted((killed / "checkpoints").glob("step_*.pt"))[-1]
    last.unlink()  # as if SIGKILL came after the row at 160 and while step 160's checkpoint was being written
    case("SIGKILL mid-checkpoint, then `--resume latest`", train_main,
         [*TINY, "--total-env-steps", "160", "--checkpoint-every", "80", "--log-every", "5", "--resume", "latest",
          "--run-dir", str(killed)], killed)  # fmt: skip
    # ---- scaling --------------------------------------------------------------------------------------------------
    from parallel_rl.scaling.runtable import RUN_TABLE_COLUMNS

    table = TMP / "runs.csv"
    row = dict(task="t", algo="fasttd3", utd="0", batch_size="64", lr="1e-3", critic_width="16", critic_params="100",
               seed="0", env_step="10", wall_seconds="1", **{"return": "5"})  # fmt: skip
    table.write_text(",".join(RUN_TABLE_COLUMNS) + "\n" + ",".join(row.get(c, "") for c in RUN_TABLE_COLUMNS) + "\n")
    case("`launch.scaling fit` on a row with utd 0", scaling_main, ["fit", "--runs", str(table), "--out",
                                                                     str(TMP / "f.json")], None)  # fmt: skip
    (TMP / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 8)
    case("`launch.scaling fit` on a binary file", scaling_main, ["fit", "--runs", str(TMP / "binary.csv"), "--out",
                                                                  str(TMP / "f.json")], None)  # fmt: skip
    print("| case | exit | printed (stderr) | on disk afterwards |")
    print("|---|---|---|---|")
    for name, code, text, disk in ROWS:
        print(f"| {name} | {code} | {text} | {disk} |")


if __name__ == "__main__":
    main()
