"""Export a policy: ``python -m launch.export --checkpoint runs/.../checkpoints/final.pt --format onnx|torchscript``.

The exported model maps raw observations to actions in the env's bounds (normalizer and action scaling built in).
After writing, the file is run (onnxruntime for ONNX, torch.jit for TorchScript) on random observations and
compared with ``parallel_rl.load_policy``; the largest absolute difference is reported and the command exits with
status 1 when it exceeds ``--atol``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Literal

import tyro


@dataclass(frozen=True)
class ExportArgs:
    """Export a trained policy to ONNX or TorchScript and verify it against the torch policy."""

    checkpoint: str
    """Checkpoint file (e.g. runs/<run>/checkpoints/final.pt)."""
    format: Literal["onnx", "torchscript"] = "onnx"
    """Output format."""
    out: str | None = None
    """Output file; default: next to the checkpoint with the suffix .onnx or .ts."""
    atol: float = 1e-5
    """Largest absolute difference from the torch policy that passes verification."""
    num_probe: int = 1024
    """Random observations used for the verification."""


def main(args: list[str] | None = None) -> dict:
    opts = tyro.cli(ExportArgs, args=sys.argv[1:] if args is None else args, description=ExportArgs.__doc__)
    if opts.num_probe < 8:
        print(f"error: --num-probe must be >= 8, got {opts.num_probe}", file=sys.stderr)
        raise SystemExit(2)
    from parallel_rl.io.export import ExportMismatch, export_checkpoint  # imports torch: after --help and checks

    try:
        report = export_checkpoint(opts.checkpoint, opts.format, opts.out, atol=opts.atol, num_probe=opts.num_probe)
    except ExportMismatch as e:
        print(json.dumps(e.report, indent=2))
        print(f"error: verification failed: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:  # a read-only or full --out directory
        print(f"error: cannot write {e.filename or opts.out}: {e.strerror or e}; nothing was exported", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(report, indent=2))
    print(f"exported {report['path']}: max abs diff {report['max_abs_diff']:.2e} vs torch (atol {opts.atol:g})",
          file=sys.stderr)  # fmt: skip
    return report


def cli() -> None:
    """Console-script entry point (the JSON goes to stdout; the exit status says whether it worked)."""
    from launch._cli import run_cli

    run_cli(main)


if __name__ == "__main__":
    cli()
