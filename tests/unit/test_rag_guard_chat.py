"""Retrieval and the guard around a chat turn: the block paths (input, output), the grounded system
turn the model receives, citations; and ``alignkit chat`` with both on the tiny model."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("sklearn")
pytest.importorskip("vaderSentiment")

from alignkit.config.rag import RagUseConfig  # noqa: E402
from alignkit.data.grounding import context_block, grounded_system  # noqa: E402
from alignkit.guard.checks import Guard  # noqa: E402
from alignkit.guard.classifier import train_classifier  # noqa: E402
from alignkit.guard.turn import CONTENT_FILTER, guarded_turn  # noqa: E402
from alignkit.retrieval.documents import read_documents  # noqa: E402
from alignkit.retrieval.index import build_index  # noqa: E402
from alignkit.retrieval.search import Retriever  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TOXIC = [
    "you stupid idiot",
    "shut up moron",
    "you are a useless idiot",
    "go away you moron",
    "idiot bot",
    "stupid moron company",
]
BENIGN = [
    "how long is the coil cable",
    "do you ship to spain",
    "kill the app process",
    "my lock died",
    "battery is dead",
    "what does the halo cost",
    "great lock, thanks",
    "where is my order",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("rag_guard")
    docs = root / "docs"
    docs.mkdir()
    (docs / "locks.md").write_text("The Ferrox Coil cable is 120 cm long.\n\nThe Ferrox Halo costs $69.\n")
    (docs / "ship.txt").write_text("Shipping is free on orders over $50.")
    build_index(
        read_documents([docs]),
        root / "index",
        tokenizer,
        chunk_tokens=12,
        overlap_tokens=2,
        tokenizer_name="embedded",
    )
    texts = TOXIC + BENIGN
    labels = ["toxic"] * len(TOXIC) + ["benign"] * len(BENIGN)
    train_classifier(texts, labels, cv_folds=3, out_of_scope_label=None, positive_label="toxic").save(
        root / "tox"
    )
    guard_path = root / "guard.yaml"
    guard_path.write_text(
        yaml.safe_dump(
            {
                "refusal": "I can't help with that.",
                "input": [
                    {
                        "name": "toxic_prompt",
                        "check": "toxicity",
                        "classifier": "tox",
                        "label": "toxic",
                        "threshold": 0.5,
                    }
                ],
                "output": [{"name": "grounded", "check": "grounding", "threshold": 0.5}],
            }
        )
    )
    return root, Retriever(root / "index"), Guard.from_file(guard_path)


def test_the_model_sees_the_grounded_format_and_the_reply_cites_sources(setup):
    _, retriever, guard = setup
    seen = []

    def generate(messages):
        seen.append(messages)
        return "The Ferrox Coil cable is 120 cm long.", "stop"

    rag = RagUseConfig(index=str(retriever.folder), top_k=2, mode="lexical")
    result = guarded_turn(
        [{"role": "user", "content": "How long is the Coil cable?"}],
        generate,
        retriever=retriever,
        rag=rag,
        guard=guard,
    )
    assert result.finish_reason == "stop" and result.blocked_by is None
    hits = retriever.search("How long is the Coil cable?", 2, "lexical")
    assert seen[0][0] == {
        "role": "system",
        "content": grounded_system(context_block(h.chunk.text for h in hits)),
    }
    assert seen[0][1:] == [{"role": "user", "content": "How long is the Coil cable?"}]
    assert result.citations[0]["source"].endswith("locks.md")
    assert "120 cm" in result.messages[0]["content"]
    assert result.extension()["guard"]["output"]["blocked"] is False


def test_a_blocked_prompt_never_reaches_the_model(setup):
    _, retriever, guard = setup
    calls = []
    result = guarded_turn(
        [{"role": "user", "content": "shut up you stupid idiot"}],
        lambda m: calls.append(m) or ("x", "stop"),
        retriever=retriever,
        guard=guard,
    )
    assert calls == []
    assert (result.text, result.finish_reason, result.blocked_by, result.rule) == (
        "I can't help with that.",
        CONTENT_FILTER,
        "input",
        "toxic_prompt",
    )


def test_an_ungrounded_answer_is_replaced(setup):
    _, retriever, guard = setup
    result = guarded_turn(
        [{"role": "user", "content": "How long is the Coil cable?"}],
        lambda m: ("Purple dragons guard every warehouse tonight.", "stop"),
        retriever=retriever,
        guard=guard,
    )
    assert (
        result.finish_reason == CONTENT_FILTER and result.blocked_by == "output" and result.rule == "grounded"
    )
    assert result.text == "I can't help with that." and result.citations  # the sources are still reported


def test_chat_cli_with_rag_and_guard_on_the_tiny_model(setup, monkeypatch):
    from typer.testing import CliRunner

    from alignkit.cli import app

    root, _, _ = setup
    (root / "guard_in.yaml").write_text(
        yaml.safe_dump(
            {
                "refusal": "Nope.",
                "input": [
                    {
                        "name": "toxic_prompt",
                        "check": "toxicity",
                        "classifier": str(root / "tox"),
                        "threshold": 0.5,
                    }
                ],
            }
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "chat",
            "--model",
            "tiny-random",
            f"rag.index={root / 'index'}",
            "rag.top_k=1",
            "rag.mode=lexical",
            f"guard={root / 'guard_in.yaml'}",
            "generation.max_new_tokens=3",
            "generation.temperature=0",
        ],
        input="How long is the Coil cable?\nyou stupid idiot\n/exit\n",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("sources: " in line and "locks.md#" in line for line in lines)
    assert any(line.endswith("Nope. [blocked: toxic_prompt]") for line in lines)


def test_chat_cli_bad_index_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from alignkit.cli import app

    result = CliRunner().invoke(
        app, ["chat", "--model", "tiny-random", f"rag.index={tmp_path}"], input="hi\n"
    )
    assert (
        result.exit_code == 2 and "not an index folder" in result.output and "Traceback" not in result.output
    )


def test_rag_cli_round_trip(tmp_path):
    from typer.testing import CliRunner

    from alignkit.cli import app

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("The Ferrox Coil cable is 120 cm long.")
    (docs / "b.txt").write_text("Shipping is free on orders over $50.")
    runner = CliRunner()
    out = tmp_path / "idx"
    result = runner.invoke(
        app, ["rag", "index", str(docs), "--out", str(out), "chunking.tokenizer=tiny-random"]
    )
    assert result.exit_code == 0, result.output
    assert "2 chunked" in result.output
    result = runner.invoke(
        app, ["rag", "index", str(docs), "--out", str(out), "chunking.tokenizer=tiny-random"]
    )
    assert "0 chunked, 2 unchanged" in result.output
    result = runner.invoke(app, ["rag", "query", str(out), "free shipping", "--k", "1"])
    assert result.exit_code == 0 and "b.txt#0" in result.output
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "how long is the cable", "source": "a.md"})
        + "\n"
        + json.dumps({"question": "shipping threshold", "answer": "over $50"})
        + "\n"
    )
    result = runner.invoke(app, ["rag", "eval", str(out), str(questions), f"out={tmp_path / 'r.json'}"])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["lexical"]["recall@1"] == 1.0 and figures["lexical"]["mrr"] == 1.0
    result = runner.invoke(app, ["rag", "query", str(out), "x", "--mode", "dense"])
    assert result.exit_code == 2 and "no dense vectors" in result.output


def test_synth_grounded_with_docs_takes_distractors_from_the_index(tmp_path, tokenizer):
    from pathlib import Path

    from typer.testing import CliRunner

    from alignkit.cli import app

    facts_path = Path(__file__).resolve().parents[2] / "examples" / "synth" / "facts.jsonl"
    docs = tmp_path / "docs"
    docs.mkdir()
    # One page about another place with opening hours (a real distractor), one that names an entity of
    # the facts file (must never be a distractor for that entity's questions).
    facts = [json.loads(line) for line in facts_path.read_text().splitlines() if line.strip()]
    named = facts[0]["entity"]
    (docs / "other.md").write_text("The Brindle Clock Tower opens at 10 a.m. and closes at 6 p.m. every day.")
    (docs / "named.md").write_text(f"{named} opens at 9 a.m. and closes at 5 p.m., tickets cost $12.")
    build_index(
        read_documents([docs]),
        tmp_path / "idx",
        tokenizer,
        chunk_tokens=64,
        overlap_tokens=8,
        tokenizer_name="embedded",
    )
    out = tmp_path / "grounded.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "grounded",
            "--facts",
            str(facts_path),
            "--docs",
            str(tmp_path / "idx"),
            "--out",
            str(out),
            "distractors=1",
            "docs_mode=lexical",
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert "retrieved_distractors" in result.output
    for record in records:
        sources = record["meta"]["sources"]
        # At most one (distractors=1); none when no chunk shares a word with the question (lexical).
        assert sum(s.startswith("chunk:") for s in sources) <= 1
        system = record["messages"][0]["content"]
        if record["meta"]["entity"] == named:
            assert "named.md" not in " ".join(sources) and "tickets cost $12" not in system
    assert any("Brindle Clock Tower" in r["messages"][0]["content"] for r in records)
    assert any(s.startswith("chunk:") and "other.md" in s for r in records for s in r["meta"]["sources"])
    both = CliRunner().invoke(
        app,
        [
            "synth",
            "grounded",
            "--facts",
            str(facts_path),
            "--docs",
            str(tmp_path / "idx"),
            "--documents",
            str(docs),
            "--out",
            str(out),
        ],
    )
    assert both.exit_code == 2 and "not both" in both.output


class EchoContext:
    """A 'model' that answers with its whole system turn: right exactly when retrieval found the fact."""

    def __init__(self):
        self.chats = []

    def chat(self, chats, params):
        from alignkit.generation.types import Generation

        self.chats += chats
        return [
            [Generation(text=c[0]["content"], token_ids=[1], stopped=True, finish_reason="stop")]
            for c in chats
        ]


def test_grounded_probe_end_to_end_reports_retrieval_and_answers_apart(setup):
    from types import SimpleNamespace

    from alignkit.evaluation.probe_sets import GroundedItem
    from alignkit.evaluation.probes import run_grounded_probe
    from alignkit.evaluation.run import _retrieve_context

    root, retriever, _ = setup
    items = [
        GroundedItem("coil", "unused", "How long is the Coil cable?", True, ("120 cm",)),
        GroundedItem("ship", "unused", "When is shipping free?", True, ("$50",)),
        GroundedItem(
            "ceo", "unused", "Who is the chief executive?", True, ("Ada Quill",)
        ),  # not in the index
        GroundedItem("u", "unused", "What colour is the Tag?", False),
    ]
    section = SimpleNamespace(rag_index=str(root / "index"), rag_top_k=1, rag_mode="lexical")
    model = EchoContext()
    result = run_grounded_probe(model, items, retrieve=_retrieve_context(section))
    assert result.summary["retrieval_recall_answerable"] == pytest.approx(2 / 3, abs=1e-3)
    assert result.summary["accuracy_answerable"] == pytest.approx(2 / 3, abs=1e-3)
    hit = retriever.search("How long is the Coil cable?", 1, "lexical")[0]
    assert model.chats[0][0]["content"] == grounded_system(context_block([hit.chunk.text]))
    assert [row["retrieved_hit"] for row in result.rows] == [True, True, False, None]
