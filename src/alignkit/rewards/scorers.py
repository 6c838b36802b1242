"""One scorer protocol and its implementations: the rewards of PPO/GRPO and the judges of ``prefs``.

A ``Scorer`` turns (prompt chat, reply) pairs into scores, ``None`` for a reply it cannot score:

- ``FunctionScorer``: a Python function by import path, ``f(prompt_chat, reply, **kwargs) -> float``;
- ``RewardModelScorer``: a folder written by ``alignkit rm``. The reply is formatted after its prompt
  with the chat template and scored at the reply's end-of-turn token, exactly as ``alignkit score``
  does, so the written scores can be reproduced;
- ``LLMJudge``: a 1-10 rating prompt run through any ``Generator`` (a local model, or an
  OpenAI-compatible HTTP endpoint); the first integer 1..10 of the judge's answer is the score.

``make_scorer`` builds the one a ``reward`` section configures.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Protocol

from alignkit.config.rl import RewardSection
from alignkit.data.formatting import format_chat
from alignkit.errors import AlignkitError, ConfigError, DataError
from alignkit.generation.http import OpenAICompatibleGenerator
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import Chat, GenerationParams, Generator
from alignkit.models.loader import load_model
from alignkit.models.reward_head import load_reward_model, score_sequences

DEFAULT_JUDGE_PROMPT = """Rate the assistant's reply to the conversation below on a scale from 1 to 10.
1 means unhelpful, wrong or rude; 10 means helpful, correct, honest and polite.
Answer with the number only.

Conversation:
{conversation}

Assistant's reply:
{response}

Score (1-10):"""

_SCORE = re.compile(r"(?<!\d)(?<!\d\.)(10|[1-9])(?!\d|\.\d)")  # an integer 1..10, not part of 8.5 or 27


class Scorer(Protocol):
    def score(self, chats: list[Chat], replies: list[str]) -> list[float | None]:
        """One score per (chat, reply); None when this reply cannot be scored."""
        ...


def import_object(path: str) -> Any:
    """``pkg.module:name.attr`` or ``pkg.module.name``: the longest importable module, then attributes."""
    module_part, _, attr_part = path.partition(":")
    parts = module_part.split(".")
    attrs = attr_part.split(".") if attr_part else []
    problem = "no such module"
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError as exc:
            problem = str(exc)
            if attr_part:  # with a colon the module part must import as a whole
                break
            continue
        try:
            for name in parts[cut:] + attrs:
                obj = getattr(obj, name)
        except AttributeError as exc:
            problem = str(exc)
            break
        return obj
    raise ConfigError(
        f"cannot import {path!r} ({problem}; expected 'package.module:function')", field="reward.function"
    )


class FunctionScorer:
    """A Python function ``f(prompt_chat, reply_text, **kwargs) -> float``."""

    def __init__(self, path: str, kwargs: dict[str, Any]) -> None:
        self.path = path
        self.fn = import_object(path)
        self.kwargs = kwargs
        if not callable(self.fn):
            raise ConfigError(f"{path!r} is not callable", field="reward.function")

    def score(self, chats: list[Chat], replies: list[str]) -> list[float | None]:
        out: list[float | None] = []
        for chat, reply in zip(chats, replies, strict=True):
            try:
                value = self.fn(chat, reply, **self.kwargs)
            except Exception as exc:
                raise AlignkitError(
                    f"reward function {self.path} raised {exc!r}", field="reward.function"
                ) from exc
            out.append(None if value is None else float(value))
        return out


class RewardModelScorer:
    """Scores replies with a reward model from ``alignkit rm``."""

    def __init__(self, loaded: Any, *, batch_size: int = 8) -> None:
        self.loaded = loaded
        self.batch_size = batch_size

    def score(self, chats: list[Chat], replies: list[str]) -> list[float | None]:
        sequences, where = [], []
        for index, (chat, reply) in enumerate(zip(chats, replies, strict=True)):
            messages: list[dict[str, Any]] = [{**m, "train": False} for m in chat]
            messages.append({"role": "assistant", "content": reply})
            try:
                formatted = format_chat(self.loaded.tokenizer, messages)
            except DataError:
                continue
            sequences.append((formatted.input_ids, formatted.loss_mask))
            where.append(index)
        scores: list[float | None] = [None] * len(replies)
        for index, value in zip(
            where, score_sequences(self.loaded.model, sequences, batch_size=self.batch_size), strict=True
        ):
            scores[index] = value
        return scores


def parse_rating(text: str) -> float | None:
    """The first integer 1..10 in a judge's answer ("8", "Score: 8/10", "I'd say 10."), else None."""
    match = _SCORE.search(text)
    return float(match.group(1)) if match else None


def _conversation_text(chat: Chat) -> str:
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in chat if m["role"] != "system")


class LLMJudge:
    """Rates each reply 1-10 with a rating prompt, through any ``Generator`` (greedy)."""

    def __init__(self, generator: Generator, *, prompt: str | None = None, max_new_tokens: int = 8) -> None:
        self.generator = generator
        self.prompt = prompt or DEFAULT_JUDGE_PROMPT
        self.max_new_tokens = max_new_tokens

    def score(self, chats: list[Chat], replies: list[str]) -> list[float | None]:
        requests = [
            [
                {
                    "role": "user",
                    "content": self.prompt.format(conversation=_conversation_text(chat), response=reply),
                }
            ]
            for chat, reply in zip(chats, replies, strict=True)
        ]
        answers = self.generator.chat(
            requests, GenerationParams(max_new_tokens=self.max_new_tokens, temperature=0.0)
        )
        return [parse_rating(samples[0].text) if samples else None for samples in answers]


def make_scorer(cfg: RewardSection, *, device: str, dtype: str) -> Scorer:
    """The configured reward: a function, a reward model folder, or an LLM judge (local or HTTP)."""

    if cfg.kind == "function":
        if not cfg.function:
            raise ConfigError(
                "reward.kind=function needs reward.function=module:function", field="reward.function"
            )
        return FunctionScorer(cfg.function, cfg.kwargs)
    if cfg.kind == "reward_model":
        if not cfg.reward_model:
            raise ConfigError(
                "reward.kind=reward_model needs reward.reward_model=DIR", field="reward.reward_model"
            )
        return RewardModelScorer(
            load_reward_model(cfg.reward_model, device=device, dtype=dtype), batch_size=cfg.batch_size
        )
    generator: Any
    if cfg.url:
        if not cfg.api_model:
            raise ConfigError("reward.url needs reward.api_model", field="reward.api_model")
        generator = OpenAICompatibleGenerator(cfg.url, cfg.api_model, api_key_env=cfg.api_key_env)
    elif cfg.judge_model:
        judge = load_model(cfg.judge_model, device=device, dtype=dtype)
        judge.model.requires_grad_(False)
        generator = LocalGenerator(judge.model, judge.tokenizer, batch_size=cfg.batch_size)
    else:
        raise ConfigError(
            "reward.kind=llm needs reward.judge_model=SPEC or reward.url=URL", field="reward.judge_model"
        )
    return LLMJudge(generator, prompt=cfg.prompt, max_new_tokens=cfg.max_new_tokens)
