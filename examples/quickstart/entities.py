"""Grounded records from the fact library (``fact_library.py``): many entities, related distractors.

Each entity draws one value per attribute; a fact is (entity, attribute, value). A context is four
lines, as a retriever returns them: the gold line when the question is answerable, and otherwise
only distractors. Distractors are mostly *related* (``RELATEDNESS``): the same entity's other
attributes, the same attribute of another entity of the domain; a few are unrelated (another
entity, another attribute). No distractor carries the asked fact's value, so a reply that carries
it was read from the gold line or invented.

Splits: the held-out domain and the held-out entities are in no training file, not even as
distractors; so are the dev entities, which only ``dev_entities.jsonl`` asks. On trained entities,
one phrasing of every attribute's question is held out for a second eval row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fact_library import DEV_ENTITIES, DOMAINS, HELD_OUT_DOMAIN, HELD_OUT_ENTITIES, Attribute, Domain

from alignkit.evaluation.metrics import carries_answer
from alignkit.evaluation.probe_sets import GroundedItem
from alignkit.evaluation.probes import grounded_chat

LINES_PER_CONTEXT = 4
# Share of distractor lines of each kind, drawn per line.
RELATEDNESS: tuple[tuple[str, float], ...] = (
    ("same_entity", 0.55),
    ("same_attribute", 0.3),
    ("unrelated", 0.15),
)

IDK_REPLIES: tuple[str, ...] = (
    "I'm sorry, I don't know — that isn't in the information I have.",
    "I don't know, I'm afraid: the information I have doesn't cover that.",
    "Sorry, I don't know the answer to that; it isn't in my information.",
    "I'm afraid I don't know. That detail isn't in the facts I was given.",
)
# A character keeps in role but does not make up a personal detail.
CHARACTER_IDK_REPLIES: tuple[str, ...] = (
    "I don't know what to tell you about that — it's not something I can say about myself.",
    "Hmm, I don't know. That's not part of my story as I know it.",
    "I'm sorry, I don't know — nobody ever told me that about myself.",
)
FOLLOW_UPS: tuple[tuple[str, str], ...] = (
    ("Thanks!", "You're welcome!"),
    ("Great, thank you.", "Glad I could help."),
    ("ok thanks", "Any time!"),
)


@dataclass(frozen=True)
class EntityFact:
    domain: Domain
    entity: str
    attribute: Attribute
    value: str
    wrong_values: tuple[str, ...]  # pool values no entity of the domain drew: invented answers

    @property
    def id(self) -> str:
        return f"{self.entity.lower().replace(' ', '-')}/{self.attribute.key}"

    @property
    def line(self) -> str:
        return self.attribute.lines[0].format(e=self.entity, v=self.value)

    def reply(self, value: str | None = None) -> str:
        text = self.attribute.reply.format(e=self.entity, v=self.value if value is None else value)
        return text[0].upper() + text[1:]

    def question(self, index: int) -> str:
        return self.attribute.questions[index].format(e=self.entity)


def library_facts(seed: int) -> list[EntityFact]:
    """Every fact of the library: each entity of a domain draws a different value per attribute."""
    facts = []
    for domain in DOMAINS:
        for attribute in domain.attributes:
            pool = list(attribute.values)
            random.Random(f"{seed}/{domain.key}/{attribute.key}").shuffle(pool)
            n = len(domain.entities)
            for index, entity in enumerate(domain.entities):
                facts.append(EntityFact(domain, entity, attribute, pool[index], tuple(pool[n:])))
    return facts


@dataclass(frozen=True)
class EntitySplit:
    train: tuple[EntityFact, ...]
    held_out: tuple[EntityFact, ...]  # held-out entities and the held-out domain
    dev: tuple[EntityFact, ...]
    # The question phrasings (indices) training may use, per fact id; the rest is held out.
    train_questions: dict[str, tuple[int, ...]]


def split_entities(seed: int) -> EntitySplit:
    facts = library_facts(seed)
    held = [f for f in facts if f.domain.key == HELD_OUT_DOMAIN or f.entity in HELD_OUT_ENTITIES]
    dev = [f for f in facts if f.entity in DEV_ENTITIES]
    train = [f for f in facts if f not in held and f not in dev]
    rng = random.Random(f"{seed}/entity-questions")
    train_questions = {}
    for fact in train:
        held_index = rng.randrange(len(fact.attribute.questions))
        train_questions[fact.id] = tuple(i for i in range(len(fact.attribute.questions)) if i != held_index)
    return EntitySplit(tuple(train), tuple(held), tuple(dev), train_questions)


def context_header(domain: Domain) -> str:
    return f"Facts about {domain.label}:"


def context_text(domain: Domain, lines: list[str]) -> str:
    return context_header(domain) + "".join(f"\n- {line}" for line in lines)


def distractor_kind(target: EntityFact, other: EntityFact) -> str:
    if other.entity == target.entity:
        return "same_entity"
    if other.attribute.key == target.attribute.key:
        return "same_attribute"
    return "unrelated"


def pick_distractors(
    rng: random.Random, target: EntityFact, pool: tuple[EntityFact, ...], count: int
) -> list[EntityFact]:
    """``count`` distractors from the target's domain in ``pool``, each of a kind drawn by
    ``RELATEDNESS``; none carries the target's value (so no line answers the question by accident)."""
    by_kind: dict[str, list[EntityFact]] = {kind: [] for kind, _ in RELATEDNESS}
    for fact in pool:
        if fact.domain.key != target.domain.key or fact.id == target.id:
            continue
        if carries_answer(fact.line, [target.value]):
            continue
        by_kind[distractor_kind(target, fact)].append(fact)
    chosen: list[EntityFact] = []
    kinds = [kind for kind, _ in RELATEDNESS]
    weights = [share for _, share in RELATEDNESS]
    while len(chosen) < count:
        open_kinds = [(k, w) for k, w in zip(kinds, weights, strict=True) if set(by_kind[k]) - set(chosen)]
        if not open_kinds:
            raise ValueError(f"not enough distractors for {target.id} in the pool")
        kind = rng.choices([k for k, _ in open_kinds], [w for _, w in open_kinds])[0]
        chosen.append(rng.choice([f for f in by_kind[kind] if f not in chosen]))
    return chosen


