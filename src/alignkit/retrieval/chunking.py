"""Token windows over a document, with overlap, mapped back to character offsets for citations.

Tokens are the model's own (a fast tokenizer's offset mapping), so ``chunk_tokens`` is what the
chunk costs in the prompt. Window ``i`` starts at token ``i * (chunk_tokens - overlap_tokens)``;
the last window ends at the document's last token, and no window is a mere suffix of the previous
one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignkit.errors import ConfigError


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``text == document.text[start:end]``; ``id`` is ``source#n``."""

    id: str
    source: str
    start: int
    end: int
    text: str
    doc_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "doc_sha256": self.doc_sha256,
        }


def token_windows(num_tokens: int, chunk_tokens: int, overlap_tokens: int) -> list[tuple[int, int]]:
    """``[start, end)`` token ranges: stride ``chunk_tokens - overlap_tokens``, the last one ending
    at ``num_tokens`` (e.g. 10 tokens, size 4, overlap 1 -> (0,4) (3,7) (6,10))."""
    if overlap_tokens >= chunk_tokens:
        raise ConfigError("overlap_tokens must be smaller than chunk_tokens", field="chunking.overlap_tokens")
    stride = chunk_tokens - overlap_tokens
    windows: list[tuple[int, int]] = []
    start = 0
    while start < num_tokens:
        end = min(start + chunk_tokens, num_tokens)
        windows.append((start, end))
        if end == num_tokens:
            break
        start += stride
    return windows


def token_offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each token of ``text`` (no special tokens)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("chunking needs a fast tokenizer (offset mapping)", field="chunking.tokenizer")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]


def chunk_document(
    text: str, source: str, doc_sha256: str, tokenizer: Any, *, chunk_tokens: int, overlap_tokens: int
) -> list[Chunk]:
    """The chunks of one document, in order; whitespace-only windows are skipped."""
    offsets = token_offsets(tokenizer, text)
    chunks: list[Chunk] = []
    for first, last in token_windows(len(offsets), chunk_tokens, overlap_tokens):
        start, end = offsets[first][0], offsets[last - 1][1]
        # Byte-level BPE tokens often carry the preceding space; start the chunk at its first letter.
        while start < end and text[start].isspace():
            start += 1
        if start < end:
            chunks.append(Chunk(f"{source}#{len(chunks)}", source, start, end, text[start:end], doc_sha256))
    return chunks
