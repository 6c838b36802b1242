"""Per-token log-probs of a sequence's trained (loss-mask) tokens, at a sampling temperature, with
their entropy and optionally a value head's values, in one forward projected to the vocabulary only
at those positions, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from alignkit.data.collate import Batch
from alignkit.losses.rl import entropy_from_logits
from alignkit.losses.sft import shifted_targets
from alignkit.models.forward import hidden_states, lm_head


@dataclass
class TokenOutputs:
    """Per reply token, flat (N,) in sequence order; ``lengths`` (S,) says how many belong to each."""

    logps: torch.Tensor
    entropy: torch.Tensor
    lengths: torch.Tensor
    values: torch.Tensor | None = None


def _logps_entropy(
    hidden: torch.Tensor, targets: torch.Tensor, head: Any, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = head(hidden).float() / temperature
    return -F.cross_entropy(logits, targets, reduction="none"), entropy_from_logits(logits)


def token_forward(
    model: Any,
    batch: Batch,
    *,
    temperature: float,
    chunk_size: int,
    value_model: Any = None,
) -> TokenOutputs:
    """Log-probs (at ``temperature``, as sampled) and entropy of each reply token, optionally values.

    The hidden state at position t-1 predicts token t and is also the state V(s_t) is read from.
    Only reply positions are projected to the vocabulary, ``chunk_size`` rows at a time; with
    gradient, chunks are recomputed in backward instead of stored.
    """
    hidden = hidden_states(model, batch)
    predict_mask, next_ids = shifted_targets(batch.input_ids, batch.loss_mask)
    selected, targets = hidden[predict_mask], next_ids[predict_mask]
    head = lm_head(model)
    use_checkpoint = torch.is_grad_enabled() and selected.requires_grad and selected.shape[0] > chunk_size
    logps, entropy = [], []
    for start in range(0, selected.shape[0], chunk_size):
        args = (selected[start : start + chunk_size], targets[start : start + chunk_size], head, temperature)
        lp, ent = (
            checkpoint(_logps_entropy, *args, use_reentrant=False)
            if use_checkpoint
            else _logps_entropy(*args)
        )
        logps.append(lp)
        entropy.append(ent)
    lengths = torch.bincount(batch.seq_ids[predict_mask], minlength=batch.num_sequences)
    values = None if value_model is None else value_model.values(selected, batch, predict_mask)
    return TokenOutputs(
        logps=torch.cat(logps),
        lengths=lengths,
        entropy=torch.cat(entropy),
        values=values,
    )


def to_rows(flat: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Flat per-token values (N,) -> right-padded rows (S, width), zeros after each sequence's end."""
    out = flat.new_zeros((lengths.numel(), width))
    mask = torch.arange(width, device=flat.device)[None, :] < lengths.to(flat.device)[:, None]
    return out.masked_scatter(mask, flat)


def reply_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(S, width) float mask of reply tokens."""
    return (torch.arange(width)[None, :] < lengths[:, None]).float()
