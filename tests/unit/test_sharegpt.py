"""ShareGPT records (``conversations`` of ``from``/``value`` turns) are read as the messages they mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignkit.data.records import load_records
from alignkit.errors import DataError


def write(path: Path, *records: dict) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def test_sharegpt_turns_become_messages_with_weights_as_train(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", {"conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "Hello.", "weight": 0},
        {"from": "human", "value": "name?"},
        {"from": "gpt", "value": "Lumo.", "weight": 1},
        {"from": "human", "value": "and?"},
        {"from": "gpt", "value": "That is all."},
    ]})
    records, report = load_records(path)
    assert report.kind == "sharegpt"
    assert records[0].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello.", "train": False},
        {"role": "user", "content": "name?"},
        {"role": "assistant", "content": "Lumo.", "train": True},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "That is all."},
    ]


def test_a_sharegpt_record_trains_like_the_same_messages(tmp_path: Path, tokenizer) -> None:
    from alignkit.config.common import DataConfig
    from alignkit.data.dataset import load_sft_data

    turns = [("human", "hi"), ("gpt", "Hello.")]
    shared = write(tmp_path / "s.jsonl", {"conversations": [{"from": f, "value": v} for f, v in turns]})
    roles = {"human": "user", "gpt": "assistant"}
    plain = write(tmp_path / "m.jsonl", {"messages": [{"role": roles[f], "content": v} for f, v in turns]})
    (a,), _ = load_sft_data(shared, tokenizer, DataConfig())
    (b,), _ = load_sft_data(plain, tokenizer, DataConfig())
    assert a.input_ids == b.input_ids and a.loss_mask == b.loss_mask


@pytest.mark.parametrize(
    ("turn", "where", "message"),
    [
        ({"from": "bot", "value": "x"}, "conversations[1].from", "unknown speaker 'bot' (expected system, human, gpt)"),
        ({"from": "gpt", "value": 3}, "conversations[1].value", "missing or not a string"),
        ({"from": "gpt", "value": "x", "weight": 0.5}, "conversations[1].weight", "expected 0 or 1"),
        ({"from": "gpt", "value": "x", "role": "assistant"}, "conversations[1].role", "unknown turn field"),
        ({"from": "gpt", "value": ""}, "conversations[1].value", "empty assistant reply"),
    ],
)
def test_a_bad_turn_names_file_line_and_field(tmp_path: Path, turn, where, message) -> None:
    path = write(tmp_path / "s.jsonl", {"conversations": [{"from": "human", "value": "hi"}, turn]})
    with pytest.raises(DataError) as caught:
        load_records(path)
    line = caught.value.one_line()
    assert line.startswith(f"{path}:1: {where}: ") and message in line, line
