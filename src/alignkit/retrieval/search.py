"""Searching an index folder: lexical (BM25), dense (e5 cosine) or both fused by reciprocal rank."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignkit.errors import ConfigError, DataError
from alignkit.io import first_mismatch
from alignkit.retrieval.chunking import Chunk
from alignkit.retrieval.fusion import reciprocal_rank_fusion
from alignkit.retrieval.index import (
    INDEX_FORMAT,
    LEXICAL_FILE,
    DenseEncoder,
    _read_chunks,
    lexical_query,
    shared_dense_encoder,
)

Mode = Literal["lexical", "dense", "fused"]
# Each ranking fed to fusion is cut here: deeper ranks add under 1/(60+50) each and cost time.
FUSION_DEPTH = 50


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk, its 1-based rank and the score it was ranked by (BM25, cosine or RRF)."""

    chunk: Chunk
    rank: int
    score: float

    def citation(self) -> dict[str, Any]:
        """What a client needs to cite it: chunk id, source, character span, score."""
        c = self.chunk
        return {"id": c.id, "source": c.source, "start": c.start, "end": c.end, "score": round(self.score, 6)}


class Retriever:
    """A loaded index folder. ``search`` is deterministic (ties broken by chunk order)."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not (folder / "index.json").is_file():
            raise DataError(
                "not an index folder (no index.json): build it with alignkit rag index", source=str(folder)
            )
        mismatch = first_mismatch(folder)
        if mismatch is not None:
            raise DataError(f"index folder changed since it was written: {mismatch}", source=str(folder))
        self.folder = folder
        self.info = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        self.chunks = _read_chunks(folder / "chunks.jsonl")
        if self.info.get("format") != INDEX_FORMAT:
            raise DataError(
                f"index format {self.info.get('format')} (this alignkit reads {INDEX_FORMAT}): "
                "rebuild it with alignkit rag index",
                source=str(folder / "index.json"),
                field="format",
            )
        # Read-only, shareable across a server's threads (SQLite serialises access itself).
        self._db = sqlite3.connect(f"file:{folder / LEXICAL_FILE}?mode=ro", uri=True, check_same_thread=False)
        dense_path = folder / "dense.npy"
        self.vectors = np.load(dense_path, allow_pickle=False) if dense_path.is_file() else None
        self._encoder: DenseEncoder | None = None

    @property
    def has_dense(self) -> bool:
        return self.vectors is not None

    def lexical_ranking(self, query: str, depth: int) -> list[tuple[int, float]]:
        """``(row, BM25 score)`` of chunks sharing a word with ``query``, best first (ties: row order).
        FTS5's ``bm25()`` is negative (lower is better); the sign is flipped."""
        match = lexical_query(query)
        if not match:
            return []
        rows = self._db.execute(
            "SELECT rowid, bm25(chunks) AS rank FROM chunks WHERE chunks MATCH ? ORDER BY rank, rowid LIMIT ?",
            (match, depth),
        ).fetchall()
        return [(int(row), -float(score)) for row, score in rows]

    def dense_scores(self, query: str) -> np.ndarray:
        if self.vectors is None:
            raise ConfigError(
                "this index has no dense vectors: rebuild it with dense=true",
                source=str(self.folder),
                field="mode",
            )
        if self._encoder is None:
            self._encoder = shared_dense_encoder()
        return np.asarray(self.vectors @ self._encoder.query(query))

    def ranking(self, query: str, mode: Mode, *, depth: int, rrf_k: int = 60) -> list[tuple[int, float]]:
        """``(chunk row, score)`` best first, at most ``depth`` of them."""
        if mode == "fused":
            if not self.has_dense:
                return self.ranking(query, "lexical", depth=depth)
            lexical = [row for row, _ in self.ranking(query, "lexical", depth=max(depth, FUSION_DEPTH))]
            dense = [row for row, _ in self.ranking(query, "dense", depth=max(depth, FUSION_DEPTH))]
            return reciprocal_rank_fusion([lexical, dense], k=rrf_k)[:depth]
        if mode == "lexical":
            return self.lexical_ranking(query, depth)
        scores = self.dense_scores(query)
        order = np.argsort(-scores, kind="stable")[:depth]  # stable: equal scores keep chunk order
        return [(int(row), float(scores[row])) for row in order]

    def search(self, query: str, k: int = 5, mode: Mode = "fused", *, rrf_k: int = 60) -> list[Hit]:
        return [
            Hit(self.chunks[row], rank, score)
            for rank, (row, score) in enumerate(self.ranking(query, mode, depth=k, rrf_k=rrf_k), start=1)
        ]
