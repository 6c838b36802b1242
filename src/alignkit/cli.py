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
    positional: list[str] = []
    overrides: list[str] = []
    for arg in args or []:
        (overrides if "=" in arg and not arg.startswith("-") else positional).append(arg)
    return positional, overrides


def given_overrides(**options: str | None) -> list[str]:
    """``key=value`` for each command-line option that was given (an empty one counts as not given)."""
    return [f"{key}={value}" for key, value in options.items() if value]


def resolve(model: type[C], config: Path | None, overrides: list[str], print_config: bool,
            defaults: dict[str, Any] | None = None) -> C:
    resolved = load_config(model, config, overrides, defaults=defaults)
    if print_config:
        typer.echo(config_to_yaml(resolved), nl=False)
        raise typer.Exit(0)
    return resolved


def run_command(model: type[C], overrides: list[str], main_fn: Callable[[C], int], *, config: Path | None,
                print_config: bool, debug: bool) -> None:
    """Config file + overrides -> ``model`` (``--print-config`` prints it and exits) -> ``main_fn``,
    under ``run_guarded``: a bad config is one line on stderr and exit code 2, like a bad record."""
    run_guarded(debug, lambda: main_fn(resolve(model, config, overrides, print_config)))


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
        if paths:
            overrides.append("paths=" + json.dumps(paths))
        cfg = resolve(LintConfig, config, overrides, print_config)
        if cfg is None:
            return 0
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

    console = Console(highlight=False, soft_wrap=True)
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
                    messages = raw.data["messages"]
                    for index, message in enumerate(messages):
                        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                                and isinstance(message.get("content"), str)):
                            raise DataError("expected a message with string role and content", source=raw.source,
                                            line=raw.line, field=f"messages[{index}]")
                    # A trailing assistant turn is the reference answer, not part of the prompt.
                    while messages and messages[-1]["role"] == "assistant":
                        messages = messages[:-1]
                    if not messages:
                        raise DataError("no prompt messages", source=raw.source, line=raw.line, field="messages")
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
        overrides += given_overrides(model=model, adapter=adapter)
        cfg = resolve(GenerateConfig, config, overrides, False)
        cfg.prompts = [*cfg.prompts, *prompts]
        if print_config:
            typer.echo(config_to_yaml(cfg), nl=False)
            return 0
        return generate_main(cfg)

    run_guarded(debug, body)


