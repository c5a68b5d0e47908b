"""Policy export to ONNX and TorchScript, checked against the torch policy before anyone deploys it.

The exported graph is ``DeployedPolicy``: raw observation in, action within the env's bounds out, with the
observation normalizer and the action scaling baked in, so a robot-side runtime needs nothing from this package.
Both formats take a dynamic batch dimension: ``obs`` float32 [batch, obs_dim] -> ``action`` float32 [batch, act_dim].
A multi-task policy (``nets.task.MultiTaskPolicy``) takes the task as a second input: ``obs`` float32 [batch,
obs_dim] (each task's observation zero-padded to the largest), ``task_id`` int64 [batch] -> ``action`` within that
task's bounds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from parallel_rl.nets import DeployedPolicy
from parallel_rl.nets.task import MultiTaskPolicy

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".ts"}
DEFAULT_ATOL = 1e-5


def probe_observations(policy: DeployedPolicy, num: int = 1024, seed: int = 0) -> torch.Tensor:
    """Random raw observations spread over ±4 running standard deviations around the running mean, so the probe
    covers typical inputs as well as the normalizer's clipping range."""
    gen = torch.Generator().manual_seed(seed)
    mean, std = policy.normalizer.mean.cpu(), policy.normalizer.var.cpu().sqrt()
    if isinstance(policy, MultiTaskPolicy):
        mean, std = mean[:-1], std[:-1]  # the task id column is the second input
    return mean + 4.0 * std * (2 * torch.rand(num, mean.numel(), generator=gen) - 1)


