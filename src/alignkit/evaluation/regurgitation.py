"""Longest verbatim token span shared by a model output and the training data.

``TrainingSpanIndex`` is a generalised suffix automaton over the tokenised training documents:
built once in time and memory linear in the number of training tokens (for a fixed vocabulary),
then each output is matched in time linear in its length, however large the training set is.

The automaton recognises every substring of every document. Walking an output through it while
following suffix links on a mismatch (the matching-statistics walk) gives, at each output
position, the longest output substring ending there that occurs in some document; the maximum
over positions is the longest common span. Each state remembers one document and the end offset
of an occurrence of its substrings, which is enough to point at the copied text.

Departure from the textbook construction: documents are added one after another from the root
instead of being joined with separator symbols, so the extension step handles the case where
the transition already exists (a prefix seen in an earlier document); this keeps token ids free
of reserved separator values.

Tokens must be hashable and compared by value (Python ints, as tokenizers return). The output
and the training data must come from the same tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SpanMatch:
    """Where the longest shared span is: ``length`` tokens of output, copied from a document.

    ``output_start`` and ``doc_start`` are offsets of the span's first token; ``doc_index`` is
    -1 (and both offsets -1) when not even one token is shared.
    """

    length: int
    doc_index: int
    doc_start: int
    output_start: int


class TrainingSpanIndex:
    """Generalised suffix automaton over training token sequences.

    States are stored column-wise in lists (transition dicts, suffix links, longest lengths, one
    occurrence's document and end offset) rather than as objects, which roughly halves memory in
    CPython; a million training tokens take a few hundred MB and a few seconds to index.
    """

    def __init__(self, docs: Iterable[Sequence[int]]) -> None:
        self._next: list[dict[int, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._doc: list[int] = [-1]
        self._end: list[int] = [-1]
        self.num_docs = 0
        self.num_tokens = 0
        for doc in docs:
            self._add_doc(doc)

    @classmethod
    def from_texts(cls, texts: Iterable[str], encode: Callable[[str], Sequence[int]]) -> TrainingSpanIndex:
        """Index texts after tokenising each with ``encode`` (e.g. a tokenizer's ``encode``)."""
        return cls(encode(text) for text in texts)

    @property
    def num_states(self) -> int:
        """Automaton size: at most ``2 * num_tokens`` (plus the root)."""
        return len(self._len)

    # -- construction ---------------------------------------------------------------------------

    def _new_state(self, length: int, link: int, doc: int, end: int, trans: dict[int, int]) -> int:
        self._next.append(trans)
        self._link.append(link)
        self._len.append(length)
        self._doc.append(doc)
        self._end.append(end)
        return len(self._len) - 1

    def _clone(self, source: int, length: int) -> int:
        """Split ``source``: a copy holding its shorter substrings (same occurrence, fewer chars)."""
        return self._new_state(
            length, self._link[source], self._doc[source], self._end[source], dict(self._next[source])
        )

    def _redirect(self, state: int, token: int, old: int, new: int) -> None:
        """Point ``token`` transitions equal to ``old`` at ``new`` along the suffix-link chain."""
        nxt, link = self._next, self._link
        while state != -1 and nxt[state].get(token) == old:
            nxt[state][token] = new
            state = link[state]

    def _add_doc(self, doc: Sequence[int]) -> None:
        doc_index = self.num_docs
        self.num_docs += 1
        last = 0
        for offset, raw in enumerate(doc):
            last = self._extend(last, int(raw), doc_index, offset)
            self.num_tokens += 1

    def _extend(self, last: int, token: int, doc_index: int, offset: int) -> int:
        """Append ``token`` after the state ``last`` (the current document's prefix so far)."""
        nxt, link, length = self._next, self._link, self._len
        existing = nxt[last].get(token)
        if existing is not None:
            # The prefix extended by this token already occurs (in an earlier document or
            # earlier in this one): reuse its state, splitting it if it is too long.
            if length[existing] == length[last] + 1:
                return existing
            clone = self._clone(existing, length[last] + 1)
            self._redirect(last, token, existing, clone)
            link[existing] = clone
            return clone
        cur = self._new_state(length[last] + 1, 0, doc_index, offset, {})
        state = last
        while state != -1 and token not in nxt[state]:
            nxt[state][token] = cur
            state = link[state]
        if state == -1:
            return cur
        target = nxt[state][token]
        if length[target] == length[state] + 1:
            link[cur] = target
            return cur
        clone = self._clone(target, length[state] + 1)
        self._redirect(state, token, target, clone)
        link[target] = clone
        link[cur] = clone
        return cur

    # -- queries --------------------------------------------------------------------------------

    def longest_match(self, output_ids: Sequence[int]) -> SpanMatch:
        """The longest span of ``output_ids`` found verbatim in one training document. O(len)."""
        nxt, link, length = self._next, self._link, self._len
        state, matched = 0, 0
        best_len, best_state, best_end = 0, -1, -1
        for position, raw in enumerate(output_ids):
            token = int(raw)
            # Drop tokens from the front of the current match until it can be extended.
            while state and token not in nxt[state]:
                state = link[state]
                matched = length[state]
            if token in nxt[state]:
                state = nxt[state][token]
                matched += 1
            else:
                state, matched = 0, 0
            if matched > best_len:
                best_len, best_state, best_end = matched, state, position
        if best_len == 0:
            return SpanMatch(0, -1, -1, -1)
        # Every substring of a state ends at the state's recorded occurrence.
        doc_start = self._end[best_state] - best_len + 1
        return SpanMatch(best_len, self._doc[best_state], doc_start, best_end - best_len + 1)

    def longest_common_span(self, output_ids: Sequence[int]) -> tuple[int, int]:
        """``(length, train_doc_index)`` of the longest verbatim shared span; ``(0, -1)`` if none."""
        match = self.longest_match(output_ids)
        return match.length, match.doc_index
