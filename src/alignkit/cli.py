"""``alignkit <command> [--config FILE] [key=value ...]``: thin dispatch to the library.

Exit codes: 0 success; 1 the command ran and found problems (lint, probes); 2 bad input or config,
printed as one line ``error: <file>:<line>: <field>: <what was expected>`` (``--debug`` shows the
traceback instead).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from alignkit.config.base import StrictModel, config_to_yaml, load_config
from alignkit.errors import AlignkitError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Align a language model to a use case, end to end.")
C = TypeVar("C", bound=StrictModel)
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file")
PrintOpt = typer.Option(False, "--print-config", help="print the resolved config and exit")
DebugOpt = typer.Option(False, "--debug", help="show tracebacks")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def run_guarded(debug: bool, body: Callable[[], int]) -> None:
    """Runs a command body; user mistakes become one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO if os.environ.get("ALIGNKIT_VERBOSE") else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if debug or os.environ.get("ALIGNKIT_DEBUG"):
        code = body()
        raise typer.Exit(code)
    try:
        code = body()
    except AlignkitError as error:
        _fail(error.one_line())
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def split_args(args: list[str] | None) -> tuple[list[str], list[str]]:
    """Command-line words -> (positional values, key=value overrides)."""
    positional, overrides = [], []
    for arg in args or []:
        (overrides if "=" in arg and not arg.startswith("-") else positional).append(arg)
    return positional, overrides


def resolve(model: type[C], config: Path | None, overrides: list[str], print_config: bool,
            defaults: dict[str, Any] | None = None) -> C | None:
    resolved = load_config(model, config, overrides, defaults=defaults)
    if print_config:
        typer.echo(config_to_yaml(resolved), nl=False)
        return None
    return resolved