def generate_main(cfg: Any) -> int:
    from alignkit.data.dataset import resolve_chat_template
    from alignkit.generation.local import LocalGenerator
    from alignkit.io import atomic_write_text
    from alignkit.models.loader import load_from_fields

    chats = _read_prompts(cfg)
    loaded = load_from_fields(cfg)
    generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size,
                               chat_template=resolve_chat_template(cfg.chat_template))
    outputs = generator.chat(chats, cfg.generation.params())
    rows: list[dict[str, Any]] = [{"messages": chat, "reply": g.text, "stopped": g.stopped, "finish_reason": g.finish_reason,
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

    _, overrides = split_args(args)
    overrides += given_overrides(model=model, adapter=adapter)
    run_command(ChatConfig, overrides, chat_main, config=config, print_config=print_config, debug=debug)


def chat_main(cfg: Any) -> int:
    from alignkit.generation.local import LocalGenerator
    from alignkit.models.loader import load_from_fields

    loaded = load_from_fields(cfg)
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

    def main_fn(cfg: SFTConfig) -> int:
        result = run_sft(cfg)
        typer.echo(f"sft done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), "
                   f"outputs in {cfg.output_dir}")
        return 0

    _, overrides = split_args(args)
    run_command(SFTConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


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
        overrides += given_overrides(model=model, out=out)
        cfg = resolve(MergeConfig, config, overrides, print_config)
        if cfg is None:
            return 0
        cfg.adapters = [*cfg.adapters, *adapters]
        return merge_main(cfg)

    run_guarded(debug, body)


def merge_main(cfg: Any) -> int:
    from alignkit.io import atomic_folder
    from alignkit.models.adapters import merge_adapters, save_trained_model
    from alignkit.models.loader import load_from_fields

    if not cfg.out:
        raise AlignkitError("expected an output folder: --out DIR", field="out")
    # The base alone: the adapters to merge are cfg.adapters.
    loaded = load_from_fields(cfg, spec=cfg.model, device="cpu")
    merged = merge_adapters(loaded.model, cfg.adapters, weights=cfg.weights or None, combination=cfg.combination)
    with atomic_folder(cfg.out, {"kind": "merged", "base": cfg.model, "adapters": cfg.adapters}) as tmp:
        save_trained_model(merged, loaded.tokenizer, tmp)
    typer.echo(f"merged {len(cfg.adapters)} adapter(s) into {cfg.out}")
    return 0


@app.command(context_settings=EXTRA)
def export(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    model: str = typer.Option(None, "--model", help="base model spec"),
    adapter: list[str] = typer.Option(None, "--adapter", help="adapter folder to merge (repeatable)"),
    format: str = typer.Option(None, "--format", help="gguf (default) | safetensors"),
    quant: str = typer.Option(None, "--quant", help="GGUF weights: f16 (default) | q8_0"),
    out: str = typer.Option(None, "--out", help="the .gguf file (or the safetensors folder)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Merge adapters and write a GGUF (f16/q8_0) with the trained template and stop tokens, plus an Ollama Modelfile."""
    from alignkit.config.export import ExportConfig
    from alignkit.models.export import run_export

    def main_fn(cfg: ExportConfig) -> int:
        result = run_export(cfg)
        size = sum(p.stat().st_size for p in ([result.path] if result.path.is_file() else result.path.rglob("*")))
        extra = f" and {result.modelfile}" if result.modelfile else ""
        typer.echo(f"wrote {result.path}{extra} ({size / 1e6:.1f} MB) in {result.seconds:.1f} s")
        return 0

    _, overrides = split_args(args)
    overrides += given_overrides(model=model, format=format, quant=quant, out=out,
                                 overwrite="true" if overwrite else None)
    if adapter:
        overrides.append("adapters=" + json.dumps(adapter))
    run_command(ExportConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


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

    def main_fn(cfg: ProbeConfig) -> int:
        _, code = run_probes(cfg, progress=lambda message: typer.echo(message, err=True))
        print_summary(Path(str(cfg.out)) / "summary.json")
        return code

    _, overrides = split_args(args)
    overrides += given_overrides(model=model, adapter=adapter, train_data=train_data, probes=probes,
                                 reward_model=reward_model, out=out)
    run_command(ProbeConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


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


@app.command(context_settings=EXTRA)
def dpo(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Preference optimisation: DPO, IPO, cDPO, SimPO, ORPO (loss=...), on prompt/chosen/rejected pairs."""
    from alignkit.recipes.dpo import DPOConfig, run_dpo

    def main_fn(cfg: DPOConfig) -> int:
        result = run_dpo(cfg)
        typer.echo(f"dpo ({cfg.loss}) done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), "
                   f"outputs in {cfg.output_dir}")
        return 0

    _, overrides = split_args(args)
    run_command(DPOConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


@app.command(context_settings=EXTRA)
def rm(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Train a reward model (Bradley-Terry, optional margin and centering) on prompt/chosen/rejected pairs."""
    from alignkit.recipes.reward import RewardConfig, run_reward

    def main_fn(cfg: RewardConfig) -> int:
        result = run_reward(cfg)
        typer.echo(f"rm done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), reward model in "
                   f"{Path(cfg.output_dir) / 'reward_model'}")
        return 0

    _, overrides = split_args(args)
    run_command(RewardConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


@app.command(context_settings=EXTRA)
def score(
    args: list[str] = typer.Argument(None, help="key=value overrides (data=FILE out=FILE.jsonl)"),
    model: str = typer.Option(None, "--model", help="reward model folder (from alignkit rm)"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Score (prompt, response) records with a reward model; writes JSONL with a score field."""
    from alignkit.recipes.reward import ScoreConfig, run_score

    def main_fn(cfg: ScoreConfig) -> int:
        count = run_score(cfg)
        typer.echo(f"scored {count} records into {cfg.out}")
        return 0

    _, overrides = split_args(args)
    overrides += given_overrides(model=model)
    run_command(ScoreConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


@app.command(context_settings=EXTRA)
def prefs(
    args: list[str] = typer.Argument(None, help="key=value overrides (prompts=FILE out=FILE.jsonl judge.*=...)"),
    model: str = typer.Option(None, "--model", help="the policy that samples candidates"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Build preference pairs (RLAIF): sample N replies per prompt, rank with a reward model or an LLM judge."""
    from alignkit.synth.prefs import PrefsConfig, run_prefs

    def main_fn(cfg: PrefsConfig) -> int:
        report = run_prefs(cfg)
        typer.echo(f"wrote {report.pairs} pairs from {report.prompts} prompts to {cfg.out} "
                   f"(dropped {dict(report.dropped)}, ties {report.ties}, below min_gap {report.below_gap})")
        return 0

    _, overrides = split_args(args)
    overrides += given_overrides(model=model)
    run_command(PrefsConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


@app.command(context_settings=EXTRA)
def dedup(
    args: list[str] = typer.Argument(None, help="FILE and key=value overrides"),
    field: str = typer.Option(None, "--field", help="the text field compared (default: instruction)"),
    rouge_l: float = typer.Option(None, "--rouge-l", help="drop when ROUGE-L F >= this vs a kept record"),
    minhash: float = typer.Option(None, "--minhash", help="drop when estimated 3-gram Jaccard >= this"),
    no_exact: bool = typer.Option(False, "--no-exact", help="keep exact duplicates"),
    out: str = typer.Option(None, "--out", help="JSONL file of the kept records"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Drop exact, MinHash and ROUGE-L near-duplicates of one field; print drop counts by reason."""
    from alignkit.config.synth import DedupConfig
    from alignkit.synth.commands import dedup_main, option_overrides

    def body() -> int:
        paths, overrides = split_args(args)
        if len(paths) > 1:
            raise AlignkitError(f"expected one data file, got {len(paths)}: {' '.join(paths)}", field="path")
        overrides += option_overrides(path=paths[0] if paths else None, field=field, rouge_l=rouge_l,
                                      minhash=minhash, exact=False if no_exact else None, out=out)
        cfg = resolve(DedupConfig, config, overrides, print_config)
        return 0 if cfg is None else dedup_main(cfg)

    run_guarded(debug, body)


synth_app = typer.Typer(no_args_is_help=True, help="Synthetic data: self-instruct, grounded dialogs, distillation.")
app.add_typer(synth_app, name="synth")


def _synth_run(model: type[C], args: list[str] | None, options: dict[str, Any], config: Path | None,
               print_config: bool, debug: bool, main_fn: Callable[[C], int]) -> None:
    """Options + ``key=value`` words (``model=`` meaning ``generator.model=``) -> config -> ``main_fn``."""
    from alignkit.synth.commands import generator_shorthand, option_overrides

    _, overrides = split_args(args)
    run_command(model, generator_shorthand(overrides + option_overrides(**options)), main_fn,
                config=config, print_config=print_config, debug=debug)


@synth_app.command("self-instruct", context_settings=EXTRA)
def synth_self_instruct(
    args: list[str] = typer.Argument(None, help="key=value overrides (generator.kind=http generator.base_url=...)"),
    seed_tasks: str = typer.Option(None, "--seed-tasks", help="seed-task JSONL (default: the shipped 118)"),
    num_instructions: int = typer.Option(None, "--num-instructions", help="new instructions to generate"),
    out: str = typer.Option(None, "--out", help="output folder"),
    model: str = typer.Option(None, "--model", help="generator model (local spec, or the served name)"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Self-Instruct: new instructions + instances from seed tasks, in Alpaca and messages formats."""
    from alignkit.config.synth import SelfInstructConfig
    from alignkit.synth.commands import self_instruct_main

    options = {"seed_tasks": seed_tasks, "num_instructions": num_instructions, "out": out, "generator.model": model}
    _synth_run(SelfInstructConfig, args, options, config, print_config, debug, self_instruct_main)


@synth_app.command("grounded", context_settings=EXTRA)
def synth_grounded(
    args: list[str] = typer.Argument(None, help="key=value overrides (negative_share=0.35 distractors=3 seed=0)"),
    facts: str = typer.Option(None, "--facts", help="facts file (entity, facts)"),
    documents: str = typer.Option(None, "--documents", help="folder of .txt/.md distractor documents"),
    out: str = typer.Option(None, "--out", help="JSONL file of messages records"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Grounded dialogs: facts + retrieved distractors in context, with "I don't know" negatives."""
    from alignkit.config.synth import GroundedConfig
    from alignkit.synth.commands import grounded_main

    options = {"facts": facts, "documents": documents, "out": out}
    _synth_run(GroundedConfig, args, options, config, print_config, debug, grounded_main)


@synth_app.command("distill", context_settings=EXTRA)
def synth_distill(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    prompts: str = typer.Option(None, "--prompts", help=".txt (a prompt a line) or prompt/messages records"),
    context: str = typer.Option(None, "--context", help="the long persona or instruction"),
    context_file: str = typer.Option(None, "--context-file", help="read the context from a file"),
    out: str = typer.Option(None, "--out", help="JSONL file of messages records, without the context"),
    model: str = typer.Option(None, "--model", help="generator model (local spec, or the served name)"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """Context distillation: answers generated with a long system prompt, written without it."""
    from alignkit.config.synth import DistillConfig
    from alignkit.synth.commands import distill_main

    options = {"prompts": prompts, "context": context, "context_file": context_file, "out": out,
               "generator.model": model}
    _synth_run(DistillConfig, args, options, config, print_config, debug, distill_main)


@app.command(context_settings=EXTRA)
def ppo(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """PPO with a KL penalty to the SFT model: rewards from a function, a reward model or an LLM judge."""
    from alignkit.config.rl import PPOConfig
    from alignkit.recipes.ppo import run_ppo

    def main_fn(cfg: PPOConfig) -> int:
        result = run_ppo(cfg)
        typer.echo(f"ppo done: {result.state.step} rollout steps ({result.state.nonfinite_steps} updates skipped), "
                   f"policy in {result.output}")
        return 0

    _, overrides = split_args(args)
    run_command(PPOConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


@app.command(context_settings=EXTRA)
def grpo(
    args: list[str] = typer.Argument(None, help="key=value overrides"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """GRPO: G replies per prompt, group-normalised advantages, optional KL to the SFT model."""
    from alignkit.config.rl import GRPOConfig
    from alignkit.recipes.grpo import run_grpo

    def main_fn(cfg: GRPOConfig) -> int:
        result = run_grpo(cfg)
        typer.echo(f"grpo done: {result.state.step} rollout steps ({result.state.nonfinite_steps} updates skipped), "
                   f"policy in {result.output}")
        return 0

    _, overrides = split_args(args)
    run_command(GRPOConfig, overrides, main_fn, config=config, print_config=print_config, debug=debug)


@app.command(context_settings=EXTRA)
def serve(
    args: list[str] = typer.Argument(None, help="key=value overrides (limits.max_tokens=512 ...)"),
    model: str = typer.Option(None, "--model", help="base model spec: embedded, tiny-random, a folder, a .gguf"),
    adapter: list[str] = typer.Option(None, "--adapter", help="NAME=DIR, a LoRA adapter served as model NAME; repeatable"),
    host: str = typer.Option(None, "--host", help="address to bind (default 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="port (default 8000; 0 = a free one)"),
    api_key_file: str = typer.Option(None, "--api-key-file", help="file holding the API key clients must send"),
    check: bool = typer.Option(False, "--check", help="compare in-process and HTTP greedy replies, then exit"),
    config: Path = ConfigOpt, print_config: bool = PrintOpt, debug: bool = DebugOpt,
) -> None:
    """OpenAI-compatible server (/v1/chat/completions, /v1/completions, /v1/models) with a chat page at /."""
    from alignkit.config.serve import ServeConfig
    from alignkit.serve import serve_main

    _, overrides = split_args(args)
    for pair in adapter or []:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            _fail(f"<command line>: --adapter: expected NAME=DIR, got {pair!r}")
        overrides.append(f"adapters.{name}={json.dumps(folder)}")
    overrides += given_overrides(model=model, host=host, port=None if port is None else str(port),
                                 api_key_file=api_key_file, check="true" if check else None)
    run_command(ServeConfig, overrides, lambda cfg: serve_main(cfg, echo=typer.echo), config=config,
                print_config=print_config, debug=debug)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
