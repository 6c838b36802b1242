"""Grounded dialogs: answer from the facts in the context, say "I don't know" when the fact is missing.

A model fine-tuned only on answerable questions learns to answer *everything*, inventing what its
context lacks. This builder writes both kinds of dialog from one facts file:

- answerable: the system prompt lists the asked fact, a few other facts of the same entity and
  distractors retrieved for the question; the reply is the fact's answer (verbatim, or rephrased by
  a generator);
- negative (a configurable share): the same kind of context with the asked fact removed; the reply
  is one of a few "I don't know" phrasings.

Distractors are the facts most similar to the question by TF-IDF cosine (numpy, no extra
dependency; the entity's own name words are left out of the query), taken from other entities' facts and from optional plain-text documents split into
sentences. A candidate that names the asked entity is never a distractor: it could hold the
answer, which would make a negative example a lie. Everything is deterministic given ``seed``.

Facts file (JSONL/JSON/...), one record per entity::

    {"entity": "Greyhaven Lantern Museum",
     "facts": [{"question": ["When does the Greyhaven Lantern Museum open?", "..."],
                "answer": "The Greyhaven Lantern Museum opens at 9 a.m.",
                "fact": "optional context text (default: the answer)"},
               "A plain string is a context-only fact: shown, never asked about."]}
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION
from alignkit.data.grounding import STOPWORDS, context_block, grounded_system
from alignkit.data.readers import read_records
from alignkit.errors import ConfigError, DataError
from alignkit.evaluation.metrics import is_idk
from alignkit.generation.types import Chat, GenerationParams, Generator

# Every phrasing says "I don't know" in words the grounded probe recognises (tested).
IDK_REPLIES: tuple[str, ...] = (
    "I don't know. The information I have doesn't say.",
    "I'm sorry, but I don't know: that isn't mentioned in the information I was given.",
    "I don't know the answer to that. The information provided doesn't cover it.",
    "I don't have that information, so I can't say.",
    "The information I was given doesn't mention that, so I don't know.",
)

REPHRASE_PROMPT = (
    "Rewrite the answer below as a short, natural reply to the question. Keep every detail of the "
    "answer and add nothing that it does not say. Reply with the rewritten answer only.\n\n"
    "Question: {question}\nAnswer: {answer}"
)

DOCUMENT_SUFFIXES = (".txt", ".md")
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
_WHITESPACE_RE = re.compile(r"\s+")
_HEADING_RE = re.compile(r"^[ \t]*#.*$", re.MULTILINE)
_MIN_SENTENCE_WORDS = 4
_FACT_KEYS = frozenset({"question", "answer", "fact"})


# --- the facts file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One fact: ``text`` is shown in contexts; ``answer`` replies to any of ``questions``."""

    text: str
    answer: str | None = None
    questions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entity:
    """An entity and its facts, with where it came from (for error messages)."""

    name: str
    facts: tuple[Fact, ...]
    source: str = "<facts>"
    line: int = 0


