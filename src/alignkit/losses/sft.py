"""Causal LM loss over trained positions only, in chunks, summed (the caller normalises).

Materialising fp32 logits for every position of a 49k-152k vocabulary costs more memory than the
model on small models; most positions are prompt tokens that are not trained anyway. So the hidden
states of trained positions are gathered first, then projected to the vocabulary in chunks whose
logits are recomputed in backward (activation checkpointing) instead of stored.

The function returns a *sum* over trained tokens: dividing by the number of trained tokens of the
whole global batch (all micro-batches, all processes) makes micro-batch size and gradient
accumulation leave the loss and its gradient unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from alignkit.losses.rl import entropy_from_logits


def shifted_targets(input_ids: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The position whose hidden state predicts token ``i`` is ``i - 1``.

    Args:
        input_ids: (B, T) token ids.
        loss_mask: (B, T) 1 where the token at that position is a training target.
    Returns:
        predict_mask: (B, T) bool, True at positions whose *next* token is trained (last column False).
        next_ids: (B, T) the next token at each position (last column filled with 0).
    """
    predict_mask = torch.zeros_like(loss_mask, dtype=torch.bool)
    predict_mask[:, :-1] = loss_mask[:, 1:].bool()
    next_ids = torch.zeros_like(input_ids)
    next_ids[:, :-1] = input_ids[:, 1:]
    return predict_mask, next_ids


def _chunk_nll_sum(
    hidden_chunk: torch.Tensor, target_chunk: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    logits = head(hidden_chunk).float()
    return F.cross_entropy(logits, target_chunk, reduction="sum")


def chunked_nll_sum(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    *,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Sum of -log p(target) over rows of ``hidden`` (N, H), projecting ``chunk_size`` rows at a time.

    Logits of a chunk are recomputed during backward, so peak memory holds one chunk's fp32 logits.
    """
    if hidden.shape[0] == 0:
        return hidden.sum() * 0.0
    total = hidden.new_zeros((), dtype=torch.float32)
    use_checkpoint = torch.is_grad_enabled() and hidden.requires_grad and hidden.shape[0] > chunk_size
    for start in range(0, hidden.shape[0], chunk_size):
        h, t = hidden[start : start + chunk_size], targets[start : start + chunk_size]
        if use_checkpoint:
            total = total + checkpoint(_chunk_nll_sum, h, t, head, use_reentrant=False)
        else:
            total = total + _chunk_nll_sum(h, t, head)
    return total


def _chunk_logps(
    hidden_chunk: torch.Tensor, target_chunk: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
    temperature: float, with_entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    logits = head(hidden_chunk).float() / temperature
    logps = -F.cross_entropy(logits, target_chunk, reduction="none")
    return logps, entropy_from_logits(logits) if with_entropy else None


def token_logps(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    *,
    chunk_size: int = 1024,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-row log p(target) (N,) of softmax(head(hidden) / temperature), and its entropy (N,) when
    asked: the one per-token log-prob of DPO, PPO/GRPO and the winrate KL.

    ``chunk_size`` rows are projected at a time; with gradient, a chunk's logits are recomputed in
    backward instead of stored. ``temperature`` 1 divides by 1.0, which leaves the logits unchanged.
    """
    use_checkpoint = torch.is_grad_enabled() and hidden.requires_grad and hidden.shape[0] > chunk_size
    logps = [hidden.new_zeros((0,), dtype=torch.float32)]
    entropy = [hidden.new_zeros((0,), dtype=torch.float32)]
    for start in range(0, hidden.shape[0], chunk_size):
        args = (hidden[start : start + chunk_size], targets[start : start + chunk_size], head, temperature,
                with_entropy)
        lp, ent = checkpoint(_chunk_logps, *args, use_reentrant=False) if use_checkpoint else _chunk_logps(*args)
        logps.append(lp)
        if ent is not None:
            entropy.append(ent)
    return torch.cat(logps), torch.cat(entropy) if with_entropy else None
