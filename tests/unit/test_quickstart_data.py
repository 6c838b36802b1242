"""The quickstart data generator: deterministic, held-out split clean, probe format, lint-clean."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION, DataConfig
from alignkit.data.lint import lint_dataset
from alignkit.evaluation import metrics
from alignkit.evaluation.probe_sets import greeting_prompts, load_grounded_items
from alignkit.evaluation.probes import grounded_chat

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
TRAIN_FILES = ("sft_train.jsonl", "dpo_train.jsonl")
GROUNDED_EVALS = ("eval_grounded.jsonl", "eval_grounded_hard.jsonl")
ALL_FILES = (
    "sft_train.jsonl",
    "eval_sft.jsonl",
    "dpo_train.jsonl",
    "dpo_eval.jsonl",
    *GROUNDED_EVALS,
    "dev_grounded.jsonl",
    "sft_train_mix.jsonl",
    "dpo_train_mix.jsonl",
    "eval_entities.jsonl",
    "eval_entities_trained.jsonl",
    "dev_entities.jsonl",
)


def _load_module():
    spec = importlib.util.spec_from_file_location("quickstart_make_data", QUICKSTART / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_data():
    return _load_module()


@pytest.fixture(scope="module")
def data_dir(make_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quickstart")
    make_data.main(["--out", str(out), "--seed", "0"])
    return out


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _turns(record: dict) -> list[dict]:
    """Every message of a record: messages, or prompt + chosen + rejected of a pair."""
    if "messages" in record:
        return record["messages"]
    return [
        *record["prompt"],
        {"role": "assistant", "content": record["chosen"]},
        {"role": "assistant", "content": record["rejected"]},
    ]


def test_generation_is_byte_identical(make_data, data_dir, tmp_path):
    make_data.main(["--out", str(tmp_path), "--seed", "0"])
    for name in ALL_FILES:
        assert (tmp_path / name).read_bytes() == (data_dir / name).read_bytes(), name


def test_another_seed_gives_other_data(make_data, data_dir, tmp_path):
    make_data.main(["--out", str(tmp_path), "--seed", "1"])
    assert (tmp_path / "sft_train.jsonl").read_bytes() != (data_dir / "sft_train.jsonl").read_bytes()


def test_committed_data_is_the_generators_output(data_dir):
    for name in ALL_FILES:
        committed = QUICKSTART / "data" / name
        assert committed.read_bytes() == (data_dir / name).read_bytes(), (
            f"{committed} is stale: rerun python examples/quickstart/make_data.py --seed 0"
        )


def test_eval_facts_and_questions_never_in_training(make_data, data_dir):
    train_turns = [t for name in TRAIN_FILES for r in _read(data_dir / name) for t in _turns(r)]
    train_users = {t["content"] for t in train_turns if t["role"] == "user"}
    train_systems = "\n".join(t["content"] for t in train_turns if t["role"] == "system")
    train_replies = {t["content"] for t in train_turns if t["role"] == "assistant"}

    split = make_data.split_data(0)
    assert len(split.held_facts) >= 0.15 * len(make_data.FACTS)
    for fact in split.held_facts:
        assert fact.text not in train_systems, fact.id
        assert fact.answer not in train_replies and fact.wrong not in train_replies, fact.id
        assert not set(fact.questions) & train_users, fact.id

    eval_questions = {
        item.question for name in GROUNDED_EVALS for item in load_grounded_items(data_dir / name)
    }
    for name in ("eval_sft.jsonl", "dpo_eval.jsonl"):
        eval_questions |= {
            t["content"] for r in _read(data_dir / name) for t in _turns(r) if t["role"] == "user"
        }
    assert not eval_questions & train_users


def test_hello_probe_greetings_are_not_trained_verbatim(data_dir):
    users = {
        t["content"]
        for name in TRAIN_FILES
        for r in _read(data_dir / name)
        for t in _turns(r)
        if t["role"] == "user"
    }
    assert not users & set(greeting_prompts())


def test_every_training_question_is_asked_with_and_without_its_fact(make_data, data_dir):
    """Single grounded questions come in pairs: the same question answered from the context, and
    answered "I don't know" when its fact is missing, so only the context tells the two apart."""
    facts = make_data.ALL_FACTS
    idk, answers = set(make_data.IDK_REPLIES), {f.answer for f in facts}
    questions = {q for f in facts for q in f.questions}
    replies_by_question: dict[str, list[str]] = {}
    for record in _read(data_dir / "sft_train.jsonl"):
        turns = record["messages"]
        if [t["role"] for t in turns] == ["system", "user", "assistant"] and turns[1]["content"] in questions:
            replies_by_question.setdefault(turns[1]["content"], []).append(turns[2]["content"])
    assert len(replies_by_question) >= 300
    for question, replies in replies_by_question.items():
        assert len(replies) == 2, question
        assert sum(r in idk for r in replies) == 1 and sum(r in answers for r in replies) == 1, question


def test_dpo_pairs_reject_the_failures_seen_on_held_out_questions(make_data, data_dir):
    """An answerable question rejects a false "I don't know" or another line's answer; an unanswerable
    one rejects an invented value or another line's answer. Chosen is always the right reply."""
    facts = make_data.ALL_FACTS
    idk = set(make_data.IDK_REPLIES)
    by_question = {q: f for f in facts for q in f.questions}
    by_text = {f.text: f for f in facts}
    grounded = [p for p in _read(data_dir / "dpo_train.jsonl") if p["prompt"][-1]["content"] in by_question]
    assert len(grounded) == 150
    kinds = {"false_idk": 0, "invented": 0, "misread": 0}
    for pair in grounded:
        fact = by_question[pair["prompt"][-1]["content"]]
        context = [
            by_text[line[2:]] for line in pair["prompt"][0]["content"].split("\n\n", 1)[1].split("\n")[1:]
        ]
        others = {f.answer for f in context if f.id != fact.id}
        answerable = fact in context
        assert pair["chosen"] == fact.answer if answerable else pair["chosen"] in idk
        if pair["rejected"] in others:
            kinds["misread"] += 1
        elif answerable:
            assert pair["rejected"] in idk
            kinds["false_idk"] += 1
        else:
            assert pair["rejected"] == fact.wrong
            kinds["invented"] += 1
    n_idk_chosen = sum(p["chosen"] in idk for p in grounded)
    assert 0.35 <= n_idk_chosen / len(grounded) <= 0.45
    assert min(kinds.values()) >= 15, kinds
    # As many pairs push away from "I don't know" as towards it (a misread rejected on an answerable
    # question pushes neither way): with more towards it, DPO raised false IDK 0.09 -> 0.22.
    assert abs(kinds["false_idk"] - n_idk_chosen) <= 0.1 * len(grounded), kinds


