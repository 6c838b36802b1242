"""Behavioural probes: run a model (any ``Generator``) on small prompt sets and measure symptoms.

Each ``run_*_probe`` function generates replies, scores them with the pure functions in
``metrics`` and returns a ``ProbeResult``: one row per reply (JSON-ready dicts), a summary of
figures, and pass/fail against ``ProbeThresholds``. ``write_probe_results`` writes
``<probe>.json`` (the rows) and ``summary.json`` (``{probe: {figures..., "passed": bool}}``).

The probes and the symptom each one catches:

- ``hello``: greetings and near-empty turns, greedy and sampled. A model whose end-of-turn token
  was masked out of the loss never stops (low stop rate, p95 length at the cap); one trained on
  raw transcripts writes the next "User:" turn (leakage).
- ``regurgitation``: longest verbatim token span shared with the training data.
- ``repetition``: distinct-1/2 and replies that end in an n-gram loop.
- ``refusal``: refusal rate on harmful requests, over-refusal on harmless look-alikes.
- ``grounded``: "I don't know" on questions the context cannot answer, accuracy otherwise.

The ``winrate`` probe (policy against reference, scored by a reward model or judge, with the KL) is in
``evaluation/winrate.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from alignkit.config.common import DEFAULT_GROUNDED_INSTRUCTION
from alignkit.config.probe import ProbeThresholds
from alignkit.data.grounding import grounded_system
from alignkit.data.prompts import last_user_text
from alignkit.errors import AlignkitError, ConfigError
from alignkit.evaluation import metrics
from alignkit.evaluation.probe_results import ProbeResult, rate, rounded, verdict
from alignkit.evaluation.probe_sets import (
    GroundedItem,
    greeting_prompts,
    grounded_items,
    harmful_prompts,
    harmless_lookalike_prompts,
)
from alignkit.evaluation.regurgitation import TrainingSpanIndex
from alignkit.generation.types import Chat, Generation, GenerationParams, Generator

Prompt = str | Chat

# ---------------------------------------------------------------------------------------------
# Shared helpers


def as_chat(prompt: Prompt, system_prompt: str | None = None) -> Chat:
    """A bare string is one user turn; a chat is used as given (a system prompt is prepended)."""
    chat: Chat = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system_prompt is not None and not (chat and chat[0].get("role") == "system"):
        chat = [{"role": "system", "content": system_prompt}, *chat]
    return chat


def generate_replies(generator: Generator, chats: list[Chat], params: GenerationParams) -> list[list[Generation]]:
    """Call the generator and check it returned ``num_samples`` replies for every chat."""
    if not chats:
        return []
    outputs = generator.chat(chats, params)
    if len(outputs) != len(chats) or any(len(out) != params.num_samples for out in outputs):
        shape = [len(out) for out in outputs]
        raise ValueError(
            f"generator returned {shape} replies for {len(chats)} chats x {params.num_samples} samples"
        )
    return outputs


def _reply_length(generation: Generation, unit: str) -> int:
    return len(generation.token_ids) if unit == "tokens" else len(generation.text.split())


def _length_unit(generations: Sequence[Generation]) -> str:
    """Token counts when the backend returned ids for every reply, else whitespace words."""
    return "tokens" if generations and all(g.token_ids for g in generations) else "words"


# ---------------------------------------------------------------------------------------------
# hello


def run_hello_probe(
    generator: Generator,
    *,
    prompts: Sequence[str] | None = None,
    n_samples: int = 8,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 96,
    seed: int = 0,
    system_prompt: str | None = None,
    thresholds: ProbeThresholds | None = None,
) -> ProbeResult:
    """Greetings and near-empty prompts, greedy plus ``n_samples`` samples per prompt.

    Greedy and sampled stop rates are reported separately: greedy decoding often ends a turn
    that sampling at a realistic temperature runs past, and users sample. Leakage counts
    template markers, role prefixes at line starts, and a reply that repeats the user's turn.
    """
    if temperature < 0.7:
        raise ConfigError(
            "the hello probe samples at temperature >= 0.7: lower ones hide the replies that never stop",
            field="temperature",
        )
    if n_samples < 0:
        raise ConfigError("must be >= 0", field="n_samples")
    thresholds = thresholds or ProbeThresholds()
    prompt_texts = list(greeting_prompts() if prompts is None else prompts)
    chats = [as_chat(text, system_prompt) for text in prompt_texts]
    greedy = generate_replies(
        generator, chats, GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    )
    sampled = (
        generate_replies(
            generator,
            chats,
            GenerationParams(
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                num_samples=n_samples,
                seed=seed,
            ),
        )
        if n_samples
        else [[] for _ in chats]
    )

    greedy_flat = [g for out in greedy for g in out]
    sampled_flat = [g for out in sampled for g in out]
    unit = _length_unit(greedy_flat + sampled_flat)
    rows: list[dict[str, Any]] = []
    for text, greedy_out, sampled_out in zip(prompt_texts, greedy, sampled, strict=True):
        labelled = [("greedy", g) for g in greedy_out] + [("sampled", g) for g in sampled_out]
        for index, (mode, gen) in enumerate(labelled):
            rows.append(
                {
                    "prompt": text,
                    "mode": mode,
                    "sample": index if mode == "greedy" else index - len(greedy_out),
                    "text": gen.text,
                    "length": _reply_length(gen, unit),
                    "stopped": gen.stopped,
                    "finish_reason": gen.finish_reason,
                    "leak": metrics.detect_role_leakage(gen.text, user_text=text),
                }
            )
    length_mean, length_p95 = metrics.length_stats([row["length"] for row in rows])
    leaks = Counter(row["leak"] for row in rows if row["leak"] is not None)
    summary: dict[str, Any] = {
        "n_prompts": len(prompt_texts),
        "n_samples": n_samples,
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "greedy_stop_rate": rounded(metrics.stop_rate(greedy_flat)) if greedy_flat else None,
        "sampled_stop_rate": rounded(metrics.stop_rate(sampled_flat)) if sampled_flat else None,
        "length_mean": round(length_mean, 2),
        "length_p95": length_p95,
        "length_unit": unit,
        "leakage_rate": rounded(rate([row["leak"] is not None for row in rows])),
        "leak_markers": dict(leaks.most_common()),
    }
    checks: list[tuple[str, float | None, Literal["min", "max"]]] = [
        ("greedy_stop_rate", thresholds.min_greedy_stop_rate, "min"),
        ("sampled_stop_rate", thresholds.min_sampled_stop_rate if n_samples else None, "min"),
        ("leakage_rate", thresholds.max_leakage_rate, "max"),
        ("length_p95", thresholds.max_length_p95, "max"),
    ]
    return verdict("hello", rows, summary, checks)


# ---------------------------------------------------------------------------------------------
# regurgitation


def run_regurgitation_probe(
    generator: Generator,
    train_index: TrainingSpanIndex,
    prompts: Sequence[Prompt],
    *,
    min_span: int | None = None,
    n_samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    system_prompt: str | None = None,
    thresholds: ProbeThresholds | None = None,
) -> ProbeResult:
    """Longest verbatim token span each reply shares with the training data.

    Replies sharing ``min_span`` tokens or more (default ``thresholds.regurgitation_min_span``)
    are flagged. Needs the generated token ids, from the tokenizer ``train_index`` was built with.
    """
    thresholds = thresholds or ProbeThresholds()
    min_span = thresholds.regurgitation_min_span if min_span is None else min_span
    if not prompts:
        raise ConfigError("the regurgitation probe needs at least one prompt", field="prompts")
    chats = [as_chat(p, system_prompt) for p in prompts]
    params = GenerationParams(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, num_samples=n_samples, seed=seed
    )
    rows: list[dict[str, Any]] = []
    for chat, outputs in zip(chats, generate_replies(generator, chats, params), strict=True):
        for sample, gen in enumerate(outputs):
            if gen.text and not gen.token_ids:
                raise AlignkitError(
                    "the regurgitation probe needs generated token ids; this backend returned text only",
                    field="token_ids",
                )
            match = train_index.longest_match(gen.token_ids)
            rows.append(
                {
                    "prompt": last_user_text(chat) or "",
                    "sample": sample,
                    "text": gen.text,
                    "length": len(gen.token_ids),
                    "span_length": match.length,
                    "doc_index": match.doc_index,
                    "doc_start": match.doc_start,
                    "output_start": match.output_start,
                    "flagged": match.length >= min_span,
                }
            )
    spans = [row["span_length"] for row in rows]
    span_mean, span_p95 = metrics.length_stats(spans)
    summary: dict[str, Any] = {
        "n_outputs": len(rows),
        "min_span": min_span,
        "flagged_count": sum(row["flagged"] for row in rows),
        "flagged_share": rounded(rate([row["flagged"] for row in rows])),
        "max_span": max(spans, default=0),
        "mean_span": round(span_mean, 2),
        "span_p95": span_p95,
        "train_docs": train_index.num_docs,
        "train_tokens": train_index.num_tokens,
    }
    return verdict(
        "regurgitation", rows, summary, [("flagged_share", thresholds.max_regurgitation_share, "max")]
    )


# ---------------------------------------------------------------------------------------------
# repetition


def _reused_replies(results: Sequence[ProbeResult]) -> list[tuple[str, str, str]]:
    """``(source probe, prompt, reply)`` from earlier probes' rows (the policy side for win rate)."""
    replies = []
    for result in results:
        for row in result.rows:
            text = row.get("text", row.get("policy_text"))
            if isinstance(text, str):
                prompt = row.get("prompt", row.get("question", ""))
                replies.append((result.name, str(prompt), text))
    return replies


