"""The fast ROUGE-L filter must give the same numbers and decisions as ``rouge-score``."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rouge_score import rouge_scorer
from rouge_score import tokenize as rouge_score_tokenize

from alignkit.synth.dedup import MinHashConfig, dedup_records, lsh_bands_for
from alignkit.synth.rouge import (
    RougeLFilter,
    f_measure_from_lcs,
    lcs_length,
    lcs_lengths_batch,
    rouge_l_fmeasure,
    rouge_tokenize,
)

THRESHOLD = 0.7
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

# A small vocabulary makes repeated tokens (the hard case for LCS) and near-threshold pairs common.
VOCAB = ["write", "a", "the", "short", "poem", "story", "about", "sea", "cat", "dog", "list", "three"]
VOCAB += ["five", "ways", "to", "explain", "why", "how", "it", "is"]
DECORATIONS = ["", ",", ".", "!", "?", "'s", "-", "...", " (x)", ":", "2", "42", "3rd"]


def reference_f(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def dp_lcs(a: list[object], b: list[object]) -> int:
    """Textbook O(len(a)*len(b)) table, the definition the bit-parallel version must match."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def decorate(rng: random.Random, word: str) -> str:
    """Case, punctuation and digit variants that the rouge tokenizer normalises or splits."""
    word = word.upper() if rng.random() < 0.1 else word.capitalize() if rng.random() < 0.2 else word
    return word + rng.choice(DECORATIONS) if rng.random() < 0.3 else word


