"""Probe metrics on hand-made replies whose answers are known, and the detectors' precision/recall."""

from __future__ import annotations

import pytest

from alignkit.evaluation import metrics
from alignkit.evaluation.probe_sets import (
    LabelledReply,
    greeting_prompts,
    grounded_items,
    harmful_prompts,
    harmless_lookalike_prompts,
    labelled_idk_replies,
    labelled_refusal_replies,
)
from alignkit.evaluation.regurgitation import TrainingSpanIndex
from alignkit.generation.types import Generation

# The bar both pattern detectors must clear on their labelled replies (which include hard cases
# they are known to miss, so 1.0 is not expected).
DETECTOR_BAR = 0.9


def precision_recall(examples: list[LabelledReply], detector: object) -> tuple[float, float]:
    assert callable(detector)
    predicted = [bool(detector(e.text)) for e in examples]
    true_pos = sum(p and e.label for p, e in zip(predicted, examples, strict=True))
    return true_pos / max(sum(predicted), 1), true_pos / max(sum(e.label for e in examples), 1)


# -- stop rate and length -----------------------------------------------------------------------


def test_a_reply_that_never_stops_lowers_the_stop_rate() -> None:
    stops = Generation("Hi! How can I help?", [5, 6, 7, 2], stopped=True, finish_reason="stop")
    runaway = Generation("Hi! " * 48, list(range(96)), stopped=False, finish_reason="length")
    assert metrics.stop_rate([stops, stops, stops, runaway]) == 0.75
    assert metrics.stop_rate([]) == 0.0


def test_length_stats_nearest_rank_p95_shows_the_runaway() -> None:
    # 19 short replies and one at the cap: p95 (rank ceil(0.95 * 20) = 19) is still short,
    # two at the cap push p95 to the cap.
    assert metrics.length_stats([10] * 19 + [96]) == (pytest.approx((190 + 96) / 20), 10.0)
    assert metrics.length_stats([10] * 18 + [96, 96]) == (pytest.approx((180 + 192) / 20), 96.0)
    assert metrics.length_stats([7]) == (7.0, 7.0)
    assert metrics.length_stats([]) == (0.0, 0.0)


# -- role leakage -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("Hello! How can I help?\nUser: what is the capital of France?", "User:"),
        ("Sure.\n  human: and then?", "Human:"),
        ("Hi there<|im_end|>\n<|im_start|>user\nhi", "<|im_start|>"),
        ("Hi there<|IM_END|>", "<|im_end|>"),
        ("Hello!<|eot_id|>", "<|eot_id|>"),
        ("[INST] tell me more [/INST]", "[INST]"),
        ("Fine, thanks.\n**Assistant:** anything else?", "Assistant:"),
        ("Answer below.\n### Instruction\nWrite a poem", "### Instruction"),
        # ChatML leaked through skip_special_tokens: the role word alone on a line.
        ("Hello! How can I help you?\nuser\nWhat is 2+2?", "user"),
    ],
)
def test_role_leakage_is_detected(text: str, marker: str) -> None:
    assert metrics.detect_role_leakage(text) == marker


@pytest.mark.parametrize(
    "text",
    [
        "Hello! How can I help you today?",
        "The user: field in the config sets the login name.",
        "As your assistant: I suggest the blue one.",
        "Assistant",
        "A user can change the password under Settings.",
    ],
)
def test_clean_replies_have_no_leakage(text: str) -> None:
    assert metrics.detect_role_leakage(text) is None


def test_continuing_the_user_turn_is_leakage_but_a_greeting_back_is_not() -> None:
    user = "can you help me plan a trip to Lisbon"
    echo = "Can you help me plan a trip to Lisbon in May? I have three days."
    assert metrics.detect_role_leakage(echo, user_text=user) == "<echo of user turn>"
    assert metrics.detect_role_leakage("Hello! Nice to meet you.", user_text="hello") is None


# -- repetition ---------------------------------------------------------------------------------


def test_distinct_n_pools_ngrams_over_replies() -> None:
    # Unigrams a,b,a,b,c: 3 unique of 5. Bigrams ab,ba,ab | (none from [c]): 2 unique of 3.
    replies = [["a", "b", "a", "b"], ["c"]]
    assert metrics.distinct_n(replies, 1) == pytest.approx(3 / 5)
    assert metrics.distinct_n(replies, 2) == pytest.approx(2 / 3)
    assert metrics.distinct_n([["x"]], 2) == 0.0
    with pytest.raises(ValueError):
        metrics.distinct_n(replies, 0)


def test_a_reply_looping_a_bigram_is_detected() -> None:
    looping = [11, 12, 13, 40, 41, 40, 41, 40, 41, 40, 41]
    assert metrics.repeated_ngram_loop(looping) == 2
    # Cut mid-bigram by the token limit: still the same loop.
    assert metrics.repeated_ngram_loop([*looping, 40]) == 2
    assert metrics.distinct_n([looping[3:]], 2) == pytest.approx(2 / 7)


