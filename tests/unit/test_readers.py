"""Readers: every format yields the same records with the line (or row) each came from."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from alignkit.data.readers import read_records
from alignkit.data.records import load_records
from alignkit.errors import DataError


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str, **extra) -> dict:
    return {"role": "assistant", "content": text, **extra}


RECORDS = [
    {"messages": [{"role": "system", "content": "Be brief."}, user("hi"), assistant("Hello!")]},
    {"messages": [user("What is 2+2?"), assistant("4", train=False), user("Sure?"), assistant("Yes, 4.")]},
    {"messages": [user("bye"), assistant("Goodbye!")]},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_json(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return path


def write_hf_folder(path: Path, rows: list[dict]) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


WRITERS = {
    "data.jsonl": write_jsonl,
    "data.json": write_json,
    "data.parquet": write_parquet,
    "data.csv": write_csv,
    "hf_folder": write_hf_folder,
}


def normal_form(records) -> list[tuple]:
    return [(r.kind, r.messages, r.chosen, r.rejected, r.text) for r in records]


@pytest.fixture(scope="module")
def expected_records(tmp_path_factory):
    records, _ = load_records(str(write_jsonl(tmp_path_factory.mktemp("ref") / "ref.jsonl", RECORDS)))
    return normal_form(records)


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_reader_reads_the_same_records(tmp_path, name, expected_records):
    path = WRITERS[name](tmp_path / name, RECORDS)
    records, report = load_records(str(path))

    assert normal_form(records) == expected_records
    assert (report.kind, report.total, report.kept, report.duplicates) == ("messages", 3, 3, 0)
    assert all(r.source == str(path) for r in records)


@pytest.mark.parametrize(
    ("name", "expected_lines"),
    [
        ("data.jsonl", [1, 2, 3]),
        ("data.parquet", [1, 2, 3]),  # row numbers
        ("hf_folder", [1, 2, 3]),
        ("data.csv", [2, 3, 4]),  # line 1 is the header
    ],
)
def test_record_lines(tmp_path, name, expected_lines):
    path = WRITERS[name](tmp_path / name, RECORDS)
    assert [raw.line for raw in read_records(path)] == expected_lines


def test_json_array_lines_are_the_lines_where_each_object_starts(tmp_path):
    path = write_json(tmp_path / "data.json", RECORDS)
    starts = [n for n, text in enumerate(path.read_text().splitlines(), start=1) if text == "  {"]
    assert len(starts) == 3
    assert [raw.line for raw in read_records(path)] == starts


def test_json_data_wrapper_and_compact_lines(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"data": [\n' + ",\n".join(json.dumps(r) for r in RECORDS) + "\n]}\n")
    assert [raw.line for raw in read_records(path)] == [2, 3, 4]


def test_jsonl_blank_lines_keep_line_numbers_and_bom_is_ignored(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\ufeff" + json.dumps(RECORDS[0]) + "\n\n   \n" + json.dumps(RECORDS[1]) + "\n")
    assert [raw.line for raw in read_records(path)] == [1, 4]


def test_csv_text_cells_that_start_with_a_bracket_stay_text(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('prompt,completion\n"[INST] say hi","hi"\n', encoding="utf-8")
    records, _ = load_records(str(path))
    assert records[0].messages[0]["content"] == "[INST] say hi"


def test_hf_dataset_dict_uses_the_train_split(tmp_path):
    import datasets

    folder = tmp_path / "dict"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(RECORDS[:2]), "test": datasets.Dataset.from_list(RECORDS[2:])}
    ).save_to_disk(str(folder))
    assert len(list(read_records(folder))) == 2


def test_hf_dataset_dict_without_train_split_is_an_error(tmp_path):
    import datasets

    folder = tmp_path / "dict"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(RECORDS)}).save_to_disk(str(folder))
    with pytest.raises(DataError, match="without a 'train' split"):
        list(read_records(folder))


def test_exact_duplicates_are_counted(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [RECORDS[0], RECORDS[1], RECORDS[0], RECORDS[2], RECORDS[0]])
    records, report = load_records(str(path))
    assert len(records) == report.kept == 5  # counted, not removed
    assert report.duplicates == 2
    assert report.duplicate_lines == [3, 5]


def test_whitespace_difference_is_not_a_duplicate(tmp_path):
    other = {"messages": [{"role": "system", "content": "Be brief."}, user("hi"), assistant("Hello! ")]}
    _, report = load_records(str(write_jsonl(tmp_path / "d.jsonl", [RECORDS[0], other])))
    assert report.duplicates == 0


# --- preference records -------------------------------------------------------------------------


def test_implicit_preference_prompt_is_the_shared_prefix(tmp_path):
    row = {
        "chosen": [user("hi"), assistant("Hello! How can I help?")],
        "rejected": [user("hi"), assistant("What.")],
    }
    records, report = load_records(str(write_jsonl(tmp_path / "p.jsonl", [row])))
    (rec,) = records
    assert report.kind == "preference"
    assert rec.messages == [{**user("hi"), "train": False}]
    assert rec.chosen == [assistant("Hello! How can I help?")]
    assert rec.rejected == [assistant("What.")]


def test_implicit_preference_prompt_spans_several_turns(tmp_path):
    history = [{"role": "system", "content": "Be kind."}, user("hi"), assistant("Hello!"), user("help me")]
    row = {"chosen": [*history, assistant("Of course.")], "rejected": [*history, assistant("No.")]}
    (rec,), _ = load_records(str(write_jsonl(tmp_path / "p.jsonl", [row])))
    assert [m["content"] for m in rec.messages] == ["Be kind.", "hi", "Hello!", "help me"]
    assert all(m["train"] is False for m in rec.messages)
    assert (rec.chosen, rec.rejected) == ([assistant("Of course.")], [assistant("No.")])


def test_explicit_preference_prompt_with_strings(tmp_path):
    row = {"prompt": "hi", "chosen": "Hello!", "rejected": "Go away.", "margin": 2}
    (rec,), _ = load_records(str(write_jsonl(tmp_path / "p.jsonl", [row])))
    assert rec.plain and rec.margin == 2.0
    assert rec.messages == [{**user("hi"), "train": False}]
    assert (rec.chosen, rec.rejected) == ([assistant("Hello!")], [assistant("Go away.")])


def test_preference_without_a_shared_prefix_or_prompt_is_an_error(tmp_path):
    row = {"chosen": [assistant("a")], "rejected": [assistant("b")]}
    with pytest.raises(DataError) as info:
        load_records(str(write_jsonl(tmp_path / "p.jsonl", [row])))
    assert (info.value.line, info.value.field) == (1, "prompt")


# --- kinds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        (RECORDS[0], "messages"),
        ({"prompt": "p", "completion": "c"}, "prompt_completion"),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, "preference"),
        ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
        ({"text": "some text"}, "text"),
    ],
)
def test_kind_is_detected(tmp_path, row, kind):
    _, report = load_records(str(write_jsonl(tmp_path / "k.jsonl", [row])))
    assert report.kind == kind


def test_kind_override_validates_as_that_kind(tmp_path):
    path = write_jsonl(tmp_path / "k.jsonl", [RECORDS[0]])
    with pytest.raises(DataError) as info:
        load_records(str(path), kind="prompt_completion")
    assert (info.value.line, info.value.field) == (1, "prompt")


def test_skip_counts_bad_records_by_reason(tmp_path):
    rows = [
        RECORDS[0],
        {"messages": []},
        {"messages": [user("hi"), {"role": "bot", "content": "x"}]},
        {"prompt": "p", "completion": "c"},
        {"messages": [user("hi"), assistant(3)]},
        RECORDS[2],
    ]
    records, report = load_records(str(write_jsonl(tmp_path / "s.jsonl", rows)), on_bad_record="skip")
    assert [r.line for r in records] == [1, 6]
    assert dict(report.skipped) == {"empty_messages": 1, "unknown_role": 1, "mixed_kinds": 1, "wrong_type": 1}
    assert (report.total, report.kept) == (6, 2)
