"""Network families of the high-UTD papers, each an ensemble evaluated in one batched call.

Every family maps ``x`` [batch, in] (shared by all members) or [members, batch, in] to [members, batch, out]; a
critic uses ``members`` = number of Q networks, an actor uses one member. Defaults follow the official code:

- ``mlp``: the plain MLP (``nets.mlp``), ``depth`` hidden layers of ``width``.
- ``bronet`` (BRO, Nauman et al. 2024; naumix/BiggerRegularizedOptimistic ``BroNet``): Dense-LayerNorm-ReLU, then
  ``depth`` residual blocks x + LN(Dense(ReLU(LN(Dense(x))))), then a Dense head; orthogonal init with gain sqrt(2),
  zero biases. BRO's critic is width 512, depth 2; its actor width 256, depth 1.
- ``simbav2`` (SimbaV2, Lee et al. 2025; dojeon-ai/SimbaV2 ``simbaV2_layer.py``): hyperspherical normalization.
  Input shifted by a constant ``c_shift`` = 3 and L2-normalized; every linear layer is bias-free with unit-norm
  weight vectors (re-projected after each step by ``project_weights_``); features L2-normalized after the embedder
  and after every block; each block interpolates towards its MLP's output, h <- l2(h + alpha (l2(MLP(h)) - h)), with
  a learnable per-feature alpha (init 1/(depth+1), scale 1/sqrt(width)); learnable scalers (init and scale
  sqrt(2/width)) undo the normalization's loss of magnitude. MLP expansion 4. Critic width 512, depth 2; actor
  width 128, depth 1.
- ``normed`` (FlashSAC, Kim et al. 2026, leeyngdo/FlashSAC ``layer.py``; XQC, Palenicek et al. 2025): a normalized
  input embedding, ``depth`` inverted residual blocks h + ReLU(N(W2 ReLU(N(W1 h)))) with expansion 4, a post
  RMSNorm and a linear head; all weights unit-norm per output unit (projected after each step) and normalization
  gains held at norm sqrt(d). N is batch norm (``norm="batch"``, FlashSAC), batch renormalization
  (``"renorm"``, CrossQ/XQC) or RMS norm (``"rms"``, no batch statistics; the input is then not normalized, since
  an RMS norm of the raw (obs, action) vector would drop its magnitude). Critic width 256, depth 2; actor width
  128, depth 2.

All of it is CUDA-graph capturable (no host syncs, no value-dependent branches) and ONNX-exportable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from parallel_rl.nets.mlp import EnsembleLinear, activation, ensemble_mlp
from parallel_rl.nets.norms import (
    EPS,
    EnsembleBatchNorm,
    EnsembleLayerNorm,
    EnsembleRMSNorm,
    EnsembleUnitLinear,
    l2_normalize,
)

ARCHS: tuple[str, ...] = ("mlp", "bronet", "simbav2", "normed")
NORMS: tuple[str, ...] = ("batch", "renorm", "rms")


@dataclass(frozen=True)
class NetSpec:
    """Architecture of an actor or critic network (``--critic-arch/-width/-depth``, ``--actor-...``)."""

    arch: str = "mlp"
    width: int = 256
    depth: int = 2
    act: str = "relu"
    """Activation of the ``mlp`` and ``bronet`` families (SimbaV2 and the normed family use ReLU, as published)."""
    norm: str = "batch"
    """Normalization of the ``normed`` family: batch, renorm or rms."""

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown network arch {self.arch!r}; valid: {', '.join(ARCHS)}")
        if self.width < 1 or self.depth < 0 or (self.arch == "mlp" and self.depth < 1):
            raise ValueError(f"{self.arch} network needs width >= 1 and depth >= {1 if self.arch == 'mlp' else 0}, "
                             f"got width {self.width}, depth {self.depth}")  # fmt: skip
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r} of the normed family; valid: {', '.join(NORMS)}")
        activation(self.act)  # validates the name

    def as_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "width": self.width, "depth": self.depth, "act": self.act, "norm": self.norm}


PUBLISHED_DEFAULTS: dict[str, dict[str, tuple[int, int]]] = {
    "critic": {"bronet": (512, 2), "simbav2": (512, 2), "normed": (256, 2)},
    "actor": {"bronet": (256, 1), "simbav2": (128, 1), "normed": (128, 2)},
}
"""(width, depth) of each family's critic and actor in the official code (BRO, SimbaV2, FlashSAC)."""


