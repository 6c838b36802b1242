"""The prompts of an RL run: read (``data.prompts``), rendered with the chat template to ids, the too
long dropped and counted, a held-out share split off with the run's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignkit.config.rl import PromptDataSection
from alignkit.data.dataset import resolve_chat_template
from alignkit.data.formatting import generation_prompt_ids
from alignkit.data.prompts import Chat, read_prompt_chats
from alignkit.data.split import split_held_out
from alignkit.errors import AlignkitError, DataError


@dataclass
class Prompt:
    chat: Chat
    ids: list[int]
    name: str  # file#index, for messages about a batch


def _render(path: str, data: PromptDataSection, tokenizer: Any) -> tuple[list[Prompt], int]:
    template = resolve_chat_template(data.chat_template)
    prompts, dropped = [], 0
    for index, chat in enumerate(read_prompt_chats(path, system=data.system)):
        ids = generation_prompt_ids(tokenizer, chat, chat_template=template)
        if len(ids) > data.max_prompt_length:
            dropped += 1
            continue
        prompts.append(Prompt(chat=chat, ids=ids, name=f"{path}#{index}"))
    if not prompts:
        raise DataError(
            f"every prompt is longer than data.max_prompt_length={data.max_prompt_length}", source=path
        )
    return prompts, dropped


def load_prompts(
    data: PromptDataSection, tokenizer: Any, seed: int
) -> tuple[list[Prompt], list[Prompt], int]:
    """(train prompts, held-out prompts, prompts dropped for length)."""
    if not data.train:
        raise AlignkitError(
            "no prompts: set data.train=PATH (prompt or messages records)", field="data.train"
        )
    train, dropped = _render(data.train, data, tokenizer)
    held: list[Prompt] = []
    if data.eval:
        held, more = _render(data.eval, data, tokenizer)
        dropped += more
    else:
        train, held = split_held_out(train, data.eval_fraction, seed)
    return train, held, dropped
