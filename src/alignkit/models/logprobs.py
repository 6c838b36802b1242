"""Per-token log-probs of a sequence's trained (loss-mask) tokens, at a sampling temperature, with
their entropy and optionally a value head's values, in one forward projected to the vocabulary only
at those positions, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from alignkit.data.collate import Batch
from alignkit.losses.sft import shifted_targets, token_logps
from alignkit.models.forward import hidden_states, lm_head


@dataclass
class TokenOutputs:
    """Per trained token, flat (N,) in sequence order; ``owners`` (N,) the sequence each belongs to,
    ``lengths`` (S,) how many belong to each."""

    logps: torch.Tensor
    entropy: torch.Tensor | None
    lengths: torch.Tensor
    owners: torch.Tensor
    values: torch.Tensor | None = None

    def sequence_sums(self) -> torch.Tensor:
        """The log-probs summed over each sequence's tokens (S,)."""
        return self.logps.new_zeros(self.lengths.numel()).index_add(0, self.owners, self.logps)

    def entropy_or_fail(self) -> torch.Tensor:
        if self.entropy is None:
            raise ValueError("token_forward(..., with_entropy=False) computed no entropy")
        return self.entropy


def token_forward(
    model: Any,
    batch: Batch,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    with_entropy: bool = True,
    value_model: Any = None,
) -> TokenOutputs:
    """Log-probs (at ``temperature``, as sampled) of each trained token, its entropy, optionally values.

    The hidden state at position t-1 predicts token t and is also the state V(s_t) is read from.
    Only trained positions are projected to the vocabulary (``losses.sft.token_logps``, chunked).
    """
    hidden = hidden_states(model, batch)
    predict_mask, next_ids = shifted_targets(batch.input_ids, batch.loss_mask)
    selected = hidden[predict_mask]
    logps, entropy = token_logps(selected, next_ids[predict_mask], lm_head(model), chunk_size=chunk_size,
                                 temperature=temperature, with_entropy=with_entropy)
    owners = batch.seq_ids[predict_mask]
    lengths = torch.bincount(owners, minlength=batch.num_sequences)
    values = None if value_model is None else value_model.values(selected, batch, predict_mask)
    return TokenOutputs(logps=logps, entropy=entropy, lengths=lengths, owners=owners, values=values)


def sequence_logps(model: Any, batch: Batch, *, chunk_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of each sequence's trained tokens, and how many there are.

    Returns ``(logps, lengths)``, both (num_sequences,): logps float32, lengths long.
    """
    out = token_forward(model, batch, chunk_size=chunk_size, with_entropy=False)
    return out.sequence_sums(), out.lengths


def to_rows(flat: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Flat per-token values (N,) -> right-padded rows (S, width), zeros after each sequence's end."""
    out = flat.new_zeros((lengths.numel(), width))
    mask = torch.arange(width, device=flat.device)[None, :] < lengths.to(flat.device)[:, None]
    return out.masked_scatter(mask, flat)


def reply_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(S, width) float mask of reply tokens."""
    return (torch.arange(width)[None, :] < lengths[:, None]).float()