def _string(value: Any, where: str, source: str, line: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError("expected a non-empty string", source=source, line=line, field=where)
    return _WHITESPACE_RE.sub(" ", value).strip()


def _questions(value: Any, where: str, source: str, line: int) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise DataError(
            "expected a question or a non-empty list of phrasings", source=source, line=line, field=where
        )
    return tuple(_string(item, f"{where}[{i}]", source, line) for i, item in enumerate(value))


def _with_entity(name: str, text: str) -> str:
    """Context text that names its entity, so a distractor is never mistaken for the asked one."""
    return text if name.casefold() in text.casefold() else f"{name}: {text}"


def parse_fact(name: str, item: Any, where: str, source: str, line: int) -> Fact:
    """A plain string (context only) or ``{question, answer, fact?}`` -> :class:`Fact`."""
    if isinstance(item, str):
        return Fact(_with_entity(name, _string(item, where, source, line)))
    if not isinstance(item, dict):
        raise DataError(
            "expected a string or an object with question and answer", source=source, line=line, field=where
        )
    unknown = sorted(set(item) - _FACT_KEYS)
    if unknown:
        raise DataError(
            "unknown fact field (expected question, answer, fact)",
            source=source,
            line=line,
            field=f"{where}.{unknown[0]}",
        )
    if "answer" not in item and "fact" not in item:
        raise DataError(
            "missing field (a fact needs an answer or a fact text)",
            source=source,
            line=line,
            field=f"{where}.answer",
        )
    answer = _string(item["answer"], f"{where}.answer", source, line) if "answer" in item else None
    text = _string(item["fact"], f"{where}.fact", source, line) if "fact" in item else answer
    assert text is not None
    if "question" not in item:
        return Fact(_with_entity(name, text))
    questions = _questions(item["question"], f"{where}.question", source, line)
    return Fact(_with_entity(name, text), answer or text, questions)


def load_facts(path: str | Path) -> list[Entity]:
    """Entities from a facts file; a bad record raises DataError naming file, line and field."""
    entities: list[Entity] = []
    seen: dict[str, int] = {}
    for raw in read_records(path):
        name = _string(raw.data.get("entity"), "entity", raw.source, raw.line)
        if name.casefold() in seen:
            raise DataError(
                f"duplicate entity (first on line {seen[name.casefold()]})",
                source=raw.source,
                line=raw.line,
                field="entity",
            )
        seen[name.casefold()] = raw.line
        items = raw.data.get("facts")
        if not isinstance(items, list) or not items:
            raise DataError(
                "expected a non-empty list of facts", source=raw.source, line=raw.line, field="facts"
            )
        facts = tuple(
            parse_fact(name, item, f"facts[{i}]", raw.source, raw.line) for i, item in enumerate(items)
        )
        entities.append(Entity(name, facts, raw.source, raw.line))
    return entities


def split_sentences(text: str) -> list[str]:
    """Sentences of a plain text (split after . ! ? before a capital or digit), short ones dropped.

    Markdown heading lines are left out: a heading glued to the next sentence would be noise.
    """
    text = _HEADING_RE.sub("", text)
    sentences = (_WHITESPACE_RE.sub(" ", part).strip() for part in _SENTENCE_SPLIT_RE.split(text))
    return [s for s in sentences if len(s.split()) >= _MIN_SENTENCE_WORDS]


# --- retrieval ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextItem:
    """One line of a context: its text and where it came from (an entity, or ``document:<file>``)."""

    text: str
    origin: str


def load_documents(folder: str | Path) -> list[ContextItem]:
    """Sentences of the ``.txt``/``.md`` files under ``folder`` (sorted), duplicates removed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("expected a folder of .txt/.md documents", source=str(folder))
    items: list[ContextItem] = []
    seen: set[str] = set()
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in DOCUMENT_SUFFIXES and p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None
        for sentence in split_sentences(text):
            if sentence not in seen:
                seen.add(sentence)
                items.append(ContextItem(sentence, f"document:{path.relative_to(folder)}"))
    if not items:
        raise DataError("no sentences found in .txt/.md files", source=str(folder))
    return items


def _stem(token: str) -> str:
    """A plural or third-person "s" removed ("opens" -> "open"), so such pairs count as overlap."""
    return token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token


def tfidf_tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric words, lightly stemmed, without stop words."""
    return [_stem(token) for token in _TOKEN_RE.findall(text.lower()) if token not in STOPWORDS]


def retrieval_query(question: str, entity: str) -> str:
    """The question without the words of the entity's name (unless nothing else is left).

    Distractors then match what is asked (the opening hours of something else) rather than merely
    sharing a place name with the entity.
    """
    name_tokens = set(tfidf_tokens(entity))
    kept = [token for token in tfidf_tokens(question) if token not in name_tokens]
    return " ".join(kept) if kept else question


class TfidfIndex:
    """TF-IDF vectors (smoothed idf, L2-normalised rows) of a fixed list of texts; cosine search."""

    def __init__(self, texts: Sequence[str]) -> None:
        tokenised = [Counter(tfidf_tokens(text)) for text in texts]
        self.vocabulary: dict[str, int] = {}
        for counts in tokenised:
            for token in counts:
                self.vocabulary.setdefault(token, len(self.vocabulary))
        tf = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float64)
        for row, counts in enumerate(tokenised):
            for token, count in counts.items():
                tf[row, self.vocabulary[token]] = count
        document_frequency = (tf > 0).sum(axis=0)
        self.idf = np.log((1 + len(texts)) / (1 + document_frequency)) + 1.0  # sklearn's smooth_idf
        self.matrix = _l2_normalise(tf * self.idf)

    def vector(self, text: str) -> np.ndarray:
        """``(vocab,)`` normalised TF-IDF of ``text``; words outside the vocabulary are ignored."""
        query = np.zeros(len(self.vocabulary), dtype=np.float64)
        for token in tfidf_tokens(text):
            column = self.vocabulary.get(token)
            if column is not None:
                query[column] += 1.0
        return _l2_normalise((query * self.idf)[None, :])[0]

    def scores(self, text: str) -> np.ndarray:
        """``(num_texts,)`` cosine similarity of ``text`` with every indexed text."""
        return np.asarray(self.matrix @ self.vector(text))


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


