"""Chunks of a document, with overlap, mapped back to character offsets for citations.

Tokens are the model's own (a fast tokenizer's offset mapping), so ``chunk_tokens`` is what the
chunk costs in the prompt. Two ways to cut:

- ``sentences`` (the default): a chunk is a run of whole sentences (a line, or text ending in
  ``.``, ``!`` or ``?``) of at most ``chunk_tokens`` tokens; the next chunk starts with the last
  sentences of this one that fit in ``overlap_tokens``. A sentence longer than ``chunk_tokens`` is
  cut into token windows on its own. No fact is cut mid-sentence, so a retrieved chunk reads like
  the fact lines a grounded model is trained on.
- ``tokens``: fixed windows; window ``i`` starts at token ``i * (chunk_tokens - overlap_tokens)``,
  the last one ends at the document's last token, and no window is a mere suffix of the previous one.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from alignkit.config.rag import ChunkSplit
from alignkit.errors import ConfigError

# A sentence ends at a line break, or after . ! ? (and a closing quote or bracket) before whitespace.
_SENTENCE_END = re.compile(r"\n|(?<=[.!?])[\"')\]]*(?=\s)")


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


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each sentence, without surrounding whitespace; blank ones dropped."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    stripped = []
    for begin, end in spans:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin < end:
            stripped.append((begin, end))
    return stripped


def sentence_windows(sentence_tokens: list[int], chunk_tokens: int, overlap_tokens: int) -> list[tuple[int, int]]:
    """``[first, last)`` sentence ranges: as many whole sentences as fit in ``chunk_tokens``; the next
    range starts with the last sentences of this one that fit in ``overlap_tokens``, always past this
    one's first, and only as many as leave room for a new sentence (else a range would repeat part of
    the previous one and add nothing). A sentence over ``chunk_tokens`` is a range of its own (cut by
    the caller). E.g. tokens [3, 3, 3, 3], size 7, overlap 3 -> (0, 2) (1, 3) (2, 4)."""
    windows: list[tuple[int, int]] = []
    first = 0
    while first < len(sentence_tokens):
        last, size = first, 0
        while last < len(sentence_tokens) and (last == first or size + sentence_tokens[last] <= chunk_tokens):
            size += sentence_tokens[last]
            last += 1
        windows.append((first, last))
        if last == len(sentence_tokens):
            break
        kept, shared = last, 0
        while kept - 1 > first and shared + sentence_tokens[kept - 1] <= overlap_tokens:
            kept -= 1
            shared += sentence_tokens[kept]
        while kept < last and shared + sentence_tokens[last] > chunk_tokens:
            shared -= sentence_tokens[kept]
            kept += 1
        first = kept
    return windows


def chunk_document(
    text: str,
    source: str,
    doc_sha256: str,
    tokenizer: Any,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    split: ChunkSplit = "sentences",
) -> list[Chunk]:
    """The chunks of one document, in order; whitespace-only ones are skipped."""
    offsets = token_offsets(tokenizer, text)
    spans: list[tuple[int, int]] = []
    if split == "tokens":
        spans = [(offsets[a][0], offsets[b - 1][1]) for a, b in token_windows(len(offsets), chunk_tokens, overlap_tokens)]
    else:
        sentences = sentence_spans(text)
        # A token belongs to the sentence its last character is in (byte BPE puts the space first).
        ends = [end for _, end in offsets]
        counts = [_tokens_between(ends, begin, end) for begin, end in sentences]
        for first, last in sentence_windows(counts, chunk_tokens, overlap_tokens):
            begin, end = sentences[first][0], sentences[last - 1][1]
            if counts[first] > chunk_tokens:  # one long sentence: token windows inside it
                inside = [o for o in offsets if begin < o[1] <= end]
                spans += [(max(inside[a][0], begin), inside[b - 1][1])
                          for a, b in token_windows(len(inside), chunk_tokens, overlap_tokens)]
            else:
                spans.append((begin, end))
    chunks: list[Chunk] = []
    for start, end in spans:
        # Byte-level BPE tokens often carry the preceding space; start the chunk at its first letter.
        while start < end and text[start].isspace():
            start += 1
        if start < end:
            chunks.append(Chunk(f"{source}#{len(chunks)}", source, start, end, text[start:end], doc_sha256))
    return chunks


def _tokens_between(token_ends: list[int], begin: int, end: int) -> int:
    """How many tokens end inside ``(begin, end]`` (``token_ends`` ascending)."""
    return bisect.bisect_right(token_ends, end) - bisect.bisect_right(token_ends, begin)
