"""Config models of the synthetic-data commands: dedup, synth self-instruct / grounded / distill.

Every command that generates text has a ``generator`` section: ``kind: local`` runs a transformers
model in-process (the ``ModelFields`` keys: ``model``, ``adapter``, ``dtype``, ...), ``kind: http``
sends requests to any OpenAI-compatible endpoint (``base_url``, the served ``model`` name, the API
key's environment variable, a response cache so an interrupted run resumes without paying twice).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignkit.config.base import StrictModel
from alignkit.config.commands import GenerationConfigSection
from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION, ModelFields


class GeneratorConfig(ModelFields):
    """Which model writes the synthetic text: a local model or an OpenAI-compatible endpoint."""

    kind: Literal["local", "http"] = Field(
        "local", description="local = transformers in-process; http = endpoint"
    )
    batch_size: int = Field(8, gt=0, description="local: prompts generated together")
    base_url: str | None = Field(
        None, description="http: e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, hosted)"
    )
    api_key_env: str | None = Field(
        None, description="http: environment variable holding the API key (none: no key)"
    )
    cache_path: str | None = Field(
        None, description="http: JSONL response cache; a rerun only pays for misses"
    )
    concurrency: int = Field(8, gt=0, description="http: requests in flight")
    timeout_s: float = Field(120.0, gt=0, description="http: socket timeout per attempt, seconds")
    max_retries: int = Field(
        5, ge=0, description="http: retries after the first attempt (429, 5xx, timeouts)"
    )
    max_n_per_request: int | None = Field(
        None, gt=0, description="http: split n over requests (servers without n)"
    )


class DedupConfig(StrictModel):
    """``alignkit dedup``: drop exact, MinHash and ROUGE-L near-duplicates of one text field."""

    path: str | None = Field(None, description="the data file to deduplicate")
    field: str = Field("instruction", description="the record field compared (a string)")
    exact: bool = Field(True, description="drop exact duplicates (case-folded, whitespace collapsed)")
    rouge_l: float | None = Field(
        None, gt=0.0, le=1.0, description="drop when ROUGE-L F >= this vs a kept record"
    )
    minhash: float | None = Field(
        None, gt=0.0, le=1.0, description="drop when estimated 3-gram Jaccard >= this"
    )
    out: str | None = Field(None, description="the JSONL file of kept records")


class SelfInstructConfig(StrictModel):
    """``alignkit synth self-instruct``: grow an instruction set from seed tasks (Wang et al., 2023)."""

    seed_tasks: str | None = Field(
        None, description="seed-task JSONL (default: the 118 shipped with alignkit)"
    )
    num_instructions: int = Field(100, ge=0, description="new instructions to generate")
    out: str | None = Field(None, description="output folder: alpaca.jsonl, messages.jsonl, stats.json")
    seed: int = Field(0, description="sampling seed of prompts and generations")
    rouge_threshold: float = Field(
        0.7, gt=0.0, le=1.0, description="drop an instruction with ROUGE-L F >= this"
    )
    prompts_per_round: int = Field(8, gt=0, description="instruction prompts sent per generator call")
    new_per_prompt: int = Field(8, gt=0, description="new instructions asked for per prompt")
    instances_per_task: int = Field(3, gt=0, description="instances asked for per instruction")
    max_rounds: int | None = Field(
        None, gt=0, description="stop after this many rounds (default: from num_instructions)"
    )
    instruction_max_new_tokens: int = Field(
        1024, gt=0, description="token limit of an instruction-list reply"
    )
    instance_max_new_tokens: int = Field(512, gt=0, description="token limit of an instance reply")
    temperature: float = Field(0.7, ge=0.0, description="sampling temperature of instruction generation")
    top_p: float = Field(0.5, gt=0.0, le=1.0, description="nucleus sampling of instruction generation")
    generator: GeneratorConfig = Field(default_factory=lambda: GeneratorConfig.model_validate({}))


class GroundedConfig(StrictModel):
    """``alignkit synth grounded``: dialogs answered from a context of facts, with "I don't know" negatives."""

    facts: str | None = Field(None, description="facts file: records with entity and facts")
    documents: str | None = Field(None, description="folder of .txt/.md files: extra distractor sentences")
    docs: str | None = Field(
        None,
        description="a rag index folder (alignkit rag index): distractors are its top chunks for each "
        "question, as served (chunks naming the asked entity are skipped)",
    )
    docs_mode: Literal["lexical", "dense", "fused"] = Field("fused", description="docs: search mode")
    out: str | None = Field(None, description="the JSONL file of messages records")
    negative_share: float = Field(0.35, ge=0.0, le=1.0, description="share of dialogs whose fact is removed")
    distractors: int = Field(3, ge=0, description="retrieved distractor facts per context (TF-IDF)")
    related_facts: int = Field(2, ge=0, description="other facts of the same entity shown per context")
    seed: int = Field(0, description="seed of every random choice")
    instruction: str = Field(
        DEFAULT_GROUNDED_INSTRUCTION, description="text before the facts in the system prompt"
    )
    idk_replies: list[str] = Field(
        default_factory=list, description="negative replies (empty: the built-in set)"
    )
    rephrase: bool = Field(
        False, description="rephrase answers with the generator (else the fact's answer verbatim)"
    )
    generation: GenerationConfigSection = Field(
        default_factory=lambda: GenerationConfigSection.model_validate({"max_new_tokens": 128})
    )
    generator: GeneratorConfig = Field(default_factory=lambda: GeneratorConfig.model_validate({}))


class DistillConfig(StrictModel):
    """``alignkit synth distill``: answers generated with a long context, written without it."""

    prompts: str | None = Field(
        None, description=".txt (one prompt a line) or records with prompt/instruction/messages"
    )
    context: str | None = Field(None, description="the long persona or instruction used as the system prompt")
    context_file: str | None = Field(None, description="read the context from this file instead")
    out: str | None = Field(None, description="the JSONL file of messages records (without the context)")
    generation: GenerationConfigSection = Field(
        default_factory=lambda: GenerationConfigSection.model_validate({"max_new_tokens": 512})
    )
    generator: GeneratorConfig = Field(default_factory=lambda: GeneratorConfig.model_validate({}))


# --- alignkit prefs ----------------------------------------------------------------------------------


class SamplingSection(GenerationConfigSection):
    """Candidate sampling: like ``generation`` elsewhere, but sampling by default (greedy gives duplicates)."""

    temperature: float = Field(0.8, ge=0.0, description="0 = greedy (all candidates alike)")
    top_p: float = Field(0.95, gt=0.0, le=1.0)


class JudgeSection(StrictModel):
    kind: Literal["reward_model", "llm"] = Field(
        "reward_model", description="reward_model | llm (1-10 rating)"
    )
    reward_model: str | None = Field(None, description="kind=reward_model: a folder from alignkit rm")
    model: str | None = Field(None, description="kind=llm: a local model spec (embedded, a folder, a .gguf)")
    url: str | None = Field(
        None, description="kind=llm: an OpenAI-compatible base URL instead of a local model"
    )
    api_model: str | None = Field(None, description="kind=llm with url: the model name the endpoint serves")
    api_key_env: str | None = Field(
        None, description="kind=llm with url: environment variable holding the key"
    )
    prompt: str | None = Field(
        None, description="rating prompt with {conversation} and {response} placeholders"
    )
    max_new_tokens: int = Field(8, gt=0, description="tokens the LLM judge may answer with")
    batch_size: int = Field(8, gt=0, description="sequences per forward of a local judge")


class PrefsConfig(ModelFields):
    """``model``/``adapter`` are the policy that samples the candidates."""

    prompts: str | None = Field(
        None, description="a .txt (one prompt a line) or JSONL with prompt or messages"
    )
    out: str | None = Field(
        None, description="output JSONL of prompt/chosen/rejected/chosen_score/rejected_score"
    )
    system: str | None = Field(None, description="a system message put before each plain prompt")
    num_candidates: int = Field(4, ge=2, description="replies sampled per prompt")
    generation: SamplingSection = Field(default_factory=SamplingSection)
    batch_size: int = Field(8, gt=0, description="prompts x candidates generated together")
    judge: JudgeSection = Field(default_factory=JudgeSection)
    pairs: Literal["best_vs_worst", "all_pairs"] = Field(
        "best_vs_worst", description="one pair per prompt, or all"
    )
    min_gap: float = Field(0.0, ge=0.0, description="keep a pair only when chosen - rejected score >= this")
    drop_unfinished: bool = Field(True, description="drop candidates cut at max_new_tokens")