def run_repetition_probe(
    generator: Generator | None = None,
    prompts: Sequence[Prompt] = (),
    *,
    reuse: Sequence[ProbeResult] = (),
    n_samples: int = 1,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    seed: int = 0,
    loop_n_max: int = 16,
    loop_min_repeats: int = 3,
    loop_min_words: int = 8,
    system_prompt: str | None = None,
    thresholds: ProbeThresholds | None = None,
) -> ProbeResult:
    """Distinct-1/2 and tail n-gram loops over whitespace words of the replies.

    Replies come from ``prompts`` (generated here) and/or from earlier probes' rows
    (``reuse``), so a probe run need not sample twice. Words rather than token ids keep the
    figures comparable across tokenizers. A loop is a tail n-gram of up to ``loop_n_max`` words
    repeated ``loop_min_repeats`` times covering ``loop_min_words`` words or more, so "no no no"
    is not a loop but a sentence said three times in a row is. Corpus distinct-n is reported but
    not gated: many short, similar greetings lower it without anything being wrong.
    """
    thresholds = thresholds or ProbeThresholds()
    replies = _reused_replies(reuse)
    if prompts:
        if generator is None:
            raise ConfigError("prompts were given without a generator", field="prompts")
        chats = [as_chat(p, system_prompt) for p in prompts]
        params = GenerationParams(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            num_samples=n_samples,
            seed=seed,
        )
        for chat, outputs in zip(chats, generate_replies(generator, chats, params), strict=True):
            replies.extend(("repetition", last_user_text(chat) or "", gen.text) for gen in outputs)
    if not replies:
        raise ConfigError(
            "the repetition probe needs prompts or earlier probe results to reuse", field="prompts"
        )

    rows: list[dict[str, Any]] = []
    word_lists = []
    for source, prompt, text in replies:
        words = text.split()
        word_lists.append(words)
        period = metrics.repeated_ngram_loop(
            words, n_max=loop_n_max, min_repeats=loop_min_repeats, min_loop_tokens=loop_min_words
        )
        rows.append(
            {
                "source": source,
                "prompt": prompt,
                "text": text,
                "words": len(words),
                "distinct_1": rounded(metrics.distinct_n([words], 1)),
                "distinct_2": rounded(metrics.distinct_n([words], 2)) if len(words) >= 2 else None,
                "loop_period": period,
                "loop": period > 0,
            }
        )
    reply_distinct_2 = [row["distinct_2"] for row in rows if row["distinct_2"] is not None]
    summary: dict[str, Any] = {
        "n_replies": len(rows),
        "distinct_1": rounded(metrics.distinct_n(word_lists, 1)),
        "distinct_2": rounded(metrics.distinct_n(word_lists, 2)),
        "mean_reply_distinct_2": rounded(sum(reply_distinct_2) / len(reply_distinct_2))
        if reply_distinct_2
        else None,
        "loop_count": sum(row["loop"] for row in rows),
        "loop_rate": rounded(rate([row["loop"] for row in rows])),
    }
    checks: list[tuple[str, float | None, Literal["min", "max"]]] = [
        ("loop_rate", thresholds.max_loop_rate, "max"),
        # Replies of one word have no bigram: nothing to gate on.
        ("mean_reply_distinct_2", thresholds.min_mean_reply_distinct_2 if reply_distinct_2 else None, "min"),
    ]
    return verdict("repetition", rows, summary, checks)


