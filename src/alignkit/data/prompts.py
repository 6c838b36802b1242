"""Prompt files: the one reader behind generate, prefs, distill, the RL recipes and the winrate probe.

A prompt file is a ``.txt`` (one prompt a non-empty line) or records in any format ``read_records``
takes, each holding one of:

- ``messages`` (or ``prompt`` as a message list): a conversation; trailing assistant turns are cut (a
  record's reply is not part of its prompt) and what is left must end with a user turn;
- ``prompt``: a non-empty string;
- ``instruction`` (+ optional ``input``): an Alpaca task, joined by a blank line.

``system`` goes before plain prompts (a conversation brings its own). A bad record is an error naming
file, line and field, or, with ``on_bad_record="skip"``, skipped and counted by reason in ``skipped``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from alignkit.data.readers import RawRecord, read_records
from alignkit.errors import DataError

# A chat is a list of {"role": ..., "content": ...} dicts, as chat templates take them.
Chat = list[dict[str, str]]


def last_user_text(chat: Sequence[dict[str, str]]) -> str | None:
    """The content of the chat's last user turn (what a retriever searches with, a probe row shows)."""
    return next((turn["content"] for turn in reversed(chat) if turn.get("role") == "user"), None)
ROLES = ("system", "user", "assistant")


class _BadPrompt(DataError):
    def __init__(self, message: str, raw: RawRecord, field: str, reason: str) -> None:
        super().__init__(message, source=raw.source, line=raw.line, field=field)
        self.reason = reason


def _conversation(raw: RawRecord, key: str, messages: list[Any]) -> Chat:
    chat: Chat = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ROLES or not isinstance(content, str):
            raise _BadPrompt("expected {role: system|user|assistant, content: str}", raw, f"{key}[{index}]",
                             "bad_message")
        chat.append({"role": role, "content": content})
    while chat and chat[-1]["role"] == "assistant":
        chat.pop()
    if not chat or chat[-1]["role"] != "user":
        raise _BadPrompt("expected the conversation to end with a user turn (after its replies are cut)", raw,
                         key, "no_user_turn")
    return chat


def prompt_chat(raw: RawRecord, system: str | None = None) -> Chat:
    """The prompt conversation of one record (see the module docstring)."""
    data = raw.data
    prefix: Chat = [{"role": "system", "content": system}] if system else []
    for key in ("messages", "prompt"):
        if isinstance(data.get(key), list):
            return _conversation(raw, key, data[key])
    if "messages" in data:
        raise _BadPrompt("expected a list of messages", raw, "messages", "bad_message")
    if isinstance(data.get("prompt"), str) and data["prompt"].strip():
        return [*prefix, {"role": "user", "content": data["prompt"]}]
    if isinstance(data.get("instruction"), str) and data["instruction"].strip():
        task_input = data.get("input") or ""
        if not isinstance(task_input, str):
            raise _BadPrompt("expected a string", raw, "input", "bad_input")
        content = f"{data['instruction']}\n\n{task_input}" if task_input.strip() else data["instruction"]
        return [*prefix, {"role": "user", "content": content}]
    raise _BadPrompt("expected a non-empty 'prompt' string, an 'instruction' or a 'messages' list", raw, "prompt",
                     "no_prompt")


def read_prompt_chats(
    path: str | Path,
    *,
    system: str | None = None,
    field: str | None = None,
    on_bad_record: Literal["error", "skip"] = "error",
    skipped: Counter[str] | None = None,
) -> list[Chat]:
    """Every prompt of ``path`` as a chat. ``field`` names the config key that gave the path (errors
    about the file as a whole say it); skipped records are counted by reason into ``skipped``."""
    path = Path(path)
    prefix: Chat = [{"role": "system", "content": system}] if system else []
    chats: list[Chat] = []
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise DataError("file not found", source=str(path), field=field)
        lines = path.read_text(encoding="utf-8").splitlines()
        chats = [[*prefix, {"role": "user", "content": line.strip()}] for line in lines if line.strip()]
    else:
        for raw in read_records(path):
            try:
                chats.append(prompt_chat(raw, system))
            except _BadPrompt as error:
                if on_bad_record != "skip":
                    raise
                if skipped is not None:
                    skipped[error.reason] += 1
    if not chats:
        raise DataError("no prompts", source=str(path), field=field)
    return chats
