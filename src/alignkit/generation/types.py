"""Types shared by every generation backend (transformers, OpenAI-compatible HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from alignkit.config.commands import GenerationConfigSection
from alignkit.data.prompts import Chat

__all__ = ["Chat", "Generation", "GenerationParams", "Generator", "TokenLogprob"]


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    num_samples: int = 1
    seed: int = 0
    # Log-probabilities of the generated tokens: None = off, 0 = the chosen token only, k = also the
    # k most likely tokens at each step (local backend only).
    logprobs: int | None = None

    @classmethod
    def from_section(cls, section: GenerationConfigSection) -> GenerationParams:
        """The settings of a config's ``generation`` section."""
        return cls(
            max_new_tokens=section.max_new_tokens, temperature=section.temperature, top_p=section.top_p,
            top_k=section.top_k, repetition_penalty=section.repetition_penalty,
            length_penalty=section.length_penalty, stop=tuple(section.stop), num_samples=section.num_samples,
            seed=section.seed,
        )


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log-probability, and the most likely alternatives at that step."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass
class Generation:
    """One sampled reply.

    ``stopped`` is True when the reply ended with the end-of-turn token (or a stop string)
    before ``max_new_tokens``; ``finish_reason`` is ``"stop"`` or ``"length"`` (``"cancelled"`` for a
    row its caller stopped). ``token_ids`` are the generated ids, end-of-turn token included when
    emitted; ``logprobs`` has one entry per token id when ``GenerationParams.logprobs`` asked for them.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    stopped: bool = False
    finish_reason: str = "length"
    logprobs: list[TokenLogprob] | None = None


class Generator(Protocol):
    """Anything that turns chats into replies: a local model or an HTTP endpoint.

    Returns one list per chat, with ``params.num_samples`` generations in each.
    """

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]: ...
