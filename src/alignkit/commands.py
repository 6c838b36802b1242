"""The command registry: every command declared once; the CLI and the pipeline are built from it.

An entry names the command, its config class (in ``config/``), the function that runs it (by import
path, so ``alignkit --help`` does not import torch), its short flags, and where its output goes when
it runs as a pipeline stage. ``cli.py`` turns each entry into a typer command; ``pipeline.py`` turns
each entry that can be a stage into a stage runner. A new command is one entry here::

    Command("serve", ServeConfig, "alignkit.serve.app:serve_command", "Serve a model ...",
            flags=(Flag("--model"), Flag("--port")), stage=None)

The run function takes the resolved config and a progress callback (messages for stderr) and
returns a ``CommandResult``.
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from alignkit.config.base import StrictModel, closest_key, load_config
from alignkit.config.commands import (
    ChatConfig,
    GenerateConfig,
    LintConfig,
    MergeConfig,
    ReportConfig,
    RunConfig,
)
from alignkit.config.export import ExportConfig
from alignkit.config.guard import GuardCheckConfig, GuardEvalConfig, GuardTrainConfig
from alignkit.config.probe import ProbeConfig
from alignkit.config.rag import RagEvalConfig, RagIndexConfig, RagQueryConfig
from alignkit.config.recipes import DPOConfig, RewardConfig, ScoreConfig, SFTConfig
from alignkit.config.rl import GRPOConfig, PPOConfig
from alignkit.config.serve import ServeConfig
from alignkit.config.synth import DedupConfig, DistillConfig, GroundedConfig, PrefsConfig, SelfInstructConfig
from alignkit.errors import ConfigError
from alignkit.result import CommandResult, say
from alignkit.training import run_folder

Progress = Callable[[str], None]
RunFunction = Callable[[Any, Progress], CommandResult]


@dataclass(frozen=True)
class Flag:
    """A short command-line option that sets one config key: ``--model X`` is ``model=X``.

    ``key`` defaults to the option's name (``--train-data`` -> ``train_data``); ``value`` makes it a
    switch that sets that value (``--no-exact`` sets ``exact=False``); ``type`` is what typer parses.
    """

    option: str
    key: str | None = None
    type: type = str
    value: Any = None
    help: str | None = None
    # Repeatable (``--adapter a --adapter b``); ``parse`` turns the list into the config value.
    multiple: bool = False
    parse: Callable[[list[str]], Any] | None = None

    @property
    def config_key(self) -> str:
        return self.key or self.option.lstrip("-").replace("-", "_")

    @property
    def param(self) -> str:
        """The Python parameter name typer passes the option's value as."""
        return "opt_" + self.option.lstrip("-").replace("-", "_")


# Every command's one output key (a file or folder; a training run's folder), ``--out`` on the command line.
OUTPUT_KEY = "out"


@dataclass(frozen=True)
class Stage:
    """How a command runs as a pipeline stage.

    ``output`` is where, inside the stage folder, the command's ``out`` (every command's one output key) points;
    ``"."`` is the stage folder itself (training runs, which also resume there). ``defaults`` are
    config values a stage starts from. ``failure``: when set, a run that returns a non-zero code
    stops the pipeline with this message; otherwise the stage records ``passed``.
    """

    output: str | Callable[[dict[str, Any]], str]  # or a name chosen from the stage's config mapping
    defaults: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    run_folder: bool = False


