"""Self-Instruct end to end on the embedded model (SmolLM2-135M-Instruct), through the CLI.

Kept small (one round of two instruction prompts, short replies). A 135M model often copies the
examples or writes fragments, so few instructions may survive the filters: the test checks that
every stage ran, that the counts add up, and that whatever was written passes ``alignkit lint``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignkit.cli import app

pytestmark = pytest.mark.integration

# Drop reasons of the instruction stage: every parsed item is accepted or counted under one.
INSTRUCTION_DROPS = ("too_short", "too_long", "blocked_keyword", "bad_start", "near_duplicate",
                     "truncated_instruction", "surplus_instruction")  # fmt: skip


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_self_instruct_on_the_embedded_model_writes_lint_clean_records(tmp_path):
    out = tmp_path / "self_instruct"
    args = ["synth", "self-instruct", "--num-instructions", "2", "--out", str(out),
            "generator.device=cpu", "generator.dtype=float32", "prompts_per_round=2", "new_per_prompt=3",
            "max_rounds=1", "instruction_max_new_tokens=96", "instance_max_new_tokens=64",
            "instances_per_task=1", "temperature=1.0", "top_p=0.95"]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    stats = json.loads((out / "stats.json").read_text())
    counters, drops = stats["stats"], stats["drop_counts"]
    instructions = read_jsonl(out / "instructions.jsonl")
    alpaca, messages = read_jsonl(out / "alpaca.jsonl"), read_jsonl(out / "messages.jsonl")

    assert counters["rounds"] == 1 and counters["instruction_requests"] == 2
    assert counters["instructions_parsed"] == sum(drops.get(r, 0) for r in INSTRUCTION_DROPS) + len(
        instructions
    )
    assert counters["instructions"] == len(instructions) <= 2
    assert stats["records"] == counters["records"] == len(alpaca) == len(messages)
    assert drops.get("task_without_instances", 0) + len({r["instruction"] for r in alpaca}) == len(
        instructions
    )
    for record in alpaca:
        assert record["instruction"] in {i["instruction"] for i in instructions} and record["output"].strip()

    for name in ("alpaca.jsonl", "messages.jsonl"):
        if not read_jsonl(out / name):
            continue  # nothing survived: an empty file is not a dataset to lint
        lint = CliRunner().invoke(app, ["lint", str(out / name)], catch_exceptions=False)
        assert lint.exit_code == 0, lint.output
