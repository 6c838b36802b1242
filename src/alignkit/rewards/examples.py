"""Example reward functions for ``reward.function=alignkit.rewards.examples:short_and_stops``.

A reward function takes ``(prompt_chat, reply_text, **reward.kwargs)`` and returns a float.
"""

from __future__ import annotations

from alignkit.generation.types import Chat


def short_and_stops(prompt_chat: Chat, reply: str, *, max_chars: int = 200) -> float:
    """1 for an empty reply, falling linearly to 0 at ``max_chars`` characters (and below 0 after).

    An easy reward to climb: brevity. Pair it with ``reward.stop_penalty`` so that a reply cut at the
    token limit (long, and without end-of-turn) scores lowest: the policy learns to finish early.
    """
    del prompt_chat
    return 1.0 - len(reply.strip()) / max_chars


def mentions_word(prompt_chat: Chat, reply: str, *, word: str = "thanks") -> float:
    """1 when ``word`` appears in the reply (case-insensitive), else 0."""
    del prompt_chat
    return float(word.lower() in reply.lower())
