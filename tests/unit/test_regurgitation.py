"""The suffix-automaton span index agrees with brute force on random token data."""

from __future__ import annotations

import random

import pytest

from alignkit.evaluation.regurgitation import SpanMatch, TrainingSpanIndex


def brute_longest_common_span(output: list[int], docs: list[list[int]]) -> int:
    """Longest common substring by dynamic programming over every (output, doc) pair."""
    best = 0
    for doc in docs:
        previous = [0] * (len(doc) + 1)
        for token in output:
            current = [0] * (len(doc) + 1)
            for j, doc_token in enumerate(doc, start=1):
                if token == doc_token:
                    current[j] = previous[j - 1] + 1
                    best = max(best, current[j])
            previous = current
    return best


def assert_match_is_real(match: SpanMatch, output: list[int], docs: list[list[int]]) -> None:
    """The reported offsets must point at the same tokens in the output and in the document."""
    if match.length == 0:
        assert (match.doc_index, match.doc_start, match.output_start) == (-1, -1, -1)
        return
    copied = output[match.output_start : match.output_start + match.length]
    source = docs[match.doc_index][match.doc_start : match.doc_start + match.length]
    assert copied == source
    assert len(copied) == match.length


@pytest.mark.parametrize("seed", range(40))
def test_index_matches_brute_force_on_random_data(seed: int) -> None:
    rng = random.Random(seed)
    # Small alphabets make long repeats (and many automaton clones) likely.
    vocab = rng.choice([2, 3, 5, 50])
    docs = [[rng.randrange(vocab) for _ in range(rng.randrange(0, 40))] for _ in range(rng.randrange(1, 6))]
    index = TrainingSpanIndex(docs)
    assert index.num_states <= 2 * max(index.num_tokens, 1) + 1
    for _ in range(10):
        output = [rng.randrange(vocab + 1) for _ in range(rng.randrange(0, 30))]
        if docs and rng.random() < 0.5:
            # Splice in a real span so long matches are exercised too.
            doc = rng.choice(docs)
            start = rng.randrange(len(doc) + 1)
            span = doc[start : start + rng.randrange(1, 25)]
            at = rng.randrange(len(output) + 1)
            output = output[:at] + span + output[at:]
        match = index.longest_match(output)
        assert match.length == brute_longest_common_span(output, docs)
        assert_match_is_real(match, output, docs)
        assert index.longest_common_span(output) == (match.length, match.doc_index)


def test_repeated_and_shared_prefix_documents() -> None:
    docs = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 9], [], [7, 7, 7, 7, 7]]
    index = TrainingSpanIndex(docs)
    assert index.longest_common_span([0, 1, 2, 3, 4, 5]) == (4, 0)
    match = index.longest_match([1, 2, 9, 9])
    assert (match.length, match.doc_index, match.doc_start, match.output_start) == (3, 2, 0, 0)
    assert index.longest_common_span([7] * 9)[0] == 5
    assert index.longest_common_span([]) == (0, -1)
    assert index.longest_common_span([42]) == (0, -1)


def test_finds_a_60_token_copy_inside_a_large_corpus() -> None:
    rng = random.Random(0)
    docs = [[rng.randrange(49152) for _ in range(300)] for _ in range(50)]
    index = TrainingSpanIndex(docs)
    copied = docs[17][100:160]
    output = [rng.randrange(49152) for _ in range(20)] + copied + [rng.randrange(49152) for _ in range(20)]
    match = index.longest_match(output)
    assert (match.length, match.doc_index, match.doc_start, match.output_start) == (60, 17, 100, 20)


def test_from_texts_uses_the_encoder() -> None:
    index = TrainingSpanIndex.from_texts(["a b c", "c d"], lambda text: [ord(ch) for ch in text.split()[0]])
    assert index.num_docs == 2
    assert index.longest_common_span([ord("c")]) == (1, 1)
