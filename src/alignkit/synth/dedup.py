"""Drop duplicate and near-duplicate records: exact (normalised), MinHash LSH, ROUGE-L.

Checks run cheapest first on each record, in file order; a record is compared only with the
records kept before it (greedy, like the Self-Instruct pool), and a dropped record never becomes
the reason another one is dropped.

- exact: the field compared after ``casefold`` and whitespace collapsing.
- minhash: Jaccard similarity of word n-gram shingles, estimated from a seeded MinHash
  signature; LSH bands propose candidates and the signature estimate decides. Approximate by
  design (LSH can miss a pair whose similarity is near the threshold); use it for large corpora
  where ROUGE-L's per-pair LCS would be too slow.
- rouge_l: exact ROUGE-L F-measure ``>= threshold`` (same numbers as ``rouge-score``), see
  :class:`alignkit.synth.rouge.RougeLFilter`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignkit.errors import DataError
from alignkit.synth.rouge import RougeLFilter, rouge_tokenize

DROP_EXACT = "exact"
DROP_MINHASH = "minhash"
DROP_ROUGE_L = "rouge_l"

# Universal hashing (a*x + b) mod P with x < 2**32, a < 2**31, b < 2**32 stays below 2**64,
# so uint64 numpy arithmetic is exact (no silent wrap-around).
_MERSENNE_61 = np.uint64((1 << 61) - 1)
_WHITESPACE_RE = re.compile(r"\s+")


def normalise_for_exact(text: str) -> str:
    """Key for exact dedup: case-folded, whitespace collapsed and stripped."""
    return _WHITESPACE_RE.sub(" ", text.casefold()).strip()


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash near-duplicate settings.

    ``threshold`` is the estimated Jaccard similarity of word ``ngram`` shingles at or above
    which a record is a duplicate. ``num_perm`` hash functions, seeded by ``seed``; the LSH bands
    are picked so the S-curve ``(1/bands) ** (1/rows)`` sits closest to ``threshold``.
    """

    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"minhash threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 2 or self.ngram < 1:
            raise ValueError("minhash needs num_perm >= 2 and ngram >= 1")


def lsh_bands_for(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` with ``bands * rows <= num_perm`` whose S-curve midpoint is nearest."""
    best: tuple[float, int, int] | None = None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        midpoint = (1.0 / bands) ** (1.0 / rows)
        gap = abs(midpoint - threshold)
        if best is None or gap < best[0]:
            best = (gap, bands, rows)
    assert best is not None
    return best[1], best[2]


def word_shingles(text: str, ngram: int) -> set[str]:
    """Word n-grams of the normalised tokens; a text shorter than ``ngram`` is one shingle."""
    tokens = rouge_tokenize(text)
    if not tokens:
        return set()
    if len(tokens) <= ngram:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + ngram]) for i in range(len(tokens) - ngram + 1)}


class MinHashIndex:
    """MinHash signatures plus LSH buckets over the records kept so far."""

    def __init__(self, config: MinHashConfig) -> None:
        self.config = config
        rng = np.random.default_rng(config.seed)
        self._a = rng.integers(1, 1 << 31, size=config.num_perm, dtype=np.uint64)
        self._b = rng.integers(0, 1 << 32, size=config.num_perm, dtype=np.uint64)
        self.bands, self.rows = lsh_bands_for(config.threshold, config.num_perm)
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._signatures: list[np.ndarray] = []

    def signature(self, text: str) -> np.ndarray | None:
        """``(num_perm,)`` uint64 minima, or None for a text without tokens."""
        shingles = word_shingles(text, self.config.ngram)
        if not shingles:
            return None
        # blake2b, not hash(): Python's str hash is salted per process, which would break seeding.
        hashed = np.array(
            [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little") for s in shingles],
            dtype=np.uint64,
        )
        permuted = (hashed[:, None] * self._a[None, :] + self._b[None, :]) % _MERSENNE_61
        return np.asarray(permuted.min(axis=0))

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        return [signature[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]

    def best_similarity(self, signature: np.ndarray) -> float:
        """Highest estimated Jaccard among LSH candidates (0.0 when no bucket collides)."""
        candidates: set[int] = set()
        for band, key in enumerate(self._band_keys(signature)):
            candidates.update(self._buckets[band].get(key, ()))
        if not candidates:
            return 0.0
        stacked = np.stack([self._signatures[i] for i in sorted(candidates)])
        return float((stacked == signature[None, :]).mean(axis=1).max())

    def add(self, signature: np.ndarray) -> None:
        index = len(self._signatures)
        self._signatures.append(signature)
        for band, key in enumerate(self._band_keys(signature)):
            self._buckets[band].setdefault(key, []).append(index)


@dataclass
class DedupResult:
    """Kept records (input order), drop counts by reason, and ``(input index, reason)`` per drop."""

    records: list[Mapping[str, Any]]
    drop_counts: dict[str, int]
    dropped: list[tuple[int, str]] = field(default_factory=list)


def _field_text(record: Mapping[str, Any], field_name: str, index: int, source: str | None) -> str:
    if not isinstance(record, Mapping):
        raise DataError("expected a JSON object", source=source, line=index + 1)
    if field_name not in record:
        raise DataError("missing field", source=source, line=index + 1, field=field_name)
    value = record[field_name]
    if not isinstance(value, str):
        raise DataError(
            f"expected a string, got {type(value).__name__}", source=source, line=index + 1, field=field_name
        )
    return value


def dedup_records(
    records: Sequence[Mapping[str, Any]],
    field: str,
    *,
    rouge_l: float | None = None,
    exact: bool = True,
    minhash: float | MinHashConfig | None = None,
    source: str | None = None,
) -> DedupResult:
    """Drop records whose ``field`` duplicates an earlier kept record.

    ``rouge_l``: ROUGE-L F threshold (``>=`` drops), None to skip. ``exact``: normalised exact
    match. ``minhash``: a Jaccard threshold or a :class:`MinHashConfig`, None to skip.
    ``source`` names the file in errors; a record's line is its 1-based position in ``records``.
    Raises :class:`DataError` when a record lacks ``field`` or it is not a string.
    """
    exact_keys: set[str] | None = set() if exact else None
    minhash_index: MinHashIndex | None = None
    if minhash is not None:
        config = minhash if isinstance(minhash, MinHashConfig) else MinHashConfig(threshold=minhash)
        minhash_index = MinHashIndex(config)
    rouge_filter = RougeLFilter(rouge_l) if rouge_l is not None else None

    kept: list[Mapping[str, Any]] = []
    dropped: list[tuple[int, str]] = []
    for index, record in enumerate(records):
        text = _field_text(record, field, index, source)
        key = normalise_for_exact(text)
        if exact_keys is not None and key in exact_keys:
            dropped.append((index, DROP_EXACT))
            continue
        signature = minhash_index.signature(text) if minhash_index is not None else None
        if (
            minhash_index is not None
            and signature is not None
            and minhash_index.best_similarity(signature) >= minhash_index.config.threshold
        ):
            dropped.append((index, DROP_MINHASH))
            continue
        if rouge_filter is not None and rouge_filter.is_near_duplicate(text):
            dropped.append((index, DROP_ROUGE_L))
            continue
        kept.append(record)
        if exact_keys is not None:
            exact_keys.add(key)
        if minhash_index is not None and signature is not None:
            minhash_index.add(signature)
        if rouge_filter is not None:
            rouge_filter.add(text)
    counts = Counter(reason for _, reason in dropped)
    return DedupResult(records=kept, drop_counts=dict(counts), dropped=dropped)
