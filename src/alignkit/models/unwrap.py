"""The transformers model under any PEFT wrapper: what attention patching, forwards and heads reach into."""

from __future__ import annotations

from typing import Any


def base_causal_lm(model: Any) -> Any:
    """The transformers ``*ForCausalLM`` under any PEFT wrapper."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