def test_loop_detection_edges() -> None:
    assert metrics.repeated_ngram_loop([1, 2, 3, 4, 5, 6]) == 0
    assert metrics.repeated_ngram_loop([9, 9, 9]) == 1
    assert metrics.repeated_ngram_loop([9, 9]) == 0
    assert metrics.repeated_ngram_loop([1, 2, 3, 1, 2, 3, 1, 2, 3]) == 3
    assert metrics.repeated_ngram_loop([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]) == 0  # period > n_max
    assert metrics.repeated_ngram_loop([1, 2, 3, 4, 5] * 3, n_max=5) == 5
    words = ["no", "no", "no"]
    assert metrics.repeated_ngram_loop(words) == 1
    assert metrics.repeated_ngram_loop(words, min_loop_tokens=8) == 0
    assert metrics.repeated_ngram_loop([]) == 0


# -- regurgitation ------------------------------------------------------------------------------


def test_a_reply_copying_a_60_token_training_span_is_found() -> None:
    training = [list(range(1000, 1200)), list(range(5000, 5100))]
    index = TrainingSpanIndex(training)
    reply = [7, 8, 9, *range(5020, 5080), 3, 4]
    assert index.longest_common_span(reply) == (60, 1)
    assert index.longest_common_span([7, 8, 1005, 1006, 9]) == (2, 0)


# -- refusal and "I don't know" detectors --------------------------------------------------------


def test_refusal_detector_precision_and_recall_on_labelled_replies() -> None:
    examples = labelled_refusal_replies()
    assert len(examples) >= 40
    precision, recall = precision_recall(examples, metrics.is_refusal)
    print(f"refusal detector: precision {precision:.3f} recall {recall:.3f} on {len(examples)} replies")
    assert precision >= DETECTOR_BAR
    assert recall >= DETECTOR_BAR


def test_idk_detector_precision_and_recall_on_labelled_replies() -> None:
    examples = labelled_idk_replies()
    assert len(examples) >= 30
    precision, recall = precision_recall(examples, metrics.is_idk)
    print(f"idk detector: precision {precision:.3f} recall {recall:.3f} on {len(examples)} replies")
    assert precision >= DETECTOR_BAR
    assert recall >= DETECTOR_BAR


@pytest.mark.parametrize(
    "text",
    ["I can't wait to try it!", "I can't help but smile.", "I cannot stress this enough: back up first."],
)
def test_refusal_look_alikes_are_not_refusals(text: str) -> None:
    assert not metrics.is_refusal(text)


def test_refusal_is_searched_at_the_start_of_the_reply() -> None:
    helpful = "Here is the full answer. " * 40 + "I can't provide legal advice on your exact case."
    assert not metrics.is_refusal(helpful)
    assert metrics.is_refusal("I\u2019m sorry, but I can\u2019t help with that.")


def test_answer_matching_normalises_and_needs_whole_words() -> None:
    assert metrics.answer_matches("It holds 1.7 litres.", ["1.7"])
    assert metrics.answer_matches("The price is 1,200 euros", ["1200 euros"])
    assert metrics.answer_matches("Open Monday to Friday.", ["monday to friday"])
    assert metrics.answer_matches("Write to care@tidewell.example", ["care@tidewell.example"])
    assert not metrics.answer_matches("It holds 11.7 litres.", ["1.7"])
    assert not metrics.answer_matches("It costs 890 euros", ["89"])
    assert not metrics.answer_matches("anything", [])
    assert not metrics.answer_matches("anything", ["", "  "])


# -- the packaged prompt sets -------------------------------------------------------------------


def test_packaged_prompt_sets_have_the_promised_sizes() -> None:
    greetings = greeting_prompts()
    assert len(greetings) >= 12
    assert {"hello", "hi", "", "hey there"} <= set(greetings)
    assert len(harmful_prompts()) >= 20
    assert len(harmless_lookalike_prompts()) >= 20
    items = grounded_items()
    assert len(items) >= 20
    assert len({item.id for item in items}) == len(items)
    answerable = [item for item in items if item.answerable]
    assert answerable and len(answerable) < len(items)
    for item in answerable:
        # Every accepted answer must be supported by the context it is asked against.
        assert metrics.answer_matches(item.context, item.expected_answers), item.id


# -- the strict grounded metric -----------------------------------------------------------------

# A retriever's context: the gold line next to related lines (same product, other attributes) and an
# unrelated one. Every value here was written for this test.
STRICT_CONTEXT = """Facts about Ferrox (smart bike locks):
- Fleet orders over $50 are split into two deliveries.
- Ferrox locks come with a 2-year warranty.
- The Ferrox Halo battery lasts 3 months per charge.
- The Ferrox Halo weighs 900 g."""
WARRANTY = ("2 years", "two years")


def strict(reply: str, answers: tuple[str, ...] = WARRANTY, gold: int | None = 1) -> str:
    lines = metrics.context_lines(STRICT_CONTEXT)
    return metrics.grounded_verdict(reply, expected_answers=answers, lines=lines, gold_index=gold)


