"""The one prompt-file reader (data/prompts.py) and the one atomic write (io.atomic_write)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from alignkit.data.prompts import read_prompt_chats
from alignkit.errors import DataError
from alignkit.io import atomic_write, atomic_write_text


def jsonl(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_txt_one_prompt_a_line_with_the_system_turn(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("hello\n\n   \n  what is 2+2?  \n", encoding="utf-8")
    assert read_prompt_chats(path, system="Be brief.") == [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "what is 2+2?"}],
    ]


def test_every_record_kind_becomes_a_prompt_chat(tmp_path: Path) -> None:
    conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
                    {"role": "assistant", "content": "the reply, not part of the prompt"}]
    path = jsonl(tmp_path / "p.jsonl",
                 {"prompt": "plain"},
                 {"messages": conversation},
                 {"prompt": conversation[1:3] + [{"role": "user", "content": "d"}]},
                 {"instruction": "Add.", "input": "2 and 2", "output": "4"},
                 {"instruction": "Say hi.", "input": ""})
    chats = read_prompt_chats(path, system="SYS")
    assert chats[0] == [{"role": "system", "content": "SYS"}, {"role": "user", "content": "plain"}]
    assert chats[1] == conversation[:4]  # a conversation brings its own system turn; the reply is cut
    assert chats[2] == [*conversation[1:3], {"role": "user", "content": "d"}]
    assert chats[3][-1] == {"role": "user", "content": "Add.\n\n2 and 2"}
    assert chats[4][-1] == {"role": "user", "content": "Say hi."}


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}, "messages[1]",
         "bad_message"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0]", "bad_message"),
        ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}]}, "messages",
         "no_user_turn"),
        ({"messages": "hello"}, "messages", "bad_message"),
        ({"prompt": "   "}, "prompt", "no_prompt"),
        ({"text": "no prompt here"}, "prompt", "no_prompt"),
        ({"instruction": "Do.", "input": 5}, "input", "bad_input"),
    ],
)
def test_a_bad_record_names_file_line_field_or_is_skipped_and_counted(
    tmp_path: Path, record: dict, field: str, reason: str
) -> None:
    path = jsonl(tmp_path / "p.jsonl", {"prompt": "fine"}, record)
    with pytest.raises(DataError) as info:
        read_prompt_chats(path)
    assert (info.value.source, info.value.line, info.value.field) == (str(path), 2, field)
    skipped: Counter[str] = Counter()
    assert read_prompt_chats(path, on_bad_record="skip", skipped=skipped) == [[{"role": "user", "content": "fine"}]]
    assert skipped == Counter({reason: 1})


def test_a_missing_or_empty_file_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found") as info:
        read_prompt_chats(tmp_path / "missing.txt", field="winrate.prompts")
    assert info.value.field == "winrate.prompts"
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no prompts"):
        read_prompt_chats(tmp_path / "empty.txt")


def test_atomic_write_replaces_whole_files_with_the_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "perm.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "perm.txt").stat().st_mode & 0o777 == 0o644  # mkstemp would give 0o600

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        atomic_write(target, fails)
    assert target.read_text() == "second"  # the old file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temporary left behind
