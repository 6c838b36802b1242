"""``alignkit serve`` through the official ``openai`` client against a real uvicorn server on 127.0.0.1.

The model is tiny-random (seeded, so in-process replies are the reference) with one LoRA adapter
whose weights are random (``init_lora_weights=False``), so its replies differ from the base's.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import torch
from typer.testing import CliRunner

from alignkit.cli import app as cli_app
from alignkit.config.serve import ServeLimits
from alignkit.generation.local import LocalGenerator
from alignkit.generation.text_stream import TextStream
from alignkit.generation.types import GenerationParams
from alignkit.models.loader import load_model
from alignkit.serve.app import create_app
from alignkit.serve.engine import Engine
from alignkit.serve.server import BackgroundServer, bind_socket
from tests.helpers.cdp import Chromium

pytestmark = pytest.mark.usefixtures("one_thread")
KEY = "test-key-123"
BASE = "tiny-random"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(load_model(BASE, device="cpu", seed=0).model,
                           LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                                      init_lora_weights=False))
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    return folder


def limits() -> ServeLimits:
    return ServeLimits(max_tokens=64, default_max_tokens=16, max_prompt_tokens=200, max_n=4, max_body_bytes=20_000,
                       max_batch=16, max_queue=32, request_timeout_s=60, batch_window_ms=10)


@pytest.fixture(scope="module")
def served(adapter_dir: Path) -> Iterator[tuple[str, Engine]]:
    torch.set_num_threads(1)
    loaded = load_model(BASE, device="cpu", seed=0)
    engine = Engine(loaded.model, loaded.tokenizer, limits=limits(), adapters={"tuned": str(adapter_dir)})
    with BackgroundServer(create_app(engine, base_name=BASE, api_key=KEY), bind_socket("127.0.0.1", 0)) as server:
        yield server.url, engine
    engine.close()


@pytest.fixture()
def client(served: tuple[str, Engine]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def reference(messages: list[dict[str, str]], params: GenerationParams, adapter: str | None = None) -> Any:
    """The in-process reply: a fresh seeded tiny-random (plus the adapter through PEFT) and LocalGenerator."""
    loaded = load_model(BASE, device="cpu", seed=0, adapter=adapter)
    generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=1)
    return generator.chat([messages], params)[0][0], loaded.tokenizer


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# --- generation through the client -----------------------------------------------------------------


def test_stream_deltas_join_to_the_plain_reply_with_role_usage_and_done(client, served) -> None:
    plain = client.chat.completions.create(model="tuned", messages=HELLO, temperature=0, max_tokens=12)
    chunks = list(client.chat.completions.create(model="tuned", messages=HELLO, temperature=0, max_tokens=12,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    joined = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert joined == plain.choices[0].message.content and len(joined) > 0
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [plain.choices[0].finish_reason] == ["length"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and chunks[-1].choices == []
    assert usage_chunks[0].usage.model_dump() == plain.usage.model_dump()
    assert plain.usage.completion_tokens == 12 and plain.usage.prompt_tokens == 31
    # The wire format ends with [DONE] (the client swallows it).
    with httpx.stream("POST", served[0] + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "tuned", "messages": HELLO, "max_tokens": 3, "stream": True}) as response:
        lines = [line for line in response.iter_lines() if line.strip()]
    assert lines[-1] == "data: [DONE]" and response.headers["content-type"].startswith("text/event-stream")


def test_adapter_by_model_name_equals_in_process_peft_and_differs_from_base(client, adapter_dir) -> None:
    params = GenerationParams(max_new_tokens=10)
    for model, adapter in (("tuned", str(adapter_dir)), (BASE, None)):
        expected, tokenizer = reference(HELLO, params, adapter)
        reply = client.chat.completions.create(model=model, messages=HELLO, temperature=0, max_tokens=10,
                                               logprobs=True)
        tokens = [entry.token for entry in reply.choices[0].logprobs.content]
        assert tokens == [tokenizer.decode([t]) for t in expected.token_ids]  # token for token
        assert reply.choices[0].message.content == expected.text
        if adapter is not None:
            tuned_text = expected.text
    assert reply.choices[0].message.content != tuned_text


def test_models_list_shows_the_base_and_each_adapter_with_its_parent(client) -> None:
    listed = {model.id: model.model_dump() for model in client.models.list()}
    assert set(listed) == {BASE, "tuned"}
    assert listed["tuned"]["parent"] == BASE and listed[BASE]["parent"] is None


def test_completions_plain_streamed_and_with_logprobs(client) -> None:
    plain = client.completions.create(model=BASE, prompt="Once upon a time", temperature=0, max_tokens=6, logprobs=2)
    choice = plain.choices[0]
    assert choice.finish_reason == "length" and plain.usage.completion_tokens == 6
    assert "".join(choice.logprobs.tokens) == choice.text
    for token, logprob, top in zip(choice.logprobs.tokens, choice.logprobs.token_logprobs,
                                   choice.logprobs.top_logprobs, strict=True):
        assert len(top) == 2 and max(top.values()) == pytest.approx(logprob) and top[token] == pytest.approx(logprob)
    streamed = client.completions.create(model=BASE, prompt="Once upon a time", temperature=0, max_tokens=6,
                                         stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == choice.text


def test_max_tokens_gives_length_and_exactly_that_many_tokens(client) -> None:
    for max_tokens in (1, 5):
        reply = client.chat.completions.create(model="tuned", messages=HELLO, temperature=0.9, seed=1,
                                               max_completion_tokens=max_tokens)
        assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == max_tokens


def test_a_stop_string_is_honoured_and_excluded_streamed_or_not(client) -> None:
    full = client.chat.completions.create(model="tuned", messages=HELLO, temperature=0, max_tokens=12)
    text = full.choices[0].message.content  # " euph irrational euph irrational ..."
    stop = text[6:12]
    expected = text[: text.index(stop)]
    for stream in (False, True):
        reply = client.chat.completions.create(model="tuned", messages=HELLO, temperature=0, max_tokens=12,
                                               stop=[stop, "never-appears"], stream=stream)
        if stream:
            chunks = list(reply)
            got = "".join(c.choices[0].delta.content or "" for c in chunks)
            reason = chunks[-1].choices[0].finish_reason
        else:
            got, reason = reply.choices[0].message.content, reply.choices[0].finish_reason
        assert got == expected and stop not in got and reason == "stop"


def test_text_stream_holds_back_a_possible_stop_string_and_split_characters() -> None:
    pieces = {1: "ab", 2: "c<", 3: "/e", 4: "nd>", 5: "\xe9"}
    stream = TextStream(lambda ids: "".join(pieces[i] for i in ids), ("</end>",), {99})
    assert [stream.add(1), stream.add(2), stream.add(3)] == ["ab", "c", ""]
    assert stream.add(4) == "" and stream.closed and stream.sent == "abc"
    # An unfinished UTF-8 character decodes to U+FFFD: held until its last byte arrives.
    utf8 = TextStream(lambda ids: "x" + ("\ufffd" if len(ids) == 2 else "\xe9" * (len(ids) == 3)), (), {99})
    assert [utf8.add(1), utf8.add(2), utf8.add(3)] == ["x", "", "\xe9"]
    assert utf8.add(99) == "" and utf8.finish("x\xe9") == ""


def test_n_choices_and_seed_determinism(client) -> None:
    def ask(seed: int) -> list[str]:
        reply = client.chat.completions.create(model=BASE, messages=HELLO, temperature=1.0, n=3, seed=seed,
                                               max_tokens=8)
        assert [c.index for c in reply.choices] == [0, 1, 2] and reply.usage.completion_tokens == 24
        return [c.message.content for c in reply.choices]

    first = ask(7)
    assert ask(7) == first and len(set(first)) == 3 and ask(8) != first


def test_alignkits_own_http_generator_talks_to_it(served, monkeypatch) -> None:
    from alignkit.generation.http import OpenAICompatibleGenerator

    monkeypatch.setenv("ALIGNKIT_TEST_KEY", KEY)
    generator = OpenAICompatibleGenerator(served[0], "tuned", api_key_env="ALIGNKIT_TEST_KEY", max_retries=0)
    params = GenerationParams(max_new_tokens=5, temperature=0.8, top_k=20, repetition_penalty=1.2, num_samples=2,
                              seed=4)
    first = generator.chat([HELLO, [{"role": "user", "content": "bye"}]], params)
    assert [len(samples) for samples in first] == [2, 2]
    assert all(g.finish_reason == "length" and g.text for samples in first for g in samples)
    assert generator.chat([HELLO, [{"role": "user", "content": "bye"}]], params) == first  # seeded


# --- errors and limits ------------------------------------------------------------------------------


def test_auth_401_in_openais_shape_health_and_page_need_no_key(served) -> None:
    url = served[0]
    for key in ("wrong-key", ""):
        bad = openai.OpenAI(base_url=url + "/v1", api_key=key or "x", max_retries=0)
        if not key:
            bad = bad.with_options(default_headers={"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model=BASE, messages=HELLO, max_tokens=2)
        assert caught.value.status_code == 401 and error_body(caught.value)["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "alignkit chat" in page.text
    assert 'src="chat.js"' in page.text and "text/event-stream" not in page.text
    script = httpx.get(url + "/chat.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


def test_unknown_model_and_route_are_404s(client, served) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=HELLO, max_tokens=2)
    body = error_body(caught.value)
    assert body["code"] == "model_not_found" and body["param"] == "model" and "tuned" in body["message"]
    response = httpx.get(served[0] + "/v1/nothing", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(("fields", "param", "words"), [
    ({"length_penalty": 1.2}, "length_penalty", "beam search"),
    ({"frequency_penalty": 0.5}, "frequency_penalty", "repetition_penalty"),
    ({"logit_bias": {"5": 2.0}}, "logit_bias", "not supported"),
    ({"tools": [{"type": "function"}]}, "tools", "tools"),
    ({"top_logprobs": 2}, "top_logprobs", "logprobs: true"),
    ({"max_tokens": 65}, "max_tokens", "limit of 64"),
    ({"n": 5}, "n", "limit of 4"),
    ({"temperature": -1}, "temperature", "greater than or equal"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
    ({"mystery": 1}, "mystery", "unknown field"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role", "Input should be"),
    ({"messages": [{"role": "user", "content": "hi <|im_start|>system"}]}, "messages[0].content", "special token"),
    ({"messages": [{"role": "user", "content": "word " * 300}]}, "messages", "at most 200"),
    ({"logprobs": True, "stream": True}, "logprobs", "stream"),
])
def test_a_bad_or_useless_field_is_a_400_naming_it(client, fields, param, words) -> None:
    body = {"model": BASE, "messages": HELLO, "max_tokens": 2, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**{k: body.pop(k) for k in ("model", "messages")}, extra_body=body)
    error = error_body(caught.value)
    assert error["param"] == param and words in error["message"] and error["type"] == "invalid_request_error"


def test_an_oversized_body_is_a_413_declared_or_chunked(client, served) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": "x" * 30_000}], max_tokens=2)
    assert caught.value.status_code == 413 and error_body(caught.value)["code"] == "body_too_large"
    # No Content-Length (chunked transfer): counted while reading.
    chunks = (b'{"model": "tiny-random", "messages": [{"role": "user", "content": "' + b"x" * 5_000 for _ in range(5))
    response = httpx.post(served[0] + "/v1/chat/completions", content=chunks,
                          headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_a_full_queue_is_a_429_with_retry_after_and_the_queue_then_drains(client, served) -> None:
    engine = served[1]

    def ask() -> Any:
        return client.chat.completions.create(model=BASE, messages=HELLO, temperature=0.5, seed=1, max_tokens=2)

    engine.limits.max_queue = 2
    submitted = engine.submitted
    try:
        with engine.model_lock:  # the model is busy: the worker holds the first request, two wait
            threads = [_in_thread(ask)]
            _wait_until(lambda: engine.submitted == submitted + 1 and engine.queued == 0)
            threads += [_in_thread(ask), _in_thread(ask)]
            _wait_until(lambda: engine.queued == 2)
            with pytest.raises(openai.RateLimitError) as caught:
                ask()
            assert int(caught.value.response.headers["Retry-After"]) >= 1
            assert error_body(caught.value)["code"] == "queue_full"
    finally:
        engine.limits.max_queue = 32
    for thread, outcome in threads:
        thread.join(60)
        assert "error" not in outcome and outcome["value"].choices[0].finish_reason == "length"


def test_a_request_past_its_deadline_is_a_408(client, served) -> None:
    engine = served[1]
    engine.limits.request_timeout_s = 0.3
    try:
        with engine.model_lock:
            thread, outcome = _in_thread(lambda: client.chat.completions.create(model=BASE, messages=HELLO,
                                                                                max_tokens=2))
            time.sleep(0.8)
        thread.join(60)
    finally:
        engine.limits.request_timeout_s = 60
    error = outcome["error"]
    assert isinstance(error, openai.APIStatusError) and error.status_code == 408
    assert error_body(error)["code"] == "request_timeout"
    assert client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=2).choices


def test_a_client_gone_mid_stream_costs_no_generation(served) -> None:
    engine = served[1]
    calls, submitted = engine.generate_calls, engine.submitted
    with engine.model_lock:  # the request waits for the model while its client goes away
        with httpx.stream("POST", served[0] + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                          json={"model": BASE, "messages": HELLO, "max_tokens": 64, "stream": True,
                                "temperature": 0.5}) as stream:
            assert '"role": "assistant"' in next(stream.iter_lines())  # the role chunk comes first
        _wait_until(lambda: engine.submitted == submitted + 1)
        time.sleep(0.5)  # the server notices the closed connection
    _wait_until(lambda: engine.queued == 0)
    time.sleep(0.2)
    assert engine.generate_calls == calls


def test_concurrent_clients_are_batched_and_each_gets_its_own_reply(client, served) -> None:
    engine = served[1]
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(8)]
    alone = [client.chat.completions.create(model="tuned", messages=p, temperature=0, max_tokens=6)
             .choices[0].message.content for p in prompts]
    engine.limits.batch_window_ms = 100
    calls_before, runs_before = engine.generate_calls, engine.requests_run
    try:
        def three_requests(i: int) -> list[str]:
            return [client.chat.completions.create(model="tuned", messages=prompts[i], temperature=0, max_tokens=6)
                    .choices[0].message.content for _ in range(3)]

        workers = [_in_thread(lambda i=i: three_requests(i)) for i in range(8)]
        for thread, _ in workers:
            thread.join(120)
    finally:
        engine.limits.batch_window_ms = 10
    for i, (_, outcome) in enumerate(workers):
        assert outcome.get("value") == [alone[i]] * 3, outcome.get("error")
    assert engine.requests_run - runs_before == 24
    assert engine.generate_calls - calls_before < 24  # batching: fewer generate calls than requests


def test_non_loopback_bind_without_a_key_is_refused_before_loading() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--model", "no-such-model", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "no API key is set" in result.output
    result = CliRunner().invoke(cli_app, ["serve", "--api-key-file", "/no/such/key"])
    assert result.exit_code == 2 and "/no/such/key: api_key_file: file not found" in result.output


def test_serve_check_compares_in_process_and_http_replies(adapter_dir, tmp_path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    result = CliRunner().invoke(cli_app, ["serve", "--model", BASE, "--adapter", f"tuned={adapter_dir}", "--check",
                                          "--api-key-file", str(key_file), "check_max_tokens=6", "threads=1"])
    assert result.exit_code == 0, result.output
    assert "equal to training's prompt" in result.output and result.output.count("ok   tuned") == 3
    assert "check passed" in result.output


# --- hostile input ----------------------------------------------------------------------------------

_MISSING = object()
# Values each field refuses (pydantic's lax mode would take "yes" as a bool, so none of those here).
_BAD_VALUES: dict[str, list[Any]] = {
    "model": [5, ["x"], {"a": 1}, "x" * 300, "unknown-model"],
    "messages": [[], "hello", [{"role": "user"}], [{"content": "x"}], [{"role": "wizard", "content": "x"}],
                 [{"role": "user", "content": 5}], [{"role": "user", "content": [{"type": "image_url"}]}],
                 [{"role": "user", "content": "<|im_end|>"}], _MISSING, [None], None],
    "max_tokens": [-1, 0, 10**30, "ten", 1.5, 65],
    "temperature": [-0.1, 2.5, "hot", [1], float("inf")],
    "top_p": [0, -1, 1.5, "all"],
    "n": [0, -3, 5, 10**12, "two"],
    "seed": [2**70, -(2**70), "s", 1.5],
    "stop": [5, [5], ["a"] * 9, [""], {"x": 1}],
    "top_k": [-1, "k", 10**9],
    "repetition_penalty": [0, -1, 11, "p"],
    "stream": ["maybe", 2, [True]],
    "stream_options": [{"include_usage": "x"}, {"other": True}, 5],
    "logprobs": ["maybe", 3],
    "top_logprobs": [-1, 50, "k"],
    "frequency_penalty": [1.0, -2],
    "length_penalty": [1.0, 0.5],
    "tools": [[{"type": "function"}]],
}


def _hostile_requests(count: int) -> Iterator[tuple[bytes, dict[str, str]]]:
    """Bodies that are each wrong in one way (so every one must be refused), from a seeded stream."""
    rng = random.Random(0)
    good = {"model": BASE, "messages": HELLO, "max_tokens": 2}
    raw = [b"{", b"", b"[]", b"null", b'"text"', b"{\"messages\": [}", b"\xff\xfe\xfa{}", b"{\"model\": \"\xc3\x28\"}",
           b"[" * 5000 + b"]" * 5000, b"{\"a\":" * 3000 + b"1" + b"}" * 3000, b"NaN", b"{\"max_tokens\": NaN}",
           b"x" * 25_000]
    for index in range(count):
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        if index % 5 == 0:
            yield raw[rng.randrange(len(raw))], headers
            continue
        body: dict[str, Any] = dict(good)
        field = rng.choice(sorted(_BAD_VALUES))
        value = rng.choice(_BAD_VALUES[field])
        if value is _MISSING:
            del body[field]
        else:
            body[field] = value
        yield json.dumps(body).encode(), headers


def test_a_thousand_hostile_requests_get_4xx_in_openais_shape_and_the_server_keeps_serving(client, served) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = served[0] + "/v1/chat/completions"
    statuses: dict[int, int] = {}

    def send(http: httpx.Client, body: bytes, headers: dict[str, str]) -> int:
        response = http.post(url, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (body[:200], response.text[:300])
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and "Traceback" not in error["message"]
        return response.status_code

    # Eight clients at once (each request waits ~40 ms on TCP delayed ACK: one at a time is slow).
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(send, http, body, headers) for body, headers in _hostile_requests(1000)]:
            status = future.result()
            statuses[status] = statuses.get(status, 0) + 1
        # A client that goes away mid-stream, and one that sends half a body then closes.
        for _ in range(3):
            with http.stream("POST", url, headers={"Authorization": f"Bearer {KEY}"},
                             json={"model": BASE, "messages": HELLO, "max_tokens": 64, "stream": True}) as stream:
                next(stream.iter_lines())
        with socket.create_connection((httpx.URL(url).host, httpx.URL(url).port)) as raw_socket:
            raw_socket.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                               b"Authorization: Bearer " + KEY.encode() + b"\r\n\r\n{\"model\":")
    assert statuses.get(400, 0) > 500 and set(statuses) <= {400, 404, 413}
    reply = client.chat.completions.create(model=BASE, messages=HELLO, temperature=0, max_tokens=3)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3


# --- the chat page ----------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")
def test_the_chat_page_streams_a_reply_in_headless_chromium(adapter_dir, tmp_path) -> None:
    chromium = find_chromium()
    assert chromium is not None
    loaded = load_model(BASE, device="cpu", seed=0)
    # Default limits: the page asks for 256 tokens.
    engine = Engine(loaded.model, loaded.tokenizer, limits=ServeLimits(), adapters={"tuned": str(adapter_dir)})
    browser = Chromium(chromium, tmp_path / "profile")
    try:
        with BackgroundServer(create_app(engine, base_name=BASE), bind_socket("127.0.0.1", 0)) as server:
            browser.open(server.url + "/#ask=hello%20there", 1280, 800)
            log = browser.wait_for("document.querySelector('.meta') && document.getElementById('log').innerHTML")
            options = browser.evaluate("document.getElementById('model').innerHTML")
            browser.screenshot(tmp_path / "chat-1280.png")
            browser.resize(390, 844)
            browser.screenshot(tmp_path / "chat-phone.png")
            overflow = browser.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    finally:
        browser.close()
        engine.close()
    assert '<option value="tuned">tuned (adapter on tiny-random)</option>' in options
    assert '<div class="msg user">hello there</div>' in log
    reply = log.split('<div class="msg assistant">', 1)[1]
    # Sampled at the page's default temperature: text, then the finish reason and the token counts
    # (a random model almost never samples end-of-turn: 256 tokens, cut at the limit).
    text, meta = reply.split('<span class="meta"', 1)
    assert text.strip(), reply
    assert ('data-finish-reason="length">finish_reason: length · prompt 32 tokens · reply 256 tokens' in meta
            or 'data-finish-reason="stop">finish_reason: stop' in meta), meta
    assert overflow is False  # nothing wider than a phone's window
    for name in ("chat-1280.png", "chat-phone.png"):
        assert (tmp_path / name).stat().st_size > 5_000
