"""Retrieve-and-format for a chat: what ``chat`` uses and what the server calls per request.

The system turn is built by :func:`alignkit.data.grounding.grounded_system`, the function grounded
training data and the grounded probe use, so a served context is byte-identical to a trained one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION
from alignkit.data.grounding import context_block, grounded_system
from alignkit.data.prompts import last_user_text
from alignkit.retrieval.search import Hit, Mode, Retriever


@dataclass(frozen=True)
class Augmented:
    """The chat to generate from, and the citations of the chunks put in it."""

    messages: list[dict[str, str]]
    citations: list[dict[str, Any]]
    hits: tuple[Hit, ...]


def retrieve_and_format(
    messages: Sequence[dict[str, str]],
    retriever: Retriever,
    *,
    top_k: int = 4,
    mode: Mode = "fused",
    instruction: str = DEFAULT_GROUNDED_INSTRUCTION,
    rrf_k: int = 60,
) -> Augmented:
    """Search with the last user turn; the grounded system turn replaces any system turn.

    The client's own system turn is dropped rather than merged: a grounded model was trained with
    exactly this system text, and another one in front of it is a prompt it never saw.
    """
    query = last_user_text(messages)
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if query is None:
        return Augmented(rest, [], ())
    hits = retriever.search(query, top_k, mode, rrf_k=rrf_k)
    system = grounded_system(context_block(hit.chunk.text for hit in hits), instruction)
    return Augmented(
        [{"role": "system", "content": system}, *rest], [h.citation() for h in hits], tuple(hits)
    )
