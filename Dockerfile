# CUDA GPU image: torch and JAX with CUDA, MuJoCo Playground, and parallel_rl (with export, video and W&B extras).
#
#   docker build -t parallel-rl:cuda .
#   docker run --gpus all --rm -v "$PWD/runs:/workspace/parallel_rl/runs" parallel-rl:cuda \
#       python -m launch.train --task pendulum --device cuda
#
# torch and JAX ship their CUDA libraries in their wheels (CUDA 13 for both here), so the base image only has to
# make the NVIDIA Container Toolkit expose the driver; the host needs a driver for CUDA 13.0 (>= 580).
FROM nvidia/cuda:13.0.2-base-ubuntu24.04

# torch must stay within the project's range (pyproject.toml: >=2.11,<2.14); PyPI's Linux wheels use CUDA 13.
ARG TORCH_VERSION=2.11.0
ARG JAX_VERSION=0.10.2
ARG PLAYGROUND_VERSION=0.2.0
ARG MUJOCO_VERSION=3.17.0
# Recorded in each run's code_version.json, since the image holds no .git: --build-arg GIT_COMMIT=$(git rev-parse HEAD)
ARG GIT_COMMIT=unknown

# graphics: the driver's EGL library, which MuJoCo's offscreen renderer (evaluation videos) uses headless.
# XLA preallocates 75% of GPU memory by default; torch shares the GPU with JAX here.
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl \
    XLA_PYTHON_CLIENT_PREALLOCATE=false

# Ubuntu removes superseded package versions from its archive, so exact apt pins (DL3008) would break rebuilds;
# the Python stack, which decides the results, is pinned exactly below.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates git libegl1 libgl1 libgles2 libglvnd0 python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

# One resolver run for torch and JAX, so conflicting CUDA library pins fail the build instead of a later import.
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir \
        "torch==${TORCH_VERSION}" \
        "jax[cuda13]==${JAX_VERSION}" \
        "playground==${PLAYGROUND_VERSION}" \
        "mujoco==${MUJOCO_VERSION}"

WORKDIR /workspace/parallel_rl
COPY pyproject.toml README.md ./
COPY parallel_rl ./parallel_rl
COPY tasks ./tasks
COPY launch ./launch
COPY tests ./tests
COPY benchmarks ./benchmarks
# The installed torch satisfies the project's range, so this adds no second torch.
RUN pip install --no-cache-dir -e ".[dev,export,video,wandb,playground]" \
    && python -c "import torch; assert torch.__version__.startswith('${TORCH_VERSION}'), torch.__version__"

ENV PARALLEL_RL_GIT_COMMIT=${GIT_COMMIT}
CMD ["python", "-m", "launch.train", "--help"]
