"""One chat turn with retrieval and guardrails around generation: what ``chat`` runs per line and
what the server runs per request (``alignkit.serve`` wires it; streaming replies are checked once the
reply is complete, so a blocked stream must be buffered until then).

    prompt --guard.check_prompt--> retrieve_and_format --generate--> guard.check_answer(context) --> reply

A blocked prompt never reaches the model; a blocked answer is replaced by the refusal. Either way
``finish_reason`` is ``content_filter`` and ``rule`` names the rule that fired, for the API's
extension field (mode ``refuse``: HTTP 200; mode ``error``: HTTP 400 with ``code: content_filter``;
never a status the OpenAI client retries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alignkit.config.rag import RagUseConfig
from alignkit.data.prompts import last_user_text
from alignkit.guard.checks import Guard, Verdict
from alignkit.retrieval.augment import retrieve_and_format
from alignkit.retrieval.search import Retriever

CONTENT_FILTER = "content_filter"


@dataclass
class TurnResult:
    """The reply to show, why generation stopped, and what retrieval and the guard did."""

    text: str
    finish_reason: str
    blocked_by: str | None = None  # "input" or "output"
    rule: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)  # what the model was given

    def extension(self) -> dict[str, Any]:
        """The API's extension field: citations and guard verdicts."""
        return {
            "citations": self.citations,
            "guard": {stage: verdict.as_dict() for stage, verdict in self.verdicts.items()},
            "blocked_by": self.blocked_by,
            "rule": self.rule,
        }


@dataclass
class PreparedTurn:
    """The first half of a turn: the input verdict (``blocked`` when a rule stopped the prompt), and
    otherwise the chat the model is given with the citations and context retrieval put in it."""

    messages: list[dict[str, str]]
    citations: list[dict[str, Any]] = field(default_factory=list)
    context: str | None = None
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    blocked: TurnResult | None = None


def prepare_turn(
    messages: Sequence[dict[str, str]],
    *,
    retriever: Retriever | None = None,
    rag: RagUseConfig | None = None,
    guard: Guard | None = None,
) -> PreparedTurn:
    """Input rules on the last user turn, then retrieval into the system turn."""
    verdicts: dict[str, Verdict] = {}
    if guard is not None:
        verdicts["input"] = verdict = guard.check_prompt(last_user_text(messages) or "")
        if verdict.blocked:
            refused = TurnResult(guard.refusal, CONTENT_FILTER, "input", verdict.rule, [], dict(verdicts), [])
            return PreparedTurn([], verdicts=verdicts, blocked=refused)
    chat = [dict(m) for m in messages]
    if retriever is None:
        return PreparedTurn(chat, verdicts=verdicts)
    rag = rag or RagUseConfig(index=str(retriever.folder))
    augmented = retrieve_and_format(
        chat, retriever, top_k=rag.top_k, mode=rag.mode, instruction=rag.instruction, rrf_k=rag.rrf_k
    )
    context = "\n".join(hit.chunk.text for hit in augmented.hits)
    return PreparedTurn(augmented.messages, augmented.citations, context, verdicts)


def finish_turn(prepared: PreparedTurn, text: str, finish_reason: str, guard: Guard | None = None) -> TurnResult:
    """Output rules on one generated answer (against the retrieved context); a block replaces it."""
    verdicts = dict(prepared.verdicts)
    if guard is not None:
        verdicts["output"] = verdict = guard.check_answer(text, prepared.context)
        if verdict.blocked:
            return TurnResult(guard.refusal, CONTENT_FILTER, "output", verdict.rule, prepared.citations, verdicts,
                              prepared.messages)
    return TurnResult(text, finish_reason, None, None, prepared.citations, verdicts, prepared.messages)


def guarded_turn(
    messages: Sequence[dict[str, str]],
    generate: Callable[[list[dict[str, str]]], tuple[str, str]],
    *,
    retriever: Retriever | None = None,
    rag: RagUseConfig | None = None,
    guard: Guard | None = None,
) -> TurnResult:
    """``generate(messages) -> (text, finish_reason)`` wrapped in the guard's checks and retrieval."""
    prepared = prepare_turn(messages, retriever=retriever, rag=rag, guard=guard)
    if prepared.blocked is not None:
        return prepared.blocked
    text, finish_reason = generate(prepared.messages)
    return finish_turn(prepared, text, finish_reason, guard)
