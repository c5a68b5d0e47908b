"""Network blocks: a plain MLP and a stacked-ensemble MLP that evaluates several critics in one batched call, each
optionally with normalization layers: LayerNorm after every hidden linear layer (FastSAC's networks) or batch
renormalization on the input and after every hidden activation (CrossQ's networks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from parallel_rl.nets import onednn
from parallel_rl.nets.batchrenorm import BatchRenorm

Norm = Literal["none", "layer", "batchrenorm"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def activation(name: str) -> type[nn.Module]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}") from None


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    act: str = "relu",
    norm: Norm = "none",
    brn: dict[str, Any] | None = None,
) -> nn.Sequential:
    """Linear-activation stack. ``norm="layer"``: Linear -> LayerNorm -> act (holosoma's FastSAC);
    ``norm="batchrenorm"``: BRN(input), then Linear -> act -> BRN (CrossQ), ``brn`` holding BatchRenorm options."""
    layers = mlp_trunk(in_dim, hidden, act, norm, brn)
    layers.append(nn.Linear(([in_dim, *hidden])[-1], out_dim))
    return nn.Sequential(*layers)


def mlp_trunk(
    in_dim: int, hidden: Sequence[int], act: str = "relu", norm: Norm = "none", brn: dict[str, Any] | None = None
) -> list[nn.Module]:
    """The hidden layers of ``mlp`` (everything before the output layer), for networks with several heads."""
    layers: list[nn.Module] = [BatchRenorm(in_dim, **(brn or {}))] if norm == "batchrenorm" else []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers.append(nn.Linear(a, b))
        if norm == "layer":
            layers.append(nn.LayerNorm(b))
        layers.append(activation(act)())
        if norm == "batchrenorm":
            layers.append(BatchRenorm(b, **(brn or {})))
    return layers


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers stored as one [members, in, out] weight; one ``baddbmm`` runs all.

    Hand-written (rather than ``torch.func.stack_module_state`` + ``vmap``) so that it is an ordinary module:
    optimizers, state dicts, ``torch.compile`` and CUDA graphs see plain parameters.
    """

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init, member by member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [members, batch, in] (or [batch, in], shared by all members) -> [members, batch, out]."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm with one affine pair per ensemble member ([members, batch, dim] inputs), as separate networks have."""

    def __init__(self, members: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


class _LinearReLU(torch.autograd.Function):
    """relu(x @ w + b) for stacked members with no elementwise pass beyond the one it needs.

    Eager autograd spends a copy broadcasting the bias into the output (``baddbmm``), a freshly allocated ReLU
    output and a freshly allocated ReLU gradient: on a CPU, with [2, batch, 1024] activations, those memory passes
    cost about as much as the matmuls they surround. Here the bias add and the ReLU are one in-place pass over the
    ``bmm`` output, and the backward masks the incoming gradient in place."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        y = torch.bmm(x, weight)
        torch._add_relu_(y, bias)
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, y = ctx.saved_tensors
        # The gradient reaching an interior layer is the fresh bmm output of the layer above: ours to overwrite
        # (anything else, e.g. a broadcast gradient, is masked out of place).
        if grad.is_contiguous():
            grad = torch.ops.aten.threshold_backward.grad_input(grad, y, 0, grad_input=grad)
        else:
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = torch.bmm(grad, weight.transpose(1, 2)) if need_x else None
        grad_w = torch.bmm(x.transpose(1, 2), grad) if need_w else None
        grad_b = grad.sum(1, keepdim=True) if need_b else None
        return grad_x, grad_w, grad_b


def _fusable(x: torch.Tensor) -> bool:
    """The fused CPU kernel (``_add_relu_``) exists on CPU only, and autocast and torch.compile see plain ops."""
    return x.device.type == "cpu" and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()


class _ReLUStack(torch.autograd.Function):
    """A whole stack of ``EnsembleLinear`` + ``ReLU`` pairs and a final ``EnsembleLinear`` as one autograd node.

    Same arithmetic as ``_LinearReLU`` layer by layer (and the output layer's ``baddbmm``), but one node instead of
    one per layer plus the output layer's broadcast-bias node: at a few hundred units the autograd bookkeeping per
    node (saving, unpacking, the Python ``backward`` call, gradient routing) cost about as much as the small matmuls
    it surrounds. The backward walks the layers top-down and stops below the lowest input that needs a gradient
    (weights of a frozen critic replica are skipped; its first layer's input gradient is computed for the actor)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        acts = [x]
        out = relu_stack_forward(x, params, acts)
        ctx.save_for_backward(*acts, *params[0::2])
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        saved = ctx.saved_tensors
        layers = len(saved) // 2
        return tuple(relu_stack_backward(grad, saved[:layers], saved[layers:], ctx.needs_input_grad))


def relu_stack_backward(
    grad: torch.Tensor,
    acts: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    needs: Sequence[bool],
    input_columns: int | None = None,
) -> list[torch.Tensor | None]:
    """Gradients of a ReLU stack (``relu_stack_forward``) given the gradient of its output: ``acts`` its input and
    hidden activations, ``weights`` its weights, ``needs`` whether (input, w1, b1, w2, ...) each need one. Walks the
    layers top-down and stops below the lowest input that needs a gradient. ``grad`` itself is never written (the
    ReLU masks are applied in place to the fresh ``bmm`` outputs below the output layer). ``input_columns``: only
    the input gradient's last that many columns are wanted (a critic's action part), so only they are computed."""
    layers = len(weights)
    # Lowest layer whose weight, bias or input needs a gradient: nothing below it is computed.
    lowest = 0 if needs[0] else next((i for i in range(layers) if needs[1 + 2 * i] or needs[2 + 2 * i]), layers)
    grads: list[torch.Tensor | None] = [None] * len(needs)
    g = grad
    for i in range(layers - 1, lowest - 1, -1):
        if i < layers - 1:  # below the output layer: mask by the ReLU; g is the fresh bmm output, ours to overwrite
            g = torch.ops.aten.threshold_backward.grad_input(g, acts[i + 1], 0, grad_input=g)
        if needs[1 + 2 * i]:
            grads[1 + 2 * i] = torch.bmm(acts[i].transpose(1, 2), g)
        if needs[2 + 2 * i]:
            grads[2 + 2 * i] = g.sum(1, keepdim=True)
        if i > lowest or needs[0]:
            w = weights[i] if i > 0 or input_columns is None else weights[0][:, -input_columns:]
            g = torch.bmm(g, w.transpose(1, 2))
    if needs[0]:
        grads[0] = g
    return grads


class EnsembleMLP(nn.Sequential):
    """A stack of ``EnsembleLinear`` and activation modules (the plain ``nn.Sequential`` layout and state-dict
    keys) whose forward on a CPU runs each ``EnsembleLinear`` + ``ReLU`` pair as one fused step, and a stack of
    nothing but such pairs and an output ``EnsembleLinear`` as one autograd node (``_ReLUStack``)."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        n = len(layers)
        self._relu_stack = (
            n % 2 == 1
            and all(isinstance(layers[i], EnsembleLinear) for i in range(0, n, 2))
            and all(type(layers[i]) is nn.ReLU for i in range(1, n, 2))
        )
        # Fixed by the structure (read every update; indexing an nn.Sequential walks its modules each time).
        self._linears = list(layers[0::2]) if self._relu_stack else []
        self._members = layers[0].weight.shape[0] if n and isinstance(layers[0], EnsembleLinear) else 0

    @property
    def is_relu_stack(self) -> bool:
        """Nothing but ``EnsembleLinear`` + ``ReLU`` pairs and an output ``EnsembleLinear``: what
        ``relu_stack_forward`` computes and ``relu_stack_backward`` differentiates."""
        return self._relu_stack

    def stack_params(self) -> list[torch.Tensor]:
        """(w1, b1, w2, b2, ...) of a ReLU stack, in the order ``relu_stack_forward`` takes them."""
        return [t for layer in self._linears for t in (layer.weight, layer.bias)]

    def member_input(self, *parts: torch.Tensor) -> torch.Tensor:
        """``torch.cat(parts, -1)`` as this network's input: on a CPU, with an ``EnsembleLinear`` first, already the
        per-member copy ``forward`` would make (one ``cat`` of broadcast views instead of a ``cat`` and a copy)."""
        members = self._members
        if members and parts[0].dim() == 2 and parts[0].device.type == "cpu":
            return torch.cat([p.unsqueeze(0).expand(members, -1, -1) for p in parts], dim=-1)
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        if x.dim() == 2 and x.device.type == "cpu" and layers and isinstance(layers[0], EnsembleLinear):
            # One input shared by all members: a real copy per member. CPU ``bmm`` on a broadcast (stride-0) batch
            # takes a slow path, measured 20x slower than on the copy for [2, 4096, 16] x [2, 16, 1024].
            x = x.unsqueeze(0).expand(layers[0].weight.shape[0], -1, -1).contiguous()
        if self._relu_stack and _fusable(x):
            params = self.stack_params()
            if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
                return _ReLUStack.apply(x, *params)
            if onednn.applies(x):  # large batches: oneDNN's products (nets/onednn.py)
                return onednn.members_forward(x, params)
            return relu_stack_forward(x, params)  # no graph to record (targets, evaluation): the forward alone
        i = 0
        while i < len(layers):
            layer = layers[i]
            fuse = i + 1 < len(layers) and type(layers[i + 1]) is nn.ReLU and isinstance(layer, EnsembleLinear)
            if fuse and _fusable(x):
                x = _LinearReLU.apply(x, layer.weight, layer.bias)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


def relu_stack_forward(x: torch.Tensor, params, acts: list[torch.Tensor] | None = None) -> torch.Tensor:
    """relu(relu(x @ w1 + b1) @ w2 + b2) ... @ wL + bL, each hidden bias add and ReLU one in-place pass over the
    ``bmm`` output; ``acts`` (if given) collects the hidden activations."""
    h = x
    for i in range(0, len(params) - 2, 2):
        h = torch.bmm(h, params[i])
        torch._add_relu_(h, params[i + 1])
        if acts is not None:
            acts.append(h)
    return torch.baddbmm(params[-1], h, params[-2])


def ensemble_mlp(
    members: int,
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    act: str = "relu",
    norm: Norm = "none",
    brn: dict[str, Any] | None = None,
) -> nn.Sequential:
    """``mlp`` for ``members`` independent networks evaluated in one batched call (same ``norm`` options)."""
    layers: list[nn.Module] = [BatchRenorm(in_dim, members, **(brn or {}))] if norm == "batchrenorm" else []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers.append(EnsembleLinear(members, a, b))
        if norm == "layer":
            layers.append(EnsembleLayerNorm(members, b))
        layers.append(activation(act)())
        if norm == "batchrenorm":
            layers.append(BatchRenorm(b, members, **(brn or {})))
    layers.append(EnsembleLinear(members, dims[-1], out_dim))
    return EnsembleMLP(*layers)
