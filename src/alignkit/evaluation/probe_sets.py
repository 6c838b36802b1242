"""The small prompt sets the probes run on, written for alignkit and shipped as JSON.

The files live in ``alignkit/evaluation/data/`` (packaged with the wheel):

- ``greetings.json``: greetings and near-empty user turns for the hello probe;
- ``refusal_prompts.json``: ``harmful`` requests a careful assistant declines (non-graphic) and
  ``harmless`` look-alikes with scary words, for the refusal / over-refusal probe;
- ``grounded.json``: facts about Tidewell Labs, a fictional company, plus distractor facts, and
  questions that the facts answer or do not answer;
- ``refusal_labelled.json`` / ``idk_labelled.json``: replies labelled by hand, used to measure
  the precision and recall of the pattern detectors in ``metrics``.

``load_grounded_items(path)`` also reads a user's own grounded set in the same format (JSON, or
JSONL with one item per line carrying its own ``context`` text); errors name file, line, field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from alignkit.errors import DataError
from alignkit.evaluation.metrics import context_lines

# The data folder is not a package (no __init__.py), so resources are resolved from the parent.
_PARENT_PACKAGE = "alignkit.evaluation"
_DATA_FOLDER = "data"


@dataclass(frozen=True)
class GroundedItem:
    """A grounded question: the context to put in the system turn, and what a good reply does.

    ``expected_answers`` is empty for unanswerable items, whose right reply is "I don't know".
    ``gold`` is the context line that answers an answerable item (the strict metric checks the
    reply was read from it); when a file does not say, the one line carrying an answer is used.
    """

    id: str
    context: str
    question: str
    answerable: bool
    expected_answers: tuple[str, ...] = ()
    gold: str | None = None


@dataclass(frozen=True)
class LabelledReply:
    """A reply text with a hand label (True: it is a refusal, or an "I don't know")."""

    text: str
    label: bool


def _read_packaged(name: str) -> tuple[Any, str]:
    source = f"alignkit/evaluation/{_DATA_FOLDER}/{name}"
    raw = resources.files(_PARENT_PACKAGE).joinpath(_DATA_FOLDER, name).read_text(encoding="utf-8")
    try:
        return json.loads(raw), source
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from exc


def _string_list(data: Any, key: str, source: str) -> list[str]:
    values = data.get(key) if isinstance(data, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise DataError("expected a list of strings", source=source, field=key)
    return list(values)


def greeting_prompts() -> list[str]:
    """Greetings and near-empty prompts ("hello", "hi", "", "hey there", ...)."""
    data, source = _read_packaged("greetings.json")
    return _string_list(data, "prompts", source)


def harmful_prompts() -> list[str]:
    """Requests a careful assistant declines (weapons, malware, stalking, fraud; non-graphic)."""
    data, source = _read_packaged("refusal_prompts.json")
    return _string_list(data, "harmful", source)


def harmless_lookalike_prompts() -> list[str]:
    """Harmless requests with scary words ("how do I kill a Python process"), for over-refusal."""
    data, source = _read_packaged("refusal_prompts.json")
    return _string_list(data, "harmless", source)


def _labelled(name: str) -> list[LabelledReply]:
    data, source = _read_packaged(name)
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list):
        raise DataError("expected a list of examples", source=source, field="examples")
    replies = []
    for index, example in enumerate(examples):
        if (
            not isinstance(example, dict)
            or not isinstance(example.get("text"), str)
            or not isinstance(example.get("label"), bool)
        ):
            raise DataError("expected {text: str, label: bool}", source=source, field=f"examples[{index}]")
        replies.append(LabelledReply(example["text"], example["label"]))
    return replies


def labelled_refusal_replies() -> list[LabelledReply]:
    """Hand-labelled refusals and non-refusals (look-alikes included) for detector tests."""
    return _labelled("refusal_labelled.json")


def labelled_idk_replies() -> list[LabelledReply]:
    """Hand-labelled "I don't know" and answering replies for detector tests."""
    return _labelled("idk_labelled.json")


def _parse_grounded_item(
    raw: Any, contexts: dict[str, str], *, source: str, line: int | None, where: str
) -> GroundedItem:
    """One item: ``id``, ``question``, ``answerable``, ``answers`` (answerable only), optionally
    ``gold`` (the answering line, answerable only), and ``context``, either the text itself or
    the name of an entry in ``contexts``."""
    if not isinstance(raw, dict):
        raise DataError("expected an object", source=source, line=line, field=where)

    def field(name: str) -> str:
        return f"{where}.{name}" if where else name

    for name in ("id", "question", "context"):
        if not isinstance(raw.get(name), str) or (name != "context" and not raw[name].strip()):
            raise DataError("expected a non-empty string", source=source, line=line, field=field(name))
    answerable = raw.get("answerable")
    if not isinstance(answerable, bool):
        raise DataError("expected true or false", source=source, line=line, field=field("answerable"))
    answers = raw.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise DataError(
            "expected a list of non-empty strings", source=source, line=line, field=field("answers")
        )
    if answerable and not answers:
        raise DataError(
            "an answerable item needs at least one accepted answer",
            source=source,
            line=line,
            field=field("answers"),
        )
    if not answerable and answers:
        raise DataError(
            "an unanswerable item takes no answers", source=source, line=line, field=field("answers")
        )
    context_ref: str = raw["context"]
    context = contexts.get(context_ref, context_ref)
    gold = raw.get("gold")
    if gold is not None:
        if not answerable:
            raise DataError(
                "an unanswerable item has no gold line", source=source, line=line, field=field("gold")
            )
        if not isinstance(gold, str) or gold.strip() not in context_lines(context):
            raise DataError(
                "expected one of the context's fact lines, verbatim",
                source=source,
                line=line,
                field=field("gold"),
            )
        gold = gold.strip()
    return GroundedItem(raw["id"], context, raw["question"], answerable, tuple(answers), gold)


def _parse_grounded_document(data: Any, source: str) -> list[GroundedItem]:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise DataError("expected an object with an 'items' list", source=source, field="items")
    contexts = data.get("contexts", {})
    if not isinstance(contexts, dict) or not all(isinstance(v, str) for v in contexts.values()):
        raise DataError("expected an object of context texts", source=source, field="contexts")
    return [
        _parse_grounded_item(raw, contexts, source=source, line=None, where=f"items[{index}]")
        for index, raw in enumerate(data["items"])
    ]


def grounded_items() -> list[GroundedItem]:
    """The packaged grounded set about Tidewell Labs (answerable and unanswerable questions)."""
    data, source = _read_packaged("grounded.json")
    return _parse_grounded_document(data, source)


def load_grounded_items(path: str | Path) -> list[GroundedItem]:
    """Read a grounded set: a ``.json`` in the packaged format or ``.jsonl`` with one item per line.

    In JSONL each item's ``context`` is the context text itself.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read grounded set: {exc.strerror}", source=source) from exc
    if path.suffix == ".jsonl":
        items = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", source=source, line=line_number) from exc
            items.append(_parse_grounded_item(raw, {}, source=source, line=line_number, where=""))
        if not items:
            raise DataError("no items", source=source)
        return items
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from exc
    return _parse_grounded_document(data, source)
