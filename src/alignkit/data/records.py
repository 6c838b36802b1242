"""Record kinds, validation and normalisation.

Kinds (auto-detected from the first record, overridable):

- ``messages``: ``{"messages": [{"role", "content", "train"?}, ...]}``
- ``prompt_completion``: ``prompt`` and ``completion``, each a string or a message list
- ``preference``: ``prompt`` (optional), ``chosen``, ``rejected``: strings or message lists; without a
  ``prompt`` the shared leading messages of ``chosen`` and ``rejected`` are the prompt
- ``alpaca``: ``instruction``, ``input`` (optional), ``output``
- ``text``: ``{"text": ...}`` (continuation training)
- ``sharegpt``: ``{"conversations": [{"from": "system"|"human"|"gpt", "value", "weight"?}, ...]}``, read as
  ``messages`` (``weight: 0`` on a gpt turn is ``train: false``)

Every problem raises a DataError naming file, line and field (e.g. ``messages[2].role``), or is
counted by reason when the caller opted into ``on_bad_record: skip``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from alignkit.data.readers import RawRecord, read_records
from alignkit.errors import DataError

Kind = Literal["messages", "prompt_completion", "preference", "alpaca", "text", "sharegpt"]
KINDS: tuple[str, ...] = ("messages", "prompt_completion", "preference", "alpaca", "text", "sharegpt")
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
ROLES = ("system", "user", "assistant")


@dataclass
class Record:
    """A validated record in normal form.

    ``messages`` holds the conversation for SFT kinds (alpaca and prompt/completion become messages;
    a message's ``train`` is False for prompt turns). For ``preference``, ``messages`` is the prompt and
    ``chosen``/``rejected`` the two continuations. ``text`` is set for raw text. ``plain`` is True when
    the record came as plain strings (no roles), so raw-text mode can concatenate them.
    """

    kind: str
    source: str
    line: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    chosen: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None
    plain: bool = False
    margin: float | None = None


def detect_kind(data: dict[str, Any]) -> str | None:
    if "messages" in data:
        return "messages"
    if "chosen" in data or "rejected" in data:
        return "preference"
    if "completion" in data:
        return "prompt_completion"
    if "instruction" in data or "output" in data:
        return "alpaca"
    if "text" in data:
        return "text"
    if "conversations" in data:
        return "sharegpt"
    return None


class _Bad(Exception):
    """A validation failure inside one record: field + message (turned into DataError)."""

    def __init__(self, field_name: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message
        self.reason = reason


def _string(data: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    if key not in data or data[key] is None:
        raise _Bad(key, "missing field (expected a string)", "missing_field")
    value = data[key]
    if not isinstance(value, str):
        raise _Bad(key, f"expected a string, got {type(value).__name__}", "wrong_type")
    if not allow_empty and not value.strip():
        raise _Bad(key, "expected non-empty text", "empty_text")
    return value


def _messages(value: Any, name: str, *, allowed_roles: tuple[str, ...] = ROLES) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _Bad(name, f"expected a list of messages, got {type(value).__name__}", "wrong_type")
    if not value:
        raise _Bad(name, "expected at least one message, got an empty list", "empty_messages")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise _Bad(where, f"expected a message object, got {type(item).__name__}", "wrong_type")
        role = item.get("role")
        if role is None:
            raise _Bad(f"{where}.role", "missing field (expected system, user or assistant)", "missing_field")
        if role not in allowed_roles:
            raise _Bad(f"{where}.role", f"unknown role {role!r} (expected {', '.join(allowed_roles)})",
                       "unknown_role")
        content = item.get("content")
        if content is None:
            raise _Bad(f"{where}.content", "missing field (expected a string)", "missing_field")
        if not isinstance(content, str):
            raise _Bad(f"{where}.content", f"expected a string, got {type(content).__name__}", "wrong_type")
        train = item.get("train")
        if train is not None and not isinstance(train, bool):
            raise _Bad(f"{where}.train", f"expected true or false, got {train!r}", "wrong_type")
        if role == "assistant" and not content.strip() and train is not False:
            raise _Bad(f"{where}.content", "empty assistant reply", "empty_text")
        unknown = set(item) - {"role", "content", "train", "name"}
        if unknown:
            raise _Bad(f"{where}.{sorted(unknown)[0]}", "unknown message field (expected role, content, train)",
                       "unknown_field")
        message: dict[str, Any] = {"role": role, "content": content}
        if train is not None:
            message["train"] = train
        messages.append(message)
    return messages


def _check_conversation_order(messages: list[dict[str, Any]], name: str, *, need_assistant: bool) -> None:
    for index, message in enumerate(messages):
        if message["role"] == "system" and index != 0:
            raise _Bad(f"{name}[{index}].role", "a system message may only come first", "bad_order")
    first_turn = 1 if messages[0]["role"] == "system" else 0
    if first_turn >= len(messages):
        raise _Bad(name, "only a system message: expected a user turn", "bad_order")
    if messages[first_turn]["role"] != "user":
        raise _Bad(f"{name}[{first_turn}].role", "conversation starts with the assistant: expected a user turn first",
                   "assistant_first")
    if need_assistant and not any(m["role"] == "assistant" for m in messages):
        raise _Bad(name, "no assistant turn to train on", "no_assistant")


def _as_prompt(value: Any, name: str) -> tuple[list[dict[str, Any]], bool]:
    """A prompt given as a string or a message list -> (messages, was_plain_string)."""
    if isinstance(value, str):
        if not value.strip():
            raise _Bad(name, "expected non-empty text", "empty_text")
        return [{"role": "user", "content": value}], True
    return _messages(value, name, allowed_roles=("system", "user", "assistant")), False


def _as_reply(value: Any, name: str) -> tuple[list[dict[str, Any]], bool]:
    if isinstance(value, str):
        if not value.strip():
            raise _Bad(name, "empty completion", "empty_text")
        return [{"role": "assistant", "content": value}], True
    messages = _messages(value, name)
    if not any(m["role"] == "assistant" for m in messages):
        raise _Bad(name, "expected at least one assistant message", "no_assistant")
    return messages, False


def _validate_messages(data: dict[str, Any]) -> Record:
    if "messages" not in data:
        raise _Bad("messages", "missing field (expected a list of messages)", "missing_field")
    messages = _messages(data["messages"], "messages")
    _check_conversation_order(messages, "messages", need_assistant=True)
    if not any(m["role"] == "assistant" and m.get("train", True) for m in messages):
        raise _Bad("messages", "every assistant turn has train: false; nothing to learn", "no_assistant")
    return Record("messages", "", 0, messages=messages)


def _validate_prompt_completion(data: dict[str, Any]) -> Record:
    if "prompt" not in data:
        raise _Bad("prompt", "missing field (expected a string or a message list)", "missing_field")
    if "completion" not in data:
        raise _Bad("completion", "missing field (expected a string or a message list)", "missing_field")
    prompt, prompt_plain = _as_prompt(data["prompt"], "prompt")
    completion, completion_plain = _as_reply(data["completion"], "completion")
    prompt = [{**m, "train": False} for m in prompt]
    messages = prompt + completion
    _check_conversation_order(messages, "prompt", need_assistant=True)
    return Record("prompt_completion", "", 0, messages=messages, plain=prompt_plain and completion_plain)


def _shared_prefix(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> int:
    shared = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        shared += 1
    return shared


def _validate_preference(data: dict[str, Any]) -> Record:
    for key in ("chosen", "rejected"):
        if key not in data or data[key] is None:
            raise _Bad(key, "missing field (expected a string or a message list)", "missing_field")
    if isinstance(data["chosen"], str) != isinstance(data["rejected"], str):
        raise _Bad("rejected", "chosen and rejected must both be strings or both message lists", "wrong_type")
    chosen, plain = _as_reply(data["chosen"], "chosen")
    rejected, _ = _as_reply(data["rejected"], "rejected")
    if data.get("prompt") is not None:
        prompt, prompt_plain = _as_prompt(data["prompt"], "prompt")
        plain = plain and prompt_plain
    else:
        # Implicit prompt: the leading messages chosen and rejected share.
        shared = _shared_prefix(chosen, rejected)
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        if not prompt:
            raise _Bad("prompt", "missing field, and chosen/rejected share no leading prompt messages",
                       "missing_field")
        plain = False
    if chosen == rejected:
        raise _Bad("rejected", "identical to chosen (nothing to prefer)", "chosen_equals_rejected")
    for name, reply in (("chosen", chosen), ("rejected", rejected)):
        if not reply or reply[0]["role"] != "assistant":
            raise _Bad(name, "expected the reply to start with an assistant message", "bad_order")
    _check_conversation_order(prompt + chosen, "prompt", need_assistant=True)
    margin = data.get("margin")
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int | float)):
        raise _Bad("margin", f"expected a number, got {margin!r}", "wrong_type")
    return Record("preference", "", 0, messages=[{**m, "train": False} for m in prompt], chosen=chosen,
                  rejected=rejected, plain=plain, margin=float(margin) if margin is not None else None)


def _validate_alpaca(data: dict[str, Any]) -> Record:
    instruction = _string(data, "instruction")
    context = _string(data, "input", allow_empty=True) if data.get("input") is not None else ""
    output = _string(data, "output")
    prompt = f"{instruction}\n\n{context}" if context.strip() else instruction
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt, "train": False},
                                      {"role": "assistant", "content": output}]
    return Record("alpaca", "", 0, messages=messages, plain=True)


def _validate_text(data: dict[str, Any]) -> Record:
    return Record("text", "", 0, text=_string(data, "text"), plain=True)


def _validate_sharegpt(data: dict[str, Any]) -> Record:
    """ShareGPT turns -> messages: ``from`` human/gpt/system is the role, ``value`` the content, ``weight``
    (0 or 1, as in Axolotl and LLaMA-Factory exports) whether a turn is trained."""
    turns = data.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise _Bad("conversations", "expected a non-empty list of {from, value} turns", "wrong_type")
    messages: list[dict[str, Any]] = []
    for index, turn in enumerate(turns):
        where = f"conversations[{index}]"
        if not isinstance(turn, dict):
            raise _Bad(where, f"expected a turn object, got {type(turn).__name__}", "wrong_type")
        unknown = set(turn) - {"from", "value", "weight"}
        if unknown:
            raise _Bad(f"{where}.{sorted(unknown)[0]}", "unknown turn field (expected from, value, weight)",
                       "unknown_field")
        speaker = turn.get("from")
        if speaker not in SHAREGPT_ROLES:
            raise _Bad(f"{where}.from", f"unknown speaker {speaker!r} (expected {', '.join(SHAREGPT_ROLES)})",
                       "unknown_role")
        if not isinstance(turn.get("value"), str):
            raise _Bad(f"{where}.value", "missing or not a string", "missing_field")
        message: dict[str, Any] = {"role": SHAREGPT_ROLES[speaker], "content": turn["value"]}
        weight = turn.get("weight")
        if weight is not None:
            if weight not in (0, 1) or isinstance(weight, bool):
                raise _Bad(f"{where}.weight", f"expected 0 or 1, got {weight!r}", "wrong_type")
            if speaker != "gpt" and weight == 1:
                raise _Bad(f"{where}.weight", "only gpt turns are trained", "wrong_type")
            if speaker == "gpt":
                message["train"] = weight == 1
        messages.append(message)
    try:
        record = _validate_messages({"messages": messages})
    except _Bad as bad:  # named as the user wrote it: conversations[1].value, not messages[1].content
        bad.field_name = bad.field_name.replace("messages", "conversations").replace(".content", ".value")
        raise
    return record


_VALIDATORS = {
    "messages": _validate_messages,
    "prompt_completion": _validate_prompt_completion,
    "preference": _validate_preference,
    "alpaca": _validate_alpaca,
    "text": _validate_text,
    "sharegpt": _validate_sharegpt,
}


def validate_record(raw: RawRecord, kind: str) -> Record:
    """Validates one raw record as ``kind``; raises DataError naming file, line and field."""
    try:
        record = _VALIDATORS[kind](raw.data)
    except _Bad as bad:
        error = DataError(bad.message, source=raw.source, line=raw.line, field=bad.field_name)
        error.reason = bad.reason  # type: ignore[attr-defined]
        raise error from None
    record.source, record.line = raw.source, raw.line
    return record


def record_fingerprint(record: Record) -> str:
    payload = json.dumps([record.kind, record.messages, record.chosen, record.rejected, record.text],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class LoadReport:
    """What happened while reading: counts by kind, skipped records by reason, duplicates."""

    kind: str = ""
    total: int = 0
    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    duplicate_lines: list[int] = field(default_factory=list)


def load_records(
    path: str,
    *,
    kind: str = "auto",
    on_bad_record: str = "error",
    raws: Iterable[RawRecord] | None = None,
) -> tuple[list[Record], LoadReport]:
    """Reads and validates every record of ``path``. Strict unless ``on_bad_record == "skip"``."""
    if kind != "auto" and kind not in KINDS:
        raise DataError(f"unknown kind {kind!r} (expected auto or one of {', '.join(KINDS)})", field="data.kind")
    report = LoadReport()
    records: list[Record] = []
    seen: set[str] = set()
    for raw in raws if raws is not None else read_records(path):
        report.total += 1
        record_kind = kind
        if record_kind == "auto":
            detected = detect_kind(raw.data)
            if detected is None:
                error = DataError(
                    f"cannot tell the record kind from keys {sorted(raw.data)[:6]}: expected messages, "
                    "prompt+completion, prompt+chosen+rejected, instruction+output, or text",
                    source=raw.source, line=raw.line, field="(record)",
                )
                if on_bad_record == "skip":
                    report.skipped["unknown_kind"] += 1
                    continue
                raise error
            if not report.kind:
                report.kind = detected
            elif detected != report.kind:
                if on_bad_record == "skip":
                    report.skipped["mixed_kinds"] += 1
                    continue
                raise DataError(f"a {detected} record in a {report.kind} dataset (kinds cannot be mixed)",
                                source=raw.source, line=raw.line, field="(record)")
            record_kind = detected
        else:
            report.kind = kind
        try:
            record = validate_record(raw, record_kind)
        except DataError as error:
            if on_bad_record == "skip":
                report.skipped[getattr(error, "reason", "invalid")] += 1
                continue
            raise
        fingerprint = record_fingerprint(record)
        if fingerprint in seen:
            report.duplicates += 1
            report.duplicate_lines.append(record.line)
        seen.add(fingerprint)
        records.append(record)
    report.kept = len(records)
    if not records:
        raise DataError(f"no valid records (skipped: {dict(report.skipped)})", source=str(path))
    return records, report
