"""Chat formatting: a conversation -> ``input_ids`` and an assistant-only ``loss_mask``.

The mask is computed by *position* from message boundaries: each trained assistant turn spans from
the end of the rendered prompt (with the generation prompt, exactly what inference feeds the model)
to the end of the template's end-of-turn token. It never searches for a response-template string and
never masks by token id, so the end-of-turn token stays trained even when pad == eos.

Each segment (prompt text, trained reply) is tokenised on its own, so the reply's tokens are those
the model produces at inference after the prompt; BOS is added only when the tokenizer wants one
and the rendered text does not already start with it (never doubled).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from alignkit.errors import DataError

_PROBE_REPLY = "alignkit-probe-reply"


@dataclass(frozen=True)
class TemplateInfo:
    """What formatting and lint need to know about a tokenizer's chat template."""

    has_template: bool
    eot_token: str | None  # the token that ends an assistant turn, e.g. <|im_end|>
    eot_id: int | None
    bos_token: str | None
    bos_id: int | None
    adds_bos: bool  # the tokenizer prepends BOS on plain encode
    eos_id: int | None
    special_tokens: tuple[str, ...]


@functools.lru_cache(maxsize=32)
def _template_info_cached(tokenizer_key: int, tokenizer: Any, chat_template: str | None) -> TemplateInfo:
    del tokenizer_key
    special = tuple(sorted({t for t in tokenizer.all_special_tokens if t}, key=len, reverse=True))
    template = chat_template or getattr(tokenizer, "chat_template", None)
    eot_token: str | None = None
    if template:
        probe = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _PROBE_REPLY}]
        rendered = tokenizer.apply_chat_template(probe, tokenize=False, chat_template=chat_template)
        suffix = rendered[rendered.rfind(_PROBE_REPLY) + len(_PROBE_REPLY):]
        hits = [(suffix.find(tok), tok) for tok in special if tok in suffix]
        if hits:
            eot_token = min(hits)[1]
    if eot_token is None and tokenizer.eos_token:
        eot_token = tokenizer.eos_token
    eot_id = tokenizer.convert_tokens_to_ids(eot_token) if eot_token else None
    bos_id = tokenizer.bos_token_id
    plain = tokenizer("a").input_ids
    adds_bos = bool(bos_id is not None and plain and plain[0] == bos_id)
    return TemplateInfo(
        has_template=bool(template), eot_token=eot_token, eot_id=eot_id, bos_token=tokenizer.bos_token,
        bos_id=bos_id, adds_bos=adds_bos, eos_id=tokenizer.eos_token_id, special_tokens=special,
    )


def template_info(tokenizer: Any, chat_template: str | None = None) -> TemplateInfo:
    return _template_info_cached(id(tokenizer), tokenizer, chat_template)


@dataclass
class Formatted:
    """One tokenised example.

    ``loss_mask[i] == 1`` means the token at position ``i`` is a training target (the loss at that
    position predicts it from positions ``< i``). ``eot_positions`` are the positions of each trained
    turn's end-of-turn token (-1 when the turn has none), for lint.
    """

    input_ids: list[int]
    loss_mask: list[int]
    eot_positions: list[int] = field(default_factory=list)
    truncated: bool = False


