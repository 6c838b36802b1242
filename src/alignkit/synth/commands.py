"""The synthetic-data commands as functions of their configs (``alignkit dedup``, ``alignkit synth ...``).

The registry (``alignkit.commands``) builds their configs from the command line or a pipeline stage. Every output is written atomically
(a temporary name, then a rename), so an interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.synth import (
    DedupConfig,
    DistillConfig,
    GeneratorConfig,
    GroundedConfig,
    SelfInstructConfig,
)
from alignkit.data.prompts import read_prompt_chats
from alignkit.data.readers import read_records
from alignkit.errors import ConfigError, DataError
from alignkit.generation.http import OpenAICompatibleGenerator
from alignkit.generation.types import GenerationParams, Generator
from alignkit.io import atomic_folder, atomic_write_text
from alignkit.result import CommandResult, say
from alignkit.retrieval.search import Mode, Retriever
from alignkit.synth.dedup import dedup_records
from alignkit.synth.distill import distill_with_context
from alignkit.synth.grounded import (
    IDK_REPLIES,
    ContextItem,
    build_grounded_dialogs,
    load_documents,
    load_facts,
    rephrase_answers,
)
from alignkit.synth.self_instruct import (
    DEFAULT_CLASSIFY_PARAMS,
    DEFAULT_INSTANCE_PARAMS,
    load_seed_tasks,
    run_self_instruct,
)

Progress = Callable[[str], None]
# ``synth grounded --docs``: how many chunks past k are searched, since the top ones are often about
# the asked entity itself and are skipped.
SKIP_HEADROOM = 20


def _quiet(_message: str) -> None:
    pass

def _require(value: str | None, field: str, usage: str) -> str:
    if not value:
        raise ConfigError(f"missing: give {usage}", field=field)
    return value


def build_generator(cfg: GeneratorConfig) -> Generator:
    """A local transformers model (``kind=local``) or an OpenAI-compatible endpoint (``kind=http``)."""
    if cfg.kind == "http":
        base_url = _require(
            cfg.base_url, "generator.base_url", "generator.base_url=URL with generator.kind=http"
        )
        if "model" not in cfg.model_fields_set:
            raise ConfigError(
                "generator.kind=http needs the name of the model the endpoint serves", field="generator.model"
            )
        return OpenAICompatibleGenerator(
            base_url,
            cfg.model,
            api_key_env=cfg.api_key_env,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
            concurrency=cfg.concurrency,
            cache_path=cfg.cache_path,
            max_n_per_request=cfg.max_n_per_request,
        )
    from alignkit.generation.local import LocalGenerator  # start-up: torch (not loaded by this module)
    from alignkit.models.loader import load_from_fields  # start-up: torch (not loaded by this module)

    loaded = load_from_fields(cfg)
    return LocalGenerator(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size)


def to_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def format_counts(counts: Mapping[str, int]) -> str:
    """``"a=1, b=2"`` sorted by key, or ``"none"``."""
    return ", ".join(f"{key}={value}" for key, value in sorted(counts.items())) or "none"


def _write_with_config(out: str, text: str, cfg: Any) -> None:
    atomic_write_text(out, text)
    atomic_write_text(f"{out}.config.yaml", config_to_yaml(cfg))


# --- alignkit dedup ---------------------------------------------------------------------------------


def dedup_command(cfg: DedupConfig, progress: Progress = _quiet) -> CommandResult:
    """Keep the first of each group of duplicates of ``cfg.field``; print drop counts by reason."""

    path = _require(cfg.path, "path", "a data file: alignkit dedup FILE --field NAME --out OUT.jsonl")
    out = _require(cfg.out, "out", "--out OUT.jsonl")
    raws = list(read_records(path))
    for raw in raws:  # checked here so errors name the file's own line numbers
        if not isinstance(raw.data.get(cfg.field), str):
            problem = "missing field" if cfg.field not in raw.data else "expected a string"
            raise DataError(problem, source=raw.source, line=raw.line, field=cfg.field)
    result = dedup_records(
        [raw.data for raw in raws],
        cfg.field,
        rouge_l=cfg.rouge_l,
        exact=cfg.exact,
        minhash=cfg.minhash,
        source=path,
    )
    atomic_write_text(out, to_jsonl(result.records))
    lines = [f"kept {len(result.records)} of {len(raws)} records -> {out}",
             f"dropped: {format_counts(result.drop_counts)}"]
    return CommandResult(output=out, show=say(*lines))


# --- alignkit synth self-instruct -------------------------------------------------------------------


def self_instruct_command(cfg: SelfInstructConfig, progress: Progress = _quiet) -> CommandResult:
    """Run Self-Instruct; write ``alpaca.jsonl``, ``messages.jsonl``, ``instructions.jsonl``, ``stats.json``."""

    out = _require(cfg.out, "out", "--out DIR")
    if cfg.seed_tasks is not None and not Path(cfg.seed_tasks).is_file():
        raise DataError("file not found", source=cfg.seed_tasks)
    seeds = load_seed_tasks(cfg.seed_tasks)
    generator = build_generator(cfg.generator)
    instruction_params = GenerationParams(
        max_new_tokens=cfg.instruction_max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        seed=cfg.seed,
    )
    result = run_self_instruct(
        generator,
        seeds,
        num_instructions=cfg.num_instructions,
        seed=cfg.seed,
        rouge_threshold=cfg.rouge_threshold,
        prompts_per_round=cfg.prompts_per_round,
        new_per_prompt=cfg.new_per_prompt,
        instances_per_task=cfg.instances_per_task,
        max_rounds=cfg.max_rounds,
        instruction_params=instruction_params,
        classify_params=replace(DEFAULT_CLASSIFY_PARAMS, seed=cfg.seed),
        instance_params=replace(
            DEFAULT_INSTANCE_PARAMS, max_new_tokens=cfg.instance_max_new_tokens, seed=cfg.seed
        ),
        on_progress=lambda stage, done, total: progress(f"{stage}: {done}/{total}"),
    )
    stats = {
        "records": len(result.records),
        "drop_counts": result.drop_counts,
        "stats": result.stats,
        "generator": dict(getattr(generator, "stats", {}) or {}),
    }
    instructions = [{"instruction": text, "is_classification": cls} for text, cls in result.instructions]
    with atomic_folder(out, {"kind": "self_instruct", "config_hash": config_hash(cfg)}) as tmp:
        (tmp / "alpaca.jsonl").write_text(to_jsonl(result.alpaca()), encoding="utf-8")
        (tmp / "messages.jsonl").write_text(to_jsonl(result.messages()), encoding="utf-8")
        (tmp / "instructions.jsonl").write_text(to_jsonl(instructions), encoding="utf-8")
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True), encoding="utf-8")
        (tmp / "config.yaml").write_text(config_to_yaml(cfg), encoding="utf-8")
    lines = [f"{len(result.instructions)} instructions, {len(result.records)} records -> {out}",
             f"dropped: {format_counts(result.drop_counts)}"]
    return CommandResult(output=out, show=say(*lines))


# --- alignkit synth grounded ------------------------------------------------------------------------


def _index_distractors(folder: str, mode: Mode) -> Callable[[str, str, int], list[ContextItem]]:
    """Distractors as served: the index's top chunks for the question itself, skipping any chunk that
    names the asked entity (it could hold the answer, which would make a negative dialog a lie)."""
    retriever = Retriever(folder)

    def retrieve(question: str, entity: str, k: int) -> list[ContextItem]:
        name = entity.casefold()
        kept = [
            h.chunk
            for h in retriever.search(question, k + SKIP_HEADROOM, mode)
            if name not in h.chunk.text.casefold()
        ]
        return [ContextItem(" ".join(c.text.split()), f"chunk:{c.id}") for c in kept[:k]]

    return retrieve


def grounded_command(cfg: GroundedConfig, progress: Progress = _quiet) -> CommandResult:
    """Build grounded dialogs (answerable + "I don't know" negatives) and write them as JSONL."""

    facts = _require(cfg.facts, "facts", "--facts FACTS.jsonl")
    out = _require(cfg.out, "out", "--out FILE.jsonl")
    entities = load_facts(facts)
    if cfg.docs and cfg.documents:
        raise ConfigError("give docs (a rag index) or documents (TF-IDF sentences), not both", field="docs")
    documents = load_documents(cfg.documents) if cfg.documents else []
    result = build_grounded_dialogs(
        entities,
        documents=documents,
        negative_share=cfg.negative_share,
        distractors=cfg.distractors,
        related_facts=cfg.related_facts,
        seed=cfg.seed,
        idk_replies=cfg.idk_replies or IDK_REPLIES,
        retrieve=_index_distractors(cfg.docs, cfg.docs_mode) if cfg.docs else None,
    )
    if cfg.rephrase:
        result = rephrase_answers(result, build_generator(cfg.generator), GenerationParams.from_section(cfg.generation))
    _write_with_config(out, to_jsonl(result.records(cfg.instruction)), cfg)
    lines = [f"{len(result.examples)} dialogs from {len(entities)} entities -> {out}",
             f"stats: {format_counts(result.stats)}"]
    return CommandResult(output=out, show=say(*lines))


# --- alignkit synth distill -------------------------------------------------------------------------


def _context_text(cfg: DistillConfig) -> str:
    if cfg.context and cfg.context_file:
        raise ConfigError("give the context or a context file, not both", field="context_file")
    if cfg.context_file:
        path = Path(cfg.context_file)
        if not path.is_file():
            raise DataError("file not found", source=str(path))
        text = path.read_text(encoding="utf-8")
    else:
        text = _require(cfg.context, "context", '--context "PERSONA" or --context-file FILE')
    if not text.strip():
        raise ConfigError("the context is empty", field="context")
    return text.strip()


def distill_command(cfg: DistillConfig, progress: Progress = _quiet) -> CommandResult:
    """Generate with the context as system prompt; write ``messages`` records without it."""

    prompts_path = _require(cfg.prompts, "prompts", "--prompts FILE")
    out = _require(cfg.out, "out", "--out FILE.jsonl")
    context = _context_text(cfg)
    prompts = read_prompt_chats(prompts_path)
    result = distill_with_context(build_generator(cfg.generator), prompts, context, GenerationParams.from_section(cfg.generation))
    _write_with_config(out, to_jsonl(result.records), cfg)
    if not result.records:
        progress("warning: no reply stopped before the token limit; raise generation.max_new_tokens")
    lines = [f"{len(result.records)} records from {len(prompts)} prompts -> {out}",
             f"dropped: {format_counts(result.drop_counts)}"]
    return CommandResult(output=out, show=say(*lines))
