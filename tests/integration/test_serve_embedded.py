"""``alignkit serve`` on the embedded model (SmolLM2-135M-Instruct) through the official openai client.

The trained end-of-turn token (<|im_end|>) ends the greedy reply to "hello": finish_reason ``stop``
before the token limit, the streamed reply equals the plain one, and ``--check`` passes.
"""

from __future__ import annotations

import openai
import pytest
import torch
from typer.testing import CliRunner

from alignkit.cli import app as cli_app
from alignkit.config.serve import ServeLimits
from alignkit.models.loader import load_model
from alignkit.serve.app import create_app
from alignkit.serve.engine import Engine
from alignkit.serve.server import BackgroundServer, bind_socket

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_thread")]


def test_the_greedy_reply_to_hello_ends_with_stop_streamed_or_not() -> None:
    torch.set_num_threads(1)
    loaded = load_model("embedded", device="cpu", dtype="float32")
    engine = Engine(loaded.model, loaded.tokenizer, limits=ServeLimits())
    try:
        with BackgroundServer(create_app(engine, base_name="embedded"), bind_socket("127.0.0.1", 0)) as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            hello = [{"role": "user", "content": "hello"}]
            plain = client.chat.completions.create(model="embedded", messages=hello, temperature=0, max_tokens=96)
            chunks = list(client.chat.completions.create(model="embedded", messages=hello, temperature=0,
                                                         max_tokens=96, stream=True))
    finally:
        engine.close()
    choice = plain.choices[0]
    assert choice.finish_reason == "stop" and plain.usage.completion_tokens < 96
    assert "<|im_end|>" not in choice.message.content and "<|im_start|>" not in choice.message.content
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_serve_check_passes_on_the_embedded_model() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--check", "threads=1", "check_max_tokens=24"])
    assert result.exit_code == 0, result.output
    assert "stop set ['<|im_end|>'] holds the end-of-turn token" in result.output
    assert result.output.count("ok   embedded") == 3 and "check passed" in result.output
