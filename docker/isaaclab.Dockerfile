# Isaac Lab variant: parallel_rl installed into the Python of NVIDIA's Isaac Lab image (Isaac Sim 5.1, Python 3.11).
#
#   docker build -f docker/isaaclab.Dockerfile -t parallel-rl:isaaclab .
#   docker run --gpus all --rm -e ACCEPT_EULA=Y -e PRIVACY_CONSENT=Y \
#       -v "$PWD/runs:/workspace/parallel_rl/runs" parallel-rl:isaaclab \
#       python -m launch.train --task isaaclab:Isaac-Velocity-Flat-H1-v0 --device cuda
#
# The base image is pulled from NGC without a login; Isaac Sim's EULA must be accepted at run time (ACCEPT_EULA=Y).
FROM nvcr.io/nvidia/isaac-lab:2.3.2

# Isaac Lab 2.3 installs torch 2.7, below this project's range (>=2.11,<2.14), so torch is replaced by a pinned
# release inside the range. Isaac Lab's own code runs on it; NVIDIA only tests the torch it ships.
ARG TORCH_VERSION=2.11.0
ARG GIT_COMMIT=unknown

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    ACCEPT_EULA=Y \
    PRIVACY_CONSENT=Y

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# `python` runs Isaac Sim's interpreter (the one Isaac Lab is installed in), so the README's commands work unchanged.
RUN printf '#!/bin/bash\nexec "%s/isaaclab.sh" -p "$@"\n' "${ISAACLAB_PATH:-/workspace/isaaclab}" > /usr/local/bin/python \
    && chmod +x /usr/local/bin/python

RUN python -m pip install --no-cache-dir "torch==${TORCH_VERSION}"

WORKDIR /workspace/parallel_rl
COPY pyproject.toml README.md ./
COPY parallel_rl ./parallel_rl
COPY tasks ./tasks
COPY launch ./launch
COPY tests ./tests
COPY benchmarks ./benchmarks
RUN python -m pip install --no-cache-dir -e ".[export,video,wandb]" \
    && python -c "import torch; assert torch.__version__.startswith('${TORCH_VERSION}'), torch.__version__"

ENV PARALLEL_RL_GIT_COMMIT=${GIT_COMMIT}
ENTRYPOINT []
CMD ["python", "-m", "launch.train", "--help"]