def edited_pair(rng: random.Random) -> tuple[str, str]:
    """A random sentence and a copy with a few insertions/deletions/substitutions.

    The number of edits relative to the length is drawn so the ROUGE-L F lands on both sides of
    0.7 with many pairs close to it.
    """
    # A few pairs longer than 64 tokens take the arbitrary-width (Python int) path.
    length = rng.randint(0, 24) if rng.random() < 0.96 else rng.randint(62, 72)
    words = [rng.choice(VOCAB) for _ in range(length)]
    edited = list(words)
    for _ in range(rng.randint(0, max(1, length // 3))):
        op = rng.random()
        if op < 0.35 and edited:
            edited.pop(rng.randrange(len(edited)))
        elif op < 0.7:
            edited.insert(rng.randint(0, len(edited)), rng.choice(VOCAB))
        elif edited:
            edited[rng.randrange(len(edited))] = rng.choice(VOCAB)
    first = " ".join(decorate(rng, w) for w in words)
    second = " ".join(decorate(rng, w) for w in edited)
    return first, second


SPECIAL_PAIRS = [
    ("", ""),
    ("", "write a poem"),
    ("!!!", "write a poem"),
    ("Write a POEM.", "write a poem"),
    ("write-a-poem", "write a poem"),
    ("e-mail", "email"),
    ("COVID-19 cases in 2020", "covid 19 cases in 2020"),
    ("It's 3:45 p.m.", "its 3 45 p m"),
    ("café naïve résumé", "caf na ve r sum"),
    ("İstanbul", "i stanbul"),
    ("\u212a is the Kelvin sign", "k is the kelvin sign"),
    ("tab\tseparated\nlines", "tab separated lines"),
    # Exactly 0.7: LCS 7 of two 10-token texts; '>=' makes it a duplicate.
    ("a b c d e f g h i j", "a b c d e f g x y z"),
    ("one two three four five six seven eight nine ten", "one two three four five six seven x y z"),
]


def all_pairs() -> list[tuple[str, str]]:
    rng = random.Random(1234)
    return SPECIAL_PAIRS + [edited_pair(rng) for _ in range(6000)]


def test_tokenizer_matches_rouge_score() -> None:
    rng = random.Random(0)
    texts = [a for pair in all_pairs()[:500] for a in pair] + [p for pair in SPECIAL_PAIRS for p in pair]
    texts += ["".join(chr(rng.randint(32, 0x2FF)) for _ in range(30)) for _ in range(200)]
    for text in texts:
        assert rouge_tokenize(text) == rouge_score_tokenize.tokenize(text, None), text


def test_scores_and_decisions_match_rouge_score_on_6000_pairs() -> None:
    pairs = all_pairs()
    near_threshold = drops = 0
    for a, b in pairs:
        expected = reference_f(a, b)
        assert rouge_l_fmeasure(a, b) == pytest.approx(expected, abs=1e-9)
        pool = RougeLFilter(THRESHOLD)
        pool.add(a)
        assert pool.max_score(b) == pytest.approx(expected, abs=1e-9), (a, b)
        assert pool.is_near_duplicate(b) == (expected >= THRESHOLD), (a, b, expected)
        near_threshold += abs(expected - THRESHOLD) < 0.1
        drops += expected >= THRESHOLD
    # The pairs must actually straddle the threshold, or the test proves little.
    assert len(pairs) >= 5000
    assert 0.2 * len(pairs) < drops < 0.8 * len(pairs)
    assert near_threshold > 0.15 * len(pairs)


def test_exactly_threshold_is_a_duplicate() -> None:
    pool = RougeLFilter(0.7, ["a b c d e f g h i j"])
    assert reference_f("a b c d e f g h i j", "a b c d e f g x y z") == pytest.approx(0.7)
    assert pool.is_near_duplicate("a b c d e f g x y z")
    assert not RougeLFilter(0.7 + 1e-12, ["a b c d e f g h i j"]).is_near_duplicate("a b c d e f g x y z")


def test_growing_pool_matches_brute_force_rouge_score() -> None:
    """The Self-Instruct loop: keep a candidate unless it is >= 0.7 against any kept text."""
    rng = random.Random(7)
    base = [edited_pair(rng)[0] for _ in range(25)]
    candidates = [edited_pair(rng)[1] if rng.random() < 0.5 else rng.choice(base) for _ in range(170)]
    kept: list[str] = []
    pool = RougeLFilter(THRESHOLD)
    for candidate in candidates:
        expected_max = max((reference_f(candidate, k) for k in kept), default=0.0)
        assert pool.max_score(candidate) == pytest.approx(expected_max, abs=1e-9)
        expected_drop = expected_max >= THRESHOLD
        assert pool.add_if_new(candidate) == (not expected_drop)
        if not expected_drop:
            kept.append(candidate)
    assert len(pool) == len(kept)
    assert 10 < len(kept) < len(candidates) - 10


def test_many_survivors_take_the_vectorised_path() -> None:
    """A pool of variants of one sentence: dozens of entries survive pruning for each candidate."""
    rng = random.Random(11)
    words = [rng.choice(VOCAB) for _ in range(18)]

    def variant() -> str:
        edited = list(words)
        for _ in range(rng.randint(1, 7)):
            edited[rng.randrange(len(edited))] = rng.choice(VOCAB)
        return " ".join(edited)

    pool_texts = [variant() for _ in range(120)]
    pool = RougeLFilter(THRESHOLD, pool_texts)
    for _ in range(40):
        candidate = variant()
        expected = max(reference_f(candidate, text) for text in pool_texts)
        assert pool.max_score(candidate) == pytest.approx(expected, abs=1e-9)
        assert pool.is_near_duplicate(candidate) == (expected >= THRESHOLD)


def test_bit_parallel_lcs_matches_dynamic_programming() -> None:
    rng = random.Random(3)
    for _ in range(400):
        a = [rng.randrange(6) for _ in range(rng.randint(0, 90))]
        b = [rng.randrange(6) for _ in range(rng.randint(0, 90))]
        assert lcs_length(a, b) == dp_lcs(a, b)


@pytest.mark.parametrize("pattern_len", [1, 7, 63, 64])
def test_vectorised_lcs_matches_scalar(pattern_len: int) -> None:
    rng = random.Random(pattern_len)
    pattern = [rng.randrange(5) for _ in range(pattern_len)]
    texts = [[rng.randrange(6) for _ in range(rng.randint(1, 80))] for _ in range(50)]
    width = max(len(t) for t in texts)
    padded = np.full((len(texts), width), -2, dtype=np.int64)
    for row, text in enumerate(texts):
        padded[row, : len(text)] = text
    assert lcs_lengths_batch(pattern, padded).tolist() == [lcs_length(pattern, t) for t in texts]


def test_long_candidate_uses_scalar_path() -> None:
    words = [f"w{i % 30}" for i in range(100)]
    text = " ".join(words)
    near = " ".join(words[:85])
    pool = RougeLFilter(0.7, [near])
    assert pool.max_score(text) == pytest.approx(reference_f(text, near), abs=1e-9)
    assert pool.is_near_duplicate(text)


def test_empty_texts_and_bad_threshold() -> None:
    pool = RougeLFilter(0.7, ["", "write a poem"])
    assert pool.max_score("") == 0.0
    assert pool.max_score("...") == 0.0
    assert not pool.is_near_duplicate("")
    assert RougeLFilter().max_score("anything") == 0.0
    assert f_measure_from_lcs(0, 3, 4) == 0.0
    with pytest.raises(ValueError):
        RougeLFilter(0.0)


def test_dedup_exact_rouge_and_minhash() -> None:
    records = [
        {"instruction": "Write a poem about the sea and the stars tonight."},
        {"instruction": "write a poem  about the SEA and the stars tonight."},  # exact after normalising
        {"instruction": "Write a short poem about the sea and the stars tonight."},  # near
        {"instruction": "List three ways to save money on groceries."},
    ]
    result = dedup_records(records, "instruction", rouge_l=0.7)
    assert result.drop_counts == {"exact": 1, "rouge_l": 1}
    assert [r["instruction"] for r in result.records] == [
        records[0]["instruction"],
        records[3]["instruction"],
    ]
    assert result.dropped == [(1, "exact"), (2, "rouge_l")]

    hashed = dedup_records(records, "instruction", minhash=MinHashConfig(threshold=0.6, ngram=2, seed=1))
    assert hashed.drop_counts == {"exact": 1, "minhash": 1}
    assert dedup_records(records, "instruction", exact=False).drop_counts == {}


def test_minhash_is_seeded_and_bands_fit() -> None:
    rng = random.Random(5)
    records = [{"t": " ".join(rng.choice(VOCAB) for _ in range(12))} for _ in range(200)]
    first = dedup_records(records, "t", minhash=0.5, exact=False)
    second = dedup_records(records, "t", minhash=0.5, exact=False)
    assert first.dropped == second.dropped
    bands, rows = lsh_bands_for(0.8, 128)
    assert bands * rows <= 128 and abs((1 / bands) ** (1 / rows) - 0.8) < 0.05


def test_dedup_reports_bad_records() -> None:
    from alignkit.errors import DataError

    with pytest.raises(DataError) as missing:
        dedup_records([{"a": "x"}, {"b": "y"}], "a", source="data.jsonl")
    assert missing.value.one_line() == "data.jsonl:2: a: missing field"
    with pytest.raises(DataError, match="expected a string"):
        dedup_records([{"a": 3}], "a")
