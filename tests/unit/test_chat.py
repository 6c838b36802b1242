"""``alignkit chat`` in the terminal: replies stream token by token and equal the non-streamed greedy reply;
Ctrl-C stops a reply, not the chat; /help, /reset and unknown slash commands are handled by the CLI."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import GenerationParams
from alignkit.models.loader import load_model

pytestmark = pytest.mark.usefixtures("one_thread")
ARGS = ["chat", "--model", "tiny-random", "generation.temperature=0", "generation.max_new_tokens=6"]


def test_a_streamed_reply_is_the_greedy_reply_token_by_token(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model("tiny-random", device="cpu")
    expected = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=1).chat(
        [[{"role": "user", "content": "hello"}]], GenerationParams(max_new_tokens=6, seed=1))[0][0]
    writes: list[int] = []
    original = LocalGenerator.generate_ids

    def counting(self: LocalGenerator, prompts: Any, params: Any, **kwargs: Any) -> Any:
        on_token = kwargs["on_token"]
        assert on_token is not None, "chat streams through the token callback"

        def counted(*args: Any) -> None:
            writes.append(1)
            on_token(*args)

        return original(self, prompts, params, **{**kwargs, "on_token": counted})

    monkeypatch.setattr(LocalGenerator, "generate_ids", counting)
    result = CliRunner().invoke(app, ARGS, input="hello\n/exit\n")
    assert result.exit_code == 0, result.output
    suffix = "" if expected.stopped else " [cut]"
    assert f"bot> {expected.text}{suffix}\n" in result.output
    assert len(writes) == len(expected.token_ids) > 1


def test_ctrl_c_stops_the_reply_and_the_chat_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    original = LocalGenerator.generate_ids
    calls: list[int] = []

    def interrupted_once(self: LocalGenerator, prompts: Any, params: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            kwargs["on_token"](0, 0, int(self.tokenizer("Hi").input_ids[0]))
            raise KeyboardInterrupt
        return original(self, prompts, params, **kwargs)

    monkeypatch.setattr(LocalGenerator, "generate_ids", interrupted_once)
    result = CliRunner().invoke(app, ARGS, input="hello\nagain\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "Hi [stopped]" in result.output
    assert len(calls) == 2 and result.output.count("bot> ") == 2, "the second line was answered"


def test_slash_commands_are_the_clis(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def record(self: LocalGenerator, prompts: Any, params: Any, **kwargs: Any) -> Any:
        calls.append(prompts)
        raise AssertionError("no slash command reaches the model")

    monkeypatch.setattr(LocalGenerator, "generate_ids", record)
    result = CliRunner().invoke(app, ARGS, input="/help\n/reset\n/nonsense\n/exit\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("/reset clears the history") == 2  # /help, and the unknown command's hint
    assert "unknown command '/nonsense'" in result.output and calls == []
