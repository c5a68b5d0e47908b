"""Export parity: the ONNX file (run by onnxruntime) and the TorchScript file (run by torch.jit) give the actions of
``load_policy`` within 1e-5 on every built-in task, and the verification really catches a different model."""

from __future__ import annotations

import json

import pytest
import torch

from launch import export as export_cli
from parallel_rl.io import load_policy
from parallel_rl.io.export import (
    export_checkpoint,
    onnx_outputs,
    probe_observations,
    torchscript_outputs,
    verify_export,
)
from tests.policy_checkpoints import BUILTIN_TASKS, trained_checkpoint

onnx = pytest.importorskip("onnx", reason="ONNX export tests need pip install '.[export]'")
pytest.importorskip("onnxruntime", reason="ONNX export tests need pip install '.[export]'")
pytest.importorskip("onnxscript", reason="ONNX export tests need pip install '.[export]'")


@pytest.mark.parametrize("task", BUILTIN_TASKS)
def test_onnx_and_torchscript_match_load_policy(task, tmp_path):
    ckpt = trained_checkpoint(task, tmp_path / "final.pt")
    policy = load_policy(ckpt)
    obs = probe_observations(policy, num=257, seed=1)
    with torch.no_grad():
        expected = policy(obs).numpy()
    onnx_report = export_checkpoint(ckpt, "onnx")
    ts_report = export_checkpoint(ckpt, "torchscript")
    assert onnx_report["path"] == str(tmp_path / "final.onnx") and ts_report["path"] == str(tmp_path / "final.ts")
    assert onnx_report["max_abs_diff"] <= 1e-5 and ts_report["max_abs_diff"] <= 1e-5
    # Independent of the exporter's own check: run both files here on other observations.
    got_onnx = onnx_outputs(onnx_report["path"], obs)
    got_ts = torchscript_outputs(ts_report["path"], obs)
    assert got_onnx.shape == got_ts.shape == expected.shape
    assert abs(got_onnx - expected).max() <= 1e-5
    assert abs(got_ts - expected).max() <= 1e-5
    # Action scaling is inside the graph: outputs reach beyond [-1, 1] where the env's bounds do.
    low, high = policy.action_low.numpy(), policy.action_high.numpy()
    assert (got_onnx >= low - 1e-6).all() and (got_onnx <= high + 1e-6).all()
    model = onnx.load(onnx_report["path"])  # one self-contained file with its metadata
    assert not list(tmp_path.glob("*.data"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["task"] == task and meta["obs_dim"] == str(policy.normalizer.mean.numel())


def test_verification_detects_a_different_model(tmp_path):
    ckpt = trained_checkpoint("pendulum", tmp_path / "a.pt")
    report = export_checkpoint(ckpt, "onnx")
    other = load_policy(ckpt)
    with torch.no_grad():
        other.normalizer.mean += 1.0  # a stale normalizer is the classic deployment bug
    assert verify_export(report["path"], "onnx", other) > 1e-3


def test_export_cli_reports_max_abs_diff(tmp_path, capsys):
    ckpt = trained_checkpoint("cartpole-swingup", tmp_path / "final.pt")
    out = tmp_path / "deploy" / "policy.ts"
    report = export_cli.main(["--checkpoint", str(ckpt), "--format", "torchscript", "--out", str(out)])
    assert out.is_file() and report["path"] == str(out)
    printed = json.loads(capsys.readouterr().out)
    assert printed["max_abs_diff"] <= 1e-5 and printed["format"] == "torchscript"


def test_export_cli_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        export_cli.main(["--checkpoint", str(tmp_path / "nope.pt"), "--format", "onnx"])
    assert exc.value.code == 2
    assert "checkpoint not found" in capsys.readouterr().err