@dataclass(frozen=True)
class Command:
    name: str
    config: type[StrictModel]
    run: str
    help: str
    flags: tuple[Flag, ...] = ()
    positional: str | None = None
    # Fixed word slots instead: ``rag query DIR "question"`` fills index, then question.
    positionals: tuple[str, ...] = ()
    positional_help: str = "key=value overrides"
    positional_extends: bool = True
    words_field: str | None = None
    shorthand: tuple[str, ...] = ()
    shorthand_prefix: str = ""
    stage: Stage | None = None

    def run_function(self) -> RunFunction:
        module, name = self.run.split(":")
        function: RunFunction = getattr(importlib.import_module(module), name)
        return function

    def execute(self, cfg: Any, progress: Progress) -> CommandResult:
        """Runs the command on a resolved config: the one entry point of the CLI and the pipeline.

        A training command first claims its run folder (``training/run_folder.py``): it refuses a folder
        holding another run, and a finished run asked again trains and writes nothing."""
        check_devices(cfg)
        if self.stage is None or not self.stage.run_folder:
            return self.run_function()(cfg, progress)
        claimed = run_folder.claim(self.name, cfg)
        if claimed.complete:
            record = claimed.record
            return CommandResult(output=record.get("output"), outputs=record.get("outputs") or {},
                                 show=say(f"{self.name}: {cfg.out} is already complete, nothing trained "
                                          "(resume=none trains again from step 0)"))
        try:
            result = self.run_function()(cfg, progress)
        except BaseException as error:
            run_folder.fail(claimed, error)
            raise
        run_folder.finish(claimed, output=result.output, outputs=result.outputs)
        return result


def check_devices(cfg: BaseModel) -> None:
    """Every ``device`` key of the config names a device this machine has, checked before anything loads."""

    def walk(values: dict[str, Any], prefix: str) -> None:
        for key, value in values.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif key == "device" and isinstance(value, str) and value not in ("auto", "cpu"):
                _check_device(value, f"{prefix}{key}")

    walk(cfg.model_dump(), "")


def _check_device(device: str, key: str) -> None:
    import torch  # start-up: only a command that asks for an accelerator pays for torch here

    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ConfigError(f"{device} is not available (torch {torch.__version__}: {built}); use {key}=cpu or "
                              "auto", field=key)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{device} is not available ({torch.cuda.device_count()} CUDA devices)", field=key)
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"mps is not available on this machine; use {key}=cpu or auto", field=key)


def _export_name(config: dict[str, Any]) -> str:
    """An export stage's file in its stage folder: ``model-f16.gguf``, ``model-q8_0.gguf`` or ``model/``."""
    return "model" if config.get("format") == "safetensors" else f"model-{config.get('quant', 'f16')}.gguf"


def _named_folders(pairs: list[str]) -> dict[str, str]:
    """``--adapter NAME=DIR`` words -> ``{NAME: DIR}``."""
    named: dict[str, str] = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"expected NAME=DIR, got {pair!r}", source="<command line>", field="--adapter")
        named[name] = folder
    return named


# A training run writes into the stage folder and resumes there after an interruption.
_TRAINING_RUN = Stage(".", {"resume": "auto"}, run_folder=True)
_MODEL = Flag("--model", help="model spec (embedded, tiny-random, a folder, a .gguf)")
_ADAPTER = Flag("--adapter", help="PEFT adapter folder")
_OUT = Flag("--out", help="output folder or file")
_RUN_FOLDER = Flag("--out", help="the run folder (default runs/<command>)")
_GENERATOR = ("model", "adapter")

