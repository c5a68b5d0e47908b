"""Math shared by the TD3-family algorithms: C51 projection, clipped double-Q, TD losses, soft target updates."""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from parallel_rl.nets import EnsembleCritic


def categorical_projection(
    next_probs: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Project the distribution of ``reward + discount * Z`` back onto ``support`` (C51, Bellemare et al. 2017).

    next_probs: [B, A] probabilities on ``support``; reward, discount: [B]. Returns [B, A], each row summing to the
    row's input mass. Each shifted atom splits its mass between its two neighbours in proportion to distance; a
    target exactly on an atom gives all its mass to that atom (the lower/upper weights are 1 and 0), which avoids
    the anchors' bug of giving it twice (or losing it) when floor == ceil. Targets outside the support are clamped
    to its ends.
    """
    num_atoms = support.shape[0]
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (num_atoms - 1)
    tz = (reward.unsqueeze(-1) + discount.unsqueeze(-1) * support).clamp(v_min, v_max)
    # nan_to_num: a NaN reward (a broken env) must not become an out-of-range index before the run's finite
    # check stops it at the next log row; clamp alone keeps NaN, and NaN.long() is a huge negative index.
    b = torch.nan_to_num((tz - v_min) / delta, nan=0.0).clamp(0, num_atoms - 1)
    lower = b.floor().clamp(max=num_atoms - 1)
    upper_w = b - lower  # in [0, 1); 0 when the target sits on an atom
    lower_idx = lower.long()
    upper_idx = (lower_idx + 1).clamp(max=num_atoms - 1)
    out = torch.zeros_like(next_probs)
    out.scatter_add_(-1, lower_idx, next_probs * (1 - upper_w))
    out.scatter_add_(-1, upper_idx, next_probs * upper_w)
    return out


def clipped_double_q_distribution(target_out: torch.Tensor, critic: EnsembleCritic) -> torch.Tensor:
    """Per sample, the target distribution of the ensemble member with the lowest mean. [members, B, A] -> [B, A].

    Choosing a whole distribution (rather than an atom-wise minimum) keeps it a valid distribution; choosing the
    lowest mean is the distributional analogue of TD3's min(Q1, Q2).
    """
    probs = torch.softmax(target_out, dim=-1)
    means = (probs * critic.support).sum(-1)  # [members, B]
    pick = means.argmin(dim=0)  # [B]
    return probs.gather(0, pick.view(1, -1, 1).expand(1, -1, probs.shape[-1])).squeeze(0)


def td_loss(critic: EnsembleCritic, out: torch.Tensor, target_out: torch.Tensor, batch) -> torch.Tensor:
    """Critic loss summed over ensemble members, against the clipped double-Q target built from ``target_out``.

    Distributional: cross-entropy with the projected target distribution. Scalar: squared error with
    ``reward + discount * min_i Q_i'``. ``batch`` supplies ``reward`` and ``discount`` (gamma**n, 0 if terminated).
    """
    reward, discount = batch["reward"], batch["discount"]
    if critic.distributional:
        target = categorical_projection(clipped_double_q_distribution(target_out, critic), reward, discount,
                                        critic.support)  # fmt: skip
        log_probs = torch.log_softmax(out, dim=-1)
        return -(target.unsqueeze(0) * log_probs).sum(-1).mean(-1).sum()
    target_q = reward + discount * target_out.squeeze(-1).min(dim=0).values
    return (out.squeeze(-1) - target_q.unsqueeze(0)).square().mean(-1).sum()


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- target + tau * (source - target), fused over all parameters."""
    tgt = list(target.parameters())
    src = list(source.parameters())
    torch._foreach_lerp_(tgt, src, tau)


def td3_critic_loss(critic: EnsembleCritic, critic_target: EnsembleCritic, actor: nn.Module, batch, hp):
    """TD3-family critic loss: target action from the current actor (no actor target) with clipped smoothing noise
    of std ``hp.target_noise``, clipped double-Q target, n-step reward/discount from the batch. Returns (loss,
    metrics). Uses the privileged ``critic_obs`` when the batch has them (asymmetric actor-critic)."""
    critic_obs = batch.get("critic_obs", batch["obs"])
    next_critic_obs = batch.get("next_critic_obs", batch["next_obs"])
    with torch.no_grad():
        next_action = smoothed_action(actor(batch["next_obs"]), hp.target_noise, hp.target_noise_clip)
        target_out = critic_target(next_critic_obs, next_action)
    out = critic(critic_obs, batch["action"])
    loss = td_loss(critic, out, target_out, batch)
    with torch.no_grad():
        q = critic.q_values(out)
    return loss, TensorDict({"critic_loss": loss.detach(), "q_mean": q.mean(), "q_max": q.max()})


def smoothed_action(action: torch.Tensor, noise_std: float, noise_clip: float) -> torch.Tensor:
    """TD3's target policy smoothing in the [-1, 1] action space."""
    if noise_std <= 0:
        return action
    noise = (torch.randn_like(action) * noise_std).clamp(-noise_clip, noise_clip)
    return (action + noise).clamp(-1.0, 1.0)
