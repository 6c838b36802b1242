"""Micro-batches as tensors: padding-free packed rows or right-padded rows.

Packed: the micro-batch's examples are concatenated into one row with ``position_ids`` restarting
at 0 for each example and no attention mask. transformers then builds block-diagonal attention
(no example attends to another) *only* when ``attention_mask is None`` and no KV cache is built
(``use_cache=False``), which every forward here passes; the packing test compares logits against
separate forwards to hold that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch


class TokenExample(Protocol):
    input_ids: list[int]
    loss_mask: list[int]


@dataclass
class Batch:
    """Model inputs for one micro-batch.

    input_ids, position_ids, loss_mask: (R, T). attention_mask: (R, T) for padded rows, None packed.
    seq_ids: (R, T) which example each position belongs to (-1 for padding), for per-example sums.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    loss_mask: torch.Tensor
    attention_mask: torch.Tensor | None
    seq_ids: torch.Tensor
    num_sequences: int

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.input_ids.to(device), self.position_ids.to(device), self.loss_mask.to(device),
            None if self.attention_mask is None else self.attention_mask.to(device), self.seq_ids.to(device),
            self.num_sequences,
        )


def pack(sequences: Sequence[tuple[list[int], list[int]]]) -> Batch:
    """Concatenates (input_ids, loss_mask) pairs into one padding-free row."""
    ids: list[int] = []
    positions: list[int] = []
    mask: list[int] = []
    seq: list[int] = []
    for index, (input_ids, loss_mask) in enumerate(sequences):
        ids += input_ids
        positions += range(len(input_ids))
        # The first token of each example is never a target: nothing before it in its own sequence.
        mask += [0, *loss_mask[1:]]
        seq += [index] * len(input_ids)
    return Batch(
        input_ids=torch.tensor([ids]), position_ids=torch.tensor([positions]), loss_mask=torch.tensor([mask]),
        attention_mask=None, seq_ids=torch.tensor([seq]), num_sequences=len(sequences),
    )


def pad(sequences: Sequence[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """Right-pads examples into a (B, T) batch with an attention mask (pad positions never trained)."""
    width = max(len(ids) for ids, _ in sequences)
    rows = len(sequences)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((rows, width), dtype=torch.long)
    attention = torch.zeros((rows, width), dtype=torch.long)
    seq_ids = torch.full((rows, width), -1, dtype=torch.long)
    for row, (ids, mask) in enumerate(sequences):
        n = len(ids)
        input_ids[row, :n] = torch.tensor(ids)
        loss_mask[row, 1:n] = torch.tensor(mask[1:n])
        attention[row, :n] = 1
        seq_ids[row, :n] = row
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return Batch(input_ids, position_ids, loss_mask, attention, seq_ids, rows)


def make_batch(examples: Sequence[TokenExample], *, packed: bool, pad_id: int) -> Batch:
    pairs = [(e.input_ids, e.loss_mask) for e in examples]
    return pack(pairs) if packed else pad(pairs, pad_id)


def trained_tokens(examples: Sequence[TokenExample]) -> int:
    """Targets the loss will count: trained positions except each example's first token."""
    return sum(sum(e.loss_mask[1:]) for e in examples)