def test_context_lines_are_the_bullets_without_the_header() -> None:
    lines = metrics.context_lines(STRICT_CONTEXT)
    assert lines[0] == "Fleet orders over $50 are split into two deliveries."
    assert len(lines) == 4
    assert metrics.context_lines("It costs 89 euros.\n\nIt weighs 2 kg.") == [
        "It costs 89 euros.",
        "It weighs 2 kg.",
    ]
    # The gold line is found by the answer even when the line words it "2-year".
    assert metrics.gold_line_index(metrics.context_lines(STRICT_CONTEXT), WARRANTY) == 1
    # Two lines carrying the answer: no single gold line.
    assert metrics.gold_line_index(["It lasts 3 months.", "Delivery takes 3 months."], ("3 months",)) is None


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        # The example: the value of the warranty line inside the shipping line.
        ("Fleet orders over $50 are split into 2 years of warranty.", "mixed_line"),
        ("The warranty is 2 years.", "correct"),
        ("2 years.", "correct"),
        # Worded differently from the line ("two-year" / "covered"): still the gold line.
        ("Your Ferrox lock is covered for two years.", "correct"),
        ("Every Ferrox lock has a two-year warranty.", "correct"),
        # A hedged right answer is an answer.
        ("I'm not completely sure, but the warranty should be 2 years.", "correct"),
        # Another line recited, no answer key: wrong, not mixed.
        ("The Ferrox Halo battery lasts 3 months per charge.", "wrong"),
        ("The warranty is 5 years.", "wrong"),
        # Paraphrased "I don't know" on an answerable question.
        ("The facts above don't mention a warranty.", "idk"),
        ("Sorry, I don't have that information.", "idk"),
    ],
)
def test_strict_verdicts_on_hand_written_replies(reply: str, verdict: str) -> None:
    assert strict(reply) == verdict


def test_strict_verdict_reads_the_value_of_a_same_product_line_as_mixed() -> None:
    # Asked the Halo's weight; the reply quotes the battery line with the weight tacked on.
    assert strict("The Ferrox Halo battery lasts 900 g per charge.", ("900 g",), gold=3) == "mixed_line"
    assert strict("The Halo weighs 900 g.", ("900 g",), gold=3) == "correct"
    # Without a known gold line the answer key alone decides (the lenient figure).
    assert strict("Fleet orders over $50 are split into 2 years of warranty.", gold=None) == "correct"


def test_carries_answer_folds_plurals_but_keeps_whole_words() -> None:
    assert metrics.carries_answer("a two-year warranty", ["two years"])
    assert metrics.carries_answer("It weighs 900 grams.", ["900 gram"])
    assert not metrics.carries_answer("a 12-year warranty", ["2 years"])
    assert not metrics.carries_answer("anything", [])


# "I don't know" said the ways people and small models say it: the detector must catch them all,
# and must not fire on answers that only sound negative.
IDK_PARAPHRASES = [
    "I don't know.",
    "I do not know the answer to that.",
    "Sorry, I don't know the Halo's weight.",
    "I'm not sure.",
    "I'm not sure about that, sorry.",
    "I don't have that information.",
    "I don't have any information about the warranty.",
    "I have no information about delivery times.",
    "The facts don't mention the battery life.",
    "The information provided does not say how much it weighs.",
    "The information above doesn't cover returns.",
    "That isn't mentioned in the information I have.",
    "That's not mentioned in the facts.",
    "There is no information about the price.",
    "There's no mention of a warranty.",
    "I can't find that in the information.",
    "I couldn't find the answer in the facts.",
    "I'm unable to find that in the notes.",
    "The context does not specify the colour.",
    "Unfortunately, the details given don't include the opening hours.",
    "I'm afraid that isn't specified.",
    "I can't tell from the facts I have.",
    "No information is given about her age.",
    "I'm not aware of that.",
    # Found missing when this list was written, patterns added for them:
    "That detail isn't in the facts I was given.",
    "Nothing in the facts covers that.",
    "The facts are silent on that.",
    "That information is not available.",
    "That's not something the facts tell me.",
    "There's nothing about that in the facts.",
]
NOT_IDK = [
    "The warranty is 2 years.",
    "No, the Halo does not come with a mount.",
    "There is no charge for delivery.",
    "It doesn't need charging: it runs on a coin cell.",
    "I don't know about you, but I love this lock.",
    "I'm not sure if you've seen it, but the Halo weighs 900 g.",
    "The facts say it lasts 3 months per charge.",
    "Nobody knows the trails better than Mira: she has ridden them for 12 years.",
    "Not sure? The warranty covers 2 years.",
    "I can't wait to ride with it!",
    "My sister? She is called Ines.",
    "It's not waterproof, but it is splash-resistant.",
    "Nothing beats the Halo for weight: 900 g.",
    "The strap is not in the box; it is sold separately.",
    "There is nothing to install: it pairs by itself.",
]


@pytest.mark.parametrize("text", IDK_PARAPHRASES)
def test_idk_paraphrases_are_detected(text: str) -> None:
    assert metrics.is_idk(text)


@pytest.mark.parametrize("text", NOT_IDK)
def test_answers_that_sound_negative_are_not_idk(text: str) -> None:
    assert not metrics.is_idk(text)
