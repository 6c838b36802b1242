"""``alignkit lint``: passes good data, blocks data whose replies never learn to stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import GenerationConfig
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.config.common import DataConfig
from alignkit.data.lint import lint_dataset

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "assets" / "support_chat.jsonl"

CHATS = [
    {
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "You support a desk lamp."},
            {"role": "user", "content": "Battery life?"},
            {"role": "assistant", "content": "About 14 hours."},
            {"role": "user", "content": "And charging?"},
            {"role": "assistant", "content": "Two hours over USB-C."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "thanks"},
            {"role": "assistant", "content": "You're welcome!"},
        ]
    },
]
STOPS_ON_EOT = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2)


def flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare with whitespace collapsed."""
    return " ".join(text.split())


@pytest.fixture()
def chats(tmp_path) -> Path:
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in CHATS))
    return path


def lint_cli(*args: str):
    return CliRunner().invoke(app, ["lint", *args], catch_exceptions=False)


def test_good_dataset_passes(tokenizer, chats):
    result = lint_dataset(str(chats), tokenizer, DataConfig(), generation_config=STOPS_ON_EOT)

    assert (result.kind, result.records, result.examples) == ("messages", 3, 3)
    assert result.trained_turns == 4
    assert result.eot_in_mask_share == 1.0
    assert result.eot_token == "<|im_end|>"
    assert result.generation_stops_on_eot is True
    assert (result.doubled_bos, result.truncated, result.duplicates) == (0, 0, 0)
    assert result.problems == [] and result.warnings == [] and not result.blocking
    assert result.length_percentiles["p100"] == max(result.length_percentiles.values())


def test_cli_on_the_example_dataset_exits_0_with_full_eot_share():
    result = lint_cli(str(EXAMPLE), "model=tiny-random")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "end-of-turn '<|im_end|>' in loss mask: 100.0%" in out
    assert "doubled BOS: 0" in out and "generation stops on end-of-turn: True" in out
    assert out.endswith("ok")


def test_raw_text_without_eos_is_blocking(tokenizer, chats):
    config = DataConfig(raw_text=True, add_eos=False)
    result = lint_dataset(str(chats), tokenizer, config, generation_config=STOPS_ON_EOT)

    assert result.eot_in_mask_share == 0.0
    assert result.blocking
    (problem,) = result.problems
    assert "3 of 3 trained assistant turns have no end-of-turn token '<|im_end|>' in the loss mask" in problem
    assert "add_eos=false" in problem and "line 1, line 2, line 3" in problem


def test_cli_raw_text_without_eos_exits_1_and_says_so(chats):
    result = lint_cli(str(chats), "model=tiny-random", "data.raw_text=true", "data.add_eos=false")
    assert result.exit_code == 1, result.output
    out = flat(result.stdout)
    assert "in loss mask: 0.0%" in out
    assert "have no end-of-turn token '<|im_end|>' in the loss mask" in out
    assert "will not learn to stop" in out
    assert "blocking problems found" in out


def test_raw_text_with_eos_passes(tokenizer, chats):
    result = lint_dataset(str(chats), tokenizer, DataConfig(raw_text=True), generation_config=STOPS_ON_EOT)
    assert result.eot_in_mask_share == 1.0 and not result.blocking


def test_generation_config_that_does_not_stop_on_eot_is_flagged(tokenizer, chats):
    result = lint_dataset(
        str(chats), tokenizer, DataConfig(), generation_config=GenerationConfig(eos_token_id=0)
    )

    assert result.generation_stops_on_eot is False
    assert result.blocking
    (problem,) = result.problems
    assert "does not stop on the end-of-turn token '<|im_end|>'" in problem


def test_generation_config_with_a_list_of_stop_ids(tokenizer, chats):
    result = lint_dataset(
        str(chats), tokenizer, DataConfig(), generation_config=GenerationConfig(eos_token_id=[0, 2])
    )
    assert result.generation_stops_on_eot is True and not result.blocking


def test_without_a_generation_config_the_stop_check_is_unknown(tokenizer, chats):
    result = lint_dataset(str(chats), tokenizer, DataConfig())
    assert result.generation_stops_on_eot is None and not result.blocking


def test_doubled_bos_from_a_template_is_blocking(tokenizer, chats):
    template = (
        "{{ bos_token }}{{ bos_token }}{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}"
        "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    result = lint_dataset(
        str(chats), tokenizer, DataConfig(chat_template=template), generation_config=STOPS_ON_EOT
    )
    assert result.doubled_bos == 3
    assert any("doubled BOS" in p for p in result.problems)


def test_fully_masked_examples_are_blocking(tokenizer, tmp_path):
    path = tmp_path / "long.jsonl"
    long_prompt = {
        "messages": [{"role": "user", "content": "word " * 40}, {"role": "assistant", "content": "ok"}]
    }
    path.write_text(json.dumps(CHATS[0]) + "\n" + json.dumps(long_prompt) + "\n")
    result = lint_dataset(str(path), tokenizer, DataConfig(max_length=40), generation_config=STOPS_ON_EOT)

    assert result.dropped == {"fully_masked": 1}
    assert result.examples == 1 and result.eot_in_mask_share == 1.0
    assert any("nothing to train on after truncation (line 2)" in p for p in result.problems)


def test_truncated_and_duplicate_records_are_warnings(tokenizer, tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in [CHATS[1], CHATS[0], CHATS[0]]))
    result = lint_dataset(
        str(path), tokenizer, DataConfig(max_length=45, truncation="keep_end"), generation_config=STOPS_ON_EOT
    )

    assert result.truncated == 1 and result.duplicates == 1
    assert not result.blocking
    assert any("1 exact duplicate records (line 3)" in w for w in result.warnings)
    assert any("truncated to 45 tokens (line 1)" in w for w in result.warnings)


@pytest.mark.parametrize("raw_text", [False, True])
def test_preference_data_counts_both_replies(tokenizer, tmp_path, raw_text):
    path = tmp_path / "pref.jsonl"
    rows = [
        {"prompt": "hi", "chosen": "Hello! How can I help?", "rejected": "What."},
        {"prompt": "bye", "chosen": "Goodbye!", "rejected": "Whatever."},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = DataConfig(raw_text=raw_text, add_eos=not raw_text)
    result = lint_dataset(str(path), tokenizer, config, generation_config=STOPS_ON_EOT)

    assert (result.kind, result.examples, result.trained_turns) == ("preference", 2, 4)
    # Raw text without EOS: no reply learns to stop, and lint must not claim otherwise.
    assert result.eot_in_mask_share == (0.0 if raw_text else 1.0)
    assert result.blocking is raw_text


def test_cli_writes_json_findings(tmp_path, chats):
    out = tmp_path / "lint.json"
    result = lint_cli(str(chats), "model=tiny-random", f"out={out}")
    assert result.exit_code == 0, result.output
    (found,) = json.loads(out.read_text())
    assert found["eot_in_mask_share"] == 1.0 and found["blocking"] is False and found["path"] == str(chats)
