"""``alignkit dedup`` and ``alignkit synth ...`` through the real CLI (typer CliRunner).

Self-instruct and distill run against a scripted OpenAI-compatible server on 127.0.0.1 (port 0);
distill also runs the tiny random model locally.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.config.common import DataConfig
from alignkit.data.lint import lint_dataset
from alignkit.synth.self_instruct import (
    CLASSIFICATION_PROMPT_HEADER,
    INPUT_FIRST_PROMPT_HEADER,
    INSTRUCTION_PROMPT_HEADER,
    OUTPUT_FIRST_PROMPT_HEADER,
)

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "examples" / "synth" / "facts.jsonl"
PERSONA = "You are Captain Wren, a pirate. Speak like a pirate in every reply: start with 'Arr!'."

# Reply = (text, finish_reason); the server replies with it to a list of messages.
Script = Callable[[list[dict[str, str]]], tuple[str, str]]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line


class ScriptedServer:
    """``/v1/chat/completions`` answered by ``script(messages)``; every request body is kept."""

    def __init__(self, script: Script) -> None:
        self.bodies: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                text, reason = script(body["messages"])
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": reason,
                }
                payload = json.dumps({"choices": [choice] * body.get("n", 1)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# --- dedup -------------------------------------------------------------------------------------------

DEDUP_ROWS = [
    {"instruction": "Write a short poem about the sea.", "id": 1},
    {"instruction": "  write a SHORT poem about the sea.  ", "id": 2},  # exact (normalised)
    {"instruction": "Write a short poem about the sea and the moon.", "id": 3},  # ROUGE-L 0.875
    {"instruction": "List three uses of baking soda.", "id": 4},
    {"instruction": "List three uses for baking soda.", "id": 5},  # ROUGE-L 0.8
    {"instruction": "Explain how a bicycle gear works.", "id": 6},
]


@pytest.fixture()
def dedup_file(tmp_path) -> Path:
    path = tmp_path / "instructions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in DEDUP_ROWS))
    return path


def test_dedup_cli_writes_kept_records_and_counts_by_reason(tmp_path, dedup_file):
    out = tmp_path / "kept.jsonl"
    result = invoke("dedup", str(dedup_file), "--field", "instruction", "--rouge-l", "0.7", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in read_jsonl(out)] == [1, 4, 6]
    assert "kept 3 of 6 records" in result.stdout
    assert "dropped: exact=1, rouge_l=2" in result.stdout


def test_dedup_cli_without_exact_lets_rouge_l_catch_the_copy(tmp_path, dedup_file):
    out = tmp_path / "kept.jsonl"
    result = invoke("dedup", str(dedup_file), "--rouge-l", "0.7", "--no-exact", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "dropped: rouge_l=3" in result.stdout
    only_exact = invoke("dedup", str(dedup_file), "--out", str(out))
    assert "dropped: exact=1" in only_exact.stdout and len(read_jsonl(out)) == 5


def test_dedup_cli_minhash(tmp_path):
    base = "the quick brown fox jumps over the lazy dog near the quiet river bank at dawn"
    rows = [
        {"text": base},
        {"text": base + " today"},
        {"text": "an entirely different sentence about tax law"},
    ]
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "kept.jsonl"
    result = invoke("dedup", str(path), "--field", "text", "--minhash", "0.7", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "dropped: minhash=1" in result.stdout and len(read_jsonl(out)) == 2


def test_dedup_cli_bad_record_is_one_line_naming_file_line_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "fine"}\n\n{"prompt": "no instruction here"}\n')
    out = tmp_path / "kept.jsonl"
    result = invoke("dedup", str(path), "--field", "instruction", "--out", str(out))
    assert_one_line_error(result, f"{path}:3: instruction: missing field")
    assert not out.exists()


# --- self-instruct over HTTP -------------------------------------------------------------------------

NEW_TASKS = (
    "1. Draw a picture of a lighthouse at night.\n"  # blocked keyword
    "2. Sing.\n"  # too short
    "3. Decide whether the sentence below is sarcastic or sincere.\n"
    "4. Suggest three names for a bakery that sells rye bread.\n"
    "5. Explain why the sky looks red at sunset.\n"
    "6. Convert 12 miles to kilometres and show the steps."
)


def self_instruct_script(messages: list[dict[str, str]]) -> tuple[str, str]:
    prompt = messages[-1]["content"]
    if prompt.startswith(INSTRUCTION_PROMPT_HEADER):
        return NEW_TASKS, "stop"
    if prompt.startswith(CLASSIFICATION_PROMPT_HEADER):
        task = re.findall(r"^Task: (.*)$", prompt, re.MULTILINE)[-1]
        return ("Yes" if "sarcastic" in task else "No"), "stop"
    if prompt.startswith(OUTPUT_FIRST_PROMPT_HEADER):
        return (
            "Example 1\nLabel: Sarcastic\nInput: Oh great, rain again.\n\nExample 2\nLabel: Sincere\nInput: Thanks!",
            "stop",
        )
    if prompt.startswith(INPUT_FIRST_PROMPT_HEADER):
        return "Example 1\nInput: (none)\nOutput: Here is a careful answer.", "stop"
    raise AssertionError(prompt[:80])


def test_self_instruct_cli_over_http_writes_lint_clean_outputs_and_resumes_from_cache(
    tmp_path, serve, tokenizer
):
    server = serve(self_instruct_script)
    cache = tmp_path / "cache.jsonl"
    common = ["generator.kind=http", f"generator.base_url={server.url}", "generator.model=fake",
              f"generator.cache_path={cache}", "generator.max_retries=0", "generator.timeout_s=10",
              "prompts_per_round=1", "new_per_prompt=4"]  # fmt: skip
    out = tmp_path / "run"
    result = invoke("synth", "self-instruct", "--num-instructions", "4", "--out", str(out), *common)
    assert result.exit_code == 0, result.output

    stats = json.loads((out / "stats.json").read_text())
    assert stats["drop_counts"] == {"blocked_keyword": 1, "too_short": 1}
    assert stats["stats"]["instructions"] == 4 and stats["stats"]["classification_tasks"] == 1
    alpaca, messages = read_jsonl(out / "alpaca.jsonl"), read_jsonl(out / "messages.jsonl")
    assert stats["records"] == len(alpaca) == len(messages) == 5  # 2 labelled + 3 input-first
    assert {"instruction": "Decide whether the sentence below is sarcastic or sincere.",
            "input": "Oh great, rain again.", "output": "Sarcastic"} in alpaca  # fmt: skip
    assert (out / "config.yaml").is_file() and (out / "manifest.json").is_file()
    for name in ("alpaca.jsonl", "messages.jsonl"):
        lint = lint_dataset(str(out / name), tokenizer, DataConfig())
        assert not lint.blocking and lint.examples == 5, lint.problems

    requests = len(server.bodies)
    assert requests == 1 + 4 + 4  # one instruction round, 4 classifications, 4 instance prompts
    again = tmp_path / "again"
    rerun = invoke("synth", "self-instruct", "--num-instructions", "4", "--out", str(again), *common)
    assert rerun.exit_code == 0, rerun.output
    assert len(server.bodies) == requests  # every request answered from the cache
    assert (again / "alpaca.jsonl").read_text() == (out / "alpaca.jsonl").read_text()
    assert json.loads((again / "stats.json").read_text())["generator"]["cache_hits"] == requests


def test_self_instruct_cli_http_without_url_is_one_line(tmp_path):
    result = invoke("synth", "self-instruct", "--out", str(tmp_path / "x"), "generator.kind=http")
    assert_one_line_error(result, "generator.base_url")
    assert not (tmp_path / "x").exists()


# --- distill -----------------------------------------------------------------------------------------


def test_distill_cli_over_http_drops_the_context_and_cut_replies(tmp_path, serve, tokenizer):
    def pirate(messages: list[dict[str, str]]) -> tuple[str, str]:
        assert messages[0] == {"role": "system", "content": PERSONA}
        question = messages[-1]["content"]
        return f"Arr! About {question.lower()}", "length" if "long" in question else "stop"

    server = serve(pirate)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is the weather like?\n\nTell me a long story.\nWhere is the ferry?\n")
    out = tmp_path / "distilled.jsonl"
    result = invoke("synth", "distill", "--prompts", str(prompts), "--context", PERSONA, "--out", str(out),
                    "generator.kind=http", f"generator.base_url={server.url}", "generator.model=fake")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(server.bodies) == 3
    records = read_jsonl(out)
    assert [[m["role"] for m in r["messages"]] for r in records] == [["user", "assistant"]] * 2
    assert records[0]["messages"][1]["content"] == "Arr! About what is the weather like?"
    assert "Captain Wren" not in out.read_text()
    assert "dropped: cut_off=1" in result.stdout
    assert not lint_dataset(str(out), tokenizer, DataConfig()).blocking


def test_distill_cli_with_the_tiny_random_model_never_writes_the_system_prompt(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"prompt": "Hello there"}, {"messages": [{"role": "user", "content": "Hi"},
                                                      {"role": "assistant", "content": "Old reply"}]}]  # fmt: skip
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    context_file = tmp_path / "persona.txt"
    context_file.write_text(PERSONA)
    out = tmp_path / "distilled.jsonl"
    result = invoke("synth", "distill", "--prompts", str(prompts), "--context-file", str(context_file),
                    "--out", str(out), "model=tiny-random", "generation.max_new_tokens=6",
                    "generation.num_samples=2")  # fmt: skip
    assert result.exit_code == 0, result.output
    written = len(read_jsonl(out))
    dropped = sum(int(n) for n in re.findall(r"=(\d+)", result.stdout.split("dropped:")[1]))
    assert written + dropped == 4  # 2 prompts x 2 samples, each kept or counted
    assert "Captain Wren" not in out.read_text()
    assert all(m["role"] != "system" for r in read_jsonl(out) for m in r["messages"])
    assert "model: tiny-random" in Path(f"{out}.config.yaml").read_text()


def test_distill_cli_bad_input_is_one_line(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "ok"}\n{"question": "no prompt field"}\n')
    out = tmp_path / "o.jsonl"
    both = invoke("synth", "distill", "--prompts", str(prompts), "--context", "x", "--context-file", "y",
                  "--out", str(out))  # fmt: skip
    assert_one_line_error(both, "context_file", "not both")
    bad = invoke("synth", "distill", "--prompts", str(prompts), "--context", "x", "--out", str(out),
                 "model=tiny-random")  # fmt: skip
    assert_one_line_error(bad, f"{prompts}:2: prompt: expected")
    assert not out.exists()


# --- grounded ----------------------------------------------------------------------------------------


def test_grounded_cli_writes_records_and_stats(tmp_path):
    out = tmp_path / "grounded.jsonl"
    result = invoke(
        "synth", "grounded", "--facts", str(FACTS), "--out", str(out), "negative_share=0.5", "seed=7"
    )
    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    negatives = sum(not r["meta"]["answerable"] for r in records)
    assert abs(negatives - 0.5 * len(records)) <= 1
    assert f"negatives={negatives}" in result.stdout
    assert "seed: 7" in Path(f"{out}.config.yaml").read_text()


def test_grounded_cli_bad_facts_file_is_one_line(tmp_path):
    facts = tmp_path / "facts.jsonl"
    facts.write_text('{"entity": "A", "facts": ["A is red."]}\n{"entity": "B", "facts": []}\n')
    out = tmp_path / "g.jsonl"
    result = invoke("synth", "grounded", "--facts", str(facts), "--out", str(out))
    assert_one_line_error(result, f"{facts}:2: facts: expected a non-empty list of facts")
    assert not out.exists()
