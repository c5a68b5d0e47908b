"""Closed-form gradients of the TD3-family losses for plain ReLU networks: the eager CPU fast path.

Why: with a few hundred units on a CPU, autograd's bookkeeping around the losses (recording the graph of every loss
op, the engine's walk, the nodes' saved tensors) costs about as much as the small elementwise kernels it surrounds:
measured at 256 units and batch 256, loss plus backward took about 9 % less time this way. Both losses have a
gradient with a closed form at the critic's output, and the networks are stacks of ReLU layers whose backward is a
few matmuls (``nets.mlp.relu_stack_backward``):

- C51 cross-entropy ``-sum_a T_a log softmax(l)_a``: ``softmax(l) * sum_a T_a - T`` with respect to the logits;
- squared TD error ``(Q - y)^2``: ``2 (Q - y)``;
- expected Q ``sum_a softmax(l)_a z_a``: ``softmax(l) * (z - Q)``; ``min`` over members passes the gradient to the
  member it picked (the index ``torch.min`` returns, as its backward does); ``tanh``: ``1 - a^2``.

So ``td3_critic_grads`` and ``td3_actor_grads`` run the same forward passes (drawing the same random numbers) as
``common.td3_critic_loss`` / ``common.td3_actor_loss``, return the same loss and metrics, and leave in ``.grad`` what
``loss.backward()`` would (``tests/test_closed_form.py``: to 1e-6 against autograd, C51 and scalar critics, both
actor reductions, privileged critic observations, the action penalty). The readable definition of each loss stays
in ``common``; ``critic_applies`` / ``actor_applies`` say when the fast path may stand in for it (plain ReLU
networks, float32, no autocast; the runtime enables it on a CPU only, ``SpeedConfig.closed_form_grads``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.algos import common  # a module reference: common imports this module for TD3Family
from parallel_rl.fasttd import tensordict_of
from parallel_rl.nets import Actor, EnsembleCritic, onednn
from parallel_rl.nets.mlp import EnsembleMLP, relu_stack_backward, relu_stack_forward


def critic_applies(*critics: nn.Module) -> bool:
    """Every critic is a plain ``EnsembleCritic`` on a CPU whose network is a ReLU stack (``EnsembleMLP.is_relu_stack``;
    its fused bias + ReLU kernel exists on a CPU only)."""
    return all(
        type(c) is EnsembleCritic
        and isinstance(c.net, EnsembleMLP)
        and c.net.is_relu_stack
        and c.support.device.type == "cpu"
        for c in critics
    )


def actor_applies(actor: nn.Module, critic: nn.Module | None = None) -> bool:
    """A plain ``Actor`` whose network is Linear, ReLU, ..., Linear (what ``actor_forward`` computes), and a critic
    ``critic_applies`` to (when given)."""
    if type(actor) is not Actor or actor.ensemble_trunk or not isinstance(actor.net, nn.Sequential):
        return False
    layers = list(actor.net)
    return (
        len(layers) % 2 == 1
        and all(type(layers[i]) is nn.Linear for i in range(0, len(layers), 2))
        and all(type(layers[i]) is nn.ReLU for i in range(1, len(layers), 2))
        and (critic is None or critic_applies(critic))
    )


def actor_forward(actor: Actor, obs: torch.Tensor, hidden: list[torch.Tensor] | None = None) -> torch.Tensor:
    """``actor(obs)`` for an actor ``actor_applies`` to (the same products as ``nn.Linear``, each hidden bias and
    ReLU added in one pass: equal to rounding); ``hidden`` (if given) collects each Linear's input, obs first."""
    linears = list(actor.net)[0::2]
    large = onednn.applies(obs)  # large batches: oneDNN's products, bias and ReLU fused (nets/onednn.py)
    h = obs
    for linear in linears[:-1]:
        if hidden is not None:
            hidden.append(h)
        if large:
            h = onednn.linear(h, linear.weight, linear.bias, relu=True)
        else:  # bias and ReLU in one pass over the product (addmm + relu_ would make two)
            h = torch.mm(h, linear.weight.t())
            torch._add_relu_(h, linear.bias)
    if hidden is not None:
        hidden.append(h)
    last = linears[-1]
    return torch.tanh(onednn.linear(h, last.weight, last.bias) if large else torch.addmm(last.bias, h, last.weight.t()))


def _stack_forward(x: torch.Tensor, params: Sequence[torch.Tensor], acts: list | None = None) -> torch.Tensor:
    """A critic's ReLU stack: oneDNN's products member by member for large batches (``nets.onednn``), else one
    batched ``bmm`` per layer (``nets.mlp``)."""
    if onednn.applies(x):
        return onednn.members_forward(x, params, acts)
    return relu_stack_forward(x, params, acts)


def _stack_backward(grad: torch.Tensor, acts: list, weights: Sequence[torch.Tensor], needs: Sequence[bool],
                    input_columns: int | None = None) -> list[torch.Tensor | None]:  # fmt: skip
    """The backward of ``_stack_forward``, on the same path (decided by the input, ``acts[0]``)."""
    backward = onednn.members_backward if onednn.applies(acts[0]) else relu_stack_backward
    return backward(grad, acts, weights, needs, input_columns)