COMMANDS: tuple[Command, ...] = (
    Command("lint", LintConfig, "alignkit.evaluation.lint:lint_command",
            "Check data + chat template before training (EOS in mask, doubled BOS, stop tokens, lengths).",
            flags=(Flag("--model", help="model spec whose tokenizer/template is used"),
                   Flag("--out", help="also write the findings as JSON here")),
            positional="paths", positional_help="DATA files and key=value overrides", positional_extends=False,
            stage=Stage("lint.json",
                        failure="lint found blocking problems (see above); fix the data before training")),
    Command("generate", GenerateConfig, "alignkit.generation.commands:generate_command",
            "Generate replies with the model's chat template (batched; prints or writes JSONL).",
            flags=(_MODEL, _ADAPTER, Flag("--out", help="write the replies as JSONL here instead of printing")),
            positional="prompts", positional_help="prompts and key=value overrides",
            stage=Stage("replies.jsonl")),
    Command("chat", ChatConfig, "alignkit.generation.commands:chat_command",
            "Chat with a model in the terminal (/reset clears history, /exit quits); rag.index=DIR retrieves "
            "context for each line, --guard checks prompts and replies.",
            flags=(_MODEL, _ADAPTER, Flag("--guard", help="guard file: input rules on each line, output rules on "
                                                          "each reply"))),
    Command("sft", SFTConfig, "alignkit.recipes.sft:sft_command",
            "Supervised fine-tuning (full, LoRA, QLoRA) with assistant-only loss and packing.",
            flags=(_RUN_FOLDER,), stage=_TRAINING_RUN),
    Command("merge", MergeConfig, "alignkit.models.merge:merge_command",
            "Merge one LoRA adapter, or combine several (weighted sum or concatenation), into a full model.",
            flags=(Flag("--model", help="base model spec"), Flag("--out", help="output folder")),
            positional="adapters", positional_help="ADAPTER folders and key=value overrides",
            stage=Stage("model")),
    Command("run", RunConfig, "alignkit.pipeline:run_command",
            "Run a pipeline file: stages skip when unchanged, resume when interrupted, rerun when changed.",
            flags=(Flag("--from", key="from_stage", help="rerun from this stage on"),
                   Flag("--only", help="run only this stage"),
                   Flag("--dry-run", key="dry_run", value=True, help="print what would run and why; run nothing")),
            positional="pipeline", positional_help="the pipeline YAML file and <stage>.<key>=value overrides",
            words_field="overrides"),
    Command("probe", ProbeConfig, "alignkit.evaluation.run:probe_command",
            "Behavioural probes (hello/stop rate, regurgitation, repetition, refusal, grounded, winrate); "
            "exit 1 on a fail.",
            flags=(_MODEL, _ADAPTER, Flag("--train-data", help="training data, for the regurgitation probe"),
                   Flag("--probes", help="comma-separated: hello,regurgitation,repetition,..."),
                   Flag("--reward-model", help="reward model folder, for winrate"), _OUT),
            stage=Stage("probe")),
    Command("report", ReportConfig, "alignkit.evaluation.run:report_command",
            "One self-contained HTML report: loss curves, reward margins, probe results side by side, samples.",
            flags=(Flag("--out", help="the HTML file to write"),
                   Flag("--labels", help="comma-separated run names (default: folder names)")),
            positional="runs", positional_help="run folders (training output and/or probe folders)",
            stage=Stage("report.html")),
    Command("dpo", DPOConfig, "alignkit.recipes.dpo:dpo_command",
            "Preference optimisation: DPO, IPO, cDPO, SimPO, ORPO (loss=...), on prompt/chosen/rejected pairs.",
            flags=(_RUN_FOLDER,), stage=_TRAINING_RUN),
    Command("rm", RewardConfig, "alignkit.recipes.reward:rm_command",
            "Train a reward model (Bradley-Terry, optional margin and centering) on prompt/chosen/rejected pairs.",
            flags=(_RUN_FOLDER,), stage=_TRAINING_RUN),
    Command("score", ScoreConfig, "alignkit.recipes.reward:score_command",
            "Score (prompt, response) records with a reward model; writes JSONL with a score field.",
            flags=(Flag("--model", help="reward model folder (from alignkit rm)"),
                   Flag("--out", help="the JSONL file of scored records")),
            stage=Stage("scores.jsonl")),
    Command("prefs", PrefsConfig, "alignkit.synth.prefs:prefs_command",
            "Build preference pairs (RLAIF): sample N replies per prompt, rank with a reward model or an LLM judge.",
            flags=(Flag("--model", help="the policy that samples candidates"),
                   Flag("--out", help="the JSONL file of preference pairs")),
            stage=Stage("prefs.jsonl", failure="prefs wrote no preference pairs")),
    Command("dedup", DedupConfig, "alignkit.synth.commands:dedup_command",
            "Drop exact, MinHash and ROUGE-L near-duplicates of one field; print drop counts by reason.",
            flags=(Flag("--field", help="the text field compared (default: instruction)"),
                   Flag("--rouge-l", type=float, help="drop when ROUGE-L F >= this vs a kept record"),
                   Flag("--minhash", type=float, help="drop when estimated 3-gram Jaccard >= this"),
                   Flag("--no-exact", key="exact", value=False, help="keep exact duplicates"),
                   Flag("--out", help="JSONL file of the kept records")),
            positional="path", positional_help="FILE and key=value overrides",
            stage=Stage("dedup.jsonl")),
    Command("synth self-instruct", SelfInstructConfig, "alignkit.synth.commands:self_instruct_command",
            "Self-Instruct: new instructions + instances from seed tasks, in Alpaca and messages formats.",
            flags=(Flag("--seed-tasks", help="seed-task JSONL (default: the shipped 118)"),
                   Flag("--num-instructions", type=int, help="new instructions to generate"),
                   Flag("--out", help="output folder"),
                   Flag("--model", key="generator.model", help="generator model (local spec, or the served name)")),
            shorthand=_GENERATOR, shorthand_prefix="generator.", stage=Stage("self_instruct")),
    Command("synth grounded", GroundedConfig, "alignkit.synth.commands:grounded_command",
            'Grounded dialogs: facts + retrieved distractors in context, with "I don\'t know" negatives.',
            flags=(Flag("--facts", help="facts file (entity, facts)"),
                   Flag("--documents", help="folder of .txt/.md distractor documents"),
                   Flag("--docs", help="a rag index folder: distractors are what it retrieves"),
                   Flag("--out", help="JSONL file of messages records")),
            shorthand=_GENERATOR, shorthand_prefix="generator.", stage=Stage("grounded.jsonl")),
    Command("synth distill", DistillConfig, "alignkit.synth.commands:distill_command",
            "Context distillation: answers generated with a long system prompt, written without it.",
            flags=(Flag("--prompts", help=".txt (a prompt a line) or prompt/messages records"),
                   Flag("--context", help="the long persona or instruction"),
                   Flag("--context-file", help="read the context from a file"),
                   Flag("--out", help="JSONL file of messages records, without the context"),
                   Flag("--model", key="generator.model", help="generator model (local spec, or the served name)")),
            shorthand=_GENERATOR, shorthand_prefix="generator.", stage=Stage("distill.jsonl")),
    Command("ppo", PPOConfig, "alignkit.recipes.ppo:ppo_command",
            "PPO with a KL penalty to the SFT model: rewards from a function, a reward model or an LLM judge.",
            flags=(_RUN_FOLDER,), stage=_TRAINING_RUN),
    Command("grpo", GRPOConfig, "alignkit.recipes.grpo:grpo_command",
            "GRPO: G replies per prompt, group-normalised advantages, optional KL to the SFT model.",
            flags=(_RUN_FOLDER,), stage=_TRAINING_RUN),
    Command("export", ExportConfig, "alignkit.models.export:export_command",
            "Merge adapters and write a GGUF (f16/q8_0) with the trained template and stop tokens, plus an "
            "Ollama Modelfile.",
            flags=(Flag("--model", help="base model spec"),
                   Flag("--adapter", key="adapters", multiple=True, help="adapter folder to merge (repeatable)"),
                   Flag("--format", help="gguf (default) | safetensors"),
                   Flag("--quant", help="GGUF weights: f16 (default) | q8_0"),
                   Flag("--out", help="the .gguf file (or the safetensors folder)"),
                   Flag("--overwrite", value=True, help="replace an existing output")),
            stage=Stage(_export_name, {"overwrite": True})),
    Command("serve", ServeConfig, "alignkit.serve:serve_command",
            "OpenAI-compatible server (/v1/chat/completions, /v1/completions, /v1/models) with a chat page at /.",
            flags=(Flag("--model", help="base model spec: embedded, tiny-random, a folder, a .gguf"),
                   Flag("--adapter", key="adapters", multiple=True, parse=_named_folders,
                        help="NAME=DIR, a LoRA adapter served as model NAME; repeatable"),
                   Flag("--host", help="address to bind (default 127.0.0.1)"),
                   Flag("--port", type=int, help="port (default 8000; 0 = a free one)"),
                   Flag("--api-key-file", help="file holding the API key clients must send"),
                   Flag("--check", value=True, help="compare in-process and HTTP greedy replies, then exit"))),
    Command("rag index", RagIndexConfig, "alignkit.retrieval.commands:rag_index_command",
            "Chunk documents by model tokens and build BM25 (+ dense) indexes; unchanged documents are reused.",
            flags=(Flag("--out", help="the index folder"),
                   Flag("--dense", value=True, help="also build the dense (e5) index")),
            positional="docs", positional_help="DOCS (files or folders) and key=value overrides",
            stage=Stage("index")),
    Command("rag query", RagQueryConfig, "alignkit.retrieval.commands:rag_query_command",
            "Print the top chunks for a question, with their ids and character spans (citations).",
            flags=(Flag("--k", type=int, help="chunks returned"),
                   Flag("--mode", help="lexical | dense | fused")),
            positionals=("index", "question"), positional_help='DIR "question" and key=value overrides'),
    Command("rag eval", RagEvalConfig, "alignkit.retrieval.commands:rag_eval_command",
            "Recall@k and MRR of lexical, dense and fused search on question -> gold records.",
            flags=(Flag("--out", help="also write the figures as JSON here"),),
            positionals=("index", "questions"), positional_help="DIR QUESTIONS.jsonl and key=value overrides",
            stage=Stage("rag_eval.json")),
    Command("guard train", GuardTrainConfig, "alignkit.guard.commands:guard_train_command",
            "TF-IDF (word + char n-grams) + logistic regression, cross-validated, saved without pickle.",
            flags=(Flag("--out", help="the classifier folder"),
                   Flag("--held-out", help="labelled file scored after training")),
            positionals=("data",), positional_help="DATA (labelled text, label) and key=value overrides",
            stage=Stage("classifier")),
    Command("guard check", GuardCheckConfig, "alignkit.guard.commands:guard_check_command",
            "Print each rule's verdict and score for each text (exit code 1 if one is blocked).",
            flags=(Flag("--guard", help="the guard file"),
                   Flag("--answers", value=True, help="check the texts as answers (output rules)"),
                   Flag("--context", help="with --answers: the retrieved context")),
            positional="texts", positional_help="TEXT... and key=value overrides"),
    Command("guard eval", GuardEvalConfig, "alignkit.guard.commands:guard_eval_command",
            "The guard probe: block rate, over-block rate (per rule and overall), p95 latency per check.",
            flags=(Flag("--guard", help="the guard file"),
                   Flag("--blocked", help="red-team prompts that should be blocked"),
                   Flag("--benign", help="benign look-alikes that should pass"),
                   Flag("--out", help="also write the figures as JSON here")),
            stage=Stage("guard_probe.json")),
)