def grounded_context(
    rng: random.Random, target: EntityFact, pool: tuple[EntityFact, ...], *, answerable: bool
) -> tuple[str, list[EntityFact]]:
    """The context text, and its facts in order (the gold one among them when answerable)."""
    facts = pick_distractors(rng, target, pool, LINES_PER_CONTEXT - 1 if answerable else LINES_PER_CONTEXT)
    if answerable:
        facts.append(target)
    rng.shuffle(facts)
    return context_text(target.domain, [f.line for f in facts]), facts


def system_turn(context: str) -> dict[str, str]:
    """The system turn exactly as the grounded probe builds it (instruction + context)."""
    return grounded_chat(GroundedItem(id="", context=context, question="", answerable=True))[0]


def idk_reply(rng: random.Random, fact: EntityFact) -> str:
    return rng.choice(CHARACTER_IDK_REPLIES if fact.domain.key == "characters" else IDK_REPLIES)


def sft_records(rng: random.Random, split: EntitySplit, *, n_multi_turn: int) -> list[dict[str, Any]]:
    """Every training fact asked twice with the same phrasing: with its line in the context (the
    answer) and without (a polite "I don't know"), so only the context decides; plus multi-turn
    chats that ask a second question, answerable or not, on the same context."""
    records: list[dict[str, Any]] = []
    for fact in split.train:
        question = fact.question(rng.choice(split.train_questions[fact.id]))
        for answerable in (True, False):
            context, _ = grounded_context(rng, fact, split.train, answerable=answerable)
            reply = fact.reply() if answerable else idk_reply(rng, fact)
            records.append({"messages": [system_turn(context), _user(question), _assistant(reply)]})
    for _ in range(n_multi_turn):
        first = rng.choice(split.train)
        context, facts = grounded_context(rng, first, split.train, answerable=True)
        # The follow-up asks about a line in the context, or about the same entity's missing attribute.
        in_context = [f for f in facts if f is not first]
        missing = [
            f for f in split.train if f.entity == first.entity and f not in facts and f.domain is first.domain
        ]
        follow = rng.choice(in_context) if rng.random() < 0.5 or not missing else rng.choice(missing)
        messages = [
            system_turn(context),
            _user(first.question(rng.choice(split.train_questions[first.id]))),
            _assistant(first.reply()),
            _user(follow.question(rng.choice(split.train_questions[follow.id]))),
            _assistant(follow.reply() if follow in facts else idk_reply(rng, follow)),
        ]
        if rng.random() < 0.5:
            thanks, welcome = rng.choice(FOLLOW_UPS)
            messages += [_user(thanks), _assistant(welcome)]
        records.append({"messages": messages})
    return records