def _accumulate(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
    """Add each gradient to its parameter's ``.grad`` as ``backward`` does (set it when there is none)."""
    for p, g in zip(params, grads):
        if g is None or not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = g
        else:
            p.grad.add_(g)


@torch.no_grad()
def td3_critic_grads(
    critic: EnsembleCritic,
    critic_target: EnsembleCritic,
    actor: nn.Module,
    batch: TensorDict,
    hp,
    plain_actor: bool | None = None,
) -> tuple[torch.Tensor, TensorDict]:
    """``td3_critic_loss``'s (loss, metrics), with the gradients ``loss.backward()`` would give added to the critic's
    ``.grad``. ``plain_actor``: ``actor_applies(actor)``, which callers that update every step keep (checked here
    when not given)."""
    critic_obs = batch.get("critic_obs", batch["obs"])
    next_critic_obs = batch.get("next_critic_obs", batch["next_obs"])
    if plain_actor is None:
        plain_actor = actor_applies(actor)
    policy = actor_forward(actor, batch["next_obs"]) if plain_actor else actor(batch["next_obs"])
    next_action = common.smoothed_action(policy, hp.target_noise, hp.target_noise_clip)
    target_net = critic_target.net
    target_out = _stack_forward(target_net.member_input(next_critic_obs, next_action), target_net.stack_params())
    params = critic.net.stack_params()
    acts = [critic.net.member_input(critic_obs, batch["action"])]
    out = _stack_forward(acts[0], params, acts)
    target = common.td_target(critic, target_out, batch, hp.cdq_pick)
    batch_size = out.shape[1]
    if critic.distributional:
        log_probs = torch.log_softmax(out, dim=-1)
        # td_loss's value (summed over members and atoms, averaged over the batch) in fewer kernels: it is a metric
        loss = torch.dot(log_probs.sum(0).view(-1), target.reshape(-1)).div(-batch_size)
        # softmax again rather than log_probs.exp(): at::exp takes a slow path below -88 (measured 7x to 10x slower
        # on [2, 256, 101] once a C51 critic's logits spread over more than 88, which training reaches), while
        # softmax's own exponential stays within 2x.
        probs = torch.softmax(out, dim=-1)
        q = torch.matmul(probs, critic.support)
        grad = (probs * target.sum(-1, keepdim=True) - target).div_(batch_size)
    else:
        q = out.squeeze(-1)
        error = q - target.unsqueeze(0)
        loss = error.square().mean(-1).sum()
        grad = error.mul(2.0 / batch_size).unsqueeze(-1)
    needs = [False] + [p.requires_grad for p in params]
    _accumulate(params, _stack_backward(grad, acts, params[0::2], needs)[1:])
    return loss, tensordict_of({"critic_loss": loss, "q_mean": q.mean(), "q_max": q.max()})


@torch.no_grad()
def td3_actor_grads(
    actor: Actor, critic: EnsembleCritic, batch: TensorDict, reduction: str, action_l2: float = 0.0
) -> tuple[torch.Tensor, TensorDict]:
    """``td3_actor_loss``'s (loss, metrics), with the gradients ``loss.backward()`` would give added to the actor's
    ``.grad`` (the critic, a frozen replica, gets none)."""
    linears = list(actor.net)[0::2]
    hidden: list[torch.Tensor] = []  # each Linear's input
    action = actor_forward(actor, batch["obs"], hidden)
    large = onednn.applies(action)  # as actor_forward decided
    params = critic.net.stack_params()
    acts = [critic.net.member_input(batch.get("critic_obs", batch["obs"]), action)]
    out = _stack_forward(acts[0], params, acts)
    if critic.distributional:
        probs = torch.softmax(out, dim=-1)
        q = torch.matmul(probs, critic.support)  # [members, B]
    else:
        q = out.squeeze(-1)
    members, batch_size = q.shape
    if reduction == "min":
        reduced, pick = q.min(dim=0)
        grad_q = torch.zeros_like(q).scatter_(0, pick.unsqueeze(0), -1.0 / batch_size)
    else:
        reduced = q.mean(dim=0)
        grad_q = torch.full_like(q, -1.0 / (members * batch_size))
    loss = -reduced.mean()
    if critic.distributional:
        grad_out = probs.mul_(critic.support - q.unsqueeze(-1)).mul_(grad_q.unsqueeze(-1))
    else:
        grad_out = grad_q.unsqueeze(-1)
    needs = [True] + [False] * len(params)
    act_dim = action.shape[-1]  # the critic's input is [obs, action]: only the action columns of its gradient
    grad_action = _stack_backward(grad_out, acts, params[0::2], needs, input_columns=act_dim)[0].sum(0)
    if action_l2 > 0:  # as td3_actor_loss: a Python constant, the default path is unchanged
        loss = loss + action_l2 * action.square().mean()
        grad_action = grad_action + action * (2.0 * action_l2 / action.numel())
    g = torch.ops.aten.tanh_backward(grad_action, action)
    grads: list[torch.Tensor] = []
    for i in range(len(linears) - 1, -1, -1):
        if i < len(linears) - 1:
            g = torch.ops.aten.threshold_backward(g, hidden[i + 1], 0)
        x = hidden[i]
        # weight gradient g.T @ x ([out, in]); for a layer wider than its input (the first), as (x.T @ g).T: MKL's
        # product with few output columns was the slow one (measured 70 us against 34 us at 256 x 13 -> 256)
        wgrad = torch.mm(x.t(), g).t().contiguous() if x.shape[1] < g.shape[1] else torch.mm(g.t(), x)
        grads += [g.sum(0), wgrad]  # bias, weight (collected top-down)
        if i > 0:
            g = onednn.linear(g, linears[i].weight.t(), None) if large else torch.mm(g, linears[i].weight)
    _accumulate([t for linear in reversed(linears) for t in (linear.bias, linear.weight)], grads)
    return loss, tensordict_of({"actor_loss": loss, "action_abs": action.abs().mean()})
