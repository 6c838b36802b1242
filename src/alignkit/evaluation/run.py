"""``alignkit probe``: load a model, run the chosen probes, write their results.

``run_probes(cfg)`` is the library entry point behind the command. It loads the model (and its
adapter) once, wraps it in a ``LocalGenerator`` and runs the probes in an order that lets later
probes reuse earlier generations (repetition scores the hello and grounded replies instead of
sampling again). Results go to ``cfg.out`` through ``write_probe_results``; a probe that cannot run
for want of an input the user did not give (no training data, no reward model, no reference) is
written to ``summary.json`` as ``{"skipped": reason}`` and does not fail the run.

Winrate compares the policy with a reference model, both sampling on held-out prompts, scored by
a reward model trained with ``alignkit rm``. Alongside it goes the mean per-token KL estimate
``mean_t [log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)]`` over the policy's own sampled
replies (the k1 estimator, unbiased for KL(pi || pi_ref) because the tokens come from pi), from one
teacher-forced forward of each model. With a LoRA adapter the reference is the same module with the
adapter disabled, so no second copy of the weights is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignkit.config.base import config_to_yaml
from alignkit.config.commands import ReportConfig, ReportRun
from alignkit.config.probe import PROBE_NAMES, GroundedSection, ProbeConfig
from alignkit.config.rl import RewardSection
from alignkit.data.collate import pack
from alignkit.data.formatting import generation_prompt_ids
from alignkit.data.grounding import context_block
from alignkit.data.prompts import read_prompt_chats
from alignkit.data.records import load_records
from alignkit.errors import AlignkitError, ConfigError
from alignkit.evaluation.probe_results import ProbeResult, write_probe_results
from alignkit.evaluation.probe_sets import (
    greeting_prompts,
    harmless_lookalike_prompts,
    load_grounded_items,
)
from alignkit.evaluation.probes import (
    FewShotExample,
    run_grounded_probe,
    run_hello_probe,
    run_refusal_probe,
    run_regurgitation_probe,
    run_repetition_probe,
)
from alignkit.evaluation.regurgitation import TrainingSpanIndex
from alignkit.evaluation.report import build_report, default_labels, load_run, scorecard_text
from alignkit.evaluation.winrate import run_winrate_probe
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import Chat, Generation, GenerationParams, Generator
from alignkit.io import atomic_write_text
from alignkit.models.loader import load_from_fields
from alignkit.models.logprobs import token_forward
from alignkit.result import CommandResult, say
from alignkit.retrieval.search import Retriever
from alignkit.rewards.scorers import make_scorer

Progress = Callable[[str], None]
# Probes run in this order so that repetition can reuse the hello and grounded replies.
RUN_ORDER = ("hello", "regurgitation", "refusal", "grounded", "repetition", "winrate")
REPETITION_SOURCES = ("hello", "grounded")


def _quiet(_message: str) -> None:
    """The default progress callback: says nothing."""


def skipped(name: str, reason: str) -> ProbeResult:
    """A probe that did not run: it passes (nothing was measured) and ``summary.json`` says why."""
    return ProbeResult(name=name, rows=[], summary={"skipped": reason}, passed=True)


def is_skipped(result: ProbeResult) -> bool:
    return "skipped" in result.summary and not result.rows and len(result.summary) == 1


# ---------------------------------------------------------------------------------------------
# Training data: the regurgitation index and prompts


@dataclass
class TrainingTexts:
    """What the regurgitation probe needs from the training data.

    ``docs``: token-id sequences indexed (each assistant reply alone, and each conversation as
    role-tagged plain text, the way raw-text training sees it). ``prompts``: chats ending with
    the user turn that a trained reply answered.
    """

    docs: list[list[int]]
    prompts: list[Chat]


def _plain_text(messages: Sequence[dict[str, Any]]) -> str:
    """A conversation as ``Role: content`` lines: what raw-text (continuation) training trains on."""
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def _prompt_before_last_reply(messages: Sequence[dict[str, Any]]) -> Chat | None:
    """The conversation up to (not including) its last assistant turn; None when there is none."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    if last <= 0:
        return None
    return [{"role": m["role"], "content": m["content"]} for m in messages[:last]]