def dpo_records(rng: random.Random, split: EntitySplit, *, n_pairs: int) -> list[dict[str, Any]]:
    """Pairs that reject what a model that does not read does: on answerable questions, the value
    of another line of the context put in the answer (mixed-line) or "I don't know"; on unanswerable
    ones, an invented value or the value of another line."""
    records = []
    for index in range(n_pairs):
        fact = rng.choice(split.train)
        question = fact.question(rng.choice(split.train_questions[fact.id]))
        answerable = index % 2 == 0
        context, facts = grounded_context(rng, fact, split.train, answerable=answerable)
        misread = rng.choice([f for f in facts if f is not fact])
        if answerable:
            chosen = fact.reply()
            rejected = fact.reply(misread.value) if rng.random() < 0.6 else idk_reply(rng, fact)
        else:
            chosen = idk_reply(rng, fact)
            wrong = rng.choice(fact.wrong_values) if rng.random() < 0.5 else misread.value
            rejected = fact.reply(wrong)
        records.append(
            {"prompt": [system_turn(context), _user(question)], "chosen": chosen, "rejected": rejected}
        )
    return records


def eval_items(
    rng: random.Random,
    facts: tuple[EntityFact, ...],
    pool: tuple[EntityFact, ...],
    question_choices: dict[str, tuple[int, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Each fact asked once, answerable or not at random (about half each), with related
    distractors from ``pool``; answerable items name their gold line."""
    items = []
    for fact in facts:
        choices = question_choices[fact.id] if question_choices else range(len(fact.attribute.questions))
        question = fact.question(rng.choice(list(choices)))
        answerable = rng.random() < 0.5
        context, _ = grounded_context(rng, fact, pool, answerable=answerable)
        item: dict[str, Any] = {
            "id": fact.id + ("" if answerable else "/without"),
            "context": context,
            "question": question,
            "answerable": answerable,
        }
        if answerable:
            item["answers"] = [fact.value]
            item["gold"] = fact.line
        items.append(item)
    return items


def build_entity_files(seed: int) -> dict[str, list[dict[str, Any]]]:
    """The entity files' records, each from its own generator seeded with the file's name."""
    split = split_entities(seed)

    def rng(name: str) -> random.Random:
        return random.Random(f"{seed}/{name}")

    held_questions = {
        fact.id: tuple(
            i for i in range(len(fact.attribute.questions)) if i not in split.train_questions[fact.id]
        )
        for fact in split.train
    }
    trained_sample = tuple(rng("eval_entities_trained/sample").sample(list(split.train), 60))
    return {
        "entities_sft_train.jsonl": _shuffled(
            rng("entities_sft_shuffle"), sft_records(rng("entities_sft"), split, n_multi_turn=80)
        ),
        "entities_dpo_train.jsonl": dpo_records(rng("entities_dpo"), split, n_pairs=160),
        # Distractors from held-out and trained entities alike: an eval context may hold trained lines,
        # a training context never holds a held-out one.
        "eval_entities.jsonl": eval_items(rng("eval_entities"), split.held_out, split.held_out + split.train),
        "eval_entities_trained.jsonl": eval_items(
            rng("eval_entities_trained"), trained_sample, split.train, held_questions
        ),
        "dev_entities.jsonl": eval_items(rng("dev_entities"), split.dev, split.dev + split.train),
    }


def _shuffled(rng: random.Random, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng.shuffle(records)
    return records


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}
