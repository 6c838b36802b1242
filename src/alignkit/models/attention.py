"""Attention for padding-free packed rows that never builds a (T x T) mask.

transformers' own packed path (``sdpa`` with restarting ``position_ids``) materialises a dense
block-diagonal mask for the whole row, which turns off the flash kernels: on an H100 this made packed
training slower than padded training. Here the packed row is split at its sequence starts instead:

- CUDA: ``torch.nn.attention.varlen.varlen_attn`` (flash attention over cumulative sequence lengths);
- elsewhere: one causal SDPA call per sequence (``is_causal=True``: no mask tensor at all).

The sequence boundaries arrive as the ``cu_seq_lens_q`` / ``max_length_q`` keyword arguments that
transformers forwards from the trunk call to every attention layer (``hidden_states`` passes them).
Every other call (padded batches, generation with a KV cache) goes to transformers' SDPA path with its
usual mask, so a model switched to this implementation still generates exactly as before.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from alignkit.models.unwrap import base_causal_lm

PACKED_ATTENTION = "alignkit_packed"

# Model families whose attention is plain causal softmax attention through transformers'
# AttentionInterface. Others (sliding windows, logit soft-capping, attention sinks) keep their own path.
_PLAIN_CAUSAL_FAMILIES = {"llama", "mistral", "qwen2", "qwen3", "olmo", "olmo2", "granite", "phi3", "smollm3"}


def cu_seq_lens(seq_ids: torch.Tensor) -> torch.Tensor:
    """Cumulative sequence starts (int32, length n + 1) of a packed row of sequence ids (1, T)."""
    row = seq_ids[0]
    starts = torch.ones_like(row, dtype=torch.bool)
    starts[1:] = row[1:] != row[:-1]
    bounds = starts.nonzero().flatten()
    return torch.cat([bounds, bounds.new_tensor([row.numel()])]).to(torch.int32)


def _sequence_ids_from_positions(position_ids: torch.Tensor) -> torch.Tensor:
    """(1, T) positions restarting at 0 per sequence -> (1, T) sequence index."""
    return (position_ids == 0).cumsum(-1)


def packed_attention_kwargs(seq_ids: torch.Tensor) -> dict[str, Any]:
    """Keyword arguments that route a packed row's trunk forward through ``packed_attention``."""
    cu = cu_seq_lens(seq_ids)
    longest = int(cu.diff().max())
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def supports_packed_attention(config: Any) -> bool:
    """Whether this model's attention is the plain causal kind the packed kernels compute."""
    if getattr(config, "model_type", None) not in _PLAIN_CAUSAL_FAMILIES:
        return False
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    return not (getattr(config, "attn_logit_softcapping", None) or getattr(config, "attention_dropout", 0.0))


@functools.cache
def _varlen() -> tuple[Callable[..., Any], frozenset[str]] | None:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn, frozenset(inspect.signature(varlen_attn).parameters)


def _cuda_varlen(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu: torch.Tensor, longest: int,
                 scaling: float | None) -> torch.Tensor | None:
    found = _varlen()
    if found is None or query.dtype not in (torch.float16, torch.bfloat16):
        return None
    varlen_attn, params = found
    # (1, H, T, D) -> (T, H, D), the layout of flash varlen kernels.
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))
    extra: dict[str, Any] = {}
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        if "enable_gqa" in params:
            extra["enable_gqa"] = True
        else:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    if "is_causal" in params:
        extra["is_causal"] = True
    elif "window_size" in params:
        extra["window_size"] = (-1, 0)
    else:
        return None
    if "scale" in params and scaling is not None:
        extra["scale"] = scaling
    out = varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, longest, longest, **extra)
    return out.unsqueeze(0)  # (1, T, H, D)


def _per_sequence(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu: torch.Tensor,
                  scaling: float | None) -> torch.Tensor:
    gqa = query.shape[1] != key.shape[1]
    bounds = cu.tolist()
    outs = [
        F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                       scale=scaling, enable_gqa=gqa)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return torch.cat(outs, dim=2).transpose(1, 2)  # (1, T, H, D)


@torch.compiler.disable
def packed_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """An ``AttentionInterface`` function: packed rows by sequence, anything else through SDPA."""
    cu, longest = kwargs.get("cu_seq_lens_q"), kwargs.get("max_length_q")
    one_cache_free_row = attention_mask is None and query.shape[0] == 1 and query.shape[2] == key.shape[2]
    if cu is None and one_cache_free_row and kwargs.get("position_ids") is not None:
        # A packed row that arrived without boundaries (a direct trunk call): find them by position.
        cu = cu_seq_lens(_sequence_ids_from_positions(kwargs["position_ids"]))
        longest = int(cu.diff().max())
    if cu is None or not one_cache_free_row:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if dropout:
        raise ValueError("packed attention does not implement attention dropout")
    if query.is_cuda:
        out = _cuda_varlen(query, key, value, cu, int(longest or cu.diff().max()), scaling)
        if out is not None:
            return out, None
    return _per_sequence(query, key, value, cu, scaling), None


def _packed_mask(**kwargs: Any) -> torch.Tensor | None:
    """No mask for a cache-free forward without padding (packed or a single sequence); SDPA's mask otherwise.

    A cache-free row without a padding mask is either one causal sequence or a packed row whose
    boundaries ``packed_attention`` takes from ``cu_seq_lens_q``; building transformers' mask for it
    would allocate the (T x T) block-diagonal mask this module exists to avoid.
    """
    from transformers.masking_utils import sdpa_mask

    cache_free = kwargs.get("q_offset", 0) == 0 and kwargs.get("kv_offset", 0) == 0
    if kwargs.get("attention_mask") is None and cache_free and kwargs["q_length"] == kwargs["kv_length"]:
        return None
    return sdpa_mask(**kwargs)


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED_ATTENTION, _packed_mask)


def use_packed_attention(model: Any) -> bool:
    """Switches a causal LM (or its PEFT wrapper) to ``packed_attention`` when its family allows it."""
    base = base_causal_lm(model)
    if not supports_packed_attention(base.config):
        return False
    _register()
    base.set_attn_implementation(PACKED_ATTENTION)
    return True


def uses_packed_attention(model: Any) -> bool:
    return getattr(base_causal_lm(model).config, "_attn_implementation", None) == PACKED_ATTENTION
