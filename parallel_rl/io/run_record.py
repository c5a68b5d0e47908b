"""What a run directory records about its run: the resolved config as YAML, the exact code (commit and uncommitted
diff), and the loggers (CSV, TensorBoard with hyperparameters, optional W&B) built from the config.

A result can only be reproduced from the code that produced it; a commit hash alone is not that code when the
working tree had local edits, hence the diff beside it.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parallel_rl.io.files import atomic_write_text
from parallel_rl.io.logger import MetricsLogger, flatten_hparams, write_json

CODE_COMMIT_ENV = "PARALLEL_RL_GIT_COMMIT"
"""Commit to record when the code is not a git checkout (Docker images set it from a build argument)."""


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively, so YAML and JSON hold plain data that loads back without custom tags."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_config_yaml(path: str | Path, config: Mapping[str, Any]) -> Path:
    """The resolved config (preset and flags applied) as YAML, in field order."""
    try:
        import yaml
    except ImportError as e:
        raise ImportError("writing config.yaml needs PyYAML: pip install pyyaml") from e
    path = Path(path)
    header = "# Resolved config of this run (preset defaults, then command-line flags).\n"
    atomic_write_text(path, header + yaml.safe_dump(_plain(config), sort_keys=False, default_flow_style=False))
    return path


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout  # fmt: skip


def code_version(source_dir: str | Path | None = None) -> tuple[dict[str, Any], str | None]:
    """``({commit, branch, dirty, untracked, ...}, diff)`` of the git checkout holding ``source_dir`` (default: the
    installed ``parallel_rl`` package). ``diff`` is ``git diff HEAD`` (staged and unstaged changes to tracked
    files), or None when the code is not a git checkout."""
    import parallel_rl

    source = Path(source_dir) if source_dir is not None else Path(parallel_rl.__file__).resolve().parent
    info: dict[str, Any] = {"source_dir": str(source), "python": sys.version.split()[0],
                            "platform": platform.platform()}  # fmt: skip
    try:
        from importlib.metadata import version

        info["package_version"] = version("parallel-rl")
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        info["package_version"] = getattr(parallel_rl, "__version__", None)
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        root = Path(_git(source, "rev-parse", "--show-toplevel").strip())
        commit = _git(root, "rev-parse", "HEAD").strip()
        # A package installed into a virtualenv that sits inside some repository is not that repository's code.
        _git(source, "ls-files", "--error-unmatch", "__init__.py")
    except (OSError, subprocess.SubprocessError) as e:
        reason = "git is not installed" if isinstance(e, FileNotFoundError) else "not a git checkout with a commit"
        info.update(git=False, commit=os.environ.get(CODE_COMMIT_ENV), reason=reason)
        return info, None
    status = _git(root, "status", "--porcelain", "--untracked-files=normal").splitlines()
    diff = _git(root, "diff", "HEAD", "--no-color", "--no-ext-diff")
    info.update(
        git=True,
        repo_root=str(root),
        commit=commit,
        branch=_git(root, "rev-parse", "--abbrev-ref", "HEAD").strip(),
        describe=_git(root, "describe", "--always", "--dirty", "--tags").strip(),
        dirty=bool(status),
        modified=[line[3:] for line in status if not line.startswith("??")],
        untracked=[line[3:] for line in status if line.startswith("??")],
    )
    return info, diff


def record_run_metadata(
    run_dir: str | Path, config: Mapping[str, Any], record_code_version: bool = True
) -> dict[str, Path]:
    """Write ``config.yaml`` and, when asked, ``code_version.json`` and ``code.diff`` (``git diff HEAD``, empty
    for a clean checkout; untracked files are listed in the JSON, not copied) into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    written = {"config": write_config_yaml(run_dir / "config.yaml", config)}
    if record_code_version:
        info, diff = code_version()
        if diff is not None:
            atomic_write_text(run_dir / "code.diff", diff)
            written["diff"] = run_dir / "code.diff"
            info["diff_file"] = "code.diff"
        write_json(run_dir / "code_version.json", info)
        written["code_version"] = run_dir / "code_version.json"
    return written


def init_wandb(
    run_dir: str | Path,
    config: Mapping[str, Any],
    project: str = "parallel_rl",
    entity: str | None = None,
    group: str | None = None,
    mode: str = "online",
) -> Any:
    """Start a W&B run whose files live under ``<run_dir>/wandb`` (``offline`` needs no account or network)."""
    try:
        import wandb
    except ImportError as e:
        raise ImportError("--wandb needs the wandb package: pip install 'parallel-rl[wandb]' (or pip install "
                          "wandb), or drop --wandb") from e  # fmt: skip
    run_dir = Path(run_dir)
    return wandb.init(project=project, entity=entity, group=group, mode=mode, dir=str(run_dir), name=run_dir.name,
                      config=_plain(config))  # fmt: skip


def open_run_logger(
    run_dir: str | Path, cfg: Any, extra: Mapping[str, Any] | None = None, purge_step: int | None = None
) -> MetricsLogger:
    """Everything a training run records at its start, from its ``TrainConfig``: config.yaml, code version,
    and a ``MetricsLogger`` with TensorBoard (hyperparameters included) and W&B as ``cfg.logging`` asks.

    ``extra`` (e.g. ``{"resolved_device": "cuda:0"}``) is added to the recorded config; ``purge_step`` is passed
    to ``MetricsLogger`` (a resumed run).
    """
    config = {**dataclasses.asdict(cfg), **(extra or {})}
    log_cfg = cfg.logging
    record_run_metadata(run_dir, config, record_code_version=log_cfg.record_code_version)
    wandb_run = None
    if log_cfg.wandb:
        wandb_run = init_wandb(run_dir, config, project=log_cfg.wandb_project, entity=log_cfg.wandb_entity,
                               group=log_cfg.wandb_group, mode=log_cfg.wandb_mode)  # fmt: skip
    try:
        return MetricsLogger(run_dir, tensorboard=log_cfg.tensorboard, hparams=flatten_hparams(config),
                             wandb_run=wandb_run, purge_step=purge_step)  # fmt: skip
    except BaseException:
        if wandb_run is not None:
            wandb_run.finish()
        raise
