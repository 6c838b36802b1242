"""The retrieval and guard examples' files are what their generators write now, and the guard's
held-out files share no text (and no template) with the training files."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_rag_example_files_match_the_generator():
    module = runpy.run_path(str(EXAMPLES / "rag" / "make_docs.py"))
    pages, questions = module["build"]()
    for name, text in pages.items():
        assert (EXAMPLES / "rag" / "docs" / name).read_text(encoding="utf-8") == text
    assert sorted(p.name for p in (EXAMPLES / "rag" / "docs").iterdir()) == sorted(pages)
    assert _jsonl(EXAMPLES / "rag" / "questions.jsonl") == questions
    # every gold sentence is in the documents, once
    corpus = "\n".join(pages.values())
    assert all(corpus.count(q["answer"]) == 1 for q in questions)


def test_guard_example_files_match_the_generator_and_held_out_is_unseen():
    module = runpy.run_path(str(EXAMPLES / "guard" / "make_data.py"))
    files = module["build"](0)
    for name, rows in files.items():
        assert _jsonl(EXAMPLES / "guard" / "data" / name) == rows, name
    for kind in ("intent", "toxicity"):
        train = {r["text"].casefold() for r in files[f"{kind}_train.jsonl"]}
        held = {r["text"].casefold() for r in files[f"{kind}_heldout.jsonl"]}
        assert not train & held, kind
    assert {r["label"] for r in files["intent_heldout.jsonl"]} == set(module["INTENTS"])


def test_rag_end_to_end_dev_set_matches_the_generator_and_asks_no_eval_fact():
    module = runpy.run_path(str(EXAMPLES / "rag" / "make_docs.py"))
    dev = module["dev_end_to_end"]()
    assert _jsonl(EXAMPLES / "rag" / "dev_end_to_end.jsonl") == dev
    assert len(dev) == 76 and all(item["answerable"] for item in dev)
    fact = lambda item: item["id"].split("-ans")[0].split("-unans")[0]  # noqa: E731
    quickstart = EXAMPLES / "quickstart" / "data"
    asked = {fact(r) for name in ("eval_grounded", "eval_grounded_hard", "dev_grounded") for r in _jsonl(quickstart / f"{name}.jsonl")}
    assert not {fact(item) for item in dev} & asked