BY_NAME = {command.name: command for command in COMMANDS}


# ----------------------------------------------------------------------------------------------
# Command-line words -> config


def valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key a config accepts (sections and their fields)."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(valid_keys(annotation, f"{prefix}{name}."))
    return keys


def _is_list_field(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


def _looks_like_option(word: str) -> bool:
    if not word.startswith("-") or word == "-":
        return False
    try:
        float(word)  # a negative number is a value, not an option
    except ValueError:
        return True
    return False


def _quoted_value(value: str) -> str:
    return value if value and " " not in value else json.dumps(value)


def _refuse_option(command: Command, words: Sequence[str], index: int, keys: list[str]) -> None:
    word = words[index]
    name, _, inline = word.partition("=")
    key = name.lstrip("-").replace("-", "_")
    key = f"{command.shorthand_prefix}{key}" if key in command.shorthand else key
    has_next = index + 1 < len(words) and not _looks_like_option(words[index + 1]) and "=" not in words[index + 1]
    value = inline or (words[index + 1] if has_next else "VALUE")
    if key in keys:
        raise ConfigError(f"unknown option {name!r} (did you mean {key}={_quoted_value(value)}?)",
                          source="<command line>")
    options = [flag.option for flag in command.flags] + ["--config", "--print-config", "--debug"]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        raise ConfigError(f"unknown option {name!r} (did you mean {close[0]}?)", source="<command line>")
    close_key = closest_key(key, keys)
    hint = f" (did you mean {close_key}={_quoted_value(value)}?)" if close_key else ""
    valid = ", ".join(options)
    raise ConfigError(f"unknown option {name!r}{hint}; options: {valid}, or key=value", source="<command line>")


def _refuse_word(command: Command, words: Sequence[str], index: int, keys: list[str]) -> None:
    word = words[index]
    has_next = index + 1 < len(words) and not _looks_like_option(words[index + 1]) and "=" not in words[index + 1]
    value = words[index + 1] if has_next else "VALUE"
    key = f"{command.shorthand_prefix}{word}" if word in command.shorthand else word
    if key in keys:
        raise ConfigError(f"unexpected word {word!r} (did you mean {key}={_quoted_value(value)}?)",
                          source="<command line>")
    close_key = closest_key(word, keys)
    hint = f" (did you mean {close_key}=...?)" if close_key else ""
    raise ConfigError(f"unexpected word {word!r}{hint}: alignkit {command.name} takes key=value overrides",
                      source="<command line>")


_KEY = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*")


def _refuse_text_with_equals(command: Command, word: str, keys: list[str]) -> None:
    """A word with ``=`` whose left side is no key: text (a prompt) that the shell passed as one word."""
    shown = word if len(word) <= 40 else word[:37] + "..."
    if "prompts_file" in keys:
        raise ConfigError(f"{shown!r} is not a key=value override; a prompt containing '=' goes in a prompts file "
                          "(prompts_file=PATH, one prompt a line)", source="<command line>")
    raise ConfigError(f"{shown!r} is not a key=value override (the key is not a config key)", source="<command line>")


def read_words(command: Command, words: Sequence[str]) -> tuple[list[str], list[str]]:
    """Command-line words -> (positional values, ``key=value`` overrides); a word the command does not
    understand is a ConfigError that says what was probably meant."""
    keys = valid_keys(command.config)
    positional: list[str] = []
    overrides: list[str] = []
    for index, word in enumerate(words):
        if _looks_like_option(word):
            _refuse_option(command, words, index, keys)
        elif "=" in word:
            key, _, value = word.partition("=")
            if not _KEY.fullmatch(key):
                _refuse_text_with_equals(command, word, keys)
            overrides.append(f"{command.shorthand_prefix}{word}" if key in command.shorthand else word)
        elif command.positional is None and not command.positionals:
            _refuse_word(command, words, index, keys)
        elif word in keys and "." in word and not Path(word).exists():
            # ``train.lr 1e-4``: a dotted key is never meant as a file or a prompt.
            _refuse_word(command, words, index, keys)
        else:
            positional.append(word)
    if command.positionals and len(positional) > len(command.positionals):
        raise ConfigError(f"expected at most {len(command.positionals)} words ({' '.join(command.positionals)}), "
                          f"got {len(positional)}: {' '.join(positional)}", source="<command line>")
    if command.positional and not _is_list_field(command.config, command.positional) and len(positional) > 1:
        raise ConfigError(f"expected one {command.positional}, got {len(positional)}: {' '.join(positional)}",
                          source="<command line>", field=command.positional)
    return positional, overrides


def resolve_config(command: Command, words: Sequence[str], flags: dict[str, Any],
                   config_file: str | Path | None = None) -> StrictModel:
    """Config file + ``key=value`` words + flags (which win) -> the validated config of ``command``."""
    positional, overrides = read_words(command, words)
    if command.words_field is not None:
        raw_words, overrides = overrides, []
    overrides += [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    overrides += [f"{name}={json.dumps(value)}" for name, value in zip(command.positionals, positional, strict=False)]
    single = command.positional is not None and not _is_list_field(command.config, command.positional)
    if single and positional:
        overrides.append(f"{command.positional}={json.dumps(positional[0])}")
    elif command.positional is not None and positional and not command.positional_extends:
        overrides.append(f"{command.positional}={json.dumps(positional)}")
    config = load_config(command.config, config_file, overrides)
    if command.positional is not None and positional and not single and command.positional_extends:
        setattr(config, command.positional, [*getattr(config, command.positional), *positional])
    if command.words_field is not None and raw_words:
        setattr(config, command.words_field, [*getattr(config, command.words_field), *raw_words])
    return config


def flag_values(command: Command, given: dict[str, Any]) -> dict[str, Any]:
    """Typer's parameter values -> ``{config key: value}`` for the flags that were given."""
    values: dict[str, Any] = {}
    for flag in command.flags:
        value = given.get(flag.param)
        if flag.value is not None:
            if value:
                values[flag.config_key] = flag.value
        elif flag.multiple:
            if value:
                values[flag.config_key] = flag.parse(list(value)) if flag.parse else list(value)
        elif value is not None and value != "":
            values[flag.config_key] = value
    return values
