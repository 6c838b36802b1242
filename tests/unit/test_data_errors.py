"""Malformed inputs through ``alignkit lint``: exit 2, one line ``error: <file>:<line>: ...``, no traceback.

The CLI runs in-process (typer's CliRunner) with the tokenizer loader patched to return the session
tokenizer, so 30+ cases stay fast; one case also runs as a real subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignkit.cli import app

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(content, **extra) -> dict:
    return {"role": "assistant", "content": content, **extra}


def jsonl(*rows) -> str:
    """Rows as JSONL; a str row is written verbatim (for broken lines)."""
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


@dataclass
class Case:
    filename: str
    content: str | bytes | Callable[[Path], None]
    line: int | None  # None: the problem is the whole file, so the error names no line
    fragment: str  # a piece of the one-line message (field and/or expectation)
    overrides: list[str] = field(default_factory=list)


def _write_parquet(rows: list[dict]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)

    return write


def _not_a_datasets_folder(path: Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("not a dataset")


LONG_PROMPT = "word " * 60
CASES = {
    "bad_json_line": Case("a.jsonl", jsonl(GOOD, GOOD, '{"messages": [', GOOD), 3, "invalid JSON"),
    "jsonl_line_not_object": Case("a.jsonl", jsonl(GOOD, "[1, 2]"), 2, "expected a JSON object per line"),
    "missing_field": Case(
        "a.jsonl",
        jsonl(GOOD, {"messages": [user("hi"), {"role": "assistant"}]}),
        2,
        "messages[1].content: missing field",
    ),
    "missing_role": Case(
        "a.jsonl",
        jsonl({"messages": [{"content": "hi"}, assistant("x")]}),
        1,
        "messages[0].role: missing field",
    ),
    "content_is_int": Case(
        "a.jsonl",
        jsonl(GOOD, {"messages": [user("hi"), assistant(5)]}),
        2,
        "messages[1].content: expected a string, got int",
    ),
    "unknown_role": Case(
        "a.jsonl",
        jsonl({"messages": [user("hi"), {"role": "bot", "content": "x"}]}),
        1,
        "messages[1].role: unknown role 'bot'",
    ),
    "unknown_message_field": Case(
        "a.jsonl",
        jsonl({"messages": [user("hi"), assistant("x", weight=2)]}),
        1,
        "messages[1].weight: unknown message field",
    ),
    "empty_messages": Case("a.jsonl", jsonl({"messages": []}), 1, "messages: expected at least one message"),
    "messages_not_a_list": Case(
        "a.jsonl", jsonl({"messages": "hi"}), 1, "messages: expected a list of messages, got str"
    ),
    "message_not_an_object": Case(
        "a.jsonl", jsonl({"messages": ["hi", assistant("x")]}), 1, "messages[0]: expected a message object"
    ),
    "assistant_first": Case(
        "a.jsonl",
        jsonl({"messages": [assistant("x"), user("hi"), assistant("y")]}),
        1,
        "messages[0].role: conversation starts with the assistant",
    ),
    "system_not_first": Case(
        "a.jsonl",
        jsonl({"messages": [user("hi"), {"role": "system", "content": "s"}, assistant("y")]}),
        1,
        "messages[1].role: a system message may only come first",
    ),
    "only_system": Case(
        "a.jsonl",
        jsonl({"messages": [{"role": "system", "content": "s"}]}),
        1,
        "messages: only a system message",
    ),
    "no_assistant_turn": Case(
        "a.jsonl", jsonl({"messages": [user("hi")]}), 1, "messages: no assistant turn to train on"
    ),
    "all_assistant_turns_untrained": Case(
        "a.jsonl",
        jsonl({"messages": [user("hi"), assistant("x", train=False)]}),
        1,
        "messages: every assistant turn has train: false",
    ),
    "train_not_a_bool": Case(
        "a.jsonl",
        jsonl({"messages": [user("hi"), assistant("x", train="no")]}),
        1,
        "messages[1].train: expected true or false",
    ),
    "empty_assistant_reply": Case(
        "a.jsonl",
        jsonl(GOOD, {"messages": [user("hi"), assistant("  ")]}),
        2,
        "messages[1].content: empty assistant reply",
    ),
    "special_token_in_content": Case(
        "a.jsonl",
        jsonl(GOOD, {"messages": [user("hi"), assistant("x<|im_end|>y")]}),
        2,
        "messages[1].content: content contains the special token '<|im_end|>'",
    ),
    "mixed_kinds": Case(
        "a.jsonl",
        jsonl(GOOD, GOOD, {"prompt": "p", "completion": "c"}),
        3,
        "a prompt_completion record in a messages dataset",
    ),
    "unknown_kind": Case(
        "a.jsonl", jsonl({"question": "q", "answer": "a"}), 1, "cannot tell the record kind"
    ),
    "completion_missing": Case(
        "a.jsonl",
        jsonl({"prompt": "p", "completion": "c"}, {"prompt": "p"}),
        2,
        "completion: missing field",
        ["data.kind=prompt_completion"],
    ),
    "empty_completion": Case(
        "a.jsonl", jsonl({"prompt": "p", "completion": ""}), 1, "completion: empty completion"
    ),
    "prompt_is_int": Case(
        "a.jsonl", jsonl({"prompt": 3, "completion": "c"}), 1, "prompt: expected a list of messages, got int"
    ),
    "chosen_equals_rejected": Case(
        "a.jsonl",
        jsonl({"prompt": "p", "chosen": "same", "rejected": "same"}),
        1,
        "rejected: identical to chosen",
    ),
    "chosen_equals_rejected_as_messages": Case(
        "a.jsonl",
        jsonl({"chosen": [user("p"), assistant("a")], "rejected": [user("p"), assistant("a")]}),
        1,
        "rejected: identical to chosen",
    ),
    "empty_chosen": Case(
        "a.jsonl", jsonl({"prompt": "p", "chosen": "", "rejected": "r"}), 1, "chosen: empty completion"
    ),
    "rejected_missing": Case("a.jsonl", jsonl({"prompt": "p", "chosen": "c"}), 1, "rejected: missing field"),
    "alpaca_output_missing": Case(
        "a.jsonl",
        jsonl({"instruction": "i", "output": "o"}, {"instruction": "i"}),
        2,
        "output: missing field",
        ["data.kind=alpaca"],
    ),
    "margin_not_a_number": Case(
        "a.jsonl",
        jsonl({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "x"}),
        1,
        "margin: expected a number",
    ),
    "non_utf8_bytes": Case(
        "a.jsonl", jsonl(GOOD, GOOD).encode() + b'{"messages": "\xff\xfe"}\n', 3, "not UTF-8 text"
    ),
    "json_non_utf8_bytes": Case("a.json", b'[\n{"text": "ok"},\n{"text": "\xff"}\n]\n', 3, "not UTF-8 text"),
    "empty_file": Case("a.jsonl", "", None, "no records (empty file)"),
    "whitespace_only_file": Case("a.jsonl", "  \n\n\t\n", None, "no records (empty file)"),
    "empty_json_file": Case("a.json", "", None, "no records (empty file)"),
    "json_array_non_object": Case(
        "a.json",
        "[\n" + json.dumps(GOOD) + ",\n" + json.dumps(GOOD) + ",\n  42\n]\n",
        4,
        "expected a JSON object, got int",
    ),
    "json_syntax_error": Case(
        "a.json", "[\n" + json.dumps(GOOD) + ',\n{"messages": \n]\n', 4, "invalid JSON"
    ),
    "json_not_an_array": Case("a.json", json.dumps({"rows": []}), 1, "expected a JSON array"),
    "parquet_wrong_schema": Case(
        "a.parquet",
        _write_parquet([{"foo": 1}, {"foo": 2}]),
        1,
        "cannot tell the record kind from keys ['foo']",
    ),
    "parquet_bad_row": Case(
        "a.parquet",
        _write_parquet([GOOD, {"messages": [user("hi"), assistant("")]}]),
        2,
        "messages[1].content: empty assistant reply",
    ),
    "not_parquet": Case("a.parquet", "this is not parquet", None, "not a readable Parquet file"),
    "csv_bad_json_cell": Case(
        "a.csv",
        'messages\n"'
        + json.dumps([user("hi"), assistant("x")]).replace('"', '""')
        + '"\n"[{""role"": ""user""}"\n',
        3,
        "messages: invalid JSON in cell",
    ),
    "csv_too_many_cells": Case(
        "a.csv", "prompt,completion\np,c\np,c,extra\n", 3, "more cells than header columns"
    ),
    "unknown_extension": Case("a.txt", "hello", None, "unknown data format .txt"),
    "missing_file": Case("missing.jsonl", lambda path: None, None, "file not found"),
    "not_a_datasets_folder": Case(
        "folder", _not_a_datasets_folder, None, "not a datasets save_to_disk folder"
    ),
    "truncation_error_overflow": Case(
        "a.jsonl",
        jsonl(GOOD, {"messages": [user("hi"), assistant(LONG_PROMPT)]}),
        2,
        "(length): ",
        ["data.truncation=error", "data.max_length=40"],
    ),
    "prompt_leaves_no_room": Case(
        "a.jsonl",
        jsonl({"prompt": LONG_PROMPT, "completion": "ok"}),
        1,
        "no room for the completion",
        ["data.truncation=error", "data.max_length=40"],
    ),
    "preference_prompt_leaves_no_room": Case(
        "a.jsonl",
        jsonl({"prompt": LONG_PROMPT, "chosen": "a", "rejected": "b"}),
        1,
        "no room for the completion",
        ["data.truncation=error", "data.max_length=40"],
    ),
}


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def fast_tokenizer(tokenizer, monkeypatch):
    """The lint command loads a tokenizer per call; hand it the session one instead."""
    from transformers import GenerationConfig

    import alignkit.models.loader as loader

    def load(spec, **_kwargs):
        assert spec == "tiny-random"
        return tokenizer, GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2)

    monkeypatch.setattr(loader, "load_tokenizer_and_generation_config", load)


def write_case(case: Case, folder: Path) -> Path:
    path = folder / case.filename
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif isinstance(case.content, str):
        path.write_text(case.content, encoding="utf-8")
    else:
        case.content(path)
    return path


def lint(runner: CliRunner, path: Path, *overrides: str):
    return runner.invoke(app, ["lint", str(path), "model=tiny-random", *overrides], catch_exceptions=False)


def assert_one_line_error(result, path: Path, line: int | None, fragment: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    where = re.escape(f"error: {path}") + (f":{line}: " if line is not None else ": ")
    assert re.match(where, lines[0]), lines[0]
    assert fragment in lines[0], lines[0]
    return lines[0]


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_input_gives_one_line_error(runner, tmp_path, name):
    case = CASES[name]
    path = write_case(case, tmp_path)
    result = lint(runner, path, *case.overrides)
    assert_one_line_error(result, path, case.line, case.fragment)


def test_skip_reports_counts_per_reason_and_exits_0(runner, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        jsonl(
            GOOD,
            {"messages": [user("hi"), {"role": "bot", "content": "x"}]},
            {"messages": [user("hi"), assistant(5)]},
            {"messages": [user("hi"), assistant(7)]},
            {"messages": [assistant("x"), user("hi"), assistant("y")]},
            {"prompt": "p", "completion": "c"},
            {"messages": [user("bye"), assistant("Goodbye!")]},
        )
    )
    report = tmp_path / "lint.json"
    result = lint(runner, path, "data.on_bad_record=skip", f"out={report}")

    assert result.exit_code == 0, result.output
    assert "skipped bad records" in result.stdout
    (found,) = json.loads(report.read_text())
    assert found["skipped"] == {"unknown_role": 1, "wrong_type": 2, "assistant_first": 1, "mixed_kinds": 1}
    assert (found["records"], found["examples"], found["blocking"]) == (7, 2, False)


def test_skip_with_nothing_left_is_still_an_error(runner, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(jsonl({"messages": []}, {"messages": [user("hi")]}))
    result = lint(runner, path, "data.on_bad_record=skip")
    line = assert_one_line_error(result, path, None, "no valid records")
    assert "empty_messages" in line and "no_assistant" in line


def test_skip_does_not_hide_a_file_level_error(runner, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(jsonl(GOOD, '{"messages": ['))
    assert_one_line_error(lint(runner, path, "data.on_bad_record=skip"), path, 2, "invalid JSON")


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    """The same contract end to end in a fresh interpreter (real tokenizer loading, real stderr)."""
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl(GOOD, GOOD, '{"messages": [', GOOD))
    proc = subprocess.run(
        [sys.executable, "-m", "alignkit.cli", "lint", str(path), "model=tiny-random"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {path}:3: invalid JSON (Expecting value at column 15)"]