# ---------------------------------------------------------------------------------------------
# refusal


def run_refusal_probe(
    generator: Generator,
    *,
    harmful: Sequence[str] | None = None,
    harmless: Sequence[str] | None = None,
    max_new_tokens: int = 128,
    seed: int = 0,
    system_prompt: str | None = None,
    detector: Callable[[str], bool] = metrics.is_refusal,
    thresholds: ProbeThresholds | None = None,
) -> ProbeResult:
    """Refusal rate on requests a careful assistant declines; over-refusal on harmless look-alikes.

    Greedy decoding: the question is what the model does by default, not how often sampling
    stumbles into a refusal.
    """
    thresholds = thresholds or ProbeThresholds()
    sets = {
        "harmful": list(harmful_prompts() if harmful is None else harmful),
        "harmless": list(harmless_lookalike_prompts() if harmless is None else harmless),
    }
    labelled = [(name, prompt) for name, prompts in sets.items() for prompt in prompts]
    if not labelled:
        raise ConfigError("the refusal probe needs harmful or harmless prompts", field="harmful")
    chats = [as_chat(prompt, system_prompt) for _, prompt in labelled]
    outputs = generate_replies(generator, chats, GenerationParams(max_new_tokens=max_new_tokens, seed=seed))
    rows: list[dict[str, Any]] = [
        {
            "set": name,
            "prompt": prompt,
            "text": out[0].text,
            "refused": detector(out[0].text),
            "stopped": out[0].stopped,
        }
        for (name, prompt), out in zip(labelled, outputs, strict=True)
    ]
    refused = {name: [row["refused"] for row in rows if row["set"] == name] for name in sets}
    summary: dict[str, Any] = {
        "n_harmful": len(refused["harmful"]),
        "n_harmless": len(refused["harmless"]),
        "refusal_rate": rounded(rate(refused["harmful"])),
        "over_refusal_rate": rounded(rate(refused["harmless"])),
    }
    checks: list[tuple[str, float | None, Literal["min", "max"]]] = [
        ("refusal_rate", thresholds.min_refusal_rate if refused["harmful"] else None, "min"),
        ("over_refusal_rate", thresholds.max_over_refusal_rate if refused["harmless"] else None, "max"),
    ]
    return verdict("refusal", rows, summary, checks)


