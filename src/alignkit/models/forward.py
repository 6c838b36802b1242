"""Forward passes that stop at the last hidden state, so losses project only the positions they need."""

from __future__ import annotations

from typing import Any

import torch

from alignkit.data.collate import Batch
from alignkit.models.attention import packed_attention_kwargs, uses_packed_attention
from alignkit.models.unwrap import base_causal_lm


def lm_head(model: Any) -> torch.nn.Module:
    return base_causal_lm(model).get_output_embeddings()


def hidden_states(model: Any, batch: Batch) -> torch.Tensor:
    """Last hidden states (R, T, H).

    A packed row (no attention mask) attends within each example only: with ``packed_attention`` the
    sequence boundaries go to the attention layers as ``cu_seq_lens``; with transformers' own
    implementations ``use_cache=False`` and restarting ``position_ids`` make it build a block-diagonal mask.
    """
    base = base_causal_lm(model)
    extra = {}
    if batch.attention_mask is None and uses_packed_attention(base):
        extra = packed_attention_kwargs(batch.seq_ids)
    output = base.model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                        attention_mask=batch.attention_mask, use_cache=False, **extra)
    return output.last_hidden_state


def compile_decoder_layers(model: Any) -> None:
    """``torch.compile`` each decoder layer (regional compilation).

    ``model.compile()`` would compile only ``model.__call__``, which the losses never call: they run the
    trunk (``hidden_states``) and project chosen positions themselves. The layers share one compiled
    region; ``dynamic=True`` because every packed row has a new length. Attention itself stays eager
    (``packed_attention`` is excluded from compilation), the kernels it calls are already fused.
    """
    for layer in base_causal_lm(model).model.layers:
        layer.compile(dynamic=True)