@app.command(context_settings=EXTRA)
def lint(
    args: list[str] = typer.Argument(None, help="DATA files and key=value overrides"),
    model: str = typer.Option(None, "--model", help="model spec whose tokenizer/template is used"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Check data + chat template before training (EOS in mask, doubled BOS, stop tokens, lengths)."""
    from alignkit.config.commands import LintConfig

    def body() -> int:
        paths, overrides = split_args(args)
        if model:
            overrides.append(f"model={model}")
        cfg = resolve(LintConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        if paths:
            cfg.paths = paths
        if not cfg.paths and cfg.data.train:
            cfg.paths = [cfg.data.train]
        if not cfg.paths:
            raise AlignkitError("expected at least one data file: alignkit lint DATA", field="paths")
        return lint_main(cfg)

    run_guarded(debug, body)


def lint_main(cfg: Any) -> int:
    from rich.console import Console

    from alignkit.data.lint import lint_dataset
    from alignkit.models.loader import load_tokenizer_and_generation_config

    console = Console(highlight=False)
    tokenizer, generation_config = load_tokenizer_and_generation_config(
        cfg.model, trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle
    )
    results = [lint_dataset(path, tokenizer, cfg.data, generation_config=generation_config) for path in cfg.paths]
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
    if cfg.json_out:
        from alignkit.io import atomic_write_text

        atomic_write_text(cfg.json_out, json.dumps([r.as_dict() for r in results], indent=2))
    return 1 if any(r.blocking for r in results) else 0


def _read_prompts(cfg: Any) -> list[list[dict[str, str]]]:
    from alignkit.data.readers import read_records
    from alignkit.errors import DataError

    chats: list[list[dict[str, str]]] = []
    system = [{"role": "system", "content": cfg.system}] if cfg.system else []
    for prompt in cfg.prompts:
        chats.append([*system, {"role": "user", "content": prompt}])
    if cfg.prompts_file:
        path = Path(cfg.prompts_file)
        if path.suffix == ".txt":
            if not path.is_file():
                raise DataError("file not found", source=str(path))
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    chats.append([*system, {"role": "user", "content": line}])
        else:
            for raw in read_records(path):
                if isinstance(raw.data.get("messages"), list):
                    messages = [m for m in raw.data["messages"] if m.get("role") != "assistant" or True]
                    while messages and messages[-1].get("role") == "assistant":
                        messages = messages[:-1]
                    chats.append([{"role": m["role"], "content": m["content"]} for m in messages])
                elif isinstance(raw.data.get("prompt"), str):
                    chats.append([*system, {"role": "user", "content": raw.data["prompt"]}])
                else:
                    raise DataError("expected a 'prompt' string or a 'messages' list", source=raw.source,
                                    line=raw.line, field="prompt")
    if not chats:
        raise AlignkitError("no prompts: give them as arguments or with prompts_file=PATH", field="prompts")
    return chats


@app.command(context_settings=EXTRA)
def generate(
    args: list[str] = typer.Argument(None, help="prompts and key=value overrides"),
    model: str = typer.Option(None, "--model"), adapter: str = typer.Option(None, "--adapter"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Generate replies with the model's chat template (batched; prints or writes JSONL)."""
    from alignkit.config.commands import GenerateConfig

    def body() -> int:
        prompts, overrides = split_args(args)
        overrides += [f"model={model}"] * bool(model) + [f"adapter={adapter}"] * bool(adapter)
        cfg = resolve(GenerateConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        cfg.prompts = [*cfg.prompts, *prompts]
        return generate_main(cfg)

    run_guarded(debug, body)


def generate_main(cfg: Any) -> int:
    from alignkit.data.dataset import resolve_chat_template
    from alignkit.generation.local import LocalGenerator
    from alignkit.io import atomic_write_text
    from alignkit.models.loader import load_model

    chats = _read_prompts(cfg)
    loaded = load_model(cfg.model, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device,
                        trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size,
                               chat_template=resolve_chat_template(cfg.chat_template))
    outputs = generator.chat(chats, cfg.generation.params())
    rows = [{"messages": chat, "reply": g.text, "stopped": g.stopped, "finish_reason": g.finish_reason,
             "tokens": len(g.token_ids)} for chat, gens in zip(chats, outputs, strict=True) for g in gens]
    if cfg.output:
        atomic_write_text(cfg.output, "".join(json.dumps(row) + "\n" for row in rows))
        atomic_write_text(str(cfg.output) + ".config.yaml", config_to_yaml(cfg))
        typer.echo(f"wrote {len(rows)} replies to {cfg.output}")
    else:
        for row in rows:
            flag = "" if row["stopped"] else "  [cut at max_new_tokens]"
            typer.echo(f">>> {row['messages'][-1]['content']}\n{row['reply']}{flag}\n")
    return 0


@app.command(context_settings=EXTRA)
def chat(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    model: str = typer.Option(None, "--model"), adapter: str = typer.Option(None, "--adapter"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Chat with a model in the terminal (/reset clears history, /exit quits)."""
    from alignkit.config.commands import ChatConfig

    def body() -> int:
        _, overrides = split_args(args)
        overrides += [f"model={model}"] * bool(model) + [f"adapter={adapter}"] * bool(adapter)
        cfg = resolve(ChatConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        return chat_main(cfg)

    run_guarded(debug, body)


def chat_main(cfg: Any) -> int:
    from alignkit.generation.local import LocalGenerator
    from alignkit.models.loader import load_model

    loaded = load_model(cfg.model, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device,
                        trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=1)
    history: list[dict[str, str]] = [{"role": "system", "content": cfg.system}] if cfg.system else []
    params = cfg.generation.params()
    turn = 0
    while True:
        try:
            line = input("you> ")
        except EOFError:
            return 0
        if line.strip() in ("/exit", "/quit"):
            return 0
        if line.strip() == "/reset":
            history = history[:1] if cfg.system else []
            continue
        history.append({"role": "user", "content": line})
        turn += 1
        reply = generator.chat([history], params.__class__(**{**params.__dict__, "seed": params.seed + turn}))[0][0]
        history.append({"role": "assistant", "content": reply.text})
        sys.stdout.write(f"bot> {reply.text}{'' if reply.stopped else ' [cut]'}\n")
        sys.stdout.flush()


@app.command(context_settings=EXTRA)
def sft(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Supervised fine-tuning (full, LoRA, QLoRA) with assistant-only loss and packing."""
    from alignkit.recipes.sft import SFTConfig, run_sft

    def body() -> int:
        _, overrides = split_args(args)
        cfg = resolve(SFTConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        result = run_sft(cfg)
        typer.echo(f"sft done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), "
                   f"outputs in {cfg.output_dir}")
        return 0

    run_guarded(debug, body)


@app.command(context_settings=EXTRA)
def merge(
    args: list[str] = typer.Argument(None, help="ADAPTER folders and key=value overrides"),
    model: str = typer.Option(None, "--model", help="base model spec"),
    out: str = typer.Option(None, "--out", help="output folder"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Merge one LoRA adapter, or combine several (weighted sum or concatenation), into a full model."""
    from alignkit.config.commands import MergeConfig

    def body() -> int:
        adapters, overrides = split_args(args)
        overrides += [f"model={model}"] * bool(model) + [f"out={out}"] * bool(out)
        cfg = resolve(MergeConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        cfg.adapters = [*cfg.adapters, *adapters]
        return merge_main(cfg)

    run_guarded(debug, body)


def merge_main(cfg: Any) -> int:
    from alignkit.io import atomic_folder
    from alignkit.models.adapters import merge_adapters, save_trained_model
    from alignkit.models.loader import load_model

    if not cfg.out:
        raise AlignkitError("expected an output folder: --out DIR", field="out")
    loaded = load_model(cfg.model, dtype=cfg.dtype, device="cpu", trust_remote_code=cfg.trust_remote_code,
                        allow_pickle=cfg.allow_pickle)
    merged = merge_adapters(loaded.model, cfg.adapters, weights=cfg.weights or None, combination=cfg.combination)
    with atomic_folder(cfg.out, {"kind": "merged", "base": cfg.model, "adapters": cfg.adapters}) as tmp:
        save_trained_model(merged, loaded.tokenizer, tmp)
    typer.echo(f"merged {len(cfg.adapters)} adapter(s) into {cfg.out}")
    return 0


@app.command("run", context_settings=EXTRA)
def run_pipeline_command(
    pipeline: Path = typer.Argument(..., help="pipeline YAML file"),
    args: list[str] = typer.Argument(None, help="<stage>.<key>=value overrides"),
    from_stage: str = typer.Option(None, "--from", help="rerun from this stage on"),
    only: str = typer.Option(None, "--only", help="run only this stage"),
    debug: bool = DebugOpt,
) -> None:
    """Run a pipeline file: stages skip when unchanged, resume when interrupted, rerun when changed."""
    from alignkit.pipeline import load_pipeline, run_pipeline

    def body() -> int:
        _, overrides = split_args(args)
        loaded = load_pipeline(pipeline, overrides)
        outputs = run_pipeline(loaded, from_stage=from_stage, only=only, echo=typer.echo)
        last = loaded.stages[-1].name
        if last in outputs:
            typer.echo(f"pipeline {loaded.name} complete; last output: {outputs[last]['output']}")
        return 0

    run_guarded(debug, body)


@app.command(context_settings=EXTRA)
def probe(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    model: str = typer.Option(None, "--model", help="model spec (embedded, tiny-random, a folder, a .gguf)"),
    adapter: str = typer.Option(None, "--adapter", help="PEFT adapter folder"),
    train_data: str = typer.Option(None, "--train-data", help="training data, for the regurgitation probe"),
    probes: str = typer.Option(None, "--probes", help="comma-separated: hello,regurgitation,repetition,..."),
    reward_model: str = typer.Option(None, "--reward-model", help="reward model folder, for winrate"),
    out: str = typer.Option(None, "--out", help="output folder"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Behavioural probes (hello/stop rate, regurgitation, repetition, refusal, grounded, winrate); exit 1 on a fail."""
    from alignkit.config.probe import ProbeConfig
    from alignkit.evaluation.run import print_summary, run_probes

    def body() -> int:
        _, overrides = split_args(args)
        given = {"model": model, "adapter": adapter, "train_data": train_data, "probes": probes,
                 "reward_model": reward_model, "out": out}
        overrides += [f"{key}={value}" for key, value in given.items() if value]
        cfg = resolve(ProbeConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        _, code = run_probes(cfg, progress=lambda message: typer.echo(message, err=True))
        print_summary(Path(str(cfg.out)) / "summary.json")
        return code

    run_guarded(debug, body)


@app.command(context_settings=EXTRA)
def report(
    run_dirs: list[str] = typer.Argument(None, help="run folders (training output and/or probe folders)"),
    out: str = typer.Option(None, "--out", help="the HTML file to write"),
    labels: str = typer.Option(None, "--labels", help="comma-separated run names (default: folder names)"),
    debug: bool = DebugOpt,
) -> None:
    """One self-contained HTML report: loss curves, reward margins, probe results side by side, samples."""
    from alignkit.evaluation.run import report_main

    run_guarded(debug, lambda: report_main(run_dirs or [], out, labels))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