def training_texts(path: str, tokenizer: Any) -> TrainingTexts:
    """Reads the training file (any record kind ``load_records`` accepts) into docs + prompts."""

    records, _ = load_records(path)

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False).input_ids)

    docs: list[list[int]] = []
    prompts: list[Chat] = []
    for record in records:
        if record.text is not None:
            docs.append(encode(record.text))
            words = record.text.split()
            if words:
                prompts.append([{"role": "user", "content": " ".join(words[:24])}])
            continue
        conversation = list(record.messages) + list(record.chosen)
        docs += [encode(m["content"]) for m in conversation if m["role"] == "assistant" and m["content"]]
        docs.append(encode(_plain_text(conversation)))
        prompt = _prompt_before_last_reply(conversation)
        if prompt is not None:
            prompts.append(prompt)
    return TrainingTexts(docs=docs, prompts=prompts)


def _subset(items: Sequence[Chat], count: int, seed: int) -> list[Chat]:
    """At most ``count`` items, a seeded sample kept in file order."""
    if len(items) <= count:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), count))
    return [items[i] for i in keep]


def _annotate_prompt_sets(result: ProbeResult, sets: Sequence[str], n_samples: int) -> None:
    """Tags each row with the prompt set it came from and adds per-set span figures."""
    for row, name in zip(result.rows, (s for s in sets for _ in range(n_samples)), strict=True):
        row["prompt_set"] = name
    for name in dict.fromkeys(sets):
        spans = [row["span_length"] for row in result.rows if row["prompt_set"] == name]
        result.summary[f"max_span_{name}"] = max(spans, default=0)
        result.summary[f"flagged_{name}"] = sum(
            row["flagged"] for row in result.rows if row["prompt_set"] == name
        )


def regurgitation(cfg: ProbeConfig, generator: Generator, tokenizer: Any) -> ProbeResult:
    """Greetings and training prompts, greedy; each reply's longest span shared with the data."""
    if not cfg.train_data:
        return skipped("regurgitation", "no training data given (--train-data PATH)")
    texts = training_texts(cfg.train_data, tokenizer)
    index = TrainingSpanIndex(texts.docs)
    greetings = cfg.hello.prompts if cfg.hello.prompts is not None else greeting_prompts()
    train_prompts = _subset(texts.prompts, cfg.regurgitation.max_prompts, cfg.seed)
    prompts: list[str | Chat] = [*greetings, *train_prompts]
    result = run_regurgitation_probe(
        generator,
        index,
        prompts,
        max_new_tokens=cfg.regurgitation.max_new_tokens,
        seed=cfg.seed,
        system_prompt=cfg.system_prompt,
        thresholds=cfg.thresholds,
    )
    _annotate_prompt_sets(result, ["greetings"] * len(greetings) + ["train_prompts"] * len(train_prompts), 1)
    return result


# ---------------------------------------------------------------------------------------------
# Win rate: reward-model scorer, reference generator, KL estimate


def winrate_reward(cfg: ProbeConfig) -> RewardSection | None:
    """Where the winrate probe's scores come from: ``winrate.reward`` (any reward source of PPO/GRPO), or
    ``reward_model=DIR`` as its short form; None when neither is given."""
    if cfg.winrate.reward is not None and cfg.reward_model:
        raise ConfigError("give reward_model or winrate.reward, not both", field="winrate.reward")
    if cfg.reward_model:
        return RewardSection(kind="reward_model", reward_model=cfg.reward_model, batch_size=cfg.batch_size)
    return cfg.winrate.reward


