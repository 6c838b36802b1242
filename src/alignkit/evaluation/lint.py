"""``alignkit lint`` as a command: the model's tokenizer and template, ``data.lint`` on each file, the
findings printed (and written as JSON with ``out``). Exit code 1 when a problem blocks training."""

from __future__ import annotations

import json
from collections.abc import Callable

from rich.console import Console

from alignkit.config.commands import LintConfig
from alignkit.data.lint import LintResult, lint_dataset
from alignkit.errors import AlignkitError
from alignkit.io import atomic_write_text
from alignkit.models.loader import load_tokenizer_and_generation_config
from alignkit.result import CommandResult


def print_lint_results(results: list[LintResult]) -> None:
    console = Console(highlight=False, soft_wrap=True)
    for result in results:
        console.print(f"[bold]{result.path}[/bold]: {result.records} records, kind={result.kind}, "
                      f"{result.examples} examples")
        console.print(f"  token lengths: {result.length_percentiles}")
        console.print(f"  truncated: {result.truncated}  dropped: {result.dropped or 0}  "
                      f"duplicates: {result.duplicates}  skipped: {result.skipped or 0}")
        console.print(f"  trained assistant turns: {result.trained_turns}, end-of-turn {result.eot_token!r} "
                      f"in loss mask: {result.eot_in_mask_share:.1%}")
        console.print(f"  doubled BOS: {result.doubled_bos}  generation stops on end-of-turn: "
                      f"{result.generation_stops_on_eot}")
        for warning in result.warnings:
            console.print(f"  [yellow]warning[/yellow]: {warning}")
        for problem in result.problems:
            console.print(f"  [red]problem[/red]: {problem}")
        console.print("  [green]ok[/green]" if not result.blocking else "  [red]blocking problems found[/red]")


def lint_command(cfg: LintConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    if not cfg.paths and cfg.data.train:
        cfg.paths = [cfg.data.train]
    if not cfg.paths:
        raise AlignkitError("expected at least one data file: alignkit lint DATA", field="paths")
    tokenizer, generation_config = load_tokenizer_and_generation_config(
        cfg.model, trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle
    )
    results = [lint_dataset(path, tokenizer, cfg.data, generation_config=generation_config) for path in cfg.paths]
    print_lint_results(results)
    if cfg.out:
        atomic_write_text(cfg.out, json.dumps([r.as_dict() for r in results], indent=2))
    return CommandResult(output=cfg.out, code=1 if any(r.blocking for r in results) else 0)