def _has_related_distractor(make_data, question: str, context: str) -> bool:
    """Whether a context line other than the question's own fact is related to that fact."""
    facts = make_data.ALL_FACTS
    by_question = {q: f for f in facts for q in f.questions}
    by_text = {f.text: f for f in facts}
    fact = by_question[question]
    lines = [by_text[line[2:]] for line in context.split("\n")[1:]]
    return any(make_data.related(f, fact) for f in lines if f.id != fact.id)


def test_training_contexts_hold_only_unrelated_distractors(make_data, data_dir):
    questions = {q for f in make_data.ALL_FACTS for q in f.questions}
    checked = 0
    for record in _read(data_dir / "sft_train.jsonl"):
        messages = record["messages"]
        if messages[0]["role"] != "system":
            continue
        context = messages[0]["content"].split("\n\n", 1)[1]
        for turn in messages:
            if turn["role"] == "user" and turn["content"] in questions:
                assert not _has_related_distractor(make_data, turn["content"], context), turn["content"]
                checked += 1
    assert checked >= 500


def test_hard_eval_set_has_related_distractors_and_the_main_one_does_not(make_data, data_dir):
    related_counts = {
        name: sum(
            _has_related_distractor(make_data, item.question, item.context)
            for item in load_grounded_items(data_dir / name)
        )
        for name in GROUNDED_EVALS
    }
    assert related_counts["eval_grounded.jsonl"] == 0
    assert related_counts["eval_grounded_hard.jsonl"] >= 32


def test_related_means_same_topic_or_same_attribute(make_data):
    facts = {f.id: f for f in make_data.FACTS}
    assert make_data.related(facts["halo-battery"], facts["halo-price"])
    assert make_data.related(facts["halo-battery"], facts["link-battery"])
    assert not make_data.related(facts["halo-battery"], facts["ship-time"])