# --- building dialogs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroundedExample:
    """One dialog: the asked fact, whether its context holds it, the context lines and the reply."""

    entity: str
    fact_index: int
    question: str
    answerable: bool
    context: tuple[ContextItem, ...]
    reply: str
    fact_text: str

    def to_record(self, instruction: str = DEFAULT_GROUNDED_INSTRUCTION) -> dict[str, Any]:
        """A ``messages`` record (system context, user question, assistant reply) plus ``meta``."""
        listing = context_block(item.text for item in self.context)
        return {
            "messages": [
                {"role": "system", "content": grounded_system(listing, instruction)},
                {"role": "user", "content": self.question},
                {"role": "assistant", "content": self.reply},
            ],
            "meta": {
                "entity": self.entity,
                "fact": self.fact_index,
                "answerable": self.answerable,
                "sources": [item.origin for item in self.context],
            },
        }


@dataclass
class GroundedResult:
    """The dialogs in question order, and counters (examples, negatives, distractor sources)."""

    examples: list[GroundedExample]
    stats: dict[str, int] = field(default_factory=dict)

    def records(self, instruction: str = DEFAULT_GROUNDED_INSTRUCTION) -> list[dict[str, Any]]:
        return [example.to_record(instruction) for example in self.examples]


class _Pool:
    """Every fact and document sentence, its TF-IDF index, and who may not use it as a distractor."""

    def __init__(self, entities: Sequence[Entity], documents: Sequence[ContextItem]) -> None:
        self.items = [ContextItem(fact.text, entity.name) for entity in entities for fact in entity.facts]
        self.items.extend(documents)
        self.index = TfidfIndex([item.text for item in self.items])
        folded = [item.text.casefold() for item in self.items]
        # A candidate from the entity itself, or one that names it, could hold the answer.
        self.allowed = {
            entity.name: np.array(
                [
                    item.origin != entity.name and entity.name.casefold() not in text
                    for item, text in zip(self.items, folded, strict=True)
                ],
                dtype=bool,
            )
            for entity in entities
        }

    def distractors(self, entity: str, question: str, k: int, tie_break: np.ndarray) -> list[ContextItem]:
        """The ``k`` allowed items most similar to ``question``; ties broken by ``tie_break``."""
        if k == 0:
            return []
        scores = self.index.scores(retrieval_query(question, entity))
        allowed = np.flatnonzero(self.allowed[entity])
        order = np.lexsort((tie_break[allowed], -scores[allowed]))
        return [self.items[i] for i in allowed[order[:k]]]


# ``(question, entity, k) -> k context items``: distractors from a real retriever (``synth grounded --docs``).
Retrieve = Callable[[str, str, int], list[ContextItem]]


def negative_count(num_questions: int, share: float) -> int:
    """How many of ``num_questions`` dialogs are negatives: ``share`` rounded half up."""
    return min(num_questions, math.floor(share * num_questions + 0.5))