def resolve_spec(
    role: str, arch: str, width: int | None, depth: int | None, hidden: tuple[int, ...], act: str, norm: str
) -> NetSpec | None:
    """The ``NetSpec`` of ``--<role>-arch/-width/-depth``; None for the plain MLP given by ``hidden`` alone (the
    historical path, whose parameters and checkpoints stay exactly as before)."""
    if arch == "mlp":
        if width is None and depth is None:
            return None
        return NetSpec("mlp", width or hidden[0], depth or len(hidden), act, norm)
    default_width, default_depth = PUBLISHED_DEFAULTS[role][arch]
    return NetSpec(arch, width or default_width, default_depth if depth is None else depth, act, norm)


def uses_batch_statistics(module: nn.Module) -> bool:
    """Whether ``module`` normalizes with batch statistics in training mode (then a critic should see the current
    and next state-actions in one batch, as CrossQ and FlashSAC do)."""
    return any(isinstance(m, EnsembleBatchNorm) for m in module.modules())


def _orthogonal_(layer: EnsembleLinear, gain: float) -> EnsembleLinear:
    with torch.no_grad():
        for m in range(layer.weight.shape[0]):
            nn.init.orthogonal_(layer.weight.data[m], gain=gain)
        layer.bias.zero_()
    return layer


# ---- BroNet -----------------------------------------------------------------------------------------------------
class BroBlock(nn.Module):
    def __init__(self, members: int, width: int, act: str) -> None:
        super().__init__()
        gain = math.sqrt(2.0)
        self.fc1, self.ln1 = (
            _orthogonal_(EnsembleLinear(members, width, width), gain),
            EnsembleLayerNorm(members, width),
        )
        self.fc2, self.ln2 = (
            _orthogonal_(EnsembleLinear(members, width, width), gain),
            EnsembleLayerNorm(members, width),
        )
        self.act = activation(act)()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ln2(self.fc2(self.act(self.ln1(self.fc1(x)))))