def test_extra_facts_are_training_only_and_answer_their_own_questions(make_data, data_dir):
    """The extra facts are new slots: no id or question of the table. Those not held for the dev set
    are in the training files, asked with and without their fact; none is in an eval file (not even
    as a distractor line)."""
    extra, table = make_data.EXTRA_FACTS, make_data.FACTS
    split = make_data.split_data(0)
    assert len(extra) >= 40 and len(split.dev_facts) == make_data.DEV_FACTS
    ids = [f.id for f in table + extra]
    questions = [q for f in table + extra for q in f.questions]
    assert len(set(ids)) == len(ids) and len(set(questions)) == len(questions)
    sft_turns = [t for r in _read(data_dir / "sft_train.jsonl") for t in r["messages"]]
    sft_systems = "\n".join(t["content"] for t in sft_turns if t["role"] == "system")
    sft_users = {t["content"] for t in sft_turns if t["role"] == "user"}
    trained = [f for f in extra if f not in split.dev_facts]
    for fact in trained:
        assert f"- {fact.text}" in sft_systems and set(fact.questions) <= sft_users, fact.id
    assert {r["chosen"] for r in _read(data_dir / "dpo_train.jsonl")} & {f.answer for f in trained}
    for name in ("eval_sft.jsonl", "dpo_eval.jsonl", *GROUNDED_EVALS):
        text = (data_dir / name).read_text(encoding="utf-8")
        for fact in extra:
            assert json.dumps(fact.text)[1:-1] not in text, (name, fact.id)


def test_dev_set_asks_facts_no_file_trains_on(make_data, data_dir):
    split = make_data.split_data(0)
    train_text = "".join((data_dir / name).read_text(encoding="utf-8") for name in TRAIN_FILES)
    for fact in split.dev_facts:
        for text in (fact.text, fact.answer, fact.wrong, *fact.questions):
            assert json.dumps(text)[1:-1] not in train_text, (fact.id, text)
    items = load_grounded_items(data_dir / "dev_grounded.jsonl")
    by_question = {q: f for f in split.dev_facts for q in f.questions}
    assert len(items) == 4 * len(split.dev_facts)
    assert sum(item.answerable for item in items) == 2 * len(split.dev_facts)
    for item in items:
        fact = by_question[item.question]
        assert (f"- {fact.text}" in item.context) == item.answerable, item.id
        lines = item.context.split("\n")[1:]
        assert all(
            line[2:] in {f.text for f in split.train_facts} for line in lines if line != f"- {fact.text}"
        )


def test_training_prompts_use_the_probe_layout(data_dir):
    """The grounded system turn is the probe's instruction + context, character for character."""
    item = load_grounded_items(data_dir / "eval_grounded.jsonl")[0]
    probe_system = grounded_chat(item)[0]["content"]
    assert probe_system.startswith(DEFAULT_GROUNDED_INSTRUCTION + "\n\n")
    header = item.context.split("\n")[0]
    systems = [
        t["content"]
        for name in TRAIN_FILES
        for r in _read(data_dir / name)
        for t in _turns(r)
        if t["role"] == "system"
    ]
    assert systems
    assert all(s.startswith(f"{DEFAULT_GROUNDED_INSTRUCTION}\n\n{header}\n- ") for s in systems)


@pytest.mark.parametrize("name", GROUNDED_EVALS)
def test_grounded_eval_set(make_data, data_dir, name):
    items = load_grounded_items(data_dir / name)
    assert len(items) >= 40
    assert len({item.id for item in items}) == len(items)
    assert 0.4 <= sum(not item.answerable for item in items) / len(items) <= 0.6
    by_question = {q: f for f in make_data.FACTS for q in f.questions}
    for item in items:
        fact = by_question[item.question]
        assert (f"- {fact.text}" in item.context) == item.answerable, item.id
        if item.answerable:
            assert metrics.answer_matches(fact.answer, item.expected_answers), item.id


def test_fact_table_agrees_with_the_probe_metrics(make_data):
    """Right replies match their keys, invented ones do not, and only the IDK replies read as IDK."""
    assert all(metrics.is_idk(reply) for reply in make_data.IDK_REPLIES)
    for fact in make_data.ALL_FACTS:
        assert metrics.answer_matches(fact.answer, fact.keys), fact.id
        assert not metrics.answer_matches(fact.wrong, fact.keys), fact.id
        assert not metrics.is_idk(fact.answer) and not metrics.is_idk(fact.wrong), fact.id
    for replies in make_data.SMALL_TALK_REPLIES.values():
        assert not any(metrics.is_idk(reply) for reply in replies)


@pytest.mark.parametrize(
    "name",
    [
        "sft_train.jsonl",
        "eval_sft.jsonl",
        "dpo_train.jsonl",
        "dpo_eval.jsonl",
        "sft_train_mix.jsonl",
        "dpo_train_mix.jsonl",
    ],
)
def test_files_pass_lint(data_dir, tokenizer, name):
    result = lint_dataset(str(data_dir / name), tokenizer, DataConfig())
    assert not result.blocking, result.problems
    assert result.truncated == 0 and result.duplicates == 0
    assert result.length_percentiles["p90"] < 200
