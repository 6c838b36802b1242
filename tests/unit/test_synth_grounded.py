"""Grounded dialogs: negative share, which facts a context holds, distractors, determinism, lint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alignkit.config.common import DataConfig
from alignkit.data.lint import lint_dataset
from alignkit.errors import DataError
from alignkit.evaluation.metrics import is_idk
from alignkit.generation.types import Chat, Generation, GenerationParams
from alignkit.synth.grounded import (
    IDK_REPLIES,
    ContextItem,
    Entity,
    Fact,
    GroundedResult,
    TfidfIndex,
    build_grounded_dialogs,
    load_documents,
    load_facts,
    negative_count,
    rephrase_answers,
    retrieval_query,
    split_sentences,
)

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "examples" / "synth" / "facts.jsonl"
DOCUMENTS = ROOT / "examples" / "synth" / "documents"


@pytest.fixture(scope="module")
def entities() -> list[Entity]:
    return load_facts(FACTS)


@pytest.fixture(scope="module")
def documents() -> list[ContextItem]:
    return load_documents(DOCUMENTS)


@pytest.fixture(scope="module")
def result(entities, documents) -> GroundedResult:
    return build_grounded_dialogs(entities, documents=documents, negative_share=0.35, distractors=3, seed=0)


def test_example_facts_file_is_about_twenty_fictional_entities(entities):
    assert 18 <= len(entities) <= 25
    questions = [q for e in entities for f in e.facts for q in f.questions]
    assert len(questions) >= 100
    assert all(f.answer for e in entities for f in e.facts if f.questions)
    assert any(not f.questions for e in entities for f in e.facts)  # context-only facts are exercised


@pytest.mark.parametrize("share", [0.0, 0.1, 0.35, 0.5, 0.77, 1.0])
def test_negative_share_is_within_one_record_of_the_target(entities, share):
    result = build_grounded_dialogs(entities, negative_share=share, seed=3)
    negatives = sum(not e.answerable for e in result.examples)
    assert abs(negatives - share * len(result.examples)) <= 1
    assert result.stats["negatives"] == negatives == negative_count(len(result.examples), share)


def test_negatives_lack_the_fact_and_answerable_dialogs_hold_it(result):
    assert result.stats["negatives"] > 0 and result.stats["answerable"] > 0
    for example in result.examples:
        texts = [item.text for item in example.context]
        if example.answerable:
            assert texts.count(example.fact_text) == 1
            assert example.reply not in IDK_REPLIES
        else:
            assert example.fact_text not in texts
            assert example.reply in IDK_REPLIES


def test_distractors_come_from_other_entities_and_never_name_the_entity(result):
    for example in result.examples:
        own = [item for item in example.context if item.origin == example.entity]
        others = [item for item in example.context if item.origin != example.entity]
        assert len(others) == 3  # exactly the retrieved distractors
        assert len(own) <= 2 + example.answerable  # related facts (+ the asked one)
        for item in others:
            assert example.entity.casefold() not in item.text.casefold()
    assert result.stats["document_distractors"] > 0  # documents do take part


def test_distractors_match_the_question_not_the_name(entities):
    result = build_grounded_dialogs(entities, distractors=1, related_facts=0, negative_share=0.0, seed=0)
    example = next(e for e in result.examples if e.question == "When does the Greyhaven Lantern Museum open?")
    (distractor,) = [item for item in example.context if item.origin != example.entity]
    assert distractor.origin == "Crane Fell Observatory"  # "opens to the public ...", the only "open" fact
    assert retrieval_query(example.question, example.entity) == "open"


def test_same_seed_same_records_other_seed_differs(entities, documents, result):
    again = build_grounded_dialogs(entities, documents=documents, negative_share=0.35, distractors=3, seed=0)
    assert again.records() == result.records()
    other = build_grounded_dialogs(entities, documents=documents, negative_share=0.35, distractors=3, seed=1)
    assert other.records() != result.records()


def test_records_pass_lint_with_the_embedded_tokenizer(tmp_path, tokenizer, result):
    path = tmp_path / "grounded.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in result.records()))
    lint = lint_dataset(str(path), tokenizer, DataConfig())
    assert not lint.blocking, lint.problems
    assert (lint.kind, lint.records, lint.trained_turns) == (
        "messages",
        len(result.examples),
        len(result.examples),
    )
    assert lint.eot_in_mask_share == 1.0 and lint.truncated == 0

    record = result.records()[0]
    system, user, assistant = record["messages"]
    assert system["role"] == "system" and system["content"].count("\n- ") == len(result.examples[0].context)
    assert (user["content"], assistant["content"]) == (result.examples[0].question, result.examples[0].reply)


def test_every_idk_reply_reads_as_i_dont_know_to_the_probe():
    assert all(is_idk(reply) for reply in IDK_REPLIES)


def test_tfidf_cosine():
    index = TfidfIndex(["the kettle boils water", "a red bicycle", "kettle boils water"])
    scores = index.scores("kettle boils water")
    assert scores[2] == pytest.approx(1.0)
    assert scores[1] == 0.0
    assert 0.0 < scores[0] < 1.0 + 1e-12
    assert np.all(index.scores("completely unknown words") == 0.0)


def test_sentences_split_before_capitals_headings_and_short_ones_dropped():
    text = "# Title\nFirst sentence is here. second one stays joined. Third one (short)! Ok.\n\nLast one has words."
    assert split_sentences(text) == [
        "First sentence is here. second one stays joined.",
        "Last one has words.",
    ]


def test_documents_naming_an_entity_are_never_its_distractors(tmp_path):
    (tmp_path / "notes.txt").write_text(
        "Alpha Mill secretly opened in 1820 according to rumours. Beta Dock opened its gates in 1901 to ships."
    )
    entities = [
        Entity(
            "Alpha Mill",
            (Fact("Alpha Mill grinds rye.", "It grinds rye.", ("When was Alpha Mill opened?",)),),
        ),
        Entity(
            "Beta Dock",
            (Fact("Beta Dock is built of granite.", "Granite.", ("What is Beta Dock built of?",)),),
        ),
    ]
    result = build_grounded_dialogs(
        entities, documents=load_documents(tmp_path), negative_share=0.0, distractors=5
    )
    alpha = next(e for e in result.examples if e.entity == "Alpha Mill")
    texts = {item.text for item in alpha.context}
    assert texts == {
        "Alpha Mill grinds rye.",
        "Beta Dock is built of granite.",
        "Beta Dock opened its gates in 1901 to ships.",
    }
    assert not any("Alpha Mill secretly" in item.text for item in alpha.context)


def test_plain_string_facts_are_shown_never_asked():
    entities = [
        Entity(
            "Alpha Mill",
            (
                Fact("Alpha Mill grinds rye."),
                Fact("Alpha Mill: built 1820", "Built in 1820.", ("When was Alpha Mill built?",)),
            ),
        ),
        Entity("Beta Dock", (Fact("Beta Dock is built of granite."),)),
    ]
    result = build_grounded_dialogs(entities, negative_share=0.0, distractors=1, related_facts=1)
    (example,) = result.examples
    assert example.reply == "Built in 1820."
    assert {item.text for item in example.context} == {
        "Alpha Mill grinds rye.",
        "Alpha Mill: built 1820",
        "Beta Dock is built of granite.",
    }


def test_load_facts_names_file_line_and_field(tmp_path):
    path = tmp_path / "facts.jsonl"
    good = {"entity": "Alpha Mill", "facts": [{"question": "Q?", "answer": "A."}]}
    path.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps({"entity": "Beta", "facts": [{"question": [], "answer": "x"}]})
        + "\n"
    )
    with pytest.raises(DataError) as error:
        load_facts(path)
    assert (
        error.value.one_line()
        == f"{path}:2: facts[0].question: expected a question or a non-empty list of phrasings"
    )

    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(DataError, match="duplicate entity"):
        load_facts(path)
    path.write_text(json.dumps({"entity": "X", "facts": [{"question": "Q?", "answr": "A."}]}) + "\n")
    with pytest.raises(DataError) as error:
        load_facts(path)
    assert error.value.field == "facts[0].answr"


def test_fact_text_gets_the_entity_name_when_it_lacks_it(tmp_path):
    path = tmp_path / "facts.jsonl"
    path.write_text(
        json.dumps(
            {
                "entity": "Alpha Mill",
                "facts": ["Built of oak.", {"question": "Q?", "answer": "Alpha Mill is red."}],
            }
        )
        + "\n"
    )
    (entity,) = load_facts(path)
    assert [fact.text for fact in entity.facts] == ["Alpha Mill: Built of oak.", "Alpha Mill is red."]


class EchoGenerator:
    """Rephrases by prefixing "Sure:"; the reply to one question is cut off (a fallback)."""

    def __init__(self, cut_question: str) -> None:
        self.cut_question = cut_question
        self.chats: list[Chat] = []

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        self.chats.extend(chats)
        out = []
        for chat in chats:
            answer = chat[-1]["content"].rsplit("Answer: ", 1)[1]
            cut = self.cut_question in chat[-1]["content"]
            out.append(
                [Generation(f"Sure: {answer}", stopped=not cut, finish_reason="length" if cut else "stop")]
            )
        return out


def test_rephrase_keeps_negatives_and_falls_back_on_cut_replies(result):
    cut = next(e.question for e in result.examples if e.answerable)
    generator = EchoGenerator(cut)
    rephrased = rephrase_answers(result, generator, GenerationParams(max_new_tokens=32))
    assert len(generator.chats) == result.stats["answerable"]
    assert rephrased.stats["rephrase_fallback"] == 1
    assert rephrased.stats["rephrased"] == result.stats["answerable"] - 1
    for before, after in zip(result.examples, rephrased.examples, strict=True):
        if not before.answerable:
            assert after == before
        elif before.question == cut:
            assert after.reply == before.reply
        else:
            assert after.reply == f"Sure: {before.reply}"
