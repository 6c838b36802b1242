"""The multi-entity fact library and its generator: sizes, held-out entities and domain kept out of
training (even as distractors), related distractors, negative share, eval items in the probe format."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from alignkit.evaluation import metrics
from alignkit.evaluation.probe_sets import load_grounded_items

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
MIX_FILES = ("sft_train_mix.jsonl", "dpo_train_mix.jsonl")
ENTITY_EVALS = ("eval_entities.jsonl", "eval_entities_trained.jsonl", "dev_entities.jsonl")


@pytest.fixture(scope="module")
def entities():
    sys.path.insert(0, str(QUICKSTART))
    try:
        spec = importlib.util.spec_from_file_location("entities", QUICKSTART / "entities.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(QUICKSTART))
    return module


@pytest.fixture(scope="module")
def files(entities) -> dict[str, list[dict]]:
    return entities.build_entity_files(0)


def _texts(record: dict) -> list[dict]:
    if "messages" in record:
        return record["messages"]
    return [
        *record["prompt"],
        {"role": "assistant", "content": record["chosen"]},
        {"role": "assistant", "content": record["rejected"]},
    ]


def _committed(name: str) -> list[dict]:
    return [
        json.loads(line) for line in (QUICKSTART / "data" / name).read_text(encoding="utf-8").splitlines()
    ]


def test_library_has_the_promised_size_and_surface_forms(entities):
    facts = entities.library_facts(0)
    domains = {f.domain.key for f in facts}
    assert len(domains) >= 6 and "characters" in domains
    assert len({f.entity for f in facts}) >= 16
    assert len(facts) >= 400
    for fact in facts:
        assert len(set(fact.attribute.lines)) == 2 and len(set(fact.attribute.questions)) >= 3, fact.id
        # The answer key is in the fact line (both forms) and the reply; the invented values are not.
        for template in fact.attribute.lines:
            assert metrics.carries_answer(template.format(e=fact.entity, v=fact.value), [fact.value]), fact.id
        assert metrics.carries_answer(fact.reply(), [fact.value])
        for wrong in fact.wrong_values:
            assert not metrics.carries_answer(fact.reply(wrong), [fact.value]), (fact.id, wrong)
        assert not metrics.is_idk(fact.reply()), fact.id
    # Each entity of a domain has its own value per attribute: another entity's line is a real distractor.
    by_attribute = Counter((f.domain.key, f.attribute.key, f.value) for f in facts)
    assert max(by_attribute.values()) == 1


def test_idk_replies_are_detected_and_answers_are_not(entities):
    for reply in entities.IDK_REPLIES + entities.CHARACTER_IDK_REPLIES:
        assert metrics.is_idk(reply), reply


def test_held_out_and_dev_entities_appear_in_no_training_file(entities, files):
    split = entities.split_entities(0)
    held_names = {f.entity for f in split.held_out} | {f.entity for f in split.dev}
    assert {f.domain.key for f in split.held_out} >= {"restaurants"}
    assert not {f.domain.key for f in split.train} & {"restaurants"}
    assert len({f.entity for f in split.held_out}) >= 6
    for name in MIX_FILES:
        text = "\n".join(t["content"] for r in _committed(name) for t in _texts(r))
        for entity in held_names:
            assert entity not in text, (name, entity)
        # No value of a held-out fact's line either, as a line.
        for fact in split.held_out + split.dev:
            assert fact.line not in text, fact.id


def test_held_out_phrasings_on_trained_entities_are_not_trained(entities, files):
    users = {
        t["content"] for name in MIX_FILES for r in _committed(name) for t in _texts(r) if t["role"] == "user"
    }
    trained_eval = load_grounded_items(QUICKSTART / "data" / "eval_entities_trained.jsonl")
    assert len(trained_eval) >= 50
    assert not {item.question for item in trained_eval} & users


def _distractor_kinds(entities, records: list[dict]) -> Counter[str]:
    by_line = {f.line: f for f in entities.library_facts(0)}
    kinds: Counter[str] = Counter()
    for record in records:
        turns = _texts(record)
        system = turns[0]["content"]
        if "Facts about Ferrox" in system:
            continue
        question = turns[1]["content"]
        lines = metrics.context_lines(system.split("\n\n", 1)[1])
        targets = [
            f
            for f in by_line.values()
            if question in {f.question(i) for i in range(len(f.attribute.questions))}
        ]
        assert len(targets) == 1, question
        for line in lines:
            if by_line[line] is not targets[0]:
                kinds[entities.distractor_kind(targets[0], by_line[line])] += 1
    return kinds


def test_training_distractors_are_mostly_related(entities, files):
    kinds = _distractor_kinds(entities, files["entities_sft_train.jsonl"])
    total = sum(kinds.values())
    assert total > 1000
    related = (kinds["same_entity"] + kinds["same_attribute"]) / total
    assert 0.75 <= related <= 0.95, kinds
    assert kinds["same_attribute"] / total >= 0.2, kinds


def test_about_half_of_the_questions_are_unanswerable(entities, files):
    records = files["entities_sft_train.jsonl"]
    finals = [r["messages"][-1]["content"] for r in records if len(r["messages"]) == 3]
    idk_share = sum(metrics.is_idk(text) for text in finals) / len(finals)
    assert idk_share == pytest.approx(0.5, abs=0.01)
    for name in ENTITY_EVALS:
        items = load_grounded_items(QUICKSTART / "data" / name)
        share = sum(not item.answerable for item in items) / len(items)
        assert 0.35 <= share <= 0.65, (name, share)


def test_eval_items_have_related_distractors_and_one_line_carrying_the_answer(entities):
    by_line = {f.line: f for f in entities.library_facts(0)}
    for name in ENTITY_EVALS:
        for item in load_grounded_items(QUICKSTART / "data" / name):
            lines = metrics.context_lines(item.context)
            assert len(lines) == entities.LINES_PER_CONTEXT
            if item.answerable:
                assert item.gold in lines
                assert metrics.gold_line_index(lines, item.expected_answers) == lines.index(item.gold), (
                    item.id
                )
            else:
                fact_id = item.id.removesuffix("/without")
                assert all(by_line[line].id != fact_id for line in lines), item.id
            # Related lines: at least one other line of the same entity or the same attribute.
            entity, attribute = item.id.split("/")[:2]
            assert any(
                by_line[line].id != f"{entity}/{attribute}"
                and (by_line[line].id.startswith(entity + "/") or by_line[line].attribute.key == attribute)
                for line in lines
            ), item.id


def test_dpo_pairs_reject_mixed_line_and_invented_answers(entities, files):
    facts = entities.library_facts(0)
    by_line = {f.line: f for f in facts}
    kinds: Counter[str] = Counter()
    for pair in files["entities_dpo_train.jsonl"]:
        question = pair["prompt"][1]["content"]
        (fact,) = [f for f in facts if question in {f.question(i) for i in range(len(f.attribute.questions))}]
        context_facts = [
            by_line[line] for line in metrics.context_lines(pair["prompt"][0]["content"].split("\n\n", 1)[1])
        ]
        answerable = fact in context_facts
        if answerable:
            assert pair["chosen"] == fact.reply()
        else:
            assert metrics.is_idk(pair["chosen"])
        if metrics.is_idk(pair["rejected"]):
            kinds["false idk"] += 1
            assert answerable
        elif pair["rejected"] in {fact.reply(other.value) for other in context_facts if other is not fact}:
            kinds["mixed line" if answerable else "misread"] += 1
        else:
            assert pair["rejected"] in {fact.reply(value) for value in fact.wrong_values}, pair["rejected"]
            kinds["invented"] += 1
            assert not answerable
    assert min(kinds["mixed line"], kinds["false idk"], kinds["misread"], kinds["invented"]) >= 20, kinds


def test_committed_entity_files_are_the_generators_output(files):
    # The mixed training files are checked by test_quickstart_data; these are the eval files.
    for name in ENTITY_EVALS:
        assert _committed(name) == files[name], f"{name} is stale: rerun make_data.py --seed 0"
