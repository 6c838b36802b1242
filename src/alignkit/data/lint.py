"""``alignkit lint``: proves a dataset + template are safe to train on, before training.

Blocking problems (exit 1): trained assistant turns whose end-of-turn token is not in the loss mask
(the model would never learn to stop), a doubled BOS, a generation config that does not stop on the
template's end-of-turn token, examples whose loss mask is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignkit.config.common import DataConfig
from alignkit.data.dataset import BuildReport, build_preference_examples, build_sft_examples
from alignkit.data.formatting import template_info
from alignkit.data.records import load_records


@dataclass
class LintResult:
    path: str
    kind: str
    records: int
    examples: int
    length_percentiles: dict[str, int]
    truncated: int
    dropped: dict[str, int]
    skipped: dict[str, int]
    duplicates: int
    trained_turns: int
    eot_in_mask_share: float
    doubled_bos: int
    generation_stops_on_eot: bool | None
    eot_token: str | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "blocking": self.blocking}


def _stop_ids(generation_config: Any) -> set[int]:
    eos = getattr(generation_config, "eos_token_id", None)
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list | tuple) else {int(eos)}


def _lines(report: BuildReport, problem: str) -> str:
    lines = report.problem_lines.get(problem, [])
    return ", ".join(f"line {n}" for n in lines[:5])


def lint_dataset(path: str, tokenizer: Any, config: DataConfig, *, generation_config: Any = None) -> LintResult:
    """Formats every record exactly as training would and checks the contracts on the result."""
    records, load_report = load_records(path, kind=config.kind, on_bad_record=config.on_bad_record)
    if load_report.kind == "preference":
        # Counts the trained turns of both replies (chosen and rejected) of every pair.
        _, report = build_preference_examples(records, tokenizer, config, load_report)
    else:
        _, report = build_sft_examples(records, tokenizer, config, load_report)
    info = template_info(tokenizer)
    lengths = np.array(report.lengths or [0])
    share = report.trained_turns_with_eot / report.trained_turns if report.trained_turns else 0.0
    stops: bool | None = None
    if generation_config is not None and info.eot_id is not None:
        stops = info.eot_id in _stop_ids(generation_config)
    result = LintResult(
        path=path, kind=load_report.kind, records=load_report.total, examples=report.examples,
        length_percentiles={f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99, 100)},
        truncated=report.truncated, dropped=dict(report.dropped), skipped=dict(load_report.skipped),
        duplicates=load_report.duplicates, trained_turns=report.trained_turns, eot_in_mask_share=share,
        doubled_bos=report.doubled_bos, generation_stops_on_eot=stops, eot_token=info.eot_token,
    )
    if report.trained_turns and share < 1.0:
        missing = report.trained_turns - report.trained_turns_with_eot
        hint = " (raw-text mode with add_eos=false?)" if config.raw_text and not config.add_eos else ""
        result.problems.append(
            f"{missing} of {report.trained_turns} trained assistant turns have no end-of-turn token "
            f"{info.eot_token!r} in the loss mask{hint}: the model will not learn to stop "
            f"({_lines(report, 'eot_not_trained')})"
        )
    if report.doubled_bos:
        result.problems.append(f"{report.doubled_bos} examples start with a doubled BOS ({_lines(report, 'doubled_bos')})")
    if stops is False:
        result.problems.append(
            f"the model's generation config does not stop on the end-of-turn token {info.eot_token!r}: "
            "a fine-tuned model would run on past its turn"
        )
    if report.dropped.get("fully_masked"):
        result.problems.append(
            f"{report.dropped['fully_masked']} examples have nothing to train on after truncation "
            f"({_lines(report, 'fully_masked')})"
        )
    if report.truncated:
        result.warnings.append(f"{report.truncated} examples truncated to {config.max_length} tokens "
                               f"({_lines(report, 'truncated')})")
    if load_report.duplicates:
        lines = ", ".join(f"line {n}" for n in load_report.duplicate_lines[:5])
        result.warnings.append(f"{load_report.duplicates} exact duplicate records ({lines})")
    if load_report.skipped:
        result.warnings.append(f"skipped bad records: {dict(load_report.skipped)}")
    if not info.has_template and not config.raw_text:
        result.problems.append("the tokenizer has no chat template")
    return result