def render(tokenizer: Any, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False,
           chat_template: str | None = None) -> str:
    """The chat template applied to plain role/content messages (our ``train`` flags stripped)."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    try:
        return tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt,
                                             chat_template=chat_template)
    except Exception as exc:  # jinja raises TemplateError for conversations a template refuses
        raise DataError(f"the chat template refused this conversation: {exc}", field="messages") from None


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids) if text else []


def check_no_special_tokens(messages: list[dict[str, Any]], info: TemplateInfo) -> None:
    for index, message in enumerate(messages):
        for token in info.special_tokens:
            if token in message["content"]:
                raise DataError(f"content contains the special token {token!r}, which would corrupt the template",
                                field=f"messages[{index}].content")


def format_chat(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    chat_template: str | None = None,
) -> Formatted:
    """Renders ``messages`` and masks every assistant turn whose ``train`` is not False."""
    info = template_info(tokenizer, chat_template)
    if not info.has_template:
        raise DataError("the model's tokenizer has no chat template: set data.chat_template, or data.raw_text=true",
                        field="data.chat_template")
    check_no_special_tokens(messages, info)
    full = render(tokenizer, messages, chat_template=chat_template)
    spans: list[tuple[int, int, bool]] = []  # (start, end, has_eot) in characters of `full`
    for index, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("train", True) is False:
            continue
        prefix = render(tokenizer, messages[:index], add_generation_prompt=True, chat_template=chat_template)
        upto = render(tokenizer, messages[: index + 1], chat_template=chat_template)
        if not (upto.startswith(prefix) and full.startswith(upto)):
            raise DataError(
                f"the chat template is not prefix-stable at message {index} (earlier turns render differently "
                "once later turns are added), so assistant turns cannot be masked by position",
                field=f"messages[{index}]",
            )
        start = len(prefix)
        eot_at = upto.find(info.eot_token, start) if info.eot_token else -1
        end = eot_at + len(info.eot_token) if eot_at >= 0 and info.eot_token else len(upto)
        if spans and start < spans[-1][1]:
            raise DataError("assistant turns overlap after rendering", field=f"messages[{index}]")
        spans.append((start, end, eot_at >= 0))

    input_ids: list[int] = []
    loss_mask: list[int] = []
    eot_positions: list[int] = []
    if info.adds_bos and info.bos_token and not full.startswith(info.bos_token) and info.bos_id is not None:
        input_ids.append(info.bos_id)
        loss_mask.append(0)
    cursor = 0
    for start, end, has_eot in spans:
        context_ids = _encode(tokenizer, full[cursor:start])
        reply_ids = _encode(tokenizer, full[start:end])
        input_ids += context_ids
        loss_mask += [0] * len(context_ids)
        input_ids += reply_ids
        loss_mask += [1] * len(reply_ids)
        eot_positions.append(len(input_ids) - 1 if has_eot and reply_ids and reply_ids[-1] == info.eot_id else -1)
        cursor = end
    tail = _encode(tokenizer, full[cursor:])
    input_ids += tail
    loss_mask += [0] * len(tail)
    return Formatted(input_ids, loss_mask, eot_positions)


def format_raw(
    tokenizer: Any,
    text: str,
    *,
    prompt: str | None = None,
    add_eos: bool = True,
) -> Formatted:
    """Continuation training: ``prompt`` (untrained) + ``text`` (trained) + EOS when ``add_eos``."""
    info = template_info(tokenizer)
    input_ids: list[int] = []
    loss_mask: list[int] = []
    if info.adds_bos and info.bos_id is not None:
        input_ids.append(info.bos_id)
        loss_mask.append(0)
    if prompt:
        prompt_ids = _encode(tokenizer, prompt)
        input_ids += prompt_ids
        loss_mask += [0] * len(prompt_ids)
    body = _encode(tokenizer, text)
    input_ids += body
    loss_mask += [1] * len(body)
    eot = -1
    if add_eos and info.eos_id is not None:
        input_ids.append(info.eos_id)
        loss_mask.append(1)
        eot = len(input_ids) - 1
    return Formatted(input_ids, loss_mask, [eot])


def truncate(formatted: Formatted, *, max_length: int, policy: str) -> Formatted | None:
    """Applies the truncation policy; None means "drop this record"; ``error`` raises DataError."""
    length = len(formatted.input_ids)
    if length <= max_length:
        return formatted
    if policy == "drop":
        return None
    if policy == "error":
        first_trained = formatted.loss_mask.index(1) if 1 in formatted.loss_mask else length
        if first_trained >= max_length:
            raise DataError(f"the prompt alone is {first_trained} tokens: no room for the completion within "
                            f"data.max_length={max_length} (truncation policy 'error')", field="(length)")
        raise DataError(f"{length} tokens exceed data.max_length={max_length} (truncation policy 'error')",
                        field="(length)")
    if policy == "keep_start":
        cut = slice(0, max_length)
        offset = 0
    elif policy == "keep_end":
        cut = slice(length - max_length, length)
        offset = length - max_length
    else:
        raise DataError(f"unknown truncation policy {policy!r} (expected keep_start, keep_end, drop, error)",
                        field="data.truncation")
    eots = [p - offset if p >= 0 and cut.start <= p < cut.stop else -1 for p in formatted.eot_positions]
    return Formatted(formatted.input_ids[cut], formatted.loss_mask[cut], eots, truncated=True)


def doubled_bos(input_ids: list[int], bos_id: int | None) -> bool:
    return bos_id is not None and len(input_ids) >= 2 and input_ids[0] == bos_id and input_ids[1] == bos_id


def generation_prompt_ids(tokenizer: Any, messages: list[dict[str, Any]], *,
                          chat_template: str | None = None) -> list[int]:
    """Token ids of a chat prompt ending with the assistant generation prompt, as training renders it."""
    info = template_info(tokenizer, chat_template)
    text = render(tokenizer, messages, add_generation_prompt=True, chat_template=chat_template)
    ids = _encode(tokenizer, text)
    if info.adds_bos and info.bos_token and not text.startswith(info.bos_token) and info.bos_id is not None:
        ids = [info.bos_id, *ids]
    return ids


def stop_token_ids(tokenizer: Any, generation_config: Any, chat_template: str | None = None) -> list[int]:
    """The stop set that generation, serving and export share: the tokenizer's EOS, the generation
    config's EOS (one id or a list) and the template's end-of-turn token."""
    info = template_info(tokenizer, chat_template)
    eos = getattr(generation_config, "eos_token_id", None)
    ids = {int(i) for i in (eos if isinstance(eos, list | tuple) else [eos]) if i is not None}
    ids.update(int(i) for i in (tokenizer.eos_token_id, info.eot_id) if i is not None)
    return sorted(ids)
