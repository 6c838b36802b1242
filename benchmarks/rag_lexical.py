"""Lexical index choice for ``alignkit rag``: bm25s against SQLite FTS5 (stdlib), same chunks, same questions.

Prints build and query time and recall@5 / MRR of each, and their ratios. All rank by BM25 (k1 1.2,
b 0.75 in both); FTS5 is queried with an OR of the question's words (its default AND finds almost
nothing for natural questions), once on the very tokens bm25s indexes and once with its porter stemmer.

    .venv/bin/python benchmarks/rag_lexical.py --index /tmp/ragidx --questions examples/rag/questions.jsonl
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import time

import bm25s

from alignkit.data.grounding import STOPWORDS
from alignkit.retrieval.evaluate import first_gold_rank, load_questions, retrieval_metrics
from alignkit.retrieval.index import FTS5_TOKENIZER, lexical_query
from alignkit.retrieval.search import Retriever

REPEATS = 5


def lexical_tokens(text: str) -> list[str]:
    """Words without stop words, a plural "s" dropped: the tokens both engines get in the same-token rows."""
    words = (w for w in re.findall(r"\w\w+", text.lower()) if w not in STOPWORDS)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", required=True, help="an index folder built by alignkit rag index")
    parser.add_argument("--questions", required=True)
    args = parser.parse_args()
    chunks = Retriever(args.index).chunks
    questions = load_questions(args.questions)

    started = time.perf_counter()
    for _ in range(REPEATS):
        bm25 = bm25s.BM25()
        bm25.index([lexical_tokens(c.text) for c in chunks], show_progress=False)
    bm25_build = (time.perf_counter() - started) / REPEATS
    started = time.perf_counter()
    bm25_ranks = []
    for q in questions:
        tokens = lexical_tokens(q.question)
        scores = bm25.get_scores(tokens)
        order = [int(i) for i in (-scores).argsort(kind="stable")[:10] if scores[i] > 0]
        bm25_ranks.append(first_gold_rank([chunks[i] for i in order], q))
    bm25_query = (time.perf_counter() - started) / len(questions)

    def fts5(tokenizer: str, prepare, query) -> tuple[list[int | None], float, float]:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        for _ in range(REPEATS):
            db = sqlite3.connect(":memory:")
            db.execute(f"CREATE VIRTUAL TABLE chunks USING fts5(text, tokenize='{tokenizer}')")
            db.executemany(
                "INSERT INTO chunks(rowid, text) VALUES (?, ?)",
                [(i, prepare(c.text)) for i, c in enumerate(chunks)],
            )
            db.commit()
        build = (time.perf_counter() - started) / REPEATS
        started = time.perf_counter()
        ranks = []
        for q in questions:
            match = query(q.question)
            rows = (
                db.execute(
                    "SELECT rowid FROM chunks WHERE chunks MATCH ? ORDER BY bm25(chunks), rowid LIMIT 10",
                    (match,),
                ).fetchall()
                if match
                else []
            )
            ranks.append(first_gold_rank([chunks[r[0]] for r in rows], q))
        return ranks, build, (time.perf_counter() - started) / len(questions)

    # Same tokens as bm25s (the engines compared), then FTS5's own porter stemmer on the raw text.
    fts_same = fts5(
        "unicode61",
        lambda text: " ".join(lexical_tokens(text)),
        lambda text: " OR ".join(f'"{w}"' for w in dict.fromkeys(lexical_tokens(text))),
    )
    fts_porter = fts5(FTS5_TOKENIZER, lambda text: text, lexical_query)  # what alignkit ships
    rows = [
        ("bm25s", bm25_ranks, bm25_build, bm25_query),
        ("fts5 same tokens", *fts_same),
        ("fts5 porter (used)", *fts_porter),
    ]
    for name, ranks, build, query in rows:
        m = retrieval_metrics(ranks, [5, 10])
        print(
            f"{name:18s} chunks={len(chunks)} build={build * 1000:.1f} ms query={query * 1000:.2f} ms "
            f"recall@5={m['recall@5']:.3f} recall@10={m['recall@10']:.3f} mrr={m['mrr']:.3f}"
        )
    print(
        f"fts5 (same tokens)/bm25s: build {fts_same[1] / bm25_build:.2f}x, query {fts_same[2] / bm25_query:.2f}x"
    )


if __name__ == "__main__":
    main()
