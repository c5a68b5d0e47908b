"""The run directory on disk: atomic file writes, a guard against mixing two runs in one directory, a lock against
two live runs, stale temporary files, and log truncation when a run resumes from an earlier checkpoint.

Every file a run rewrites goes to a temporary file in the same directory, is fsynced and renamed over the old one,
so a full disk or a kill mid-write leaves the previous version intact, never half a file. Appends that fail are
cut back to the previous length, so a CSV never ends mid-row.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import shutil
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
RUN_FILES = ("metrics.csv", "summary.json", "config.json", "config.yaml", "run_table.csv", "code_version.json",
             "code.diff")  # fmt: skip
"""Files a training run writes into its directory (besides checkpoints/ and tensorboard/)."""
RUN_DIRS = ("checkpoints", "tensorboard", "wandb")
LOG_CSVS = ("metrics.csv", "run_table.csv")
"""CSV logs with an ``env_step`` column, cut back to a resumed checkpoint's step."""


class RunDirError(OSError):
    """The run directory cannot be used as asked (holds another run, is a file, is locked, is not writable)."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path_for(path: Path) -> tuple[int, Path]:
    """An open descriptor and the name of a new temporary file beside ``path`` (removed at the next start if a
    kill leaves it behind: see ``remove_stale_temp_files``)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    return fd, Path(tmp)


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename. ``mode`` defaults to the umask's
    usual mode for a new file (0600 for private files such as checkpoints)."""
    path = Path(path)
    fd, tmp = temp_path_for(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> Path:
    return atomic_write_bytes(path, text.encode(), mode)


def atomic_copy(src: str | Path, dst: str | Path, mode: int = 0o600) -> Path:
    """Copy ``src`` to ``dst`` atomically with ``mode`` (checkpoint copies such as best.pt stay private)."""
    src, dst = Path(src), Path(dst)
    fd, tmp = temp_path_for(dst)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)
    return dst


def append_text(path: str | Path, text: str) -> None:
    """Append ``text``; if the write fails (full disk), cut the file back to its old length so it never ends in
    half a row, then re-raise."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    try:
        with path.open("a", newline="") as f:
            f.write(text)
            f.flush()
    except OSError:
        try:
            os.truncate(path, size)
        except OSError:
            pass
        raise


def csv_text(fields: list[str], rows: list[dict]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def csv_row_text(fields: list[str], row: dict) -> str:
    buf = io.StringIO(newline="")
    csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore").writerow(row)
    return buf.getvalue()


# ---- the run directory --------------------------------------------------------------------------------------------
def run_contents(run_dir: str | Path) -> list[str]:
    """What in ``run_dir`` belongs to a training run (empty: the directory is free to use)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [name for name in RUN_FILES if (run_dir / name).is_file()]
    ckpts = sorted((run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() else []
    if ckpts:
        found.append(f"{len(ckpts)} checkpoint{'s' if len(ckpts) > 1 else ''}")
    if (run_dir / "tensorboard").is_dir() and any((run_dir / "tensorboard").iterdir()):
        found.append("tensorboard/")
    return found


def check_run_dir(run_dir: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, a run directory that is a file, or that holds another run while neither
    ``--resume`` nor ``--overwrite`` was given (two runs in one directory mix their logs and checkpoints)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--run-dir {run_dir}: is an existing file, not a directory; choose another --run-dir")
    for parent in run_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise RunDirError(f"--run-dir {run_dir}: {parent} is a file, not a directory; choose another --run-dir")
    existing = next((p for p in (run_dir, *run_dir.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        why = "read-only file system" if read_only else f"no write permission on {existing}"
        raise RunDirError(f"--run-dir {run_dir}: cannot write there ({why}); nothing was written")
    found = run_contents(run_dir)
    if found and not resume and not overwrite:
        raise RunDirError(
            f"--run-dir {run_dir}: already holds a run ({', '.join(found)}); continue it with --resume latest, "
            f"replace it with --overwrite, or choose another --run-dir"
        )


class RunDirLock:
    """An exclusive ``flock`` on ``<run_dir>/.lock`` for the life of a run: a second run started in the same
    directory is refused instead of interleaving its CSV rows and checkpoints. The kernel drops the lock when the
    process dies, even by SIGKILL, so a stale lock never blocks a resume."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(f"--run-dir {self.path.parent}: another live run (pid {other}) is writing there; "
                                  "wait for it to end or choose another --run-dir") from None  # fmt: skip
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (removing it would race a new locker)
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def clear_run(run_dir: str | Path) -> list[str]:
    """``--overwrite``: remove the files and directories a previous run wrote (nothing else in the directory)."""
    run_dir, removed = Path(run_dir), []
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            (run_dir / name).unlink()
            removed.append(name)
    for name in RUN_DIRS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)
            removed.append(name + "/")
    return removed


