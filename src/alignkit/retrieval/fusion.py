"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).

``score(d) = sum over rankings r of 1 / (k + rank_r(d))`` with 1-based ranks; a document absent
from a ranking adds nothing for it. Only ranks count, so BM25 scores and cosine similarities need no
common scale. Ties are broken by first appearance (ranking order, then position), deterministically.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[K]], *, k: int = 60) -> list[tuple[K, float]]:
    """Items of all ``rankings`` (best first) with their fused score, best first."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
