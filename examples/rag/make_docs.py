"""Writes the retrieval example: help-centre pages about Ferrox built from the quickstart's fact table,
and question -> gold-fact pairs to measure retrieval on.

Pages of ``FACTS_PER_PAGE`` facts in table order (so a page mixes topics, and a chunk of 64 tokens
holds a few facts: retrieval has to pick the right one among about forty). Questions are the last two phrasings of every fact (the retrieval code
was not tuned on them); the gold is the fact's sentence, which the right chunk contains whatever the
chunk size.

``dev_end_to_end.jsonl``: a dev set for the grounded probe end to end (question -> retrieve ->
answer), larger than the quickstart's 24 answerable dev items: every quickstart *extra training*
fact (the ones no eval or dev file of the quickstart asks about) asked with its first two phrasings,
answerable, with gold contexts drawn the way the quickstart's dev set draws them (seeded). Settings
of the end-to-end probe are chosen on it; the quickstart's eval_grounded.jsonl stays the test.

    .venv/bin/python examples/rag/make_docs.py --out examples/rag
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FACTS_PER_PAGE = 12


def _quickstart():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(HERE.parent / "quickstart"))
    import make_data  # type: ignore[import-not-found]

    return make_data


def _quickstart_facts():  # type: ignore[no-untyped-def]
    return _quickstart().ALL_FACTS


def dev_end_to_end(seed: int = 0) -> list[dict]:
    """Answerable grounded-probe items on the extra training facts (see the module docstring)."""
    make_data = _quickstart()
    split = make_data.split_data(seed)
    asked = {f.id for f in split.dev_facts} | {f.id for f in make_data.FACTS}  # the quickstart's dev and eval facts
    rng = make_data.file_rng(seed, "rag_dev_end_to_end")
    items = []
    for fact in make_data.EXTRA_FACTS:
        if fact.id in asked:
            continue
        for index, question in enumerate(fact.questions[:2]):
            item = make_data._eval_item(rng, fact, question, True, False, pool=split.train_facts)
            items.append({**item, "id": f"{item['id']}-{index}"})
    return items


def build() -> tuple[dict[str, str], list[dict[str, str]]]:
    """``{file name: page text}`` and the question records."""
    facts = list(_quickstart_facts())
    questions = [
        {"id": fact.id, "question": question, "answer": fact.text}
        for fact in facts
        for question in fact.questions[-2:]
    ]
    pages = {}
    for page, first in enumerate(range(0, len(facts), FACTS_PER_PAGE), start=1):
        texts = [fact.text for fact in facts[first : first + FACTS_PER_PAGE]]
        pages[f"help-{page:02d}.md"] = f"# Ferrox help centre, page {page}\n\n" + "\n\n".join(texts) + "\n"
    return pages, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    pages, questions = build()
    docs = args.out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (docs / name).write_text(text, encoding="utf-8")
    lines = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions)
    (args.out / "questions.jsonl").write_text(lines, encoding="utf-8")
    dev = dev_end_to_end()
    (args.out / "dev_end_to_end.jsonl").write_text(
        "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in dev), encoding="utf-8"
    )
    print(f"{len(pages)} pages, {len(questions)} questions, {len(dev)} end-to-end dev items -> {args.out}")


if __name__ == "__main__":
    main()
