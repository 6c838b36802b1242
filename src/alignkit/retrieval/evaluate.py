"""Retrieval figures: recall@k and MRR per search mode, on question -> gold records.

A question's gold is one of: ``chunk_id`` (exact chunk), ``source`` (any chunk of that document),
``answer`` (any chunk whose text contains it, whitespace-normalised; survives re-chunking). Recall@k
is the share of questions with a gold chunk among the first k; MRR is the mean of 1/rank of the
first gold chunk within the first ``max(ks)`` (0 when none), i.e. MRR@max(ks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.data.readers import read_records
from alignkit.errors import DataError
from alignkit.retrieval.chunking import Chunk
from alignkit.retrieval.search import Mode, Retriever

GOLD_FIELDS = ("chunk_id", "source", "answer")
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    field: str
    value: str


def _norm(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip().casefold()


def load_questions(path: str | Path) -> list[EvalQuestion]:
    questions = []
    for raw in read_records(path):
        question = raw.data.get("question")
        if not isinstance(question, str) or not question.strip():
            raise DataError(
                "expected a non-empty question string", source=raw.source, line=raw.line, field="question"
            )
        golds = [f for f in GOLD_FIELDS if f in raw.data]
        if not golds:
            raise DataError(
                "expected a gold: chunk_id, source or answer",
                source=raw.source,
                line=raw.line,
                field="chunk_id",
            )
        value = raw.data[golds[0]]
        if not isinstance(value, str) or not value.strip():
            raise DataError("expected a non-empty string", source=raw.source, line=raw.line, field=golds[0])
        questions.append(EvalQuestion(question, golds[0], value))
    if not questions:
        raise DataError("no questions", source=str(path))
    return questions


def is_gold(chunk: Chunk, question: EvalQuestion) -> bool:
    if question.field == "chunk_id":
        return chunk.id == question.value
    if question.field == "source":
        return chunk.source == question.value or Path(chunk.source).name == question.value
    return _norm(question.value) in _norm(chunk.text)


def first_gold_rank(chunks: Sequence[Chunk], question: EvalQuestion) -> int | None:
    """1-based rank of the first gold chunk, or None."""
    return next((rank for rank, chunk in enumerate(chunks, start=1) if is_gold(chunk, question)), None)


def retrieval_metrics(ranks: Sequence[int | None], ks: Sequence[int]) -> dict[str, float]:
    """``recall@k`` for each k and ``mrr`` (MRR@max(ks)) from first-gold ranks."""
    depth = max(ks)
    n = len(ranks)
    figures = {f"recall@{k}": sum(r is not None and r <= k for r in ranks) / n for k in sorted(set(ks))}
    figures["mrr"] = sum(1.0 / r for r in ranks if r is not None and r <= depth) / n
    return figures


def evaluate_retriever(
    retriever: Retriever, questions: Sequence[EvalQuestion], ks: Sequence[int], *, rrf_k: int = 60
) -> dict[str, Any]:
    """Figures per mode (lexical, and dense + fused when the index has vectors), plus unanswerable
    golds: questions whose gold matches no chunk at all (a wrong eval file, reported, not hidden)."""
    modes: list[Mode] = ["lexical", "dense", "fused"] if retriever.has_dense else ["lexical"]
    unmatched = sum(not any(is_gold(c, q) for c in retriever.chunks) for q in questions)
    result: dict[str, Any] = {"questions": len(questions), "gold_missing_from_index": unmatched}
    for mode in modes:
        ranks = [
            first_gold_rank([h.chunk for h in retriever.search(q.question, max(ks), mode, rrf_k=rrf_k)], q)
            for q in questions
        ]
        result[mode] = {key: round(value, 4) for key, value in retrieval_metrics(ranks, ks).items()}
    return result