class AdapterDisabledGenerator:
    """The reference side of a LoRA policy: the same generator with the adapter switched off."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def chat(self, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
        with self.inner.model.disable_adapter():
            return self.inner.chat(chats, params)


@dataclass
class LogProbModel:
    """A causal LM and how to enter the state that makes it the reference (or policy) model."""

    model: Any
    context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext


@torch.no_grad()
def reply_token_logps(
    lm: LogProbModel, sequences: Sequence[tuple[list[int], list[int]]], *, batch_size: int = 8
) -> list[torch.Tensor]:
    """log p of each reply token given everything before it, one tensor per sequence.

    sequences: ``(input_ids, loss_mask)`` with the mask set on the reply tokens. Sequences are
    packed ``batch_size`` at a time (block-diagonal attention, see ``data.collate``).
    """

    device = next(lm.model.parameters()).device
    out: list[torch.Tensor] = []
    was_training = lm.model.training
    lm.model.eval()
    with lm.context():
        for start in range(0, len(sequences), batch_size):
            batch = pack(sequences[start : start + batch_size]).to(device)
            tokens = token_forward(lm.model, batch, with_entropy=False)
            out += [tokens.logps[tokens.owners == i].cpu() for i in range(batch.num_sequences)]
    if was_training:
        lm.model.train()
    return out


def mean_token_kl(
    policy: LogProbModel,
    reference: LogProbModel,
    sequences: Sequence[tuple[list[int], list[int]]],
    *,
    batch_size: int = 8,
) -> float:
    """Mean over all reply tokens of ``log pi - log pi_ref`` at the sampled token (k1 estimator)."""
    policy_logps = reply_token_logps(policy, sequences, batch_size=batch_size)
    reference_logps = reply_token_logps(reference, sequences, batch_size=batch_size)
    total = sum(int(p.numel()) for p in policy_logps)
    if total == 0:
        return 0.0
    diff = sum(float((p - r).sum()) for p, r in zip(policy_logps, reference_logps, strict=True))
    return diff / total


def kl_function(
    tokenizer: Any, policy: LogProbModel, reference: LogProbModel, *, batch_size: int = 8
) -> Callable[[list[Chat], list[Generation]], float]:
    """The ``kl_fn`` the winrate probe calls: prompt ids + generated ids, reply tokens masked in."""

    def kl(chats: list[Chat], generations: list[Generation]) -> float:
        sequences = []
        for chat, generation in zip(chats, generations, strict=True):
            prompt = generation_prompt_ids(tokenizer, chat)
            reply = list(generation.token_ids)
            sequences.append(([*prompt, *reply], [0] * len(prompt) + [1] * len(reply)))
        return mean_token_kl(policy, reference, sequences, batch_size=batch_size)

    return kl


def _recorded_base_model(model_spec: str) -> str | None:
    """The ``base_model`` an SFT run recorded in ``run.json`` next to its ``model/`` folder."""
    manifest = Path(model_spec).parent / "run.json"
    if not Path(model_spec).is_dir() or not manifest.is_file():
        return None
    try:
        base = json.loads(manifest.read_text(encoding="utf-8")).get("base_model")
    except (OSError, json.JSONDecodeError):
        return None
    return base if isinstance(base, str) and base else None


def _reference_is_the_adapter_disabled(cfg: ProbeConfig) -> bool:
    """The winrate reference is the probed model with its adapter switched off (no second copy)."""
    return "winrate" in cfg.probes and winrate_reward(cfg) is not None and cfg.reference_model is None


@contextlib.contextmanager
def _reference_side(
    cfg: ProbeConfig, policy: Any, generator: Any
) -> Iterator[tuple[Generator, LogProbModel] | str]:
    """The reference generator and log-prob model, or a string saying why there is none."""

    spec = cfg.reference_model or (None if cfg.adapter else _recorded_base_model(cfg.model))
    if spec is None and cfg.adapter:
        yield AdapterDisabledGenerator(generator), LogProbModel(policy.model, policy.model.disable_adapter)
        return
    if spec is None:
        yield "no reference model given (reference_model=SPEC, or probe a LoRA adapter)"
        return
    reference = load_from_fields(cfg, spec=spec, adapter=cfg.reference_adapter)
    if len(reference.tokenizer) != len(policy.tokenizer):
        raise ConfigError(
            f"the reference model's vocabulary ({len(reference.tokenizer)}) differs from the "
            f"policy's ({len(policy.tokenizer)}): the KL needs the same tokenizer",
            field="reference_model",
        )
    yield (
        LocalGenerator(reference.model, reference.tokenizer, batch_size=cfg.batch_size),
        LogProbModel(reference.model),
    )


def winrate(cfg: ProbeConfig, policy: Any, generator: Any) -> ProbeResult:
    """Policy vs reference on held-out prompts, scored by the configured reward, with the per-token KL."""
    reward = winrate_reward(cfg)
    if reward is None:
        return skipped("winrate", "no reward model given")
    if cfg.winrate.prompts:
        chats = read_prompt_chats(cfg.winrate.prompts, field="winrate.prompts")
    else:
        chats = [[{"role": "user", "content": p}] for p in harmless_lookalike_prompts()]
    chats = chats[: cfg.winrate.max_prompts]
    with _reference_side(cfg, policy, generator) as side:
        if isinstance(side, str):
            return skipped("winrate", side)
        reference_generator, reference_lm = side
        scorer = make_scorer(reward, device=cfg.device, dtype=cfg.dtype)
        kl_fn = kl_function(
            policy.tokenizer, LogProbModel(policy.model), reference_lm, batch_size=cfg.batch_size
        )
        return run_winrate_probe(
            generator,
            reference_generator,
            scorer,
            list(chats),
            kl_fn=kl_fn,
            n_samples=cfg.winrate.n_samples,
            temperature=cfg.winrate.temperature,
            max_new_tokens=cfg.winrate.max_new_tokens,
            seed=cfg.seed,
            system_prompt=cfg.system_prompt,
            thresholds=cfg.thresholds,
        )


# ---------------------------------------------------------------------------------------------
# Running and writing


def _retrieve_context(section: GroundedSection) -> Callable[[str], str]:
    """question -> the context block retrieval gives it, in the grounded format (end-to-end probe)."""
    if section.rag_index is None:
        raise ConfigError("the end-to-end grounded probe needs an index", field="grounded.rag_index")
    retriever = Retriever(section.rag_index)
    return lambda question: context_block(
        hit.chunk.text for hit in retriever.search(question, section.rag_top_k, section.rag_mode)
    )


def _run_one(
    name: str, cfg: ProbeConfig, loaded: Any, generator: Any, done: dict[str, ProbeResult]
) -> ProbeResult:
    """Runs probe ``name``; ``done`` holds the results of the probes run before it."""
    if name == "hello":
        return run_hello_probe(
            generator,
            prompts=cfg.hello.prompts,
            n_samples=cfg.hello.n_samples,
            temperature=cfg.hello.temperature,
            top_p=cfg.hello.top_p,
            max_new_tokens=cfg.hello.max_new_tokens,
            seed=cfg.seed,
            system_prompt=cfg.system_prompt,
            thresholds=cfg.thresholds,
        )
    if name == "regurgitation":
        return regurgitation(cfg, generator, loaded.tokenizer)
    if name == "refusal":
        return run_refusal_probe(
            generator, seed=cfg.seed, system_prompt=cfg.system_prompt, thresholds=cfg.thresholds
        )
    if name == "grounded":
        items = load_grounded_items(cfg.grounded_data) if cfg.grounded_data else None
        if items is not None and cfg.grounded.max_items is not None:
            items = items[: cfg.grounded.max_items]
        return run_grounded_probe(
            generator,
            items,
            instruction=cfg.grounded.instruction,
            few_shot=[FewShotExample(e.context, e.question, e.reply) for e in cfg.grounded.few_shot],
            max_new_tokens=cfg.grounded.max_new_tokens,
            seed=cfg.seed,
            thresholds=cfg.thresholds,
            retrieve=_retrieve_context(cfg.grounded) if cfg.grounded.rag_index else None,
        )
    if name == "repetition":
        reuse = [done[n] for n in REPETITION_SOURCES if n in done and not is_skipped(done[n])]
        if reuse:
            return run_repetition_probe(reuse=reuse, thresholds=cfg.thresholds)
        return run_repetition_probe(
            generator,
            greeting_prompts(),
            n_samples=2,
            max_new_tokens=cfg.hello.max_new_tokens,
            seed=cfg.seed,
            system_prompt=cfg.system_prompt,
            thresholds=cfg.thresholds,
        )
    if name == "winrate":
        return winrate(cfg, loaded, generator)
    raise ConfigError(f"unknown probe {name!r} (expected any of {', '.join(PROBE_NAMES)})", field="probes")


def write_results(results: Sequence[ProbeResult], out: str | Path) -> Path:
    """Writes rows + ``summary.json``; a skipped probe's entry is just ``{"skipped": reason}``."""

    summary_path = write_probe_results([r for r in results if not is_skipped(r)], out)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    ordered: dict[str, Any] = {}
    for result in results:
        if is_skipped(result):
            ordered[result.name] = dict(result.summary)
            # An empty rows file, so that a report does not look for rows that were never written.
            atomic_write_text(Path(out) / f"{result.name}.json", "[]\n")
        else:
            ordered[result.name] = summary[result.name]
    atomic_write_text(summary_path, json.dumps(ordered, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return summary_path


def run_probes(cfg: ProbeConfig, *, progress: Progress = _quiet) -> tuple[list[ProbeResult], int]:
    """Runs ``cfg.probes`` on ``cfg.model`` (+ ``cfg.adapter``) and writes them to ``cfg.out``.

    Returns the results in ``PROBE_NAMES`` order and the exit code: 1 when a probe failed a
    threshold, else 0 (skipped probes do not fail).
    """

    if not cfg.out:
        raise ConfigError("expected an output folder: --out DIR", field="out")
    progress(f"loading {cfg.model}" + (f" + adapter {cfg.adapter}" if cfg.adapter else ""))
    loaded = load_from_fields(cfg, seed=cfg.seed)
    if cfg.adapter and not _reference_is_the_adapter_disabled(cfg):
        # Generation with the LoRA folded into the weights: no extra adapter matmuls per layer and token.
        loaded = dataclasses.replace(loaded, model=loaded.model.merge_and_unload())
    generator = LocalGenerator(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size)
    done: dict[str, ProbeResult] = {}
    for name in (n for n in RUN_ORDER if n in cfg.probes):
        progress(f"probe {name}")
        done[name] = _run_one(name, cfg, loaded, generator, done)
    results = [done[name] for name in PROBE_NAMES if name in done]
    write_results(results, cfg.out)

    atomic_write_text(Path(cfg.out) / "config.yaml", config_to_yaml(cfg))
    return results, 0 if all(r.passed for r in results) else 1


# ---------------------------------------------------------------------------------------------
# What the CLI prints

# Figures shown in the table per probe (the full set is in summary.json).
HEADLINE = {
    "hello": ("greedy_stop_rate", "sampled_stop_rate", "length_mean", "length_p95", "leakage_rate"),
    "regurgitation": (
        "max_span",
        "mean_span",
        "flagged_share",
        "max_span_greetings",
        "max_span_train_prompts",
    ),
    "repetition": ("loop_rate", "mean_reply_distinct_2", "distinct_2"),
    "refusal": ("refusal_rate", "over_refusal_rate"),
    "grounded": (
        "idk_rate_unanswerable",
        "accuracy_answerable",
        "mixed_line_rate_answerable",
        "false_idk_rate_answerable",
    ),
    "winrate": ("win_rate", "mean_policy_score", "mean_reference_score", "mean_kl"),
}


def _figure_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "—" if value is None else str(value)


def summary_table(summary: dict[str, dict[str, Any]]) -> Any:
    """A rich table: probe, verdict, headline figures, and why it failed."""
    from rich.table import Table

    table = Table(title="probe summary", show_lines=False)
    for column in ("probe", "verdict", "figures", "why"):
        table.add_column(column, overflow="fold")
    for name, entry in summary.items():
        if "skipped" in entry:
            table.add_row(name, "[dim]skipped[/dim]", "", str(entry["skipped"]))
            continue
        keys = [k for k in HEADLINE.get(name, ()) if k in entry]
        figures = "  ".join(f"{k}={_figure_text(entry[k])}" for k in keys)
        verdict = "[green]pass[/green]" if entry.get("passed") else "[red]FAIL[/red]"
        table.add_row(name, verdict, figures, "; ".join(entry.get("failures") or []))
    return table


def print_summary(summary_path: str | Path) -> None:
    """Prints ``summary.json`` as a table on stdout."""
    from rich.console import Console

    summary = json.loads(Path(summary_path).read_text(encoding="utf-8"))
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 140  # piped or captured: wide enough that figures stay on one line
    console.print(summary_table(summary))


def probe_command(cfg: ProbeConfig, progress: Progress = _quiet) -> CommandResult:
    """``alignkit probe``: the results folder as the output; exit code 1 when a probe failed."""
    _, code = run_probes(cfg, progress=progress)
    summary = Path(str(cfg.out)) / "summary.json"
    figures = json.loads(summary.read_text(encoding="utf-8"))
    problems = [
        f"{name}: {'; '.join(entry.get('failures') or ['failed'])}"
        for name, entry in figures.items()
        if isinstance(entry, dict) and entry.get("passed") is False
    ]
    return CommandResult(
        output=cfg.out,
        code=code,
        outputs={"passed": code == 0},
        problems=problems,
        show=lambda: print_summary(summary),
    )


def _combined_run(entry: ReportRun, work_dir: Path) -> Path:
    """A folder holding a training run's metrics and the probe results of its model, under one label."""
    combined = work_dir / "runs" / entry.label
    combined.mkdir(parents=True, exist_ok=True)
    if entry.train:
        metrics = Path(entry.train) / "metrics.jsonl"
        if metrics.is_file():
            shutil.copy(metrics, combined / "metrics.jsonl")
    if entry.probe:
        probe = Path(entry.probe)
        probe = probe / "probe" if (probe / "probe").is_dir() else probe
        shutil.copytree(probe, combined / "probe", dirs_exist_ok=True)
    return combined


def report_command(cfg: ReportConfig, progress: Progress = _quiet) -> CommandResult:
    """``alignkit report``: the HTML file as the output.

    ``runs`` lists run folders, or ``{label, train, probe}`` mappings that pair a training folder (its
    metrics) with the probe folder that examined its result; those are assembled next to ``out``.
    """

    if not cfg.runs:
        raise AlignkitError(
            "expected at least one run folder: alignkit report RUN_DIR ... --out report.html "
            "(in a pipeline: runs: [${sft.dir}, ...])",
            field="runs",
        )
    if not cfg.out:
        raise AlignkitError("expected an output file: --out report.html", field="out")
    labels = list(cfg.labels)
    run_dirs: list[Path] = []
    for entry in cfg.runs:
        if isinstance(entry, str):
            run_dirs.append(Path(entry))
        else:
            run_dirs.append(_combined_run(entry, Path(cfg.out).parent))
            labels.append(entry.label)
    path = build_report(run_dirs, cfg.out, labels=labels or None)
    # The main job's figures on the terminal: the scorecard the report opens with.
    names = labels or default_labels(run_dirs)
    table = scorecard_text([load_run(run_dir, name) for run_dir, name in zip(run_dirs, names, strict=True)])
    lines = [f"\n{table}\n"] if table else []
    return CommandResult(
        output=str(path), outputs={"scorecard": table} if table else {}, show=say(*lines, f"wrote {path}")
    )
