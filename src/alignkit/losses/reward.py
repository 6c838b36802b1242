"""Reward-model losses: Bradley-Terry with an optional margin and reward centering.

Rewards are the scalar outputs of a reward model, one per completion, shape (B,). Losses are
per-example (B,); the caller averages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bradley_terry_loss", "pairwise_accuracy"]


def _check_pair(chosen_rewards: Tensor, rejected_rewards: Tensor) -> None:
    # A reward head returns (B, 1); squeezing is the caller's job, because (B, 1) - (B,) would
    # broadcast silently to (B, B).
    if chosen_rewards.ndim != 1 or chosen_rewards.shape != rejected_rewards.shape:
        raise ValueError(
            "chosen_rewards and rejected_rewards must both have shape (B,), got "
            f"{tuple(chosen_rewards.shape)} and {tuple(rejected_rewards.shape)}"
        )


def bradley_terry_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    *,
    margin: Tensor | float | None = None,
    center_rewards_coefficient: float = 0.0,
) -> Tensor:
    """Pairwise Bradley-Terry loss of a reward model, per example.

    chosen_rewards, rejected_rewards: (B,) scalar rewards. margin: (B,) or scalar, optional.
    Returns (B,) losses:

        loss = -log σ(rc - rr - m) + c (rc + rr)²

    m is the margin of Llama 2 (Touvron et al., 2023, Eq. 2): the chosen reward must beat the
    rejected one by at least m (e.g. larger for a clearer preference). c is the reward-centering
    coefficient of Eisenstein et al. (2023), which pulls the mean reward of each pair towards 0 so
    rewards stay comparable across runs. This is TRL 1.16's ``RewardTrainer`` definition: TRL adds
    ``c * mean((rc + rr) ** 2)`` to the batch-mean loss, i.e. the batch mean of these losses
    (TRL's default ``center_rewards_coefficient=None`` is our 0.0).
    """
    _check_pair(chosen_rewards, rejected_rewards)
    if center_rewards_coefficient < 0:
        raise ValueError(f"center_rewards_coefficient must be >= 0, got {center_rewards_coefficient}")
    logits = chosen_rewards - rejected_rewards
    if margin is not None:
        margin_t = torch.as_tensor(margin, dtype=logits.dtype, device=logits.device)
        if margin_t.ndim != 0 and margin_t.shape != logits.shape:
            raise ValueError(
                f"margin must be a scalar or have shape {tuple(logits.shape)}, got {tuple(margin_t.shape)}"
            )
        logits = logits - margin_t
    losses = -F.logsigmoid(logits)
    if center_rewards_coefficient:
        losses = losses + center_rewards_coefficient * (chosen_rewards + rejected_rewards) ** 2
    return losses


def pairwise_accuracy(chosen_rewards: Tensor, rejected_rewards: Tensor) -> Tensor:
    """Fraction of pairs where the chosen reward is strictly higher: a scalar tensor in [0, 1].

    chosen_rewards, rejected_rewards: (B,). A tie counts as wrong (as in TRL), so a constant
    reward model scores 0, not 0.5. Detached; for logging.
    """
    _check_pair(chosen_rewards, rejected_rewards)
    return (chosen_rewards.detach() > rejected_rewards.detach()).float().mean()
