"""The one format of a grounded system turn, shared by training data, the probes, chat and serving.

A model fine-tuned on contexts laid out one way and served contexts laid out another reads them
less well, so every producer of a grounded system turn calls these two functions:

    <instruction>

    [<header>]
    - <line>
    - <line>

``synth grounded`` (training), the grounded probe, the quickstart's data generator, ``chat`` with
``rag`` and the retrieve-and-format function for the server all go through :func:`grounded_system`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION

_WHITESPACE_RE = re.compile(r"\s+")
# Question and function words: they say what kind of question it is, not what it is about. Retrieval
# queries (grounded distractors, the lexical index) leave them out.
# fmt: off
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "did", "do", "does", "for", "from", "had",
    "has", "have", "how", "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "their", "there",
    "this", "to", "was", "were", "what", "when", "where", "which", "who", "whom", "whose", "why", "will",
    "with", "you",
})
# fmt: on


def context_block(lines: Iterable[str], header: str | None = None) -> str:
    """``"- line"`` per item (after an optional header line).

    A retrieved chunk can span several lines of its document; its whitespace is collapsed so that
    one item stays one ``- `` line, as in the training contexts.
    """
    items = [f"- {_WHITESPACE_RE.sub(' ', line).strip()}" for line in lines]
    return "\n".join([header, *items] if header else items)


def grounded_system(block: str, instruction: str = DEFAULT_GROUNDED_INSTRUCTION) -> str:
    """The system turn's text: the instruction, a blank line, then the context block."""
    return f"{instruction}\n\n{block}"