def remove_stale_temp_files(run_dir: str | Path) -> list[Path]:
    """Temporary files left by a run killed mid-write (SIGKILL, power loss); call with the run's lock held."""
    run_dir, removed = Path(run_dir), []
    for directory in (run_dir, run_dir / "checkpoints"):
        if directory.is_dir():
            for path in sorted(directory.glob("*" + TMP_SUFFIX)):
                if path.is_file():
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return removed


def open_run_dir(run_dir: str | Path, resume: bool, overwrite: bool) -> tuple[RunDirLock, list[str]]:
    """Create and lock ``run_dir`` for a run, after the checks of ``check_run_dir``; ``--overwrite`` clears the
    old run, and stale temporary files are removed. Returns the held lock and one line per thing done."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume, overwrite)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunDirLock(run_dir).acquire()
    except RunDirError:
        raise
    except OSError as e:
        raise RunDirError(f"--run-dir {run_dir}: cannot write there ({e.strerror or e}); nothing was written") from None
    notes = []
    try:
        if overwrite and not resume:
            removed = clear_run(run_dir)
            if removed:
                notes.append(f"--overwrite: removed the previous run's {', '.join(removed)} from {run_dir}")
        stale = remove_stale_temp_files(run_dir)
        if stale:
            notes.append(f"removed {len(stale)} temporary file(s) left by an interrupted write: "
                         + ", ".join(p.name for p in stale))  # fmt: skip
    except BaseException:
        lock.release()
        raise
    return lock, notes


def truncate_csv_log(path: str | Path, env_step: int) -> int:
    """Drop the rows of a CSV log logged after ``env_step`` (atomically); returns how many were dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    if "env_step" not in fields:
        return 0
    kept = [r for r in rows if _step(r.get("env_step")) <= env_step]
    if len(kept) < len(rows):
        atomic_write_text(path, csv_text(fields, kept))
    return len(rows) - len(kept)


def _step(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return float("inf")  # a row cut mid-number by a crash is dropped with the rows after the checkpoint


def truncate_logs(run_dir: str | Path, env_step: int) -> dict[str, int]:
    """On resume: the rows logged after the checkpoint's ``env_step`` are re-logged by the resumed run, so drop
    them from every CSV log (TensorBoard purges its own through ``purge_step``). Returns file -> rows dropped."""
    return {name: n for name in LOG_CSVS if (n := truncate_csv_log(Path(run_dir) / name, env_step))}


def describe_kept(run_dir: str | Path) -> str:
    """One phrase for an error line: what of the run is safe on disk (newest checkpoint, last logged step)."""
    run_dir = Path(run_dir)
    parts = []
    ckpt_dir = run_dir / "checkpoints"
    ckpts = sorted(ckpt_dir.glob("step_*.pt")) if ckpt_dir.is_dir() else []
    if (ckpt_dir / "final.pt").is_file():
        parts.append(f"checkpoint {ckpt_dir / 'final.pt'}")
    elif ckpts:
        parts.append(f"checkpoint {ckpts[-1]}")
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        try:
            with metrics.open(newline="") as f:
                rows = list(csv.DictReader(f))
            last = f" up to env step {rows[-1].get('env_step')}" if rows else " (no rows)"
            parts.append(f"metrics.csv{last}")
        except (OSError, csv.Error):
            parts.append("metrics.csv")
    return "kept: " + ", ".join(parts) if parts else "no checkpoint or metrics row had been written yet"
