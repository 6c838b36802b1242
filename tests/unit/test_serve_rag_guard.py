"""``alignkit serve`` with retrieval and a guard file, through the official ``openai`` client against uvicorn.

The block paths in both modes (refuse: 200 + ``content_filter``; error: 400 ``content_filter``), streamed
and not; the retrieved context the model is given equals the grounded training format (the served reply
equals an in-process greedy reply on exactly that chat); citations in the extension field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import torch
import yaml

pytest.importorskip("sklearn")
pytest.importorskip("vaderSentiment")
pytest.importorskip("fastapi")

from alignkit.config.rag import RagUseConfig  # noqa: E402
from alignkit.config.serve import ServeLimits  # noqa: E402
from alignkit.data.grounding import context_block, grounded_system  # noqa: E402
from alignkit.generation.local import LocalGenerator  # noqa: E402
from alignkit.generation.types import GenerationParams  # noqa: E402
from alignkit.guard.checks import Guard  # noqa: E402
from alignkit.guard.classifier import train_classifier  # noqa: E402
from alignkit.models.loader import load_model  # noqa: E402
from alignkit.retrieval.documents import read_documents  # noqa: E402
from alignkit.retrieval.index import build_index  # noqa: E402
from alignkit.retrieval.search import Retriever  # noqa: E402
from alignkit.serve.app import create_app  # noqa: E402
from alignkit.serve.engine import Engine  # noqa: E402
from alignkit.serve.server import BackgroundServer, bind_socket  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
BASE = "tiny-random"
REFUSAL = "I can't help with that."
TOXIC = ["you stupid idiot", "shut up moron", "you are a useless idiot", "go away you moron", "idiot bot",
         "stupid moron company"]
BENIGN = ["how long is the coil cable", "do you ship to spain", "kill the app process", "my lock died",
          "battery is dead", "what does the halo cost", "great lock, thanks", "where is my order"]
QUESTION = "How long is the Coil cable?"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    root = tmp_path_factory.mktemp("serve_rag_guard")
    docs = root / "docs"
    docs.mkdir()
    (docs / "locks.md").write_text("The Ferrox Coil cable is 120 cm long.\n\nThe Ferrox Halo costs $69.\n")
    (docs / "ship.txt").write_text("Shipping is free on orders over $50.")
    build_index(read_documents([docs]), root / "index", tokenizer, chunk_tokens=12, overlap_tokens=2,
                tokenizer_name="embedded")
    train_classifier(TOXIC + BENIGN, ["toxic"] * len(TOXIC) + ["benign"] * len(BENIGN), cv_folds=3,
                     out_of_scope_label=None, positive_label="toxic").save(root / "tox")
    toxic_rule = {"name": "toxic_prompt", "check": "toxicity", "classifier": "tox", "threshold": 0.5}
    # Threshold 0: fires on every answer, whatever tiny-random's random tokens say.
    answer_rule = {"name": "any_answer", "check": "toxicity", "classifier": "tox", "threshold": 0.0}
    for mode in ("refuse", "error"):
        (root / f"input_{mode}.yaml").write_text(yaml.safe_dump({"refusal": REFUSAL, "mode": mode,
                                                                  "input": [toxic_rule]}))
        (root / f"both_{mode}.yaml").write_text(yaml.safe_dump({"refusal": REFUSAL, "mode": mode,
                                                                 "input": [toxic_rule], "output": [answer_rule]}))
    return root


@pytest.fixture(scope="module")
def model() -> Any:
    torch.set_num_threads(1)
    return load_model(BASE, device="cpu", seed=0)


def _limits() -> ServeLimits:
    return ServeLimits(max_tokens=32, default_max_tokens=8, max_prompt_tokens=400, max_n=2, request_timeout_s=60,
                       batch_window_ms=0)


@pytest.fixture(scope="module")
def servers(folder: Path, model: Any) -> Iterator[dict[str, openai.OpenAI]]:
    """One server per setup: rag only, rag + input rules (refuse), rag + input and output rules (refuse and
    error)."""
    engine = Engine(model.model, model.tokenizer, limits=_limits())
    retriever = Retriever(folder / "index")
    rag = RagUseConfig(index=str(folder / "index"), top_k=2, mode="lexical")
    setups = {"rag": None, "input": "input_refuse", "both": "both_refuse", "both_error": "both_error",
              "input_error": "input_error"}
    clients: dict[str, openai.OpenAI] = {}
    running = []
    try:
        for name, guard_file in setups.items():
            guard = Guard.from_file(folder / f"{guard_file}.yaml") if guard_file else None
            app = create_app(engine, base_name=BASE, retriever=retriever, rag=rag, guard=guard)
            server = BackgroundServer(app, bind_socket("127.0.0.1", 0))
            server.__enter__()
            running.append(server)
            clients[name] = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=60)
        yield clients
    finally:
        for server in running:
            server.__exit__(None, None, None)
        engine.close()


def _extension(choice: Any) -> dict[str, Any]:
    extra = choice.model_extra or {}
    assert "alignkit" in extra, "the extension field is on every choice"
    return extra["alignkit"]


def _stream(client: openai.OpenAI, content: str) -> tuple[str, str | None, dict[str, Any] | None]:
    text, reason, extension = "", None, None
    for event in client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": content}],
                                                 stream=True, max_tokens=8, temperature=0):
        for choice in event.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                reason, extension = choice.finish_reason, (choice.model_extra or {}).get("alignkit")
    return text, reason, extension


def test_the_served_context_is_the_training_format_and_cites_its_sources(servers, folder, model) -> None:
    reply = servers["rag"].chat.completions.create(
        model=BASE, messages=[{"role": "system", "content": "a client system turn"},
                              {"role": "user", "content": QUESTION}], max_tokens=8, temperature=0)
    choice = reply.choices[0]
    hits = Retriever(folder / "index").search(QUESTION, 2, "lexical")
    given = [{"role": "system", "content": grounded_system(context_block(h.chunk.text for h in hits))},
             {"role": "user", "content": QUESTION}]
    # The same greedy reply in process on exactly that chat: the server gave the model these messages.
    expected = LocalGenerator(model.model, model.tokenizer, batch_size=1).chat(
        [given], GenerationParams(max_new_tokens=8))[0][0]
    assert choice.message.content == expected.text
    extension = _extension(choice)
    assert [c["id"] for c in extension["citations"]] == [h.chunk.id for h in hits]
    assert extension["citations"][0]["source"].endswith("locks.md") and extension["blocked_by"] is None

    text, reason, streamed = _stream(servers["rag"], QUESTION)
    assert text == expected.text and reason == expected.finish_reason
    assert streamed is not None and [c["id"] for c in streamed["citations"]] == [h.chunk.id for h in hits]


def test_a_blocked_prompt_is_a_200_refusal_with_content_filter_plain_and_streamed(servers) -> None:
    reply = servers["input"].chat.completions.create(
        model=BASE, messages=[{"role": "user", "content": "shut up you stupid idiot"}], max_tokens=8, n=2)
    assert [c.message.content for c in reply.choices] == [REFUSAL, REFUSAL]
    assert {c.finish_reason for c in reply.choices} == {"content_filter"}
    extension = _extension(reply.choices[0])
    assert (extension["blocked_by"], extension["rule"]) == ("input", "toxic_prompt")
    assert reply.usage is not None and reply.usage.completion_tokens == 0, "the model never ran"

    assert _stream(servers["input"], "you stupid moron")[:2] == (REFUSAL, "content_filter")
    # A prompt that passes is answered and streamed token by token as usual.
    ok = servers["input"].chat.completions.create(model=BASE, messages=[{"role": "user", "content": QUESTION}],
                                                  max_tokens=8, temperature=0)
    assert ok.choices[0].finish_reason in ("stop", "length") and _extension(ok.choices[0])["guard"]["input"]


def test_a_blocked_answer_is_replaced_and_a_guarded_stream_is_held_to_the_end(servers) -> None:
    reply = servers["both"].chat.completions.create(
        model=BASE, messages=[{"role": "user", "content": QUESTION}], max_tokens=8, temperature=0)
    choice = reply.choices[0]
    assert (choice.message.content, choice.finish_reason) == (REFUSAL, "content_filter")
    extension = _extension(choice)
    assert (extension["blocked_by"], extension["rule"]) == ("output", "any_answer")
    assert extension["citations"], "the sources are still reported"
    text, reason, streamed = _stream(servers["both"], QUESTION)
    assert (text, reason) == (REFUSAL, "content_filter") and streamed and streamed["rule"] == "any_answer"


def test_error_mode_is_a_400_content_filter_never_retried(servers) -> None:
    for name, content in (("input_error", "you stupid idiot"), ("both_error", QUESTION)):
        with pytest.raises(openai.BadRequestError) as caught:
            servers[name].chat.completions.create(model=BASE, messages=[{"role": "user", "content": content}],
                                                  max_tokens=8, temperature=0)
        error = caught.value.response.json()["error"]
        assert error["code"] == "content_filter" and "guard rule" in error["message"]


def test_a_guarded_server_refuses_raw_completions(servers) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        servers["input"].completions.create(model=BASE, prompt="you stupid idiot", max_tokens=4)
    assert "/v1/chat/completions" in caught.value.response.json()["error"]["message"]
    assert servers["rag"].completions.create(model=BASE, prompt="hi", max_tokens=2).choices[0].text is not None
