"""``alignkit rag index / query / eval`` as functions of their configs."""

from __future__ import annotations

import json
from collections.abc import Callable

from alignkit.config.rag import RagEvalConfig, RagIndexConfig, RagQueryConfig
from alignkit.errors import ConfigError
from alignkit.io import atomic_write_text
from alignkit.models.loader import load_tokenizer
from alignkit.result import CommandResult, say
from alignkit.retrieval.documents import read_documents
from alignkit.retrieval.evaluate import evaluate_retriever, load_questions
from alignkit.retrieval.index import build_index
from alignkit.retrieval.search import Retriever

Progress = Callable[[str], None]


def _need(value: str | None, field: str, usage: str) -> str:
    if not value:
        raise ConfigError(f"missing: give {usage}", field=field)
    return value


def rag_index_command(cfg: RagIndexConfig, progress: Progress | None = None) -> CommandResult:
    """Chunk the documents and (re)build the index folder; unchanged documents keep their chunks."""
    out = _need(cfg.out, "out", "--out DIR")
    documents = read_documents(cfg.docs, cfg.jsonl_text_field)
    tokenizer = load_tokenizer(cfg.chunking.tokenizer)
    report = build_index(
        documents,
        out,
        tokenizer,
        chunk_tokens=cfg.chunking.chunk_tokens,
        overlap_tokens=cfg.chunking.overlap_tokens,
        tokenizer_name=cfg.chunking.tokenizer,
        split=cfg.chunking.split,
        dense=cfg.dense,
    )
    line = (f"indexed {report.documents} documents ({report.chunked_documents} chunked, "
            f"{report.reused_documents} unchanged, {report.removed_documents} removed) -> "
            f"{report.chunks} chunks in {out} ({report.seconds:.2f} s)")
    return CommandResult(output=out, outputs={"chunks": report.chunks}, show=say(line))


def rag_query_command(cfg: RagQueryConfig, progress: Progress | None = None) -> CommandResult:
    """The top chunks for one question, with their ids and character spans."""
    retriever = Retriever(_need(cfg.index, "index", "the index folder"))
    question = _need(cfg.question, "question", 'a question: alignkit rag query DIR "question"')
    lines = [
        f"{hit.rank}. [{hit.chunk.id} @{hit.chunk.start}-{hit.chunk.end}] score={hit.score:.4f}\n   "
        + " ".join(hit.chunk.text.split())
        for hit in retriever.search(question, cfg.k, cfg.mode, rrf_k=cfg.rrf_k)
    ]
    return CommandResult(show=say(*lines))


def rag_eval_command(cfg: RagEvalConfig, progress: Progress | None = None) -> CommandResult:
    """Recall@k and MRR of every search mode the index has."""
    retriever = Retriever(_need(cfg.index, "index", "the index folder"))
    questions = load_questions(_need(cfg.questions, "questions", "QUESTIONS.jsonl"))
    result = evaluate_retriever(retriever, questions, cfg.ks, rrf_k=cfg.rrf_k)
    lines = [f"{result['questions']} questions ({result['gold_missing_from_index']} with no gold chunk in the index)"]
    lines += [f"{mode:8s} " + "  ".join(f"{k}={v:.3f}" for k, v in result[mode].items())
              for mode in ("lexical", "dense", "fused") if mode in result]
    if cfg.out:
        atomic_write_text(cfg.out, json.dumps(result, indent=2))
    return CommandResult(output=cfg.out, outputs={"figures": result}, show=say(*lines))