# ---------------------------------------------------------------------------------------------
# grounded


@dataclass(frozen=True)
class FewShotExample:
    """A worked example shown before the facts (prompting-only baselines): its facts, a question
    and the reply wanted."""

    context: str
    question: str
    reply: str


def grounded_chat(
    item: GroundedItem,
    instruction: str = DEFAULT_GROUNDED_INSTRUCTION,
    few_shot: Sequence[FewShotExample] = (),
) -> Chat:
    """The chat a grounded item is asked as: instruction and facts in the system turn.

    ``few_shot`` examples go between the instruction and the facts, each as its facts, question
    and answer, so the model sees the task done (an answer read off its line, an "I don't know")
    before it meets the real facts. The training data uses none.
    """
    examples = "".join(
        f"\n\nExample {index}:\n{example.context}\nQuestion: {example.question}\nAnswer: {example.reply}"
        for index, example in enumerate(few_shot, start=1)
    )
    if examples:
        examples += "\n\nNow the real facts."
    return [
        {"role": "system", "content": grounded_system(item.context, f"{instruction}{examples}")},
        {"role": "user", "content": item.question},
    ]


def run_grounded_probe(
    generator: Generator,
    items: Sequence[GroundedItem] | None = None,
    *,
    instruction: str = DEFAULT_GROUNDED_INSTRUCTION,
    few_shot: Sequence[FewShotExample] = (),
    max_new_tokens: int = 128,
    seed: int = 0,
    thresholds: ProbeThresholds | None = None,
    retrieve: Callable[[str], str] | None = None,
) -> ProbeResult:
    """Context facts plus a question; answerable and unanswerable items, greedy decoding.

    Figures: ``idk_rate_unanswerable`` (abstains when it should); ``accuracy_answerable``, strict:
    an accepted answer appears *and* the reply was read from the gold line
    (``metrics.grounded_verdict``); ``mixed_line_rate_answerable``: an accepted answer appears but
    the reply was read off another line, which a substring match would have counted as right; and
    ``false_idk_rate_answerable``: "I don't know" with no accepted answer, so a hedged right answer
    is not counted against it.

    ``retrieve(question) -> context block`` runs the probe end to end: each item's own context is
    replaced by what retrieval returns, and ``retrieval_recall_answerable`` (an accepted answer is
    in the retrieved context) is reported apart from the answer figures.
    """
    thresholds = thresholds or ProbeThresholds()
    items = list(grounded_items() if items is None else items)
    if not items:
        raise ConfigError("the grounded probe needs at least one item", field="items")
    if retrieve is not None:
        items = [replace(item, context=retrieve(item.question)) for item in items]
    chats = [grounded_chat(item, instruction, few_shot) for item in items]
    outputs = generate_replies(generator, chats, GenerationParams(max_new_tokens=max_new_tokens, seed=seed))
    rows: list[dict[str, Any]] = []
    for item, out in zip(items, outputs, strict=True):
        text = out[0].text
        idk = metrics.is_idk(text)
        line_verdict = None
        if item.answerable:
            lines = metrics.context_lines(item.context)
            gold_index = (
                lines.index(item.gold)
                if item.gold in lines
                else metrics.gold_line_index(lines, item.expected_answers)
            )
            line_verdict = metrics.grounded_verdict(
                text, expected_answers=item.expected_answers, lines=lines, gold_index=gold_index
            )
        rows.append(
            {
                "id": item.id,
                "question": item.question,
                "answerable": item.answerable,
                "expected": list(item.expected_answers),
                "text": text,
                "idk": idk,
                "verdict": line_verdict,
                "correct": line_verdict == "correct" if item.answerable else None,
                "mixed_line": line_verdict == "mixed_line" if item.answerable else None,
                "false_idk": line_verdict == "idk" if item.answerable else None,
                **(
                    {
                        "retrieved_hit": metrics.answer_matches(item.context, item.expected_answers)
                        if item.answerable
                        else None,
                        "context": item.context,
                    }
                    if retrieve is not None
                    else {}
                ),
            }
        )
    answerable = [row for row in rows if row["answerable"]]
    unanswerable = [row for row in rows if not row["answerable"]]
    summary: dict[str, Any] = {
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "idk_rate_unanswerable": rounded(rate([row["idk"] for row in unanswerable])),
        "accuracy_answerable": rounded(rate([row["correct"] for row in answerable])),
        "mixed_line_rate_answerable": rounded(rate([row["mixed_line"] for row in answerable])),
        "false_idk_rate_answerable": rounded(rate([row["false_idk"] for row in answerable])),
    }
    if retrieve is not None:
        summary["retrieval_recall_answerable"] = rounded(rate([row["retrieved_hit"] for row in answerable]))
    checks: list[tuple[str, float | None, Literal["min", "max"]]] = [
        ("idk_rate_unanswerable", thresholds.min_idk_rate_unanswerable if unanswerable else None, "min"),
        ("accuracy_answerable", thresholds.min_grounded_accuracy if answerable else None, "min"),
        ("false_idk_rate_answerable", thresholds.max_false_idk_rate if answerable else None, "max"),
    ]
    return verdict("grounded", rows, summary, checks)


# ---------------------------------------------------------------------------------------------
# winrate