class EnsembleBroNet(nn.Module):
    def __init__(self, members: int, in_dim: int, out_dim: int, width: int = 512, depth: int = 2, act: str = "relu"):
        super().__init__()
        gain = math.sqrt(2.0)
        self.inp = _orthogonal_(EnsembleLinear(members, in_dim, width), gain)
        self.inp_norm = EnsembleLayerNorm(members, width)
        self.act = activation(act)()
        self.blocks = nn.ModuleList(BroBlock(members, width, act) for _ in range(depth))
        self.head = _orthogonal_(EnsembleLinear(members, width, out_dim), gain)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.inp_norm(self.inp(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# ---- SimbaV2 ----------------------------------------------------------------------------------------------------
class Scaler(nn.Module):
    """Learnable per-feature gain stored as ``scale`` times its value: the parameter starts at ``scale`` and the
    forward multiplies by ``init / scale``, so the effective gain starts at ``init`` while its learning rate is
    rescaled by ``scale`` (SimbaV2's Scaler)."""

    def __init__(self, members: int, dim: int, init: float, scale: float) -> None:
        super().__init__()
        self.forward_scale = init / scale
        self.scaler = nn.Parameter(torch.full((members, 1, dim), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scaler * self.forward_scale * x


class HyperMLP(nn.Module):
    def __init__(self, members: int, width: int, hidden: int, scaler_init: float, scaler_scale: float) -> None:
        super().__init__()
        self.w1 = EnsembleUnitLinear(members, width, hidden)
        self.scaler = Scaler(members, hidden, scaler_init, scaler_scale)
        self.w2 = EnsembleUnitLinear(members, hidden, width)
        self.eps = EPS  # keeps the vector off zero before normalizing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.scaler(self.w1(x))) + self.eps
        return l2_normalize(self.w2(x))


class HyperLERPBlock(nn.Module):
    def __init__(self, members: int, width: int, scaler: float, alpha_init: float, alpha_scale: float, expansion=4):
        super().__init__()
        shrink = math.sqrt(expansion)
        self.mlp = HyperMLP(members, width, width * expansion, scaler / shrink, scaler / shrink)
        self.alpha = Scaler(members, width, alpha_init, alpha_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(x + self.alpha(self.mlp(x) - x))


class EnsembleSimbaV2(nn.Module):
    def __init__(self, members: int, in_dim: int, out_dim: int, width: int = 512, depth: int = 2,
                 c_shift: float = 3.0, expansion: int = 4):  # fmt: skip
        super().__init__()
        self.c_shift = c_shift
        scaler = math.sqrt(2.0 / width)
        self.embed = EnsembleUnitLinear(members, in_dim + 1, width)
        self.embed_scaler = Scaler(members, width, scaler, scaler)
        alpha_init, alpha_scale = 1.0 / (depth + 1), 1.0 / math.sqrt(width)
        self.blocks = nn.ModuleList(
            HyperLERPBlock(members, width, scaler, alpha_init, alpha_scale, expansion) for _ in range(depth)
        )
        self.head_w1 = EnsembleUnitLinear(members, width, width)
        self.head_scaler = Scaler(members, width, 1.0, 1.0)
        self.head_w2 = EnsembleUnitLinear(members, width, out_dim)
        self.head_bias = nn.Parameter(torch.zeros(members, 1, out_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Points on the unit hypersphere, [members, batch, width]."""
        x = l2_normalize(nn.functional.pad(x, (0, 1), value=self.c_shift))
        x = l2_normalize(self.embed_scaler(self.embed(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_w2(self.head_scaler(self.head_w1(self.features(x)))) + self.head_bias


# ---- bounded-norm family (FlashSAC / XQC) -----------------------------------------------------------------------
def _norm(kind: str, members: int, dim: int) -> nn.Module:
    if kind == "batch":
        return EnsembleBatchNorm(members, dim, momentum=0.01, eps=1e-5, bounded=True)
    if kind == "renorm":
        return EnsembleBatchNorm(members, dim, momentum=0.01, eps=1e-3, renorm=True, bounded=True)
    return EnsembleRMSNorm(members, dim, bounded=True)


class NormedBlock(nn.Module):
    def __init__(self, members: int, width: int, norm: str, expansion: int = 4) -> None:
        super().__init__()
        self.w1 = EnsembleUnitLinear(members, width, width * expansion)
        self.norm1 = _norm(norm, members, width * expansion)
        self.w2 = EnsembleUnitLinear(members, width * expansion, width)
        self.norm2 = _norm(norm, members, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.norm2(self.w2(torch.relu(self.norm1(self.w1(x))))))


class EnsembleNormedNet(nn.Module):
    def __init__(self, members: int, in_dim: int, out_dim: int, width: int = 256, depth: int = 2,
                 norm: str = "batch", expansion: int = 4):  # fmt: skip
        super().__init__()
        self.members = members
        # Batch statistics standardize each input feature; an RMS norm would instead rescale the whole (obs, action)
        # vector and lose its magnitude, so the RMS variant leaves the (already normalized) input as it is.
        self.in_norm = nn.Identity() if norm == "rms" else _norm(norm, members, in_dim)
        self.embed = EnsembleUnitLinear(members, in_dim, width)
        self.blocks = nn.ModuleList(NormedBlock(members, width, norm, expansion) for _ in range(depth))
        self.post_norm = EnsembleRMSNorm(members, width, bounded=True)
        self.head = EnsembleUnitLinear(members, width, out_dim)
        self.head_bias = nn.Parameter(torch.zeros(members, 1, out_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # batch statistics are per member: give every member its own copy of the input
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        x = self.embed(self.in_norm(x))
        for block in self.blocks:
            x = block(x)
        return self.post_norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) + self.head_bias


def free_output_layer(net: nn.Module) -> nn.Module | None:
    """The output layer of ``net`` whose weight scale is free (FastTD3's small actor init, ``--actor-init-scale``,
    applies to it): the last linear layer of a plain MLP, BroNet's head. None for SimbaV2 and the normed family:
    their output weights are projected to unit norm after every step, so a small init would be undone by the first
    projection; they keep their published init (output bias zero). Looking for "the last module with a bias"
    instead would pick a normalization layer of the normed family (or find none)."""
    if isinstance(net, EnsembleBroNet):
        return net.head
    if isinstance(net, (EnsembleSimbaV2, EnsembleNormedNet)):
        return None
    linears = [m for m in net.modules() if isinstance(m, (nn.Linear, EnsembleLinear))]
    return linears[-1] if linears else None


def build_ensemble_net(spec: NetSpec, members: int, in_dim: int, out_dim: int) -> nn.Module:
    """``spec``'s network as ``members`` stacked copies: [B, in] or [members, B, in] -> [members, B, out]."""
    if spec.arch == "mlp":
        return ensemble_mlp(members, in_dim, [spec.width] * spec.depth, out_dim, spec.act)
    if spec.arch == "bronet":
        return EnsembleBroNet(members, in_dim, out_dim, spec.width, spec.depth, spec.act)
    if spec.arch == "simbav2":
        return EnsembleSimbaV2(members, in_dim, out_dim, spec.width, spec.depth)
    return EnsembleNormedNet(members, in_dim, out_dim, spec.width, spec.depth, spec.norm)
