"""OpenAI-compatible HTTP backend against a real local server (http.server on 127.0.0.1, port 0)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alignkit.errors import AlignkitError, ConfigError
from alignkit.generation.http import OpenAICompatibleGenerator, finish_reason_to_stopped
from alignkit.generation.types import GenerationParams

HELLO = [{"role": "user", "content": "hello"}]


class FakeOpenAIServer:
    """Answers ``/v1/chat/completions`` and ``/v1/completions``; failures come from a script.

    ``script`` holds actions for the next requests, consumed in order: an int status code to fail
    with, ``"sleep"`` to stall past the client timeout, ``"short"`` to return one choice fewer
    than asked. With the script empty it answers normally: ``n`` choices, text
    ``"<content> #<i>"``, finish_reason ``length`` when ``max_tokens < 5`` else ``stop``.
    """

    def __init__(self) -> None:
        self.script: list[int | str] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.bodies.append(body)
                    fake.headers.append(dict(self.headers))
                    action = fake.script.pop(0) if fake.script else None
                # The client may have given up already (timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake.respond(self, body, action)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def request_count(self) -> int:
        return len(self.bodies)

    def respond(
        self, handler: BaseHTTPRequestHandler, body: dict[str, Any], action: int | str | None
    ) -> None:
        if action == "sleep":
            time.sleep(1.0)
            return
        if isinstance(action, int):
            self._send(handler, action, {"error": {"message": f"scripted {action}"}})
            return
        n = body.get("n", 1) - (1 if action == "short" else 0)
        reason = "length" if body.get("max_tokens", 16) < 5 else "stop"
        if "messages" in body:
            content = body["messages"][-1]["content"]
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": f"{content} #{i}"},
                    "finish_reason": reason,
                }
                for i in reversed(range(n))  # out of order on purpose: the client sorts by index
            ]
        else:
            choices = [
                {"index": i, "text": f"{body['prompt']} #{i}", "finish_reason": reason} for i in range(n)
            ]
        self._send(handler, 200, {"id": "x", "object": "chat.completion", "choices": choices})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    fake = FakeOpenAIServer()
    yield fake
    fake.close()


def make_generator(url: str, **overrides: Any) -> OpenAICompatibleGenerator:
    settings: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 3, "backoff_s": 0.01, "max_backoff_s": 0.05}
    settings.update(overrides)
    return OpenAICompatibleGenerator(url, "test-model", **settings)


def test_request_fields_and_reply(server: FakeOpenAIServer) -> None:
    generator = make_generator(server.url)
    params = GenerationParams(max_new_tokens=32, temperature=0.7, top_p=0.9, stop=("###",), seed=5)
    [[reply]] = generator.chat([HELLO], params)
    assert reply.text == "hello #0" and reply.stopped and reply.finish_reason == "stop"
    assert reply.token_ids == []
    assert server.bodies == [
        {
            "model": "test-model",
            "messages": HELLO,
            "n": 1,
            "temperature": 0.7,
            "top_p": 0.9,
            "max_tokens": 32,
            "seed": 5,
            "stop": ["###"],
        }
    ]
    assert "Authorization" not in server.headers[0]


def test_retries_after_500_then_succeeds(server: FakeOpenAIServer) -> None:
    server.script = [500, 503, 429]
    generator = make_generator(server.url)
    [[reply]] = generator.chat([HELLO], GenerationParams())
    assert reply.text == "hello #0"
    assert server.request_count == 4
    assert generator.stats["retries"] == 3


def test_client_error_fails_at_once_with_server_message(server: FakeOpenAIServer) -> None:
    server.script = [400]
    generator = make_generator(server.url)
    with pytest.raises(AlignkitError, match="HTTP 400: .*scripted 400") as error:
        generator.chat([HELLO], GenerationParams())
    assert server.request_count == 1
    assert error.value.source == f"{server.url}/chat/completions"


def test_timeout_raises_clear_error_after_retries(server: FakeOpenAIServer) -> None:
    server.script = ["sleep", "sleep"]
    generator = make_generator(server.url, timeout_s=0.2, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(AlignkitError) as error:
        generator.chat([HELLO], GenerationParams())
    assert time.perf_counter() - start < 1.5
    message = error.value.one_line()
    assert "request failed after 2 attempts: timed out after 0.2s" in message
    assert message.startswith(f"{server.url}/chat/completions: ")


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    generator = make_generator(f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(AlignkitError, match="after 3 attempts: ConnectionRefusedError"):
        generator.chat([HELLO], GenerationParams())
    assert generator.stats["http_requests"] == 3


def test_cache_hit_on_rerun_sends_nothing(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "responses.jsonl"
    chats = [HELLO, [{"role": "user", "content": "bye"}]]
    params = GenerationParams(num_samples=2, temperature=1.0)
    first = make_generator(server.url, cache_path=cache).chat(chats, params)
    assert server.request_count == 2

    # A run killed mid-write leaves a torn last line; the rerun ignores it.
    with cache.open("a") as handle:
        handle.write('{"key": "abc", "respo')
    rerun = make_generator(server.url, cache_path=cache)
    assert rerun.chat(chats, params) == first
    assert server.request_count == 2 and rerun.stats["cache_hits"] == 2

    # A changed sampling setting is a different request.
    rerun.chat(chats[:1], GenerationParams(num_samples=2, temperature=0.5))
    assert server.request_count == 3
    # The torn line was dropped on open, so the file stays valid JSONL after new appends.
    lines = cache.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["key"] for line in lines)
    assert len(make_generator(server.url, cache_path=cache).cache or []) == 3


def test_corrupt_cache_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    cache = tmp_path / "responses.jsonl"
    cache.write_text('not json\n{"key": "a", "response": {}}\n')
    with pytest.raises(AlignkitError, match="corrupt cache line") as error:
        OpenAICompatibleGenerator("http://127.0.0.1:1", "m", cache_path=cache)
    assert error.value.line == 1


def test_n_samples_in_one_request_or_split(server: FakeOpenAIServer) -> None:
    generator = make_generator(server.url)
    [samples] = generator.chat([HELLO], GenerationParams(num_samples=3))
    assert [g.text for g in samples] == ["hello #0", "hello #1", "hello #2"]
    assert server.bodies[-1]["n"] == 3

    split = make_generator(server.url, max_n_per_request=2)
    [samples] = split.chat([HELLO], GenerationParams(num_samples=3, seed=10))
    assert len(samples) == 3
    assert sorted((b["n"], b["seed"]) for b in server.bodies[1:]) == [(1, 11), (2, 10)]


def test_fewer_choices_than_n_is_an_error(server: FakeOpenAIServer) -> None:
    server.script = ["short"]
    with pytest.raises(AlignkitError, match="max_n_per_request=1"):
        make_generator(server.url).chat([HELLO], GenerationParams(num_samples=2))


def test_finish_reason_length_means_not_stopped(server: FakeOpenAIServer) -> None:
    [[reply]] = make_generator(server.url).chat([HELLO], GenerationParams(max_new_tokens=2))
    assert not reply.stopped and reply.finish_reason == "length"
    assert finish_reason_to_stopped("stop") == (True, "stop")
    assert finish_reason_to_stopped("content_filter") == (False, "length")
    assert finish_reason_to_stopped(None) == (False, "length")


def test_concurrent_requests_keep_input_order_and_dedupe(server: FakeOpenAIServer) -> None:
    generator = make_generator(server.url, concurrency=4)
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(10)] + [HELLO, HELLO]
    replies = generator.chat(chats, GenerationParams())
    assert [r[0].text for r in replies] == [f"q{i} #0" for i in range(10)] + ["hello #0", "hello #0"]
    assert server.request_count == 11  # the two identical requests went out once


def test_completions_endpoint(server: FakeOpenAIServer) -> None:
    [[reply]] = make_generator(server.url).complete(["Task 9:"], GenerationParams())
    assert reply.text == "Task 9: #0" and reply.stopped


def test_api_key_from_environment(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIGNKIT_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="ALIGNKIT_TEST_KEY is not set"):
        make_generator(server.url, api_key_env="ALIGNKIT_TEST_KEY")
    monkeypatch.setenv("ALIGNKIT_TEST_KEY", "sk-test")
    generator = make_generator(server.url, api_key_env="ALIGNKIT_TEST_KEY")
    generator.chat([HELLO], GenerationParams())
    assert server.headers[-1]["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in repr(generator)


def test_base_url_forms() -> None:
    assert OpenAICompatibleGenerator("http://localhost:8000", "m").base_url == "http://localhost:8000/v1"
    assert OpenAICompatibleGenerator("http://h:1/v1/", "m").base_url == "http://h:1/v1"
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatibleGenerator("localhost:8000", "m")
