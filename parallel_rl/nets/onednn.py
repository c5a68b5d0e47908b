"""The eager CPU fast path's large matmuls through oneDNN instead of torch's default BLAS, one member at a time.

Why: on this project's CPU machines (AMD EPYC, one thread) torch's fp32 ``mm``/``bmm`` go to MKL, which ran the
forward and input-gradient products of a critic at FastTD3's shapes at 75 to 84 GFLOP/s; oneDNN's matmul
(``torch.ops.mkldnn._linear_pointwise``, the kernel torch.compile's CPU backend emits for a Linear) ran them at 90
to 100 GFLOP/s, and up to 2.4x faster for the thin first layer, with the bias add and the ReLU fused into its
output pass. Both compute in fp32 and agree to rounding. Weight gradients (a product over the batch) were as fast
either way and stay on ``mm``. Below ``MIN_ROWS`` rows the two were equally fast and one ``bmm`` over all members
takes fewer calls than one product per member, so small batches keep ``nets.mlp``'s batched path (``MIN_ROWS``).

Activations on this path are lists with one [rows, units] tensor per member (stacking them into the ensemble's
[members, rows, units] layout would copy every activation); ``acts[i][m]`` reads the same either way, so the
backward takes the input as a tensor and the hidden activations as lists. Used by ``algos/closed_form.py`` and by
``EnsembleMLP``'s forward without a graph; ``benchmarks/perf`` has the measurements.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

#: Fewest rows (batch size) for which the per-member oneDNN products are used. Measured per layer and member pair:
#: at 256 rows equal for 256 -> 128 and up to 2x slower for thin layers (a call's fixed cost); at 512 rows 5 % faster
#: for 256 -> 128 but 4 % to 33 % slower for 16 -> 256, 128 -> 64, 64 -> 101; at 1024 rows equal or 7 % to 20 %
#: faster for all of them; at 4096 rows 16 % to 2.4x faster.
MIN_ROWS = 1024

_linear = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
#: ``PARALLEL_RL_ONEDNN=0`` keeps torch's default matmuls everywhere (to compare, or on a CPU where they are faster:
#: only AMD EPYC was measured).
AVAILABLE = bool(
    torch.backends.mkldnn.is_available() and _linear is not None and os.environ.get("PARALLEL_RL_ONEDNN", "1") != "0"
)


def applies(x: torch.Tensor) -> bool:
    """oneDNN products for an input of ``x``'s rows (dimension -2), device and dtype."""
    return AVAILABLE and x.shape[-2] >= MIN_ROWS and x.dtype == torch.float32 and x.device.type == "cpu"


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool = False) -> torch.Tensor:
    """``x @ weight.T (+ bias)``, then ReLU if asked, in one oneDNN call: ``weight`` is [out, in] (any strides)."""
    return _linear(x, weight, bias, "relu" if relu else "none", [], "")


def members_forward(x: torch.Tensor, params: Sequence[torch.Tensor], acts: list | None = None) -> torch.Tensor:
    """``nets.mlp.relu_stack_forward`` (x: [members, rows, in]; params w1 [members, in, out], b1 [members, 1,
    out], ...) member by member; ``acts`` (if given) collects one list of per-member activations per hidden layer.
    Returns [members, rows, out]."""
    hs: Sequence[torch.Tensor] = x.unbind(0)
    for i in range(0, len(params) - 2, 2):
        w, b = params[i], params[i + 1]
        hs = [linear(h, w[m].t(), b[m, 0], relu=True) for m, h in enumerate(hs)]
        if acts is not None:
            acts.append(hs)
    w, b = params[-2], params[-1]
    return torch.stack([linear(h, w[m].t(), b[m, 0]) for m, h in enumerate(hs)])


def members_backward(
    grad: torch.Tensor,
    acts: Sequence,
    weights: Sequence[torch.Tensor],
    needs: Sequence[bool],
    input_columns: int | None = None,
) -> list[torch.Tensor | None]:
    """``nets.mlp.relu_stack_backward`` for ``members_forward``'s activations (the input tensor, then one list per
    hidden layer): the same gradients, in the ensemble layout ([members, in, out] weights, [members, 1, out] biases,
    [members, rows, in] input)."""
    layers = len(weights)
    lowest = 0 if needs[0] else next((i for i in range(layers) if needs[1 + 2 * i] or needs[2 + 2 * i]), layers)
    grads: list[torch.Tensor | None] = [None] * len(needs)
    gs: Sequence[torch.Tensor] = grad.unbind(0)
    for i in range(layers - 1, lowest - 1, -1):
        if i < layers - 1:  # below the output layer: mask by the ReLU, in place on the fresh products
            gs = [torch.ops.aten.threshold_backward.grad_input(g, acts[i + 1][m], 0, grad_input=g)
                  for m, g in enumerate(gs)]  # fmt: skip
        w = weights[i]
        if needs[1 + 2 * i]:
            dw = torch.empty_like(w)
            for m, g in enumerate(gs):
                torch.mm(acts[i][m].t(), g, out=dw[m])
            grads[1 + 2 * i] = dw
        if needs[2 + 2 * i]:
            db = w.new_empty(w.shape[0], 1, w.shape[2])
            for m, g in enumerate(gs):
                torch.sum(g, 0, keepdim=True, out=db[m])
            grads[2 + 2 * i] = db
        if i > lowest or needs[0]:
            cols = w if i > 0 or input_columns is None else w[:, -input_columns:]
            gs = [linear(g, cols[m], None) for m, g in enumerate(gs)]  # g @ w[m].T
    if needs[0]:
        grads[0] = torch.stack(gs)
    return grads
