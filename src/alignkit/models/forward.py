"""Forward passes that stop at the last hidden state, so losses project only the positions they need."""

from __future__ import annotations

from typing import Any

import torch

from alignkit.training.batching import Batch


def base_causal_lm(model: Any) -> Any:
    """The transformers ``*ForCausalLM`` under any PEFT wrapper."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def lm_head(model: Any) -> torch.nn.Module:
    return base_causal_lm(model).get_output_embeddings()


def hidden_states(model: Any, batch: Batch) -> torch.Tensor:
    """Last hidden states (R, T, H). ``use_cache=False`` keeps packed attention block-diagonal."""
    trunk = base_causal_lm(model).model
    output = trunk(input_ids=batch.input_ids, position_ids=batch.position_ids, attention_mask=batch.attention_mask,
                   use_cache=False)
    return output.last_hidden_state
