"""Context distillation: answers written with a long persona or instruction, trained without it.

The generator sees ``[system: CONTEXT, user: prompt]``; the training record keeps only
``[user: prompt, assistant: reply]``. SFT on these records moves the behaviour the context asked
for into the weights, so serving no longer pays for (or leaks) the long system prompt
(Askell et al., 2021; Snell et al., 2022). Departure: we fine-tune on sampled replies (SFT), not on
the full next-token distribution (KL), so any ``Generator`` (an HTTP endpoint too) can be the teacher.

A reply cut at the token limit is dropped and counted (training on it would teach the model not to
stop), and so is an empty one. A prompt record with its own system message keeps it: the context
goes before it during generation and is removed afterwards. Earlier assistant turns of a
multi-turn prompt are written with ``train: false``: they were not produced with the context.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alignkit.errors import ConfigError
from alignkit.generation.types import Chat, GenerationParams, Generator

DROP_CUT_OFF = "cut_off"
DROP_EMPTY = "empty"


def with_context(chat: Chat, context: str) -> Chat:
    """``chat`` with ``context`` as its system prompt (before the chat's own system message, if any)."""
    if chat and chat[0]["role"] == "system":
        return [{"role": "system", "content": f"{context}\n\n{chat[0]['content']}"}, *chat[1:]]
    return [{"role": "system", "content": context}, *chat]


def training_record(chat: Chat, reply: str) -> dict[str, Any]:
    """The record written: the prompt chat (no context), earlier replies untrained, then ``reply``."""
    messages: list[dict[str, Any]] = []
    for message in chat:
        item: dict[str, Any] = dict(message)
        if item["role"] == "assistant":
            item["train"] = False
        messages.append(item)
    messages.append({"role": "assistant", "content": reply})
    return {"messages": messages}


@dataclass
class DistillResult:
    """Training records (input order, ``num_samples`` per prompt), drops by reason, counters."""

    records: list[dict[str, Any]]
    drop_counts: dict[str, int]
    stats: dict[str, int] = field(default_factory=dict)


def distill_with_context(
    generator: Generator, prompts: Sequence[Chat], context: str, params: GenerationParams
) -> DistillResult:
    """Generate with ``context`` as the system prompt; return records without it."""
    if not context.strip():
        raise ConfigError("the context is empty", field="context")
    replies = generator.chat([with_context(chat, context) for chat in prompts], params)
    records: list[dict[str, Any]] = []
    drops: Counter[str] = Counter()
    for chat, samples in zip(prompts, replies, strict=True):
        for sample in samples:
            text = sample.text.strip()
            if not sample.stopped:
                drops[DROP_CUT_OFF] += 1
            elif not text:
                drops[DROP_EMPTY] += 1
            else:
                records.append(training_record(chat, text))
    stats = {"prompts": len(prompts), "replies": sum(len(s) for s in replies), "records": len(records)}
    return DistillResult(records, dict(drops), stats)
