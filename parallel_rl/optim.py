"""AdamW with a thin step: the same fused kernel ``torch.optim.AdamW(fused=True)`` runs, without its Python around it.

Why: at the network sizes most runs use (a few hundred units, batches of a few hundred), the kernel of a fused
AdamW step over a critic's 8 tensors takes about 100 us on one CPU core, and ``torch.optim``'s step around it
(profiler scopes, hook dispatch, grouping the tensors by device and dtype every step) about 250 us more: the step
cost about a twentieth of the whole critic update. ``FastAdamW.step`` calls the same ``torch._fused_adamw_`` with
the same arguments, so parameters, state and ``state_dict`` are identical to ``torch.optim.AdamW`` step for step
(``tests/test_optim.py`` checks bitwise equality); anything outside the common case (first step, which creates the
state; missing gradients; amsgrad, maximize, capturable, several groups, step hooks) takes the parent's step.
"""

from __future__ import annotations

import torch
from torch.optim import optimizer as _torch_optimizer

# Hooks registered for every optimizer (torch.optim.optimizer.register_optimizer_step_*_hook): the parent runs them.
_global_hooks = _torch_optimizer._global_optimizer_pre_hooks, _torch_optimizer._global_optimizer_post_hooks


class FastAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW(fused=True)`` whose common-case step and ``zero_grad`` skip torch.optim's Python."""

    def __init__(self, params, **kwargs) -> None:
        super().__init__(params, fused=True, **kwargs)

    def _fast_lists(self) -> tuple[list, list, list, list, list] | None:
        """(params, grads, exp_avgs, exp_avg_sqs, steps) when the fast step applies, else None."""
        if len(self.param_groups) != 1 or self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks:
            return None
        if any(_global_hooks):
            return None
        group = self.param_groups[0]
        if group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"]:
            return None
        if isinstance(group["lr"], torch.Tensor) or any(isinstance(b, torch.Tensor) for b in group["betas"]):
            return None
        params, grads, avgs, sqs, steps = [], [], [], [], []
        first = None
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                return None  # the parent skips parameters without a gradient; keep its exact behaviour
            state = self.state.get(p)
            if not state:
                return None  # the first step creates the state
            if first is None:
                first = (p.device, p.dtype)
            elif (p.device, p.dtype) != first or grad.is_sparse:
                return None  # one kernel call needs one device and dtype, as the parent's grouping would give
            params.append(p)
            grads.append(grad)
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        return (params, grads, avgs, sqs, steps) if params else None

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        lists = None if closure is not None else self._fast_lists()
        if lists is None:
            return super().step(closure)
        self._fused_step(*lists)
        return None

    @torch.no_grad()
    def try_fast_step(self) -> bool:
        """``step()`` when the fast path applies, called without the wrapper torch.optim puts around every
        optimizer's ``step`` (a profiler scope, the step hooks, a no-op hook for torch.compile): with no hooks
        registered, which the fast path requires, the wrapper does nothing else, and it cost about 40 us a step at
        small sizes. Returns False, having done nothing, where ``step()`` must run instead: the fast path does not
        apply, or this instance's ``step`` was wrapped (an LR scheduler counts steps that way)."""
        if "step" in self.__dict__:
            return False
        lists = self._fast_lists()
        if lists is None:
            return False
        self._fused_step(*lists)
        return True

    def _fused_step(self, params: list, grads: list, avgs: list, sqs: list, steps: list) -> None:
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        # torch.optim.adam._fused_adam, for one device and dtype, no grad scaler: count the step, then one kernel.
        # The count adds a list of ones, not the scalar 1: on a CPU, foreach ops on scalar tensors run tensor by
        # tensor, and with a Python scalar each one first converts the scalar (measured 16 us against 7 us for 8).
        torch._foreach_add_(steps, self._ones_like(steps))
        torch._fused_adamw_(params, grads, avgs, sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                            beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                            grad_scale=None, found_inf=None)  # fmt: skip

    def _ones_like(self, steps: list[torch.Tensor]) -> list[torch.Tensor]:
        ones = getattr(self, "_ones", None)
        if ones is None or len(ones) != len(steps) or ones[0].device != steps[0].device:
            self._ones = ones = [torch.ones((), dtype=steps[0].dtype, device=steps[0].device) for _ in steps]
        return ones

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