def probe_inputs(policy: DeployedPolicy | MultiTaskPolicy, num: int = 1024, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The policy's inputs for a probe: observations, and task ids cycling through every task for a multi-task
    policy."""
    obs = probe_observations(policy, num, seed)
    if isinstance(policy, MultiTaskPolicy):
        return obs, torch.arange(num) % policy.task_action_low.shape[0]
    return (obs,)


def export_onnx(policy: DeployedPolicy, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``policy`` as a single self-contained ONNX file (weights inside, no side ``.data`` file)."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter imports it; fail here with the install hint instead)
    except ImportError as e:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({e}): pip install 'parallel-rl[export]'") from e
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    policy = policy.cpu().eval()
    batch = torch.export.Dim("batch")
    if isinstance(policy, MultiTaskPolicy):
        example = (torch.zeros(2, policy.obs_dim), torch.zeros(2, dtype=torch.int64))
        names, shapes = ["obs", "task_id"], {"obs": {0: batch}, "task_id": {0: batch}}
    else:
        example = (torch.zeros(2, policy.normalizer.mean.numel()),)
        names, shapes = ["obs"], {"obs": {0: batch}}
    # The torch.export-based exporter is the maintained one (the TorchScript-based exporter is deprecated). Its
    # progress messages go to stdout, which we keep clean for the CLI's report; its registry warns about
    # torchvision operators, which a policy never uses.
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(policy, example, dynamo=True, input_names=names, output_names=["action"],
                                        dynamic_shapes=shapes, verbose=False)  # fmt: skip
    finally:
        registry_log.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program; this torch is too old for dynamo export")
    model = program.model_proto
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.checker.check_model(model)
    tmp = path.with_name(path.name + ".part")
    onnx.save_model(model, str(tmp), save_as_external_data=False)
    tmp.replace(path)
    return path


@contextlib.contextmanager
def _torchscript_deprecation_silenced():
    """torch 2.13 marks torch.jit deprecated but it still works, and C++/robot runtimes (libtorch) still load
    TorchScript; the warning would only alarm users who asked for this format on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        yield


def export_torchscript(policy: DeployedPolicy, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``policy`` as a scripted TorchScript module (loadable from C++ with ``torch::jit::load``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"metadata.txt": "\n".join(f"{k}={v}" for k, v in (metadata or {}).items())}
    tmp = path.with_name(path.name + ".part")
    with _torchscript_deprecation_silenced():
        scripted = torch.jit.script(policy.cpu().eval())
        torch.jit.save(scripted, str(tmp), _extra_files=extra)
    tmp.replace(path)
    return path


def onnx_outputs(path: str | Path, obs: torch.Tensor, task_id: torch.Tensor | None = None) -> np.ndarray:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("verifying ONNX exports needs onnxruntime: pip install 'parallel-rl[export]'") from e
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"obs": obs.numpy().astype(np.float32)}
    if task_id is not None:
        feed["task_id"] = task_id.numpy().astype(np.int64)
    return session.run(["action"], feed)[0]


def torchscript_outputs(path: str | Path, obs: torch.Tensor, task_id: torch.Tensor | None = None) -> np.ndarray:
    with _torchscript_deprecation_silenced():
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return (module(obs) if task_id is None else module(obs, task_id)).numpy()


def verify_export(path: str | Path, fmt: Format, policy: DeployedPolicy, num: int = 1024, seed: int = 0) -> float:
    """Largest absolute difference between the exported file (run by onnxruntime or torch.jit) and ``policy``
    on ``num`` random observations, with odd batch sizes to exercise the dynamic batch dimension."""
    inputs = probe_inputs(policy, num, seed)
    with torch.no_grad():
        expected = policy.cpu()(*inputs).numpy()
    run = onnx_outputs if fmt == "onnx" else torchscript_outputs
    worst = 0.0
    for chunk in (slice(0, 1), slice(1, 8), slice(8, num)):  # batch sizes 1, 7 and the rest
        got = run(path, *(x[chunk] for x in inputs))
        if got.shape != expected[chunk].shape:
            raise ValueError(f"{path}: output shape {got.shape}, expected {expected[chunk].shape}")
        worst = max(worst, float(np.abs(got - expected[chunk]).max()))
    return worst


def export_checkpoint(
    checkpoint: str | Path,
    fmt: Format,
    out: str | Path | None = None,
    atol: float = DEFAULT_ATOL,
    num_probe: int = 1024,
) -> dict[str, Any]:
    """Export the policy of ``checkpoint`` and verify it against ``load_policy``; raises ``ExportMismatch`` when
    the largest difference exceeds ``atol`` (the file is kept for inspection). Default output: next to the
    checkpoint, same stem, ``.onnx`` or ``.ts``."""
    from parallel_rl.io.checkpoint import load_checkpoint, load_multitask_policy, load_policy

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    spec = ckpt["policy_spec"]
    multi = bool(spec.get("task_names"))
    policy = load_multitask_policy(checkpoint) if multi else load_policy(checkpoint)
    metadata = {
        "producer": "parallel_rl",
        "task": (ckpt.get("config") or {}).get("task", ""),
        "obs_dim": spec["obs_dim"],
        "act_dim": spec["act_dim"],
        "action_low": spec["action_low"],
        "action_high": spec["action_high"],
        "input": "obs: float32 [batch, obs_dim], raw (unnormalized) observation",
        "output": "action: float32 [batch, act_dim], within [action_low, action_high]",
        **(
            {
                "obs_dim": spec["obs_dim"] - 1,
                "tasks": ",".join(spec["task_names"]),
                "task_dims": spec["task_dims"],
                "task_action_low": spec["task_action_low"],
                "task_action_high": spec["task_action_high"],
                "input": "obs: float32 [batch, obs_dim], raw observation zero-padded to obs_dim; "
                "task_id: int64 [batch], index into tasks",
                "output": "action: float32 [batch, act_dim], within the task's bounds; a task of act_dim_k actions "
                "uses the first act_dim_k columns",
            }
            if multi
            else {}
        ),
        "source_checkpoint": checkpoint.name,
    }
    out = Path(out) if out is not None else checkpoint.with_suffix(SUFFIX[fmt])
    writer = export_onnx if fmt == "onnx" else export_torchscript
    writer(policy, out, metadata)
    max_abs_diff = verify_export(out, fmt, policy, num=num_probe)
    report = {"format": fmt, "path": str(out), "checkpoint": str(checkpoint), "max_abs_diff": max_abs_diff,
              "atol": atol, "probe_observations": num_probe, "obs_dim": spec["obs_dim"],
              "act_dim": spec["act_dim"]}  # fmt: skip
    if not max_abs_diff <= atol:  # also catches NaN
        raise ExportMismatch(report)
    return report


class ExportMismatch(RuntimeError):
    """The exported model disagrees with the torch policy by more than the tolerance."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        super().__init__(f"{report['path']}: {report['format']} outputs differ from the torch policy by up to "
                         f"{report['max_abs_diff']:.3g} (tolerance {report['atol']:g})")  # fmt: skip
