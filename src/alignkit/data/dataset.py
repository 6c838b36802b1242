"""Records -> tokenised examples, with the counts lint and trainers report."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignkit.config.common import DataConfig
from alignkit.data.formatting import Formatted, doubled_bos, format_chat, format_raw, truncate
from alignkit.data.records import LoadReport, Record, load_records
from alignkit.errors import DataError


@dataclass
class Example:
    """A tokenised SFT example, remembering the record it came from (for error messages and logs)."""

    input_ids: list[int]
    loss_mask: list[int]
    source: str
    line: int
    index: int = 0  # position in the dataset, used by the sampler and non-finite logs
    eot_positions: list[int] = field(default_factory=list)
    truncated: bool = False


@dataclass
class PreferenceExample:
    """A tokenised preference pair: chosen and rejected share the same prompt tokens."""

    chosen_ids: list[int]
    chosen_mask: list[int]
    rejected_ids: list[int]
    rejected_mask: list[int]
    source: str
    line: int
    index: int = 0
    margin: float | None = None


@dataclass
class BuildReport:
    load: LoadReport
    examples: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    lengths: list[int] = field(default_factory=list)
    trained_turns: int = 0
    trained_turns_with_eot: int = 0
    doubled_bos: int = 0
    problem_lines: dict[str, list[int]] = field(default_factory=dict)

    def note(self, problem: str, line: int) -> None:
        lines = self.problem_lines.setdefault(problem, [])
        if len(lines) < 5:
            lines.append(line)


def resolve_chat_template(value: str | None) -> str | None:
    """``data.chat_template`` may be Jinja text or a path to a .jinja file."""
    if value and value.endswith((".jinja", ".j2")) and "{%" not in value:
        path = Path(value)
        if not path.is_file():
            raise DataError("chat template file not found", source=value, field="data.chat_template")
        return path.read_text(encoding="utf-8")
    return value


def _format_messages(tokenizer: Any, messages: list[dict[str, Any]], config: DataConfig,
                     template: str | None, plain: bool) -> Formatted:
    if config.raw_text:
        prompt = "".join(m["content"] + "\n" for m in messages if m.get("train", True) is False
                         or m["role"] != "assistant")
        replies = "\n".join(m["content"] for m in messages if m["role"] == "assistant" and m.get("train", True))
        if not plain:
            # Role-tagged conversations as plain text (what continuation training on chat logs does).
            prompt = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages
                             if not (m["role"] == "assistant" and m.get("train", True)))
            replies = "\n".join(f"Assistant: {m['content']}" for m in messages
                                if m["role"] == "assistant" and m.get("train", True))
        return format_raw(tokenizer, replies, prompt=prompt, add_eos=config.add_eos)
    return format_chat(tokenizer, messages, chat_template=template)


def format_record(tokenizer: Any, record: Record, config: DataConfig, template: str | None) -> Formatted:
    """One record (non-preference) -> ids + mask, before truncation."""
    try:
        if record.kind == "text":
            return format_raw(tokenizer, record.text or "", add_eos=config.add_eos)
        return _format_messages(tokenizer, record.messages, config, template, record.plain)
    except DataError as error:
        error.source, error.line = record.source, record.line
        raise


def build_sft_examples(records: list[Record], tokenizer: Any, config: DataConfig,
                       load_report: LoadReport | None = None) -> tuple[list[Example], BuildReport]:
    """Formats, truncates and counts; drops fully masked examples (counted)."""
    report = BuildReport(load=load_report or LoadReport())
    template = resolve_chat_template(config.chat_template)
    examples: list[Example] = []
    bos_id = tokenizer.bos_token_id
    for record in records:
        if record.kind == "preference":
            raise DataError("preference records need a preference trainer (dpo, rm), not SFT",
                            source=record.source, line=record.line, field="(record)")
        formatted = format_record(tokenizer, record, config, template)
        try:
            truncated = truncate(formatted, max_length=config.max_length, policy=config.truncation)
        except DataError as error:
            error.source, error.line = record.source, record.line
            raise
        if truncated is None:
            report.dropped["too_long"] += 1
            report.note("too_long", record.line)
            continue
        # A dropped example is only counted as dropped, not as truncated or as missing its end-of-turn.
        if sum(truncated.loss_mask) == 0:
            report.dropped["fully_masked"] += 1
            report.note("fully_masked", record.line)
            continue
        if truncated.truncated:
            report.truncated += 1
            report.note("truncated", record.line)
        report.trained_turns += len(truncated.eot_positions)
        with_eot = sum(1 for p in truncated.eot_positions if p >= 0 and truncated.loss_mask[p] == 1)
        report.trained_turns_with_eot += with_eot
        if with_eot < len(truncated.eot_positions):
            report.note("eot_not_trained", record.line)
        if bos_id is not None and len(truncated.input_ids) > 1 and truncated.input_ids[0] == bos_id \
                and truncated.input_ids[1] == bos_id:
            report.doubled_bos += 1
            report.note("doubled_bos", record.line)
        report.lengths.append(len(truncated.input_ids))
        examples.append(Example(truncated.input_ids, truncated.loss_mask, record.source, record.line,
                                len(examples), truncated.eot_positions, truncated.truncated))
    report.examples = len(examples)
    return examples, report


def build_preference_examples(records: list[Record], tokenizer: Any, config: DataConfig,
                              load_report: LoadReport | None = None
                              ) -> tuple[list[PreferenceExample], BuildReport]:
    """Formats prompt+chosen and prompt+rejected; a pair that does not fit is dropped or errors."""
    report = BuildReport(load=load_report or LoadReport())
    template = resolve_chat_template(config.chat_template)
    examples: list[PreferenceExample] = []
    for record in records:
        if record.kind != "preference":
            raise DataError("expected preference records (prompt, chosen, rejected)", source=record.source,
                            line=record.line, field="chosen")
        pair: list[Formatted] = []
        for reply in (record.chosen, record.rejected):
            rec = Record("messages", record.source, record.line, messages=record.messages + reply,
                         plain=record.plain)
            formatted = format_record(tokenizer, rec, config, template)
            try:
                cut = truncate(formatted, max_length=config.max_length,
                               policy="error" if config.truncation == "error" else
                               ("drop" if config.truncation == "drop" else "keep_start"))
            except DataError as error:
                error.source, error.line = record.source, record.line
                raise
            if cut is None or sum(cut.loss_mask) == 0:
                break
            pair.append(cut)
        if len(pair) < 2:
            reason = "prompt_too_long"
            if config.on_bad_record != "skip" and config.truncation == "error":
                raise DataError("the prompt leaves no room for the completion within data.max_length",
                                source=record.source, line=record.line, field="prompt")
            report.dropped[reason] += 1
            report.note(reason, record.line)
            continue
        chosen, rejected = pair
        for cut in pair:
            if cut.truncated:
                report.truncated += 1
            report.trained_turns += len(cut.eot_positions)
            with_eot = sum(1 for p in cut.eot_positions if p >= 0 and cut.loss_mask[p] == 1)
            report.trained_turns_with_eot += with_eot
            if with_eot < len(cut.eot_positions):
                report.note("eot_not_trained", record.line)
            if doubled_bos(cut.input_ids, tokenizer.bos_token_id):
                report.doubled_bos += 1
                report.note("doubled_bos", record.line)
        report.lengths += [len(chosen.input_ids), len(rejected.input_ids)]
        examples.append(PreferenceExample(chosen.input_ids, chosen.loss_mask, rejected.input_ids,
                                          rejected.loss_mask, record.source, record.line, len(examples),
                                          record.margin))
    report.examples = len(examples)
    if not examples:
        raise DataError(f"no usable preference pairs (dropped: {dict(report.dropped)})",
                        source=records[0].source if records else None)
    return examples, report


def load_sft_data(path: str, tokenizer: Any, config: DataConfig) -> tuple[list[Example], BuildReport]:
    records, load_report = load_records(path, kind=config.kind, on_bad_record=config.on_bad_record)
    return build_sft_examples(records, tokenizer, config, load_report)


def load_preference_data(path: str, tokenizer: Any, config: DataConfig
                         ) -> tuple[list[PreferenceExample], BuildReport]:
    kind = "preference" if config.kind == "auto" else config.kind
    records, load_report = load_records(path, kind=kind, on_bad_record=config.on_bad_record)
    return build_preference_examples(records, tokenizer, config, load_report)


def data_fingerprint(path: str | Path) -> str:
    """sha256 of a data file (or of every file in a folder), for manifests and caches."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]