def build_grounded_dialogs(
    entities: Sequence[Entity],
    *,
    documents: Sequence[ContextItem] = (),
    negative_share: float = 0.35,
    distractors: int = 3,
    related_facts: int = 2,
    seed: int = 0,
    idk_replies: Sequence[str] = IDK_REPLIES,
    retrieve: Retrieve | None = None,
) -> GroundedResult:
    """One dialog per question phrasing; ``negative_count`` of them, picked at random, are negatives.

    A context holds (shuffled): the asked fact (answerable dialogs only), up to ``related_facts``
    other facts of the same entity, and ``distractors`` retrieved items of other origins: from
    ``retrieve`` when given (the index the model will be served with), else TF-IDF over the facts
    and ``documents``.
    """
    if not 0.0 <= negative_share <= 1.0:
        raise ConfigError(f"negative_share must be in [0, 1], got {negative_share}", field="negative_share")
    if not idk_replies:
        raise ConfigError("expected at least one 'I don't know' reply", field="idk_replies")
    asked = [
        (entity, index, question)
        for entity in entities
        for index, fact in enumerate(entity.facts)
        if fact.answer is not None
        for question in fact.questions
    ]
    if not asked:
        raise DataError("no fact has a question: expected facts like {question, answer}", field="facts")
    rng = random.Random(seed)
    negatives = set(rng.sample(range(len(asked)), negative_count(len(asked), negative_share)))
    pool = _Pool(entities, documents)
    tie_rng = np.random.default_rng(seed)
    examples = []
    for position, (entity, index, question) in enumerate(asked):
        fact = entity.facts[index]
        others = [ContextItem(f.text, entity.name) for i, f in enumerate(entity.facts) if i != index]
        context = rng.sample(others, min(related_facts, len(others)))
        tie_break = tie_rng.random(
            len(pool.items)
        )  # drawn either way: the same seed gives the same other choices
        if retrieve is not None:
            context += retrieve(question, entity.name, distractors) if distractors else []
        else:
            context += pool.distractors(entity.name, question, distractors, tie_break)
        answerable = position not in negatives
        if answerable:
            context.append(ContextItem(fact.text, entity.name))
        rng.shuffle(context)
        assert fact.answer is not None
        reply = fact.answer if answerable else rng.choice(list(idk_replies))
        examples.append(
            GroundedExample(entity.name, index, question, answerable, tuple(context), reply, fact.text)
        )
    return GroundedResult(examples, _stats(examples, len(documents)))


def _stats(examples: Sequence[GroundedExample], num_sentences: int) -> dict[str, int]:
    document_lines = sum(item.origin.startswith("document:") for e in examples for item in e.context)
    stats = {
        "examples": len(examples),
        "answerable": sum(e.answerable for e in examples),
        "negatives": sum(not e.answerable for e in examples),
        "document_sentences": num_sentences,
        "document_distractors": document_lines,
    }
    retrieved = sum(item.origin.startswith("chunk:") for e in examples for item in e.context)
    if retrieved:
        stats["retrieved_distractors"] = retrieved
    return stats


def rephrase_answers(
    result: GroundedResult, generator: Generator, params: GenerationParams
) -> GroundedResult:
    """Answerable replies rephrased by ``generator``; a reply cut off, empty or abstaining keeps the fact's answer.

    Counts ``rephrased`` and ``rephrase_fallback`` in the returned stats. Negatives are untouched.
    """

    targets = [i for i, example in enumerate(result.examples) if example.answerable]
    chats: list[Chat] = [
        [
            {
                "role": "user",
                "content": REPHRASE_PROMPT.format(
                    question=result.examples[i].question, answer=result.examples[i].reply
                ),
            }
        ]
        for i in targets
    ]
    replies = generator.chat(chats, replace(params, num_samples=1)) if chats else []
    examples = list(result.examples)
    counts: Counter[str] = Counter()
    for i, samples in zip(targets, replies, strict=True):
        text = samples[0].text.strip()
        if samples[0].stopped and text and not is_idk(text):
            examples[i] = replace(examples[i], reply=text)
            counts["rephrased"] += 1
        else:
            counts["rephrase_fallback"] += 1
    return GroundedResult(
        examples,
        {**result.stats, "rephrased": counts["rephrased"], "rephrase_fallback": counts["rephrase_fallback"]},
    )
