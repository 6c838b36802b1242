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
from pathlib import Path
from typing import Any

from alignkit.data.readers import RawRecord, read_records
from alignkit.errors import ConfigError, DataError
from alignkit.generation.types import Chat, GenerationParams, Generator

DROP_CUT_OFF = "cut_off"
DROP_EMPTY = "empty"


def _chat_from_messages(raw: RawRecord) -> Chat:
    messages = raw.data["messages"]
    if not isinstance(messages, list):
        raise DataError("expected a list of messages", source=raw.source, line=raw.line, field="messages")
    chat: Chat = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise DataError(
                "expected {role: system|user|assistant, content: str}",
                source=raw.source,
                line=raw.line,
                field=f"messages[{i}]",
            )
        chat.append({"role": role, "content": content})
    while chat and chat[-1]["role"] == "assistant":
        chat.pop()  # the reply to distil replaces any reply the record had
    if not chat or chat[-1]["role"] != "user":
        raise DataError(
            "expected the conversation to end with a user turn",
            source=raw.source,
            line=raw.line,
            field="messages",
        )
    return chat


def prompt_from_record(raw: RawRecord) -> Chat:
    """A prompt chat from a ``messages``, ``prompt`` or Alpaca (``instruction`` + ``input``) record."""
    data = raw.data
    if "messages" in data:
        return _chat_from_messages(raw)
    if isinstance(data.get("prompt"), str) and data["prompt"].strip():
        return [{"role": "user", "content": data["prompt"]}]
    if isinstance(data.get("instruction"), str) and data["instruction"].strip():
        task_input = data.get("input") or ""
        if not isinstance(task_input, str):
            raise DataError("expected a string", source=raw.source, line=raw.line, field="input")
        content = f"{data['instruction']}\n\n{task_input}" if task_input.strip() else data["instruction"]
        return [{"role": "user", "content": content}]
    raise DataError(
        "expected a 'prompt' string, an 'instruction' or a 'messages' list",
        source=raw.source,
        line=raw.line,
        field="prompt",
    )


def read_prompts(path: str | Path) -> list[Chat]:
    """Prompt chats from a ``.txt`` file (one prompt per non-empty line) or any data file."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise DataError("file not found", source=str(path))
        chats: list[Chat] = [
            [{"role": "user", "content": line.strip()}]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    else:
        chats = [prompt_from_record(raw) for raw in read_records(path)]
    if not chats:
        raise DataError("no prompts", source=str(path))
    return chats


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
